"""Dequantise ground-truth depth that was stored in coarse steps (NYU v2's 8-bit copies).

`nyu_train` stores `floor(metres x 25.5)`, a 3.9 cm step, written back at the centre of each bin
(../shared/data/README.md). A bin-centre frame is a staircase: each value is up to half a step
off (1.1 cm RMS, about the literature's whole x4 error), and its gradients are zero on the treads
and spikes at the risers, which a gradient loss (`l1_sobel`) would teach the network to draw.

The stored value only says that the true depth lies in its bin `[k, k + 1) / bins_per_m`. We take
the smoothest depth that the 8-bit observation allows: projection onto convex sets (POCS, as in
JPEG deblocking and bit-depth expansion) alternating a normalised Gaussian smoothing with a clip
to each pixel's bin, coarse sigma first. Every output stays inside its own bin, so the result is
as consistent with the stored data as the bin centre is. A jump of `edge_bins` steps or more
between neighbouring pixels is taken as a real depth edge, not a riser: pixels beside one neither
vote in the smoothing nor move from their bin centre (the clip would otherwise push them to the
bin bound facing the other side).

Measured on the 3 `nyu_test` frames (1 mm ground truth, quantised as nyu_train is):
bin centres 1.152 / 1.138 / 1.138 cm RMS, dequantised 1.039 / 0.875 / 0.827 cm, and the mean
Sobel-gradient error away from edges about halved (test/test_dequantize.py checks the direction
on those frames and the properties on synthetic ramps).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np


@dataclass(frozen=True)
class Dequantizer:
    """bins_per_m: stored steps per metre (25.5 for NYU v2's 8-bit depth); sigmas: Gaussian
    smoothing scales in pixels, coarse to fine, each run `iterations` times; edge_bins: a jump of
    this many steps between 8-neighbours is a depth edge."""

    bins_per_m: float
    sigmas: tuple[float, ...] = (2.0, 1.0)
    iterations: int = 10
    edge_bins: int = 2

    def __post_init__(self) -> None:
        if not self.bins_per_m > 0:
            raise ValueError(f"bins_per_m must be positive, got {self.bins_per_m}")

    def bins(self, depth_m: np.ndarray) -> np.ndarray:
        """Each pixel's bin index k (float32; the stored value lies in [k, k + 1) / bins_per_m).
        A small tolerance keeps a value written at a bin's centre, or on its lower edge, in it."""
        return np.floor(depth_m.astype(np.float64) * self.bins_per_m + 1e-6).astype(np.float32)

    def __call__(self, depth_m: np.ndarray) -> np.ndarray:
        """H x W float32 metres (NaN invalid) -> the dequantised depth, NaN where the input is."""
        valid = np.isfinite(depth_m)
        k = self.bins(np.where(valid, depth_m, 0.0))
        box = np.ones((3, 3), np.uint8)
        # invalid pixels must not read as an edge: give them their neighbourhood's bin
        edge = (cv2.dilate(np.where(valid, k, -1e9).astype(np.float32), box)
                - cv2.erode(np.where(valid, k, 1e9).astype(np.float32), box)) >= self.edge_bins
        edge &= valid
        lo, hi = k / self.bins_per_m, (k + 1) / self.bins_per_m
        centre = ((k + 0.5) / self.bins_per_m).astype(np.float32)
        weight = (valid & ~edge).astype(np.float32)
        x = np.where(valid, centre, 0.0).astype(np.float32)
        for sigma in self.sigmas:
            for _ in range(self.iterations):
                x = np.clip(_normalised_blur(x, weight, sigma), lo, hi).astype(np.float32)
        x = np.where(edge, centre, x)
        return np.where(valid, x, np.nan).astype(np.float32)


def _normalised_blur(values: np.ndarray, weight: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian mean of `values` over the pixels where `weight` is 1 (normalised convolution);
    where no weighted pixel is near, the value is kept."""
    size = 2 * int(np.ceil(3 * sigma)) + 1
    num = cv2.GaussianBlur(values * weight, (size, size), sigma, borderType=cv2.BORDER_REFLECT)
    den = cv2.GaussianBlur(weight, (size, size), sigma, borderType=cv2.BORDER_REFLECT)
    return np.where(den > 1e-3, num / np.maximum(den, 1e-3), values)
