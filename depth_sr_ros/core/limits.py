"""Bounds on the image sizes a message claims, checked before anything is allocated for them.

A message's header states its size (Image `width`/`height`, CameraInfo `width`/`height`, a PNG's
IHDR, a JPEG's SOF); the pipeline allocates in proportion to it (decoded pixels, the network's
activations: about 175 MB per megapixel for `lite` on ONNX Runtime, measured at 640x480,
1920x1080 and 3840x2160). A size is accepted only when

- it is positive and at most `max_pixels` (width x height) -> else "empty_image" / "oversize";
- it equals its stream's established size, once the stream has one -> else "size_changed".
  A stream ("rgb", "depth") is established by its first good frame (processed and published);
  a new activation of the node, or a new replay run, starts without one.

`DEFAULT_MAX_PIXELS` is 25 megapixels: above the 24.5 MP of the largest common machine-vision
sensors (5328x4608 and the 20 MP 5472x3648 class), three times 4K UHD (3840x2160, 8.3 MP), and
far below the claims this refuses (a 16000x12000 CameraInfo is 192 MP). Set it with the node
parameter `max_image_pixels` or `depth-sr replay --max-image-pixels`.

A refused message is a `FrameError` whose text names the size it claimed; the caller counts the
reason and skips it, and nothing the pipeline has prepared (warm-up size, CameraInfo cache)
changes. A CameraInfo is checked against the limit when it arrives (an oversize one is never
kept, so the frame it came with uses the latest earlier one); against its image and stream with
the frame (`FrameProcessor`).
"""

from __future__ import annotations

import threading
from typing import Any

from depth_sr_ros.core.errors import FrameError

DEFAULT_MAX_PIXELS = 25_000_000
OVERSIZE = "oversize"
SIZE_CHANGED = "size_changed"

Size = tuple[int, int]  # (width, height) in pixels


def check_pixels(width: int, height: int, what: str, max_pixels: int = DEFAULT_MAX_PIXELS) -> Size:
    """(width, height) when `what` (e.g. "RGB image") claims a size within `max_pixels`; else
    FrameError "empty_image" (a side <= 0) or "oversize" naming the claimed size."""
    width, height = int(width), int(height)
    if width <= 0 or height <= 0:
        raise FrameError("empty_image", f"{what} is {width}x{height}; expected a non-empty image")
    if width * height > max_pixels:
        raise FrameError(
            OVERSIZE,
            f"{what} claims {width}x{height} = {width * height:,} pixels, above the limit of {max_pixels:,} "
            "(node parameter max_image_pixels, replay --max-image-pixels)",
        )
    return width, height


class InputBounds:
    """The pixel limit and the established size of each stream, shared by every check of a run.

    The node and replay keep one per activation (run); all FrameProcessors it builds and the
    CameraInfo intake consult it. Thread-safe: the node checks CameraInfo on the executor
    thread and frames on its worker thread.
    """

    def __init__(self, max_pixels: int = DEFAULT_MAX_PIXELS) -> None:
        self.max_pixels = int(max_pixels)
        self._sizes: dict[str, Size] = {}
        self._lock = threading.Lock()

    def established(self, stream: str) -> Size | None:
        """The stream's size fixed by its first good frame, or None before it."""
        with self._lock:
            return self._sizes.get(stream)

    def check(self, stream: str, width: int, height: int, what: str) -> Size:
        """(width, height) if `what` on `stream` may claim it (module docstring); else FrameError."""
        size = check_pixels(width, height, what, self.max_pixels)
        known = self.established(stream)
        if known is not None and size != known:
            raise FrameError(
                SIZE_CHANGED,
                f"{what} claims {size[0]}x{size[1]}; the {stream} stream is {known[0]}x{known[1]} since its "
                "first good frame (a camera whose resolution changes needs the node deactivated and "
                "activated again, or a replay of its own)",
            )
        return size

    def camera_info_size(self, msg: Any, what: str) -> Size:
        """The image size a CameraInfo describes (roi and binning folded in), within the pixel
        limit ("oversize"). Checked when a CameraInfo arrives, before it is kept or warmed up for;
        its agreement with its image and stream is checked with the frame. A CameraInfo too broken
        to describe a size raises its own FrameError ("bad_camera_info")."""
        from depth_sr_ros.core.camera_info import intrinsics_from_camera_info

        intrinsics = intrinsics_from_camera_info(msg)
        return check_pixels(intrinsics.width, intrinsics.height, what, self.max_pixels)

    def establish(self, stream: str, size: Size) -> None:
        """Fix `stream`'s size at `size` unless it already has one (the first good frame wins)."""
        with self._lock:
            self._sizes.setdefault(stream, (int(size[0]), int(size[1])))

    def reset(self) -> None:
        """Forget the established sizes (a new activation)."""
        with self._lock:
            self._sizes.clear()
