"""Torch network backbones, registered by name without importing torch.

Each entry names the module and factory that build the network (`core.backbones.register_network`);
the module, and torch with it, is imported only when the network is built.
"""

from depth_sr_ros.core.backbones import register_network

register_network(
    "lite",
    "depth_sr_ros.models.lite:lite",
    description="small real-time RGB-guided depth SR (pixel-unshuffle trunk at 1/4 res, ~0.1M params); "
    "no foundation weights",
)
register_network(
    "lite_unet",
    "depth_sr_ros.models.lite_unet:lite_unet",
    description="lite with a 3-level U-Net trunk (1/4, 1/8, 1/16 of the output; 1.5M params, most at 1/16); "
    "real-time on CPU, no foundation weights",
)
register_network(
    "nafnet_adain",
    "depth_sr_ros.models.nafnet_adain:nafnet_adain",
    description="NAFNet depth + guide encoders with per-level AdaIN (CVPR 2024 AIS winner); "
    "guide = Depth Anything V2 Small relative depth when given, else RGB",
    foundation=("depth_anything_v2_small",),
    requires_foundation=False,
)
register_network(
    "gta_dinov2",
    "depth_sr_ros.models.gta_dinov2:gta_dinov2",
    description="NAIMA: RCAB depth + RGB encoders with Guided Token Attention over frozen DINOv2 ViT-S/14 tokens",
    foundation=("dinov2_vits14",),
    requires_foundation=True,
)
