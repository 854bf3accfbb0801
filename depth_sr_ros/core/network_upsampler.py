"""Pre- and post-processing around an inference backend, for network backbones.

The network contract (docs/ARCHITECTURE.md): `rgb` 1x3xHxW float32 in [0, 1], `depth` 1x1xhxw
normalised per frame by the valid input's min and max, holes filled, `mask` 1x1xhxw (1 = valid),
output 1x1x(h*S)x(w*S) normalised depth. The output is clamped to [0, 1], i.e. to the valid
input's depth range [lo, hi], before de-normalising: the gdsr protocol's clamp, and no overshoot
halos beyond the depths the sensor saw.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

from depth_sr_ros.core.resample import denormalise, normalise

_INV_255 = np.float32(1.0 / 255.0)


@dataclass
class NetworkInputs:
    """One frame ready for the backend: NCHW float32 arrays and the normalisation range (metres)."""

    rgb: np.ndarray
    depth: np.ndarray
    mask: np.ndarray
    lo: float
    hi: float


def rgb_to_nchw(rgb: np.ndarray) -> np.ndarray:
    """H x W x 3 uint8 -> 1 x 3 x H x W float32 in [0, 1] (`value * float32(1 / 255)`).

    One contiguous pass per channel: `cv2.split` makes the planes, each multiplied into its
    place in the output (a transposed read of the interleaved image costs twice as much).
    """
    out = np.empty((1, 3, *rgb.shape[:2]), dtype=np.float32)
    for channel, plane in enumerate(cv2.split(np.ascontiguousarray(rgb))):
        np.multiply(plane, _INV_255, out=out[0, channel])
    return out


class NetworkUpsampler:
    """`upsample(rgb, depth_lr, valid_lr, scale)` for a network run by `backend`, in three stages
    (`preprocess`, `infer`, `postprocess`) that the pipeline times separately.

    backend: any object with `run(rgb, depth, mask) -> np.ndarray` on NCHW float32 arrays
    (depth_sr_ros.backends). scale: the network's fixed upsampling factor.
    """

    def __init__(self, backend: Any, scale: int) -> None:
        self.backend = backend
        self.scale = scale

    def preprocess(self, rgb: np.ndarray, depth_lr: np.ndarray, valid_lr: np.ndarray) -> NetworkInputs:
        """rgb H x W x 3 uint8, depth_lr h x w NaN-free (holes filled), valid_lr h x w bool."""
        norm, lo, hi = normalise(depth_lr, valid_lr)
        return NetworkInputs(
            rgb=rgb_to_nchw(rgb),
            depth=np.ascontiguousarray(norm[None, None]),
            mask=valid_lr.astype(np.float32)[None, None],
            lo=lo,
            hi=hi,
        )

    def infer(self, inputs: NetworkInputs) -> np.ndarray:
        return self.backend.run(inputs.rgb, inputs.depth, inputs.mask)

    def postprocess(self, output: np.ndarray, inputs: NetworkInputs) -> np.ndarray:
        """1x1xHxW normalised network output -> H x W float32 in the input's unit, in [lo, hi]."""
        expected = (1, 1, inputs.rgb.shape[2], inputs.rgb.shape[3])
        if output.shape != expected:
            raise RuntimeError(f"backend returned shape {output.shape}, expected {expected}")
        clamped = np.clip(output[0, 0], 0.0, 1.0)  # a new array: de-normalised in place
        return denormalise(clamped, inputs.lo, inputs.hi, out=clamped)

    def upsample(self, rgb: np.ndarray, depth_lr: np.ndarray, valid_lr: np.ndarray, scale: int) -> np.ndarray:
        if scale != self.scale:
            raise ValueError(f"this network upsamples x{self.scale}, asked for x{scale}")
        inputs = self.preprocess(rgb, depth_lr, valid_lr)
        return self.postprocess(self.infer(inputs), inputs)
