"""Build the bundled sample bag from the real TUM RGB-D freiburg1 frames in `samples/tum_fr1`.

The bag looks the way a ToF-style RGB-D camera publishes (see samples/tum_fr1/ATTRIBUTION.md):

| topic | type | content |
|---|---|---|
| `/camera/color/image_raw` | Image | 640x480 `rgb8` |
| `/camera/color/camera_info` | CameraInfo | TUM fr1 calibration, plumb_bob D |
| `/camera/depth/image_raw` | Image | 160x120 `16UC1` millimetres, 0 = hole |
| `/camera/depth/camera_info` | CameraInfo | the colour calibration scaled to 160x120 |
| `/ground_truth/depth/image_raw` | Image | 640x480 `16UC1` millimetres (the full sensor depth) |

With `rgb_format="jpeg"` or `"png"` the colour goes out as a CompressedImage on
`/camera/color/image_raw/compressed`, and with `depth_transport="compressedDepth"` the depth as a
CompressedImage on `/camera/depth/image_raw/compressedDepth`, encoded the way image_transport_plugins
publishes them (`core/compressed.py`). `depth_encoding="32FC1"` publishes the depth in metres.

The TUM depth is registered to the colour camera, so every topic lives in the colour camera's
optical frame. Decimation x4: each low-resolution pixel is the mean of the 2x2 pixels at the
centre of its 4x4 block (the block centre, as `cv2.resize` maps pixel centres), and it is a hole
(0) unless all four are valid, so the sensor's holes stay holes and no depth is invented.

Stamps: RGB at 30 Hz from a fixed epoch; depth 4 ms later with +-1.5 ms seeded jitter; each
CameraInfo carries its image's stamp; ground truth carries the depth stamp. Records are logged
(bag time) a few milliseconds after their stamps, so depth sometimes arrives before its RGB
frame, which exercises the approximate synchroniser. Everything is deterministic.

Frame 03: in the source folder `depth/03.png` is byte-identical to `depth/01.png` (its edges
line up with RGB frame 01, not 03), so it is not published. RGB frame 03 goes out without depth,
a dropped depth frame that replay must report as an unpaired RGB message.

A long bag (`frames=N`, `depth-sr demo --frames N`): N frames cycling through the frames that
have depth (00, 01, 02, 00, ...), each with its own stamp on the same 30 Hz clock, to measure
what a long replay writes and how fast it runs.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from depth_sr_ros.core.camera_info import CameraInfoFields, scaled_camera_info_fields
from depth_sr_ros.core.compressed import compressed_depth_fields, compressed_rgb_fields
from depth_sr_ros.core.image_msg import ImageFields
from depth_sr_ros.core.msg_build import rosbags_builder
from depth_sr_ros.replay.bag_io import BagWriter, load_typestore

SAMPLE_DIR = Path(__file__).resolve().parent.parent / "samples" / "tum_fr1"

RGB_TOPIC = "/camera/color/image_raw"
RGB_INFO_TOPIC = "/camera/color/camera_info"
DEPTH_TOPIC = "/camera/depth/image_raw"
DEPTH_INFO_TOPIC = "/camera/depth/camera_info"
GT_TOPIC = "/ground_truth/depth/image_raw"
FRAME_ID = "camera_color_optical_frame"

DECIMATION = 4
TUM_DEPTH_PER_METRE = 5000.0
FRAMES = ("00", "01", "02", "03")
FRAMES_WITHOUT_DEPTH = frozenset({"03"})  # depth/03.png duplicates depth/01.png

EPOCH_NS = 1_700_000_000 * 10**9
PERIOD_NS = 33_333_333  # 30 Hz
DEPTH_OFFSET_NS = 4_000_000
DEPTH_JITTER_NS = 1_500_000
RGB_LATENCY_NS = 10_000_000  # stamp -> bag (log) time
DEPTH_LATENCY_NS = 6_000_000
SEED = 118


RGB_FORMATS = ("raw", "jpeg", "png")
DEPTH_TRANSPORTS = ("raw", "compressedDepth")


@dataclass(frozen=True)
class SampleBag:
    """The bag written and what is in it (frame counts per topic; the colour and depth topics)."""

    path: Path
    counts: dict[str, int]
    rgb_topic: str = RGB_TOPIC
    depth_topic: str = DEPTH_TOPIC


def tum_depth_to_millimetres(raw: np.ndarray) -> np.ndarray:
    """TUM uint16 depth (metres = value / 5000, 0 = none) -> uint16 millimetres, 0 = none."""
    mm = np.rint(raw.astype(np.float64) * (1000.0 / TUM_DEPTH_PER_METRE))
    return np.clip(mm, 0, np.iinfo(np.uint16).max).astype(np.uint16)


def read_sample_rgb(sample_dir: Path, name: str) -> np.ndarray:
    """Sample frame `name` as H x W x 3 uint8 RGB; FileNotFoundError when it cannot be read."""
    path = sample_dir / "rgb" / f"{name}.png"
    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if bgr is None:
        raise FileNotFoundError(f"cannot read {path}")
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def read_sample_depth_mm(sample_dir: Path, name: str) -> np.ndarray:
    """Sample frame `name`'s depth as H x W uint16 millimetres (0 = hole); FileNotFoundError when
    it cannot be read as a 16-bit PNG."""
    path = sample_dir / "depth" / f"{name}.png"
    raw = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if raw is None or raw.dtype != np.uint16:
        raise FileNotFoundError(f"cannot read 16-bit {path}")
    return tum_depth_to_millimetres(raw)


def decimate_depth(depth_mm: np.ndarray, factor: int = DECIMATION) -> np.ndarray:
    """Hole-keeping decimation: mean of each block's central 2x2 pixels, 0 unless all are valid.

    `depth_mm` is H x W uint16 (0 = hole) with H, W multiples of `factor` (an even number).
    """
    if factor % 2 or depth_mm.shape[0] % factor or depth_mm.shape[1] % factor:
        raise ValueError(f"need an even factor dividing the image size; got {factor} for {depth_mm.shape}")
    h, w = depth_mm.shape[0] // factor, depth_mm.shape[1] // factor
    mid = factor // 2
    blocks = depth_mm.reshape(h, factor, w, factor)[:, mid - 1 : mid + 1, :, mid - 1 : mid + 1]
    centre = blocks.transpose(0, 2, 1, 3).reshape(h, w, 4).astype(np.float64)
    valid = (centre > 0).all(axis=2)
    return np.where(valid, np.rint(centre.mean(axis=2)), 0).astype(np.uint16)


def rgb_camera_info(intrinsics_path: Path) -> CameraInfoFields:
    """CameraInfo fields of the colour camera from the sample's intrinsics.json (plumb_bob)."""
    cal = json.loads(intrinsics_path.read_text())
    k = np.array([cal["fx"], 0, cal["cx"], 0, cal["fy"], cal["cy"], 0, 0, 1], dtype=np.float64)
    p = np.array([cal["fx"], 0, cal["cx"], 0, 0, cal["fy"], cal["cy"], 0, 0, 0, 1, 0], dtype=np.float64)
    return CameraInfoFields(
        height=int(cal["height"]),
        width=int(cal["width"]),
        distortion_model="plumb_bob",
        d=np.array(cal["distortion_plumb_bob"], dtype=np.float64),
        k=k,
        r=np.eye(3).reshape(-1),
        p=p,
    )


def _image_fields(array: np.ndarray, encoding: str) -> ImageFields:
    array = np.ascontiguousarray(array.astype(array.dtype.newbyteorder("<"), copy=False))
    height, width = array.shape[:2]
    return ImageFields(height, width, encoding, 0, array.nbytes // height, array.reshape(-1).view(np.uint8))


def _header(typestore: Any, stamp_ns: int) -> Any:
    time_cls = typestore.types["builtin_interfaces/msg/Time"]
    header_cls = typestore.types["std_msgs/msg/Header"]
    return header_cls(stamp=time_cls(sec=stamp_ns // 10**9, nanosec=stamp_ns % 10**9), frame_id=FRAME_ID)


def _stamps(count: int) -> list[tuple[int, int]]:
    """(rgb stamp, depth stamp) in ns per frame."""
    rng = np.random.default_rng(SEED)
    jitter = rng.integers(-DEPTH_JITTER_NS, DEPTH_JITTER_NS + 1, size=count)
    return [(EPOCH_NS + i * PERIOD_NS, EPOCH_NS + i * PERIOD_NS + DEPTH_OFFSET_NS + int(j))
            for i, j in enumerate(jitter)]


def frame_sequence(frames: int = 0) -> list[str]:
    """The sample frame names in bag order: the four as shipped (0), or `frames` frames cycling
    through those with depth."""
    if frames < 0:
        raise ValueError(f"frames must be >= 0, got {frames}")
    if not frames:
        return list(FRAMES)
    with_depth = [name for name in FRAMES if name not in FRAMES_WITHOUT_DEPTH]
    return [with_depth[i % len(with_depth)] for i in range(frames)]


def build_sample_bag(
    out_path: str | Path, storage: str = "mcap", typestore: str = "humble", sample_dir: Path = SAMPLE_DIR,
    rgb_format: str = "raw", depth_transport: str = "raw", depth_encoding: str = "16UC1",
    frames: int = 0, compress: bool = False,
) -> SampleBag:
    """Write the sample bag to `out_path` (a new rosbag2 directory) and return what it holds.

    `rgb_format`: "raw" (Image rgb8), "jpeg" or "png" (CompressedImage on `.../compressed`);
    `depth_transport`: "raw" (Image) or "compressedDepth" (CompressedImage on `.../compressedDepth`);
    `depth_encoding`: "16UC1" (millimetres) or "32FC1" (metres) for the low-resolution depth;
    `frames`: 0 for the four sample frames, else a long bag of that many (`frame_sequence`);
    `compress`: zstd-compressed MCAP chunks.
    """
    if rgb_format not in RGB_FORMATS or depth_transport not in DEPTH_TRANSPORTS:
        raise ValueError(f"rgb_format must be one of {RGB_FORMATS} and depth_transport one of {DEPTH_TRANSPORTS}; "
                         f"got {rgb_format!r}, {depth_transport!r}")
    if depth_encoding not in ("16UC1", "32FC1"):
        raise ValueError(f"depth_encoding must be 16UC1 or 32FC1; got {depth_encoding!r}")
    store = load_typestore(typestore)
    build = rosbags_builder(store)
    rgb_topic = RGB_TOPIC if rgb_format == "raw" else f"{RGB_TOPIC}/compressed"
    depth_topic = DEPTH_TOPIC if depth_transport == "raw" else f"{DEPTH_TOPIC}/{depth_transport}"

    def colour_message(rgb: np.ndarray) -> Callable[[Any], Any]:
        """header -> message; the image is encoded once for every frame that repeats it."""
        if rgb_format == "raw":
            fields = _image_fields(rgb, "rgb8")
            return lambda header: build.image(header, fields)
        compressed = compressed_rgb_fields(rgb, rgb_format)
        return lambda header: build.compressed_image(header, compressed)

    def depth_message(depth_mm: np.ndarray) -> Callable[[Any], Any]:
        metres = np.where(depth_mm > 0, depth_mm / np.float32(1000.0), np.float32(np.nan)).astype(np.float32)
        if depth_transport == "compressedDepth":
            compressed = compressed_depth_fields(metres, depth_encoding)
            return lambda header: build.compressed_image(header, compressed)
        fields = _image_fields(metres, "32FC1") if depth_encoding == "32FC1" else _image_fields(depth_mm, "16UC1")
        return lambda header: build.image(header, fields)

    def gt_message(depth_mm: np.ndarray) -> Callable[[Any], Any]:
        fields = _image_fields(depth_mm, "16UC1")
        return lambda header: build.image(header, fields)

    messages: dict[str, dict[str, Callable[[Any], Any]]] = {}  # frame name -> topic -> header -> message

    def frame_messages(name: str) -> dict[str, Callable[[Any], Any]]:
        if name not in messages:
            messages[name] = {rgb_topic: colour_message(read_sample_rgb(sample_dir, name))}
            if name not in FRAMES_WITHOUT_DEPTH:
                full_mm = read_sample_depth_mm(sample_dir, name)
                messages[name][depth_topic] = depth_message(decimate_depth(full_mm))
                messages[name][GT_TOPIC] = gt_message(full_mm)
        return messages[name]

    rgb_info = rgb_camera_info(sample_dir / "intrinsics.json")
    rgb_info_msg = build.camera_info(_header(store, 0), rgb_info)
    depth_info = scaled_camera_info_fields(rgb_info_msg, rgb_info.width // DECIMATION, rgb_info.height // DECIMATION)

    records: list[tuple[int, str, Any]] = []  # (log time, topic, message)
    sequence = frame_sequence(frames)
    for name, (rgb_stamp, depth_stamp) in zip(sequence, _stamps(len(sequence))):
        make = frame_messages(name)
        rgb_log = rgb_stamp + RGB_LATENCY_NS
        records.append((rgb_log, rgb_topic, make[rgb_topic](_header(store, rgb_stamp))))
        records.append((rgb_log + 1, RGB_INFO_TOPIC, build.camera_info(_header(store, rgb_stamp), rgb_info)))
        if depth_topic not in make:
            continue
        depth_log = depth_stamp + DEPTH_LATENCY_NS
        depth_header = _header(store, depth_stamp)
        records.append((depth_log, depth_topic, make[depth_topic](depth_header)))
        records.append((depth_log + 1, DEPTH_INFO_TOPIC, build.camera_info(depth_header, depth_info)))
        records.append((depth_log + 2, GT_TOPIC, make[GT_TOPIC](depth_header)))

    records.sort(key=lambda record: record[0])
    msgtypes = {rgb_topic: "Image" if rgb_format == "raw" else "CompressedImage", RGB_INFO_TOPIC: "CameraInfo",
                depth_topic: "Image" if depth_transport == "raw" else "CompressedImage",
                DEPTH_INFO_TOPIC: "CameraInfo", GT_TOPIC: "Image"}
    counts = dict.fromkeys(msgtypes, 0)
    with BagWriter(out_path, store, storage=storage, compress=compress) as writer:
        for topic, msgtype in msgtypes.items():
            writer.add_topic(topic, f"sensor_msgs/msg/{msgtype}")
        for log_time, topic, message in records:
            writer.write(topic, log_time, message)
            counts[topic] += 1
    return SampleBag(Path(out_path), counts, rgb_topic, depth_topic)
