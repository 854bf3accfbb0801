"""Network backbones at tiny widths: shapes for every scale and odd sizes, padding/cropping,
AdaIN against a hand computation, Guided Token Attention with alpha = 0, foundation loading.

`tiny_network(name, scale)` is shared with test_weights.py and test_export_onnx.py. The foundation
tests build tiny random `transformers` models (the optional extra) and skip without it.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("torch", reason="needs the optional torch extra: pip install -e '.[torch]'")

import torch
from torch import nn

from depth_sr_ros.cli import main
from depth_sr_ros.core.backbones import load_backbones
from depth_sr_ros.models import blocks, zoo
from depth_sr_ros.models.export import is_exportable, set_exportable
from depth_sr_ros.models.flops import count_gflops
from depth_sr_ros.models.foundation import FoundationWeightsMissing

SCALES = (2, 4, 8, 16)
NETWORKS = [name for name in load_backbones().names() if load_backbones().get(name).kind == "network"]

TINY_KWARGS = {
    "nafnet_adain": {"width": 4, "enc_blocks": (1, 1, 1, 1), "middle_blocks": 1, "dec_blocks": (1, 1, 1, 1)},
    "gta_dinov2": {"width": 4, "depth_blocks": (1, 1, 0, 0), "rgb_blocks": (1, 0, 0, 0),
                   "dec_blocks": (1, 0, 0, 1), "semantic_dim": 4, "head_channels": 4},
    "lite": {"width": 8, "dilations": (1, 2), "fine_width": 4},
    "lite_unet": {"width": 4, "enc_blocks": (1, 1), "middle_dilations": (1, 2), "dec_blocks": (1, 1), "fine_width": 4},
}


def tiny_vit() -> nn.Module:
    """A randomly initialised DINOv2 (transformers `Dinov2Model`) with 4 blocks of width 16."""
    transformers = pytest.importorskip("transformers", reason="gta_dinov2 needs the optional transformers extra")
    torch.manual_seed(0)
    config = transformers.Dinov2Config(hidden_size=16, num_hidden_layers=4, num_attention_heads=2,
                                       mlp_ratio=2, image_size=56)
    return transformers.Dinov2Model(config).eval()


def tiny_depth_anything() -> nn.Module:
    """A randomly initialised `DepthAnythingForDepthEstimation` of the V2 architecture, tiny widths."""
    transformers = pytest.importorskip("transformers", reason="needs the optional transformers extra")
    torch.manual_seed(0)
    backbone = {"model_type": "dinov2", "hidden_size": 16, "num_hidden_layers": 4, "num_attention_heads": 2,
                "mlp_ratio": 2, "image_size": 56, "out_indices": [1, 2, 3, 4], "reshape_hidden_states": False,
                "initializer_range": 0.2}
    # initializer_range 0.2 (not 0.02) so that the random model's relative depth has a usable range
    config = transformers.DepthAnythingConfig(backbone_config=backbone, reassemble_hidden_size=16,
                                              neck_hidden_sizes=[4, 8, 16, 16], fusion_hidden_size=8,
                                              head_hidden_size=4, initializer_range=0.2)
    return transformers.DepthAnythingForDepthEstimation(config).eval()


def foundation_kwargs(name: str) -> dict:
    return {"dinov2": tiny_vit()} if name == "gta_dinov2" else {}


def randomize(model: nn.Module, seed: int = 0) -> nn.Module:
    """Random values for our parameters (zero-initialised residual scales would hide most paths)."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, param in model.named_parameters():
            if not name.startswith("foundation."):
                param.copy_(torch.randn(param.shape, generator=generator) * 0.2)
    return model.eval()


def tiny_network(name: str, scale: int, seed: int = 0, **overrides) -> nn.Module:
    """A small randomly initialised instance of a registered network (defaults for unknown names)."""
    kwargs = {**TINY_KWARGS.get(name, {}), **foundation_kwargs(name), **overrides}
    return randomize(load_backbones().get(name).factory(scale=scale, **kwargs), seed)


def inputs(h: int, w: int, scale: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    rgb = torch.rand(1, 3, h * scale, w * scale, generator=generator)
    depth = torch.rand(1, 1, h, w, generator=generator)
    mask = (torch.rand(1, 1, h, w, generator=generator) > 0.2).float()
    return rgb, depth, mask


def test_every_network_is_registered() -> None:
    assert {"nafnet_adain", "gta_dinov2"} <= set(NETWORKS)


@pytest.mark.parametrize("name", NETWORKS)
@pytest.mark.parametrize("scale", SCALES)
def test_output_shape_every_scale_and_odd_size(name: str, scale: int) -> None:
    model = tiny_network(name, scale)
    for h, w in ((5, 7), (3, 4)):
        with torch.no_grad():
            out = model(*inputs(h, w, scale))
        assert out.shape == (1, 1, h * scale, w * scale)
        assert torch.isfinite(out).all()


def test_batch_of_two_matches_single_frames() -> None:
    model = tiny_network("nafnet_adain", 4)
    a, b = inputs(5, 6, 4, seed=1), inputs(5, 6, 4, seed=2)
    with torch.no_grad():
        batched = model(*(torch.cat([x, y]) for x, y in zip(a, b)))
        assert torch.allclose(batched[1:], model(*b), atol=1e-5)


def test_pad_helpers() -> None:
    assert [blocks.lr_multiple(s, 16) for s in SCALES] == [8, 4, 2, 1]
    assert [blocks.lr_multiple(s, 56) for s in SCALES] == [28, 14, 7, 7]
    rgb, depth, mask = inputs(5, 7, 4)
    prgb, pdepth, pmask = blocks.pad_inputs(rgb, depth, mask, scale=4, hr_multiple=16)
    assert pdepth.shape[-2:] == pmask.shape[-2:] == (8, 8)
    assert prgb.shape[-2:] == (32, 32)
    assert torch.equal(blocks.crop_to(prgb, 20, 28), rgb)
    assert torch.equal(pdepth[..., 5:, :7], depth[..., 4:5, :].expand(1, 1, 3, 7))  # replicated rows
    with pytest.raises(ValueError, match="4x the depth"):
        blocks.pad_inputs(rgb[..., :19, :], depth, mask, scale=4, hr_multiple=16)


@pytest.mark.parametrize("name", ["nafnet_adain", "gta_dinov2"])
def test_internal_padding_is_replicate_pad_then_crop(name: str) -> None:
    """An odd-sized input gives exactly the cropped output of the explicitly padded input."""
    scale = 4
    model = tiny_network(name, scale)
    rgb, depth, mask = inputs(5, 7, scale)
    padded = blocks.pad_inputs(rgb, depth, mask, scale, model.pad_multiple)
    assert padded[1].shape[-2:] != depth.shape[-2:]
    with torch.no_grad():
        direct = model(rgb, depth, mask)
        reference = blocks.crop_to(model(*padded), 5 * scale, 7 * scale)
    assert torch.allclose(direct, reference, atol=1e-6)


def test_adain_matches_hand_computation() -> None:
    eps = 1e-5
    content = torch.tensor([1.0, 2.0, 3.0, 4.0, 0.0, 0.0, 2.0, 2.0]).view(1, 2, 2, 2)
    style = torch.tensor([10.0, 10.0, 20.0, 20.0, -1.0, 1.0, -1.0, 1.0]).view(1, 2, 2, 2)
    # channel 0: mu_c = 2.5, var_c = 1.25; mu_s = 15, var_s = 25
    # channel 1: mu_c = 1.0, var_c = 1.0;  mu_s = 0,  var_s = 1
    expected = torch.tensor([
        [math.sqrt(25 + eps) * (v - 2.5) / math.sqrt(1.25 + eps) + 15 for v in (1, 2, 3, 4)],
        [math.sqrt(1 + eps) * (v - 1.0) / math.sqrt(1.0 + eps) + 0 for v in (0, 0, 2, 2)],
    ]).view(1, 2, 2, 2)
    assert torch.allclose(blocks.adain(content, style, eps), expected, atol=1e-5)
    assert torch.allclose(blocks.AdaIN(eps)(content, style), expected, atol=1e-5)


def test_adain_output_takes_the_style_statistics() -> None:
    generator = torch.Generator().manual_seed(0)
    content = torch.randn(2, 3, 6, 5, generator=generator) * 4 + 1
    style = torch.randn(2, 3, 6, 5, generator=generator) * 0.5 - 2
    out_mean, out_std = blocks.channel_stats(blocks.adain(content, style))
    style_mean, style_std = blocks.channel_stats(style)
    assert torch.allclose(out_mean, style_mean, atol=1e-5)
    assert torch.allclose(out_std, style_std, atol=1e-4)


def test_guided_token_attention_alpha_zero_is_identity() -> None:
    torch.manual_seed(0)
    gta = blocks.GuidedTokenAttention(8, token_dim=6, shuffle=4, semantic_dim=4, num_heads=2).eval()
    x, tokens = torch.randn(1, 8, 10, 12), torch.randn(1, 6, 3, 3)
    assert torch.equal(gta(x, tokens), x)
    with torch.no_grad():
        gta.alpha.fill_(0.5)
    assert not torch.allclose(gta(x, tokens), x)


def test_channel_attention_exportable_path_matches_sdpa() -> None:
    generator = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(2, 2, 4, 30, generator=generator) for _ in range(3))
    temperature = torch.tensor([0.5, 2.0]).view(1, 2, 1, 1)
    fast = blocks.channel_cross_attention(q, k, v, temperature)
    with set_exportable(True):
        assert is_exportable()
        plain = blocks.channel_cross_attention(q, k, v, temperature)
    assert not is_exportable()
    assert torch.allclose(fast, plain, atol=1e-6)


def test_gta_model_with_alpha_zero_equals_model_without_attention() -> None:
    scale = 4
    with_gta = tiny_network("gta_dinov2", scale)
    with torch.no_grad():
        for module in with_gta.token_attention:
            module.alpha.zero_()
    without = load_backbones().get("gta_dinov2").factory(
        scale=scale, token_attention=False, **TINY_KWARGS["gta_dinov2"]
    ).eval()
    shared = {k: v for k, v in with_gta.state_dict().items() if not k.startswith(("token_attention.", "foundation."))}
    without.load_state_dict(shared, strict=True)
    x = inputs(5, 7, scale)
    with torch.no_grad():
        assert torch.allclose(with_gta(*x), without(*x), atol=1e-6)
        for module in with_gta.token_attention:
            module.alpha.fill_(0.3)
        assert not torch.allclose(with_gta(*x), without(*x), atol=1e-4)


def test_frozen_foundation_stays_in_eval_mode() -> None:
    model = tiny_network("gta_dinov2", 4).train()
    assert model.depth_stem.training and not model.foundation.training
    assert not any(p.requires_grad for p in model.foundation.parameters())


def test_dinov2_tokens_from_saved_tiny_model(tmp_path) -> None:
    from depth_sr_ros.models.foundation import Dinov2Tokens, load_dinov2

    tiny_vit().save_pretrained(tmp_path / "dinov2")
    vit = load_dinov2(tmp_path / "dinov2")
    assert not any(p.requires_grad for p in vit.parameters())
    maps = Dinov2Tokens(vit)(torch.rand(2, 3, 28, 42))
    assert Dinov2Tokens(vit).layers == (1, 2, 3, 4)
    assert [m.shape for m in maps] == [(2, 16, 2, 3)] * 4
    # the model file itself may be named as well as its directory
    model = load_backbones().get("gta_dinov2").factory(
        scale=2, dinov2=tmp_path / "dinov2" / "model.safetensors", **TINY_KWARGS["gta_dinov2"]
    )
    with torch.no_grad():
        assert model(*inputs(4, 5, 2)).shape == (1, 1, 8, 10)


def test_nafnet_adain_with_saved_tiny_depth_anything(tmp_path) -> None:
    from depth_sr_ros.models.foundation import RelativeDepthGuide, load_depth_anything

    tiny_depth_anything().save_pretrained(tmp_path / "da")
    guide = RelativeDepthGuide(load_depth_anything(tmp_path / "da"))
    relative = guide(torch.rand(1, 3, 20, 30))
    assert relative.shape == (1, 1, 20, 30)
    assert relative.min() >= 0 and relative.max() <= 1 and relative.max() > 0.5
    model = tiny_network("nafnet_adain", 4, depth_anything=tmp_path / "da")
    assert model.config.guide == "depth_anything" and isinstance(model.foundation, RelativeDepthGuide)
    with torch.no_grad():
        assert model(*inputs(5, 3, 4)).shape == (1, 1, 20, 12)


def test_missing_foundation_weights_name_backbones_that_work_without(tmp_path) -> None:
    with pytest.raises(FoundationWeightsMissing, match="without them: .*guided_filter.*nafnet_adain"):
        load_backbones().get("gta_dinov2").factory(scale=4)
    with pytest.raises(FoundationWeightsMissing, match="does not exist"):
        load_backbones().get("gta_dinov2").factory(scale=4, dinov2=tmp_path / "nowhere")
    with pytest.raises(FoundationWeightsMissing, match="depth_anything"):
        load_backbones().get("nafnet_adain").factory(scale=4, guide="depth_anything")
    pickle = tmp_path / "dinov2_vits14_pretrain.pth"
    pickle.write_bytes(b"not loaded")
    with pytest.raises(FoundationWeightsMissing, match="pickle"):
        load_backbones().get("gta_dinov2").factory(scale=4, dinov2=pickle)


def test_flop_count_is_two_per_mac() -> None:
    class OneConv(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = nn.Conv2d(3, 5, 3, padding=1, bias=False)

        def forward(self, rgb, depth, mask):
            return self.conv(rgb)

    macs = 5 * 3 * 3 * 3 * 40 * 60
    assert count_gflops(OneConv(), scale=4, height=40, width=60) == pytest.approx(2 * macs / 1e9)


def test_measure_counts_our_and_frozen_parameters() -> None:
    from depth_sr_ros.models.flops import measure

    cost = measure("nafnet_adain", 4, **TINY_KWARGS["nafnet_adain"])
    model = tiny_network("nafnet_adain", 4)
    assert cost.parameters == sum(p.numel() for p in model.parameters())
    assert cost.foundation_parameters == 0 and cost.gflops > 0
    pytest.importorskip("transformers", reason="counting the ViT needs the optional transformers extra")
    with_vit = measure("gta_dinov2", 2, ("dinov2_vits14",), **TINY_KWARGS["gta_dinov2"])
    assert with_vit.foundation_parameters == pytest.approx(22.06e6, rel=0.01)  # ViT-S/14 (no head)


def test_models_command_lists_weights_and_auto_without_torch(tmp_path) -> None:
    """The default listing reads cards only: no torch import, so it stays fast (issue 12)."""
    out = tmp_path / "models.json"
    code = ("import sys; from depth_sr_ros.cli import main; "
            f"assert main(['models', '--json', {str(out)!r}]) == 0; assert 'torch' not in sys.modules, 'torch imported'")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stderr
    document = json.loads(out.read_text())
    assert {b["name"] for b in document["backbones"]} == set(load_backbones().names())
    shipped = {Path(w["file"]).name: w for w in document["weights"]}
    for card, path in zoo.shipped_weights():
        entry = shipped[path.name]
        assert entry["metrics"] == card.metrics and entry["rank_value"] == card.metrics.get("val_rmse")
    for scale in SCALES:
        choice = zoo.auto_choice(scale)
        entry = document["auto"][str(scale)]
        assert (entry["backbone"], entry["weights"]) == (choice.backbone, str(choice.weights) if choice.weights else None)
        assert entry["reason"] == choice.reason and f"x{scale:<4}{choice.backbone}" in result.stdout
    assert "lite_x4.safetensors" in result.stdout


def test_models_flops_lists_every_network_cost(capsys, monkeypatch) -> None:
    """--flops wiring; the real counts are slow at full size, so `measure` is replaced by a stub here."""
    from depth_sr_ros.models import flops
    from depth_sr_ros.models.flops import ModelCost

    def fake_measure(name, scale, foundation=()):
        return ModelCost(name, scale, 1000 * scale, 7 if foundation else 0, 1.5 * scale, tuple(foundation))

    monkeypatch.setattr(flops, "measure", fake_measure)
    assert main(["models", "--flops", "--json", "-"]) == 0
    entries = {entry["name"]: entry for entry in json.loads(capsys.readouterr().out)["backbones"]}
    assert set(entries) == set(load_backbones().names())
    for name in NETWORKS:
        assert entries[name]["default"]["gflops"] == {str(s): 1.5 * s for s in SCALES}
    assert entries["gta_dinov2"]["default"]["foundation_parameters"] == 7
    assert entries["nafnet_adain"]["default"]["foundation_parameters"] == 0
    assert entries["nafnet_adain"]["with_foundation"]["foundation_parameters"] == 7
    assert "default" not in entries["guided_filter"]
    assert main(["models", "--flops"]) == 0
    table = capsys.readouterr().out
    assert "needs dinov2_vits14" in table and "can use depth_anything_v2_small" in table
