"""sensor_msgs/CameraInfo fields -> pinhole intrinsics, and CameraInfo scaled to a new size.

Written against message *fields* (`k`, `p`, `r`, `d`, `distortion_model`, `width`, `height`,
`binning_x`, `binning_y`, `roi`), so rclpy messages, `rosbags` messages (ROS 2 and ROS 1, whose
`K`, `P`, `R`, `D` are read through `core.fields`) and plain namespaces all work; `binning_*`
and `roi` may be absent (taken as 0 = full, unbinned image).

Conventions
-----------
- Binning and roi are folded into the intrinsics the way image_geometry's PinholeCameraModel
  does: the image actually published is the roi cropped out of the calibrated sensor and then
  binned, so `u_image = (u_sensor - roi.x_offset) / binning_x` (same for v), i.e.
  `fx /= binning_x`, `cx = (cx - x_offset) / binning_x`. An all-zero roi means the full image.
- Scaling to another resolution follows image_proc's resize node: every pixel coordinate is
  multiplied by `s = new_size / old_size`, so `fx' = fx * s` and `cx' = cx * s` (the
  pixel-corner convention). The exact pixel-centre mapping of `cv2.resize`
  (`cx' = (cx + 0.5) * s - 0.5`) differs by `(s - 1) / 2` pixels; we follow image_proc so our
  CameraInfo agrees with what the rest of a ROS graph computes for the same resize.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from depth_sr_ros.core.errors import FrameError
from depth_sr_ros.core.fields import has_field, msg_field


@dataclass(frozen=True)
class Intrinsics:
    """Pinhole intrinsics of one image, in pixels, for its own width x height (optical frame)."""

    fx: float
    fy: float
    cx: float
    cy: float
    width: int
    height: int
    distortion_model: str = ""
    d: tuple[float, ...] = ()

    def scaled(self, width: int, height: int) -> Intrinsics:
        """The same camera resampled to `width x height` (image_proc resize convention)."""
        if width <= 0 or height <= 0:
            raise ValueError(f"target size must be positive; got {width}x{height}")
        sx, sy = width / self.width, height / self.height
        return Intrinsics(
            fx=self.fx * sx,
            fy=self.fy * sy,
            cx=self.cx * sx,
            cy=self.cy * sy,
            width=int(width),
            height=int(height),
            distortion_model=self.distortion_model,
            d=self.d,
        )

    def k_matrix(self) -> np.ndarray:
        """The 3x3 camera matrix K (float64)."""
        return np.array([[self.fx, 0.0, self.cx], [0.0, self.fy, self.cy], [0.0, 0.0, 1.0]])


@dataclass
class RoiFields:
    """sensor_msgs/RegionOfInterest fields (all zero = the full image)."""

    x_offset: int = 0
    y_offset: int = 0
    height: int = 0
    width: int = 0
    do_rectify: bool = False


@dataclass
class CameraInfoFields:
    """sensor_msgs/CameraInfo fields (header excluded); arrays are float64."""

    height: int
    width: int
    distortion_model: str
    d: np.ndarray
    k: np.ndarray
    r: np.ndarray
    p: np.ndarray
    binning_x: int = 0
    binning_y: int = 0
    roi: RoiFields = field(default_factory=RoiFields)


def _float_array(values: Any, size: int | None, name: str) -> np.ndarray:
    try:
        array = np.asarray(values if values is not None else (), dtype=np.float64).reshape(-1)
    except (TypeError, ValueError) as err:
        raise FrameError("bad_camera_info", f"CameraInfo {name} is not a list of numbers: {err}") from None
    if size is not None and array.size != size:
        raise FrameError("bad_camera_info", f"CameraInfo {name} has {array.size} values; expected {size}")
    return array


def _image_transform(msg: Any) -> tuple[np.ndarray, int, int]:
    """The 3x3 map from calibrated-sensor pixels to published-image pixels, and the image size.

    Folds roi (crop) and binning as image_geometry does; returns (A, width, height).
    """
    binning_x = max(1, int(getattr(msg, "binning_x", 0) or 0))
    binning_y = max(1, int(getattr(msg, "binning_y", 0) or 0))
    roi = getattr(msg, "roi", None)
    x_offset = int(getattr(roi, "x_offset", 0) or 0)
    y_offset = int(getattr(roi, "y_offset", 0) or 0)
    roi_width = int(getattr(roi, "width", 0) or 0)
    roi_height = int(getattr(roi, "height", 0) or 0)
    full_roi = x_offset == 0 and y_offset == 0 and roi_width == 0 and roi_height == 0
    width = int(msg.width) if full_roi else roi_width
    height = int(msg.height) if full_roi else roi_height
    width, height = width // binning_x, height // binning_y
    if width <= 0 or height <= 0:
        raise FrameError(
            "bad_camera_info",
            f"CameraInfo describes a {width}x{height} image (width {msg.width}, height {msg.height}, "
            f"roi {roi_width}x{roi_height}, binning {binning_x}x{binning_y}); expected a positive size",
        )
    transform = np.array(
        [
            [1.0 / binning_x, 0.0, -x_offset / binning_x],
            [0.0, 1.0 / binning_y, -y_offset / binning_y],
            [0, 0, 1],
        ]
    )
    return transform, width, height


def _check_finite(msg: Any) -> None:
    """FrameError("bad_camera_info") when K, P, R or D has a wrong size or a NaN/inf value."""
    for name, size in (("k", 9), ("p", 12), ("r", 9), ("d", None)):
        if name != "k" and not has_field(msg, name):
            continue  # only K is needed for the intrinsics; P and R are checked where they are used
        values = _float_array(msg_field(msg, name), size, name)
        if not np.isfinite(values).all():
            raise FrameError("bad_camera_info", f"CameraInfo {name.upper()} holds NaN or inf: {values.tolist()}")


def registration_mismatch(depth: Intrinsics, rgb: Intrinsics, tolerance: float) -> str:
    """Why `depth` is not the RGB camera at another resolution ("" when it is).

    `depth` is scaled to the RGB size (`Intrinsics.scaled`); focal lengths are compared
    relatively and principal points as a fraction of the RGB image size, each within
    `tolerance`. A depth camera of another field of view (a stereo or ToF module beside the
    colour camera) fails on the focal lengths; an off-centre crop on the principal point.
    """
    as_rgb = depth.scaled(rgb.width, rgb.height)
    focal_error = max(abs(as_rgb.fx - rgb.fx) / rgb.fx, abs(as_rgb.fy - rgb.fy) / rgb.fy)
    centre_error = max(abs(as_rgb.cx - rgb.cx) / rgb.width, abs(as_rgb.cy - rgb.cy) / rgb.height)
    if focal_error <= tolerance and centre_error <= tolerance:
        return ""
    return (f"depth CameraInfo scaled to {rgb.width}x{rgb.height} has fx={as_rgb.fx:.1f} fy={as_rgb.fy:.1f} "
            f"cx={as_rgb.cx:.1f} cy={as_rgb.cy:.1f}; the RGB camera has fx={rgb.fx:.1f} fy={rgb.fy:.1f} "
            f"cx={rgb.cx:.1f} cy={rgb.cy:.1f}")


def intrinsics_from_camera_info(msg: Any) -> Intrinsics:
    """Intrinsics of the published image (roi and binning applied) from CameraInfo fields.

    Raises FrameError("bad_camera_info") when K, P, R or D is malformed or not finite (P is
    republished, scaled, with the output), or fx/fy are not positive (an uncalibrated camera
    publishes K = 0).
    """
    _check_finite(msg)
    transform, width, height = _image_transform(msg)
    with np.errstate(invalid="ignore"):
        k = transform @ _float_array(msg_field(msg, "k"), 9, "k").reshape(3, 3)
    fx, fy, cx, cy = float(k[0, 0]), float(k[1, 1]), float(k[0, 2]), float(k[1, 2])
    if not (math.isfinite(fx) and fx > 0 and math.isfinite(fy) and fy > 0):
        raise FrameError(
            "bad_camera_info", f"CameraInfo K has fx={fx}, fy={fy}; expected positive finite focal lengths"
        )
    if not (math.isfinite(cx) and math.isfinite(cy)):
        raise FrameError("bad_camera_info", f"CameraInfo K has cx={cx}, cy={cy}; expected finite values")
    return Intrinsics(
        fx=fx,
        fy=fy,
        cx=cx,
        cy=cy,
        width=width,
        height=height,
        distortion_model=str(getattr(msg, "distortion_model", "") or ""),
        d=tuple(float(v) for v in _float_array(msg_field(msg, "d", ()), None, "d")),
    )


def scaled_camera_info_fields(msg: Any, width: int, height: int) -> CameraInfoFields:
    """CameraInfo fields for the published image of `msg` resampled to `width x height`.

    Policy:
    - K and P: roi and binning are first folded in (see the module docstring), then rows 0
      and 1 are multiplied by `sx = width / image_width` and `sy = height / image_height`.
      For an ordinary message this is exactly image_proc's resize (fx, cx, Tx scaled by sx;
      fy, cy by sy); the row form also scales the skew and Ty terms consistently.
    - R, D and distortion_model are kept (D acts on normalised coordinates, unchanged by a
      resize).
    - binning_x/y are reset to 0 and roi to all zeros (do_rectify false): the output is a
      full image whose own K and P already account for the original crop and binning.

    Raises FrameError("bad_camera_info") as `intrinsics_from_camera_info` does.
    """
    if width <= 0 or height <= 0:
        raise ValueError(f"target size must be positive; got {width}x{height}")
    intrinsics_from_camera_info(msg)  # validates K, size, roi and binning
    transform, image_width, image_height = _image_transform(msg)
    resize = np.diag([width / image_width, height / image_height, 1.0])
    to_output = resize @ transform
    with np.errstate(over="ignore", invalid="ignore"):
        k = to_output @ _float_array(msg_field(msg, "k"), 9, "k").reshape(3, 3)
        p = to_output @ _float_array(msg_field(msg, "p"), 12, "p").reshape(3, 4)
    if not (np.isfinite(k).all() and np.isfinite(p).all()):
        raise FrameError("bad_camera_info", f"CameraInfo K or P overflows when scaled to {width}x{height}: "
                         f"K {k.reshape(-1).tolist()}, P {p.reshape(-1).tolist()}")
    return CameraInfoFields(
        height=int(height),
        width=int(width),
        distortion_model=str(getattr(msg, "distortion_model", "") or ""),
        d=_float_array(msg_field(msg, "d", ()), None, "d").copy(),
        k=k.reshape(-1),
        r=_float_array(msg_field(msg, "r"), 9, "r").copy(),
        p=p.reshape(-1),
        binning_x=0,
        binning_y=0,
        roi=RoiFields(),
    )
