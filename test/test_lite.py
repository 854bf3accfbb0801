"""`lite`: shapes at every scale and odd sizes, its bicubic base, and the untrained identity."""

import numpy as np
import pytest

pytest.importorskip("torch", reason="needs the optional torch extra: pip install -e '.[torch]'")

import torch

from depth_sr_ros.core.resample import pil_resize
from depth_sr_ros.models.lite import SCALES, BicubicUpsample, lite


@pytest.mark.parametrize("scale", SCALES)
@pytest.mark.parametrize("h, w", [(5, 7), (8, 8)])
def test_output_shape_for_every_scale_and_odd_sizes(scale, h, w):
    model = lite(scale, width=8, dilations=(1, 2), fine_width=4).eval()
    with torch.no_grad():
        out = model(torch.rand(2, 3, h * scale, w * scale), torch.rand(2, 1, h, w), torch.ones(2, 1, h, w))
    assert out.shape == (2, 1, h * scale, w * scale)


def test_bicubic_base_equals_pil_bicubic_away_from_the_border():
    x = np.random.default_rng(0).random((12, 16)).astype(np.float32)
    for scale in SCALES:
        up = BicubicUpsample(scale)(torch.from_numpy(x)[None, None])[0, 0].numpy()
        ref = pil_resize(x, (16 * scale, 12 * scale), "bicubic")
        inner = slice(2 * scale, -2 * scale)
        np.testing.assert_allclose(up[inner, inner], ref[inner, inner], atol=1e-5)


def test_untrained_network_returns_its_bicubic_base():
    model = lite(4).eval()
    depth = torch.rand(1, 1, 6, 9)
    with torch.no_grad():
        out = model(torch.rand(1, 3, 24, 36), depth, torch.ones_like(depth))
    torch.testing.assert_close(out, model.upsample(depth))


def test_rejects_a_guide_of_the_wrong_size_and_unknown_scales():
    model = lite(4, width=8, dilations=(1,), fine_width=4)
    with pytest.raises(ValueError, match="must be 4x the depth"):
        model(torch.rand(1, 3, 20, 20), torch.rand(1, 1, 4, 4), torch.ones(1, 1, 4, 4))
    with pytest.raises(ValueError, match="scales"):
        lite(3)
