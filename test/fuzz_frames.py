"""The fuzz run of test_fuzz_frames.py, in a process of its own under a memory ceiling.

    python test/fuzz_frames.py EXAMPLES  ->  one JSON line: outcomes, violations, memory

Hypothesis builds message quadruples (RGB Image or CompressedImage, RGB CameraInfo, depth Image
or compressedDepth, depth CameraInfo or None) from a good 32x24 frame, changing what a hostile or
broken publisher could: encodings, claimed sizes (up to 2**32 - 1 per side), steps, data lengths
and truncations, PNG/JPEG headers claiming other sizes, byte flips, NaN/inf in depth and in the
intrinsics, binning and roi. Each goes through `FrameProcessor.process` with a pixel limit of
`LIMIT`. The process's address space is capped (RLIMIT_AS) at what it uses after start-up plus
`HEADROOM_BYTES`, so an allocation for a size a header merely claims fails here instead of
taking the machine's memory; `cv2.imdecode` is watched for such a failure (OpenCV turns it into
a cv2.error, which the decoder would otherwise report as corrupt data).
"""

from __future__ import annotations

import json
import math
import resource
import struct
import sys
import traceback
from collections import Counter
from types import SimpleNamespace

import cv2
import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from depth_sr_ros.core.compressed import compressed_depth_fields, compressed_rgb_fields
from depth_sr_ros.core.errors import FrameError
from depth_sr_ros.core.frame_processor import FrameProcessor
from depth_sr_ros.core.limits import InputBounds
from depth_sr_ros.core.pipeline import DepthSR, SRConfig

W, H, S = 32, 24, 4
LIMIT = 1 << 20  # pixels: far above the good frame, far below what the hostile headers claim
HEADROOM_BYTES = 1 << 30
SIDES = st.one_of(st.integers(-2, 80), st.sampled_from([0, 1, 16000, 30000, 65535, 2**31 - 1, 2**32 - 1]))
HOSTILE_SIZES = [(16000, 12000), (30000, 30000), (20000, 20000), (1500, 1000)]  # over LIMIT; decodable by OpenCV
ODD_FLOATS = [math.nan, math.inf, -math.inf, 0.0, -1.5, 1e30, 1e-30]


def good_frame() -> tuple[np.ndarray, np.ndarray]:
    """RGB `HxWx3 uint8` and depth `H/S x W/S` metres: a box at 1.5 m before a 2 m wall."""
    rgb = np.zeros((H, W, 3), np.uint8)
    rgb[..., 0] = np.arange(W, dtype=np.uint8)[None, :] * 8
    rgb[8:16, 8:24] = 200
    depth = np.full((H // S, W // S), 2.0, np.float32)
    depth[2:4, 2:6] = 1.5
    return rgb, depth


RGB, DEPTH = good_frame()
JPEG, PNG = (compressed_rgb_fields(RGB, codec) for codec in ("jpeg", "png"))
DEPTH_16, DEPTH_32 = (compressed_depth_fields(DEPTH, encoding) for encoding in ("16UC1", "32FC1"))


def header() -> SimpleNamespace:
    return SimpleNamespace(stamp=SimpleNamespace(sec=1, nanosec=0), frame_id="cam")


def raw(array: np.ndarray, encoding: str) -> SimpleNamespace:
    data = np.ascontiguousarray(array).reshape(-1).view(np.uint8)
    return SimpleNamespace(header=header(), height=array.shape[0], width=array.shape[1], encoding=encoding,
                           is_bigendian=0, step=data.size // array.shape[0], data=data.tobytes())


def camera_info(width: int, height: int, scale: float) -> SimpleNamespace:
    fx, fy, cx, cy = 30.0 * scale, 30.0 * scale, 15.5 * scale, 11.5 * scale
    return SimpleNamespace(header=header(), width=width, height=height, distortion_model="plumb_bob",
                           d=[0.0] * 5, k=[fx, 0, cx, 0, fy, cy, 0, 0, 1], r=[1, 0, 0, 0, 1, 0, 0, 0, 1],
                           p=[fx, 0, cx, 0, 0, fy, cy, 0, 0, 0, 1, 0], binning_x=0, binning_y=0,
                           roi=SimpleNamespace(x_offset=0, y_offset=0, width=0, height=0, do_rectify=False))


def claimed(data: bytes, offset: int, width: int, height: int) -> bytes:
    """`data` with the PNG IHDR (offset of the PNG) or JPEG SOF0 size replaced (sides cut to the field)."""
    if data[offset:offset + 4] == b"\x89PNG":
        at = offset + 16
        return data[:at] + struct.pack(">II", width % 2**32, height % 2**32) + data[at + 8:]
    at = data.index(b"\xff\xc0", offset) + 5
    return data[:at] + struct.pack(">HH", height % 2**16, width % 2**16) + data[at + 4:]


@st.composite
def compressed(draw, fields, offset: int) -> SimpleNamespace:
    data = fields.data.tobytes()
    if draw(st.integers(0, 2)) == 0:
        data = claimed(data, offset, draw(SIDES), draw(SIDES))
    if draw(st.integers(0, 3)) == 0:
        data = data[: draw(st.integers(0, len(data)))]
    if data and draw(st.integers(0, 3)) == 0:
        at = draw(st.integers(0, len(data) - 1))
        data = data[:at] + bytes([data[at] ^ draw(st.integers(1, 255))]) + data[at + 1:]
    fmt = fields.format if draw(st.integers(0, 3)) else draw(st.sampled_from([
        "jpeg", "png", "rgb8; tiff compressed ", "16UC1; compressedDepth png", "32FC1; compressedDepth",
        "mono8; png compressed ", "bgr8; jpeg compressed bgr8"]))
    return SimpleNamespace(header=header(), format=fmt, data=data)


@st.composite
def raw_image(draw, good: SimpleNamespace, encodings: list[str]) -> SimpleNamespace:
    message = SimpleNamespace(**vars(good))
    if draw(st.integers(0, 3)) == 0:
        message.encoding = draw(st.sampled_from(encodings))
    if draw(st.integers(0, 3)) == 0:
        message.width, message.height = draw(SIDES), draw(SIDES)
    if draw(st.integers(0, 2)) == 0:
        message.step = draw(st.one_of(st.integers(-4, 400), st.just(2**32 - 1)))
    if draw(st.integers(0, 2)) == 0:
        message.data = message.data[: draw(st.integers(0, len(message.data)))]
    return message


@st.composite
def depth_image(draw) -> SimpleNamespace:
    if draw(st.booleans()):
        depth = DEPTH.copy()
        for _ in range(draw(st.integers(0, 6))):
            depth.reshape(-1)[draw(st.integers(0, depth.size - 1))] = draw(st.sampled_from(ODD_FLOATS))
        if draw(st.integers(0, 4)) == 0:
            depth[:] = draw(st.sampled_from(ODD_FLOATS))
        return draw(raw_image(raw(depth, "32FC1"), ["32FC1", "16UC1", "8UC1", "rgb8", ""]))
    millimetres = np.rint(DEPTH * 1000).astype("<u2")
    return draw(raw_image(raw(millimetres, "16UC1"), ["16UC1", "mono16", "32FC1", "mono8"]))


@st.composite
def info(draw, width: int, height: int, scale: float) -> SimpleNamespace | None:
    if draw(st.integers(0, 9)) == 0:
        return None
    message = camera_info(width, height, scale)
    if draw(st.integers(0, 3)) == 0:
        message.width, message.height = draw(SIDES), draw(SIDES)
    if draw(st.integers(0, 3)) == 0:
        for name in ("k", "p", "d"):
            values = list(getattr(message, name))
            values[draw(st.integers(0, len(values) - 1))] = draw(st.sampled_from(ODD_FLOATS))
            setattr(message, name, values)
    if draw(st.integers(0, 4)) == 0:
        message.binning_x, message.binning_y = draw(st.integers(0, 4)), draw(st.integers(0, 4))
    if draw(st.integers(0, 4)) == 0:
        message.roi = SimpleNamespace(x_offset=draw(SIDES), y_offset=0, width=draw(SIDES), height=draw(SIDES),
                                      do_rectify=False)
    return message


@st.composite
def quadruples(draw) -> tuple:
    """A quadruple; one in three has a compressed image whose header and CameraInfo agree on a
    size over `LIMIT` that OpenCV would decode (the allocations the bounds exist to prevent)."""
    rgb = draw(st.one_of(raw_image(raw(RGB, "rgb8"), ["rgb8", "bgr8", "rgba8", "bgra8", "mono8", "yuv422", "16UC1"]),
                         compressed(JPEG, 0), compressed(PNG, 0)))
    depth = draw(st.one_of(depth_image(), compressed(DEPTH_16, 12), compressed(DEPTH_32, 12)))
    rgb_info, depth_info = draw(info(W, H, 1.0)), draw(info(W // S, H // S, 1.0 / S))
    if draw(st.integers(0, 2)) == 0:
        width, height = draw(st.sampled_from(HOSTILE_SIZES))
        if draw(st.booleans()):
            fields = draw(st.sampled_from([JPEG, PNG]))
            rgb = SimpleNamespace(header=header(), format=fields.format, data=claimed(fields.data.tobytes(), 0, width,
                                                                                     height))
            rgb_info = camera_info(width, height, width / W)
        else:
            fields = draw(st.sampled_from([DEPTH_16, DEPTH_32]))
            depth = SimpleNamespace(header=header(), format=fields.format,
                                    data=claimed(fields.data.tobytes(), 12, width, height))
            depth_info = camera_info(width, height, width / W)
    return rgb, rgb_info, depth, depth_info


class Watch:
    """cv2.imdecode, failing loudly when OpenCV could not allocate what a header asked for."""

    def __init__(self) -> None:
        self.real = cv2.imdecode
        self.failed_allocations: list[str] = []

    def __call__(self, *args, **kwargs):
        try:
            return self.real(*args, **kwargs)
        except cv2.error as err:
            if "memory" in str(err).lower() or "alloc" in str(err).lower():
                self.failed_allocations.append(str(err).strip().splitlines()[-1])
            raise


def run(examples: int) -> dict:
    _, hard = resource.getrlimit(resource.RLIMIT_AS)
    with open("/proc/self/status") as status:
        vm_bytes = int(status.read().split("VmSize:")[1].split()[0]) * 1024
    ceiling = vm_bytes + HEADROOM_BYTES
    resource.setrlimit(resource.RLIMIT_AS, (ceiling if hard == resource.RLIM_INFINITY else min(ceiling, hard), hard))
    watch = Watch()
    cv2.imdecode = watch
    processor = FrameProcessor(DepthSR(SRConfig(scale=S, backbone="bicubic")), bounds=InputBounds(LIMIT))
    outcomes: Counter[str] = Counter()
    calls = [0]
    crashes: list[str] = []
    rss_start = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss

    @settings(max_examples=examples, deadline=None, derandomize=True, database=None,
              suppress_health_check=list(HealthCheck))
    @given(quadruples())
    def property_(quadruple) -> None:
        rgb, rgb_info, depth, depth_info = quadruple
        calls[0] += 1
        try:
            out = processor.process(rgb, rgb_info, depth, depth_info, want_points=True)
        except FrameError as error:
            outcomes[error.reason] += 1
            return
        except Exception:  # noqa: BLE001 - what the test reports
            outcomes["crash"] += 1
            crashes.append(traceback.format_exc(limit=6))
            return
        outcomes["ok"] += 1
        assert out.depth.shape == (H, W)

    property_()
    return {"examples": calls[0], "outcomes": dict(outcomes), "crashes": crashes[:3],
            "failed_allocations": watch.failed_allocations[:3], "ceiling_bytes": ceiling,
            "rss_growth_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss_start}


if __name__ == "__main__":
    print(json.dumps(run(int(sys.argv[1]))))
