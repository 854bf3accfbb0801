"""Frozen foundation models, loaded from local files through `transformers` (optional extra).

  depth_anything_v2_small  Depth Anything V2 Small, `DepthAnythingForDepthEstimation`
                           (a local copy of the `depth-anything/Depth-Anything-V2-Small-hf` repo)
  dinov2_vits14            DINOv2 ViT-S/14, `Dinov2Model` (a local copy of `facebook/dinov2-small`)

The user names a directory in the transformers layout (`config.json` + `model.safetensors`), or
the `model.safetensors` file inside it. Nothing is downloaded unless `download=True` is passed,
in which case the name may also be a Hugging Face Hub repository id. Original-format `.pth`
checkpoints are pickles and are not loaded. `transformers` is imported only here, lazily:
`pip install "depth_sr_ros[foundation]"`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from depth_sr_ros.core.errors import UsageError
from depth_sr_ros.models.blocks import crop_to, pad_to_multiple

PATCH_SIZE = 14
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

FOUNDATION_WEIGHTS = {
    "depth_anything_v2_small": "Depth Anything V2 Small (transformers layout, e.g. depth-anything/Depth-Anything-V2-Small-hf)",
    "dinov2_vits14": "DINOv2 ViT-S/14 (transformers layout, e.g. facebook/dinov2-small)",
}


class FoundationWeightsMissing(UsageError, FileNotFoundError):
    """Foundation weights (or `transformers`) are not available for a backbone that needs them."""


def backbones_without(weights_name: str) -> list[str]:
    """Registered backbones that run without the foundation weights `weights_name`."""
    from depth_sr_ros.core.backbones import load_backbones

    registry = load_backbones()
    return [
        name for name in registry.names()
        if weights_name not in registry.get(name).foundation or not registry.get(name).requires_foundation
    ]


def missing_foundation_error(what: str, weights_name: str, detail: str = "") -> FoundationWeightsMissing:
    """The error for `what` needing `weights_name` that the user did not give (or that cannot load)."""
    return FoundationWeightsMissing(
        f"{what} needs {FOUNDATION_WEIGHTS[weights_name]} weights from a local directory you name"
        f"{': ' + detail if detail else ''}. Nothing is downloaded at run time. Backbones that work "
        f"without them: {', '.join(backbones_without(weights_name))}"
    )


def _transformers() -> Any:
    try:
        import transformers
    except ImportError:
        raise FoundationWeightsMissing(
            "loading foundation weights needs the optional `transformers` package: "
            "pip install 'depth_sr_ros[foundation]'"
        ) from None
    return transformers


def _pretrained_source(path: str | Path, weights_name: str, download: bool) -> str:
    """Directory to `from_pretrained` from (a file path names its directory); Hub ids only with download."""
    candidate = Path(path).expanduser()
    if candidate.is_file():
        if candidate.suffix == ".pth" or candidate.suffix == ".pt":
            raise missing_foundation_error(
                weights_name, weights_name, f"{candidate} is a pickle checkpoint, which is not loaded; "
                "use the transformers (safetensors) release of the model"
            )
        candidate = candidate.parent
    if candidate.is_dir():
        if not (candidate / "config.json").is_file():
            raise missing_foundation_error(weights_name, weights_name, f"{candidate} has no config.json")
        return str(candidate)
    if download:
        return str(path)
    raise missing_foundation_error(weights_name, weights_name, f"{path} does not exist")


def _load(cls_name: str, path: str | Path, weights_name: str, download: bool) -> nn.Module:
    source = _pretrained_source(path, weights_name, download)  # a bad path is named before a missing package
    cls = getattr(_transformers(), cls_name)
    try:
        model = cls.from_pretrained(source, local_files_only=not download, use_safetensors=True)
    except (OSError, ValueError) as exc:
        raise missing_foundation_error(weights_name, weights_name, f"cannot load {source}: {exc}") from None
    return model.eval().requires_grad_(False)


def load_depth_anything(path: str | Path, download: bool = False) -> nn.Module:
    """Depth Anything V2 Small (`DepthAnythingForDepthEstimation`) from a local directory, frozen, eval."""
    return _load("DepthAnythingForDepthEstimation", path, "depth_anything_v2_small", download)


def load_dinov2(path: str | Path, download: bool = False) -> nn.Module:
    """DINOv2 ViT-S/14 (`Dinov2Model`) from a local directory, frozen, eval."""
    return _load("Dinov2Model", path, "dinov2_vits14", download)


class ImageNetNormalize(nn.Module):
    """rgb in [0, 1] -> ImageNet-normalised input for the ViTs."""

    mean: torch.Tensor
    std: torch.Tensor

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)

    def forward(self, rgb: torch.Tensor) -> torch.Tensor:
        return (rgb - self.mean) / self.std


class RelativeDepthGuide(nn.Module):
    """rgb Bx3xHxW in [0, 1] -> Bx1xHxW relative inverse depth of Depth Anything V2, min-max
    normalised per image to [0, 1]. The input is padded to a multiple of 14 and cropped back."""

    def __init__(self, model: nn.Module, eps: float = 1e-6) -> None:
        super().__init__()
        self.normalize = ImageNetNormalize()
        self.model = model.eval().requires_grad_(False)
        self.eps = eps

    def forward(self, rgb: torch.Tensor) -> torch.Tensor:
        height, width = rgb.shape[-2:]
        x = pad_to_multiple(self.normalize(rgb), PATCH_SIZE)
        guide = crop_to(self.model(pixel_values=x).predicted_depth.unsqueeze(1), height, width)
        low = guide.amin((2, 3), keepdim=True)
        high = guide.amax((2, 3), keepdim=True)
        return (guide - low) / (high - low + self.eps)


def default_token_layers(num_layers: int) -> tuple[int, ...]:
    """Four evenly spaced transformer blocks (1-based): (3, 6, 9, 12) for ViT-S/14."""
    return tuple(num_layers * k // 4 for k in range(1, 5))


class Dinov2Tokens(nn.Module):
    """rgb Bx3xHxW in [0, 1], H and W multiples of 14 -> patch tokens of four transformer blocks,
    each layer-normalised (as DINOv2's `get_intermediate_layers(norm=True)`) and reshaped to its
    grid: a list of `B x hidden x H/14 x W/14` maps. The class (and register) tokens are dropped."""

    def __init__(self, model: nn.Module, layers: tuple[int, ...] | None = None) -> None:
        super().__init__()
        config: Any = model.config
        self.normalize = ImageNetNormalize()
        self.model = model.eval().requires_grad_(False)
        self.layers = tuple(layers) if layers else default_token_layers(config.num_hidden_layers)
        if len(self.layers) != 4 or not all(1 <= i <= config.num_hidden_layers for i in self.layers):
            raise ValueError(f"need four block indices in 1..{config.num_hidden_layers}, got {self.layers}")
        self.hidden_size = int(config.hidden_size)
        self.prefix_tokens = 1 + getattr(config, "num_register_tokens", 0)

    def forward(self, rgb: torch.Tensor) -> list[torch.Tensor]:
        batch, _, height, width = rgb.shape
        grid_h, grid_w = height // PATCH_SIZE, width // PATCH_SIZE
        vit: Any = self.model
        hidden = vit(pixel_values=self.normalize(rgb), output_hidden_states=True).hidden_states
        maps = []
        for layer in self.layers:
            tokens = vit.layernorm(hidden[layer])[:, self.prefix_tokens:]
            maps.append(tokens.transpose(1, 2).reshape(batch, self.hidden_size, grid_h, grid_w))
        return maps


def architecture_only(weights_name: str) -> nn.Module:
    """A randomly initialised model with the published architecture of `weights_name` (no weights
    read): for counting parameters and FLOPs. Build it under `torch.device("meta")` to skip memory."""
    transformers = _transformers()
    vits14 = {"hidden_size": 384, "num_hidden_layers": 12, "num_attention_heads": 6, "mlp_ratio": 4,
              "patch_size": PATCH_SIZE, "image_size": 518}
    if weights_name == "dinov2_vits14":
        return transformers.Dinov2Model(transformers.Dinov2Config(**vits14)).eval()
    if weights_name == "depth_anything_v2_small":
        backbone = {"model_type": "dinov2", "out_indices": [3, 6, 9, 12], "reshape_hidden_states": False, **vits14}
        config = transformers.DepthAnythingConfig(
            backbone_config=backbone, reassemble_hidden_size=384, neck_hidden_sizes=[48, 96, 192, 384],
            fusion_hidden_size=64, head_hidden_size=32, depth_estimation_type="relative",
        )
        return transformers.DepthAnythingForDepthEstimation(config).eval()
    raise KeyError(f"unknown foundation weights {weights_name!r}; known: {', '.join(FOUNDATION_WEIGHTS)}")
