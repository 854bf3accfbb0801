"""`lite_unet`: size class, the untrained identity, any input size, same base as `lite`."""

import pytest

pytest.importorskip("torch", reason="needs the optional torch extra: pip install -e '.[torch]'")

import torch

from depth_sr_ros.models.lite import lite
from depth_sr_ros.models.lite_unet import LiteUNetConfig, lite_unet


def test_default_size_is_the_real_time_class_with_most_parameters_at_low_resolution():
    model = lite_unet(4)
    total = sum(p.numel() for p in model.parameters())
    deep = sum(p.numel() for name, p in model.named_parameters() if name.startswith(("middle", "down2", "up2")))
    assert 0.5e6 <= total <= 2e6
    assert deep > 0.6 * total
    assert model.config == LiteUNetConfig()


@pytest.mark.parametrize("scale", [2, 4, 8, 16])
def test_untrained_network_is_its_bicubic_base_at_any_size(scale):
    model = lite_unet(scale, width=8, enc_blocks=(1, 1), middle_dilations=(1,), dec_blocks=(1, 1)).eval()
    reference = lite(scale, width=8, dilations=(1,), fine_width=4).eval()
    for h, w in ((3, 5), (9, 4)):  # not multiples of the 1/16 level: padded inside, cropped back
        depth = torch.rand(1, 1, h, w)
        with torch.no_grad():
            out = model(torch.rand(1, 3, h * scale, w * scale), depth, torch.ones_like(depth))
            base = reference(torch.rand(1, 3, h * scale, w * scale), depth, torch.ones_like(depth))
        assert out.shape == (1, 1, h * scale, w * scale)
        torch.testing.assert_close(out, base)  # both zero-initialise their residual head


def test_rejects_unknown_scales_and_level_counts():
    with pytest.raises(ValueError, match="scales"):
        lite_unet(3)
    with pytest.raises(ValueError, match="2 entries"):
        lite_unet(4, enc_blocks=(1, 1, 1))
