"""The replay's output bag and what its outputs weigh.

`OutputBag` writes the SR depth image, its CameraInfo and (optionally) the point cloud of every
`every`-th processed frame to an MCAP bag with zstd-compressed chunks (readable by `ros2 bag`,
Foxglove and `rosbags`). Every message carries the RGB header (frame and stamp).

Sizes, measured on 640x480 frames (the bundled TUM sample tiled to 300 frames, x4, `lite`):
a 16UC1 depth image is 614 kB raw and about 0.2 MB in a zstd chunk; 32FC1 about 0.85 MB; an
XYZRGB cloud of every pixel 4.9 MB raw. So replay writes 16UC1 (millimetres, REP 118) and no
cloud by default: a cloud is the depth image and CameraInfo run through
`depth_image_proc/point_cloud_xyz`, which a bag player can redo at any time.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from depth_sr_ros.core.frame_processor import FrameOutput
from depth_sr_ros.core.msg_build import MessageBuilder
from depth_sr_ros.replay.bag_io import BagWriter

if TYPE_CHECKING:  # typing.Self is Python 3.11+; Humble runs 3.10
    from typing_extensions import Self

OUTPUT_IMAGE_TOPIC = "/depth_sr/image"
OUTPUT_INFO_TOPIC = "/depth_sr/camera_info"
OUTPUT_POINTS_TOPIC = "/depth_sr/points"
POINTS_MODES = ("none", "xyz", "xyzrgb")
MB = 1e6


class OutputBag:
    """Context manager writing the outputs of every `every`-th frame it is given.

    points: "none" (no cloud topic), "xyz" or "xyzrgb" (the processor must have made the cloud).
    """

    def __init__(self, path: Path, typestore: Any, builder: MessageBuilder, points: str = "none",
                 every: int = 1) -> None:
        if points not in POINTS_MODES:
            raise ValueError(f"points must be one of {POINTS_MODES}, got {points!r}")
        if every < 1:
            raise ValueError(f"every must be >= 1, got {every}")
        self.path = Path(path)
        self.builder = builder
        self.points = points
        self.every = every
        self.frames_written = 0
        self._writer = BagWriter(self.path, typestore, compress=True)

    def __enter__(self) -> Self:
        self._writer.__enter__()
        self._writer.add_topic(OUTPUT_IMAGE_TOPIC, "sensor_msgs/msg/Image")
        self._writer.add_topic(OUTPUT_INFO_TOPIC, "sensor_msgs/msg/CameraInfo")
        if self.points != "none":
            self._writer.add_topic(OUTPUT_POINTS_TOPIC, "sensor_msgs/msg/PointCloud2")
        return self

    def __exit__(self, *exc: object) -> None:
        self._writer.__exit__(None, None, None)

    def wants(self, index: int) -> bool:
        """Whether processed frame `index` (0-based) goes into the bag."""
        return index % self.every == 0

    def write(self, index: int, header: Any, log_time_ns: int, out: FrameOutput) -> bool:
        """Write frame `index`'s outputs if it is due; True when written."""
        if not self.wants(index):
            return False
        self._writer.write(OUTPUT_IMAGE_TOPIC, log_time_ns, self.builder.image(header, out.image))
        self._writer.write(OUTPUT_INFO_TOPIC, log_time_ns, self.builder.camera_info(header, out.camera_info))
        if self.points != "none":
            if out.points is None:
                raise ValueError("points were requested but the frame processor made none")
            self._writer.write(OUTPUT_POINTS_TOPIC, log_time_ns, self.builder.point_cloud(header, out.points))
        self.frames_written += 1
        return True


def path_bytes(path: Path) -> int:
    """Bytes in a file, or in every file under a folder; 0 when it does not exist."""
    path = Path(path)
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) if path.is_dir() else 0


def output_sizes(outputs: dict[str, Path], frames: int) -> dict[str, Any]:
    """Bytes per output, their total, and MB per processed frame (None without frames)."""
    sizes = {name: path_bytes(path) for name, path in outputs.items()}
    total = sum(sizes.values())
    return {"bytes": sizes, "total_bytes": total, "mb_per_frame": round(total / MB / frames, 4) if frames else None}


def format_sizes(sizes: dict[str, Any], frames: int) -> str:
    """One line: the total, MB per processed frame, and each output's share."""
    parts = ", ".join(f"{name} {n / MB:.2f} MB" for name, n in sizes["bytes"].items())
    per_frame = f"{sizes['mb_per_frame']:.3f} MB per frame over {frames} frames" if frames else "no frames"
    return f"{sizes['total_bytes'] / MB:.1f} MB in all, {per_frame} ({parts})"
