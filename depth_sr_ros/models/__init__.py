"""Torch network backbones, their weights files and model cards.

Importing a network module (`NETWORK_MODULES`) registers it with `depth_sr_ros.core.backbones`
(kind "network"); `load_backbones()` imports them all. The package itself imports no torch, so
reading model cards (`weights.ModelCard`, `zoo`) stays fast.
"""

NETWORK_MODULES = ("depth_sr_ros.models.gta_dinov2", "depth_sr_ros.models.lite", "depth_sr_ros.models.nafnet_adain")
