"""The node's side of issue 23 without ROS: CameraInfo checked on arrival, zero stamps, the pixel
limit as a parameter, and a device that is not there refused with the reason."""

from __future__ import annotations

import copy

import pytest
import test_node_logic
from test_node_logic import _handler, _Log, _quadruple

from depth_sr_ros.core.errors import FrameError
from depth_sr_ros.core.limits import DEFAULT_MAX_PIXELS
from depth_sr_ros.ros import parameter_table
from depth_sr_ros.ros import parameters as table
from depth_sr_ros.ros.frame_handler import FrameInputs, zero_stamp_error
from depth_sr_ros.ros.frame_worker import FrameWorker
from depth_sr_ros.ros.pipeline_slot import PipelineSlot

W, H = 640, 480  # the test frames' RGB size
frames = test_node_logic.frames  # the fixture: TUM fr1 frame 00, RGB and x4-decimated depth


def _worker(published: list, **overrides) -> FrameWorker:
    slot = PipelineSlot()
    slot.build(table.NodeParams.from_values({"backbone": "bicubic", "device": "cpu", **overrides}))

    def publish(image, info, points, confidence):
        published.append(image)
        return 1.0

    return FrameWorker(slot, _handler(), publish, lambda: 1e9, _Log(), want_points=lambda: False)


def _arrive(worker: FrameWorker, quadruple) -> None:
    """What the node's callbacks do with one frame: CameraInfo kept, images admitted, the pair offered."""
    rgb, rgb_info, depth, depth_info = quadruple
    worker.camera_info("rgb", rgb_info)
    worker.camera_info("depth", depth_info)
    assert worker.admit_image("rgb", "rgb/image", rgb) and worker.admit_image("depth", "depth/image", depth)
    worker.offer(FrameInputs(rgb, depth))


def _claiming(info, width: int, height: int):
    hostile = copy.deepcopy(info)
    hostile.width, hostile.height = width, height
    return hostile


def test_an_oversize_camera_info_is_never_kept_nor_warmed_up_for_and_good_frames_go_on(frames):
    published: list = []
    worker = _worker(published)
    _arrive(worker, _quadruple(frames, 10**9))
    worker.run()  # warms up for 640x480 (RGB CameraInfo and image agree), then the frame
    assert worker.slot.warm_size == (W, H) and len(published) == 1

    rgb, rgb_info, depth, depth_info = _quadruple(frames, 2 * 10**9)
    worker.camera_info("rgb", _claiming(rgb_info, 16000, 12000))  # the hostile one, with the frame's stamp
    worker.camera_info("depth", _claiming(depth_info, 16000, 12000))
    worker.offer(FrameInputs(rgb, depth))
    worker.run()
    assert worker.slot.warm_size == (W, H)  # what the node prepared is unchanged
    assert len(published) == 2  # the frame used the latest earlier CameraInfo
    assert worker.handler.health.skips == {"oversize": 2}
    warnings = [text for level, text in worker.logger.lines if level == "warning"]
    assert len(warnings) == 1 and "16000x12000" in warnings[0] and "message skipped (oversize)" in warnings[0]
    assert "rgb/camera_info" in warnings[0]


def test_a_camera_info_of_another_size_after_the_first_good_frame_asks_no_warm_up(frames):
    published: list = []
    worker = _worker(published)
    _arrive(worker, _quadruple(frames, 10**9))
    worker.run()
    assert worker.slot.bounds.established("rgb") == (W, H)

    rgb, rgb_info, depth, _ = _quadruple(frames, 2 * 10**9)
    worker.camera_info("rgb", _claiming(rgb_info, 1280, 960))  # within the limit: kept, not warmed up for
    worker.offer(FrameInputs(rgb, depth))
    worker.run()
    assert worker.slot.warm_size == (W, H) and len(published) == 1
    assert worker.handler.health.skips == {"size_mismatch": 1}  # as replay counts the same frame


def test_the_warm_up_needs_the_rgb_camera_info_and_image_to_agree(frames):
    worker = _worker([], max_image_pixels=2 * W * H)
    rgb, rgb_info, _, _ = _quadruple(frames, 10**9)
    worker.camera_info("rgb", _claiming(rgb_info, W + 2, H))  # one hostile CameraInfo alone: nothing
    worker.camera_info("rgb", _claiming(rgb_info, 2 * W + 1, H))  # beyond the limit: refused
    worker.run()
    assert worker.slot.warm_size is None and worker.handler.health.skips == {"oversize": 1}
    assert worker.admit_image("rgb", "rgb/image", rgb)  # 640x480, but the CameraInfo said 642x480
    worker.run()
    assert worker.slot.warm_size is None
    worker.camera_info("rgb", rgb_info)  # now both claim 640x480
    worker.run()
    assert worker.slot.warm_size == (W, H)


def test_a_zero_stamped_input_is_a_zero_stamp_skip_as_in_replay(frames):
    rgb = _quadruple(frames, 10**9)[0]
    assert zero_stamp_error("rgb/image", rgb.header) is None
    rgb.header.stamp.sec = rgb.header.stamp.nanosec = 0
    error = zero_stamp_error("/cam/rgb/image", rgb.header)
    assert error is not None and error.reason == "zero_stamp" and "/cam/rgb/image" in str(error)
    worker = _worker([])
    assert not worker.admit_image("rgb", "/cam/rgb/image", rgb)
    assert not worker.admit_image("depth", "/cam/rgb/image", rgb)
    assert worker.handler.health.skips == {"zero_stamp": 2}
    assert len([text for level, text in worker.logger.lines if "zero_stamp" in text]) == 1  # throttled


def test_max_image_pixels_is_a_live_parameter_that_bounds_input_size():
    spec = table.PARAMETER_BY_NAME["max_image_pixels"]
    assert spec.default == DEFAULT_MAX_PIXELS and spec.apply == table.APPLY_LIVE
    assert "out of range" in spec.check(0)
    with pytest.raises(table.ParameterRejected, match="max_image_pixels"):
        table.NodeParams.from_values({"input_width": 1920, "input_height": 1080, "max_image_pixels": 1920 * 1080 - 1})
    params = table.NodeParams.from_values({"backbone": "bicubic", "device": "cpu"})
    plan = table.plan_change(params, {"max_image_pixels": 1000}, configured=True, active=True)
    assert plan.rebuild_output and not plan.rebuild_pipeline
    slot = PipelineSlot()
    slot.build(params)
    slot.bounds.establish("rgb", (W, H))
    slot.set_output(plan.params)
    assert slot.processor.bounds is slot.bounds and slot.bounds.max_pixels == 1000
    assert slot.bounds.established("rgb") == (W, H)  # a new processor keeps the streams' sizes
    with pytest.raises(FrameError) as err:
        slot.bounds.check("rgb", W, H, "RGB image")
    assert err.value.reason == "oversize"


@pytest.mark.parametrize(("count", "value", "fragment"), [
    (0, "cuda:99", "this machine has 0 CUDA devices"),
    (0, "cuda", "0 CUDA devices"),
    (1, "cuda:1", "1 CUDA device (cuda:0 to cuda:0)"),
])
def test_a_device_that_is_not_there_is_refused_with_the_reason(monkeypatch, count, value, fragment):
    monkeypatch.setattr(parameter_table, "cuda_device_count", lambda: count)
    reason = table.PARAMETER_BY_NAME["device"].check(value)
    assert reason is not None and fragment in reason and value in reason
    with pytest.raises(table.ParameterRejected, match=fragment.split(" (")[0]):
        table.plan_change(table.NodeParams.defaults(), {"device": value}, configured=True, active=True)
    assert table.PARAMETER_BY_NAME["device"].check("cpu") is None
    assert table.PARAMETER_BY_NAME["device"].check("auto") is None

