"""FrameProcessor: message quadruple -> SR image, camera_info and cloud field sets, and its checks."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from depth_sr_ros.core.errors import FrameError
from depth_sr_ros.core.frame_processor import FrameProcessor, OutputConfig
from depth_sr_ros.core.image_msg import depth_from_image
from depth_sr_ros.core.pipeline import DepthSR, SRConfig

W, H, S = 64, 48, 4
FX, FY, CX, CY = 60.0, 58.0, 31.5, 23.5


def image(array: np.ndarray, encoding: str) -> SimpleNamespace:
    data = np.ascontiguousarray(array).reshape(-1).view(np.uint8)
    return SimpleNamespace(height=array.shape[0], width=array.shape[1], encoding=encoding, is_bigendian=0,
                           step=data.size // array.shape[0], data=data.tobytes())


def camera_info(width: int, height: int, scale: float = 1.0) -> SimpleNamespace:
    fx, fy, cx, cy = FX * scale, FY * scale, CX * scale, CY * scale
    return SimpleNamespace(width=width, height=height, distortion_model="plumb_bob", d=[0.0] * 5,
                           k=[fx, 0, cx, 0, fy, cy, 0, 0, 1], r=[1, 0, 0, 0, 1, 0, 0, 0, 1],
                           p=[fx, 0, cx, 0, 0, fy, cy, 0, 0, 0, 1, 0])


def scene() -> tuple[np.ndarray, np.ndarray]:
    """RGB with a bright square, and low-res depth: 2 m background, 1.5 m square (mm)."""
    rgb = np.full((H, W, 3), 40, np.uint8)
    rgb[16:32, 24:48] = 220
    depth_mm = np.full((H // S, W // S), 2000, np.uint16)
    depth_mm[4:8, 6:12] = 1500
    return rgb, depth_mm


@pytest.fixture(scope="module")
def processor() -> FrameProcessor:
    return FrameProcessor(DepthSR(SRConfig(scale=S, backbone="bicubic")), OutputConfig())


@pytest.fixture
def fresh() -> FrameProcessor:
    """A processor whose streams have no established size yet."""
    return FrameProcessor(DepthSR(SRConfig(scale=S, backbone="bicubic")), OutputConfig())


def inputs(**overrides):
    rgb, depth_mm = scene()
    msgs = {"rgb_msg": image(rgb, "rgb8"), "rgb_info_msg": camera_info(W, H),
            "depth_msg": image(depth_mm, "16UC1"), "depth_info_msg": camera_info(W // S, H // S, 1 / S)}
    msgs.update(overrides)
    return msgs


def test_outputs_have_rgb_size_encoding_intrinsics_and_points(processor: FrameProcessor) -> None:
    out = processor.process(**inputs(), want_points=True)
    assert (out.image.width, out.image.height, out.image.encoding) == (W, H, "32FC1")
    assert out.image.step == W * 4 and out.image.data.size == W * H * 4
    decoded = depth_from_image(out.image)
    np.testing.assert_array_equal(decoded, out.depth)
    assert out.depth.shape == (H, W) and out.depth.dtype == np.float32
    assert np.nanmin(out.depth) > 1.3 and np.nanmax(out.depth) < 2.2  # bicubic may overshoot at the step
    assert out.depth[2, 2] == pytest.approx(2.0, abs=1e-3) and out.depth[24, 36] == pytest.approx(1.5, abs=1e-3)

    assert (out.camera_info.width, out.camera_info.height) == (W, H)
    np.testing.assert_allclose(out.camera_info.k, [FX, 0, CX, 0, FY, CY, 0, 0, 1])

    cloud = out.points
    assert (cloud.height, cloud.width, cloud.point_step) == (H, W, 12)
    xyz = cloud.data.view("<f4").reshape(H, W, 3)
    v, u = 24, 36
    z = out.depth[v, u]
    np.testing.assert_allclose(xyz[v, u], [(u - CX) * z / FX, (v - CY) * z / FY, z], rtol=1e-5)
    assert set(out.timings_ms) >= {"decode", "preprocess", "network", "postprocess", "encode", "pointcloud", "total"}
    assert all(t >= 0 for t in out.timings_ms.values())


def test_16uc1_output_xyzrgb_and_stride() -> None:
    proc = FrameProcessor(DepthSR(SRConfig(scale=S, backbone="bicubic")),
                          OutputConfig(output_encoding="16UC1", point_cloud_rgb=True, point_stride=2))
    out = proc.process(**inputs(), want_points=True)
    assert (out.image.encoding, out.image.step) == ("16UC1", W * 2)
    mm = out.image.data.view("<u2").reshape(H, W)
    assert mm[2, 2] == 2000 and mm[24, 36] == 1500
    assert (out.points.height, out.points.width, out.points.point_step) == (H // 2, W // 2, 16)
    assert [f.name for f in out.points.fields] == ["x", "y", "z", "rgb"]


def test_no_points_when_not_wanted_and_depth_info_optional(processor: FrameProcessor) -> None:
    out = processor.process(**inputs(depth_info_msg=None), want_points=False)
    assert out.points is None and "pointcloud" not in out.timings_ms
    assert out.depth.shape == (H, W)


def test_bgr_input_matches_rgb_input(processor: FrameProcessor) -> None:
    rgb, _ = scene()
    rgb = rgb.copy()
    rgb[..., 0] = np.arange(W, dtype=np.uint8)[None, :] * 3  # make the channels differ
    a = processor.process(**inputs(rgb_msg=image(rgb, "rgb8")), want_points=False)
    b = processor.process(**inputs(rgb_msg=image(rgb[..., ::-1], "bgr8")), want_points=False)
    np.testing.assert_array_equal(a.depth, b.depth)


@pytest.mark.parametrize(
    ("overrides", "reason"),
    [
        ({"rgb_info_msg": None}, "missing_camera_info"),
        ({"rgb_info_msg": camera_info(W * 2, H * 2, 2.0)}, "size_mismatch"),
        ({"depth_info_msg": camera_info(W // 2, H // 2, 0.5)}, "size_mismatch"),
        ({"depth_info_msg": camera_info(W // S, H // S, 1.3 / S)}, "unregistered_depth"),
        ({"depth_msg": image(np.zeros((H // S, W // S), np.uint8), "8UC1")}, "unsupported_encoding"),
        ({"rgb_msg": image(np.zeros((H, W), np.uint16), "mono16")}, "unsupported_encoding"),
        ({"depth_msg": SimpleNamespace(**{**vars(image(scene()[1], "16UC1")), "data": b"\x01" * 100})},
         "truncated_data"),
        ({"depth_msg": image(np.zeros((H // S, W // S), np.uint16), "16UC1")}, "all_invalid_depth"),
        ({"depth_msg": image(np.full((H // S, W // S), np.nan, np.float32), "32FC1")}, "all_invalid_depth"),
        ({"depth_msg": image(np.zeros((H // S, W // S + 5), np.uint16) + 1000, "16UC1"), "depth_info_msg": None},
         "aspect_mismatch"),
    ],
)
def test_bad_frames_raise_frame_error_and_the_next_good_frame_works(
    fresh: FrameProcessor, overrides: dict, reason: str
) -> None:
    with pytest.raises(FrameError) as info:
        fresh.process(**inputs(**overrides), want_points=True)
    assert info.value.reason == reason and str(info.value)
    assert fresh.process(**inputs(), want_points=True).points is not None


def test_nan_and_inf_depth_are_masked_not_propagated(processor: FrameProcessor) -> None:
    _, depth_mm = scene()
    depth = depth_mm.astype(np.float32) / 1000
    depth[0, 0], depth[1, 1], depth[2, 2], depth[3, 3] = np.nan, np.inf, -np.inf, -1.0
    out = processor.process(**inputs(depth_msg=image(depth, "32FC1")), want_points=True)
    assert not np.isinf(out.depth).any()
    finite = out.depth[np.isfinite(out.depth)]
    assert finite.size > 0.9 * out.depth.size and finite.min() > 1.3 and finite.max() < 2.2
    assert not np.isinf(out.points.data.view("<f4")).any()


def test_invalid_output_config_is_rejected() -> None:
    with pytest.raises(ValueError):
        OutputConfig(output_encoding="mono16")
    with pytest.raises(ValueError):
        OutputConfig(point_stride=0)


# ----------------------------------------------------------------------------- bounds (issue 23)

def test_first_good_frame_fixes_the_stream_sizes_and_other_sizes_are_refused(fresh: FrameProcessor) -> None:
    rgb, _ = scene()
    big_rgb = np.repeat(np.repeat(rgb, 2, axis=0), 2, axis=1)
    # before any good frame a consistent 128x96 frame would be accepted: the first good frame decides
    assert fresh.bounds.established("rgb") is None
    fresh.process(**inputs(), want_points=False)
    assert fresh.bounds.established("rgb") == (W, H) and fresh.bounds.established("depth") == (W // S, H // S)
    with pytest.raises(FrameError, match="128x96") as info:
        fresh.process(**inputs(rgb_msg=image(big_rgb, "rgb8"), rgb_info_msg=camera_info(2 * W, 2 * H, 2.0)),
                      want_points=False)
    assert info.value.reason == "size_changed"
    with pytest.raises(FrameError) as info:
        fresh.process(**inputs(depth_msg=image(np.full((6, 8), 2000, np.uint16), "16UC1"), depth_info_msg=None),
                      want_points=False)
    assert info.value.reason == "size_changed"
    assert fresh.process(**inputs(), want_points=False).depth.shape == (H, W)


@pytest.mark.parametrize("role", ["rgb_info_msg", "depth_info_msg"])
def test_camera_info_claiming_a_huge_image_is_oversize_before_any_decoding(fresh: FrameProcessor, role: str,
                                                                           monkeypatch) -> None:
    import depth_sr_ros.core.frame_processor as module

    def no_decoding(*args, **kwargs):
        raise AssertionError("decoded although a claimed size was refused")

    monkeypatch.setattr(module, "rgb_from_image", no_decoding)
    monkeypatch.setattr(module, "depth_from_image", no_decoding)
    with pytest.raises(FrameError, match="16000x12000") as info:
        fresh.process(**inputs(**{role: camera_info(16000, 12000, 250.0)}), want_points=False)
    assert info.value.reason == "oversize"


def test_a_compressed_image_whose_header_disagrees_with_its_camera_info_is_not_decoded(fresh: FrameProcessor,
                                                                                     monkeypatch) -> None:
    from depth_sr_ros.core.compressed import compressed_rgb_fields

    rgb, _ = scene()
    fields = compressed_rgb_fields(np.ascontiguousarray(np.tile(rgb, (4, 4, 1))), "jpeg")  # 256x192
    monkeypatch.setattr("cv2.imdecode", lambda *a, **k: pytest.fail("decoded a mismatching image"))
    with pytest.raises(FrameError, match="256x192") as info:
        fresh.process(**inputs(rgb_msg=SimpleNamespace(format=fields.format, data=fields.data.tobytes())),
                      want_points=False)
    assert info.value.reason == "size_mismatch"


def test_the_pixel_limit_is_the_bounds_and_bounds_are_shared(fresh: FrameProcessor) -> None:
    from depth_sr_ros.core.limits import InputBounds

    bounds = InputBounds(max_pixels=W * H - 1)
    tight = FrameProcessor(fresh.pipeline, OutputConfig(), bounds)
    with pytest.raises(FrameError) as info:
        tight.process(**inputs(), want_points=False)
    assert info.value.reason == "oversize"
    bounds.max_pixels = W * H
    tight.process(**inputs(), want_points=False)
    other = FrameProcessor(fresh.pipeline, OutputConfig(output_encoding="16UC1"), bounds)  # e.g. a node's new one
    assert other.bounds.established("rgb") == (W, H)
