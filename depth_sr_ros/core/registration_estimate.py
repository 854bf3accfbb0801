"""Estimate the depth sensor's pose relative to the colour camera from colour and depth alone.

The residual extrinsic `E` (depth optical frame -> colour optical frame, `p_colour = R p_depth + t`,
metres and a rotation vector in radians; `reprojection.extrinsic_from_params`) is the one that puts
the depth image's occluding contours (`edge_alignment.find_contours`) on the colour image's edges.
For depth already labelled as registered to the colour camera, the colour intrinsics serve on both
sides and `E` is the residual the vendor registration left.

Solved over a window of frames, as one rig:
1. coarse: a grid over (tx, ty) scored by the colour gradient across every contour point;
2. fine: iteratively reweighted Gauss-Newton. Each contour point searches along its normal for the
   colour edge (sub-pixel peak of `|grad I . n|` within a shrinking reach); the parameters move to
   close those gaps (Tukey weights drop points that found a texture edge or none);
3. frames whose own translation disagrees with the rest (robust z-score), or whose contours are
   hardly better on colour edges at the estimate than beside it, are dropped and (2) rerun;
4. the uncertainty is the spread of leave-one-group-out solutions (grouped jackknife over frames).

Translation first: the rotation and `tz` are solved only when the window's geometry constrains them
(their standard deviation, in metres of equivalent displacement at the contours' median depth,
within `max_std_m`). When even (tx, ty) are not constrained (a flat wall: no contours), the result
says "unconstrained".
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from depth_sr_ros.core.edge_alignment import Contours, EdgeMap, project
from depth_sr_ros.core.reprojection import extrinsic_from_params

PARAM_NAMES = ("tx", "ty", "tz", "rx", "ry", "rz")
_REACHES_PX = (4.0, 3.0, 2.0, 2.0, 1.5, 1.5)


@dataclass(frozen=True)
class EstimateConfig:
    """search_m: the coarse grid spans +-search_m in tx and ty (metres), step coarse_step_m;
    solve: the parameters to try beyond (tx, ty) (dropped when not constrained); max_std_m: (tx,
    ty) are constrained when their standard deviations are within this (metres); max_extra_std_m:
    the `solve` ones are kept when theirs, in metres of equivalent displacement at the contours'
    median depth, are within this; min_points: fewer contour points -> the frame is not used;
    min_views: fewer distinct views among the frames kept -> unconstrained (`view_labels`: frames
    whose contours fall in the same cells of `view_cell_px` colour pixels, Jaccard overlap at least
    `same_view_overlap`, are one view: a camera standing still, a depth image repeated; the
    jackknife over a few views underestimates the spread: the 4 TUM frames, 3 views, gave
    +-0.8 mm for scenes whose own estimates lie 15 mm apart, docs/registration.md); outlier_z:
    robust z-score of its own translation beyond which a frame is dropped; min_contrast: a frame
    is dropped when its score at the estimate is less than this times its mean score
    contrast_offset_m away (`frame_contrast`: its colour does not show its depth; 1.02-1.08 for
    mismatched NYU frames, 1.25-1.9 for matched ones); min_edge: the least normalised colour
    gradient that counts as an edge; groups: of the
    jackknife; apply_z, min_shift_px, min_shift_input_px: an estimate is applied when some
    parameter differs from identity by more than apply_z standard deviations and it moves contours
    by at least min_shift_px colour pixels and min_shift_input_px input depth pixels (2 colour
    pixels at x2 and x4, 4 at x8: on correctly registered RGB-D-D frames, windows of 30
    consecutive ones, the estimate itself reaches 0.5-1.7 colour pixels, and 1.17 on the x2
    point-sampled (`nearest`) inputs; applying it made them worse; a smaller residual is the
    0-3 px misregistration the networks are trained with, docs/registration.md)."""

    search_m: float = 0.08
    coarse_step_m: float = 0.008
    solve: tuple[str, ...] = ("rx", "ry", "rz")
    max_std_m: float = 0.004
    max_extra_std_m: float = 0.002
    min_points: int = 40
    min_views: int = 8
    view_cell_px: float = 8.0
    same_view_overlap: float = 0.5
    outlier_z: float = 3.5
    min_contrast: float = 1.15
    contrast_offset_m: float = 0.02
    min_edge: float = 0.12
    groups: int = 5
    apply_z: float = 3.0
    min_shift_px: float = 2.0
    min_shift_input_px: float = 0.5


@dataclass
class FrameFeatures:
    """One frame's contours and colour edges, the colour intrinsics they are drawn in, and the
    colour pixels per input depth pixel (`input_px`: 4 for depth x4 smaller than the colour)."""

    contours: Contours
    edges: EdgeMap
    intrinsics: Any
    input_px: float = 1.0


@dataclass
class RegistrationEstimate:
    """params: (tx, ty, tz) metres and (rx, ry, rz) radians of the depth-to-colour residual
    extrinsic; std: their standard deviations (NaN where not solved); solved: the names solved;
    status: "ok" or "unconstrained" (then params are the last good ones, or identity); frames_used,
    frames_rejected: of the window; shift_px: the largest contour displacement the estimate
    causes; significant: whether it differs from identity beyond its uncertainty (apply it)."""

    params: np.ndarray
    std: np.ndarray
    solved: tuple[str, ...]
    status: str
    frames_used: int = 0
    frames_rejected: int = 0
    shift_px: float = 0.0
    significant: bool = False
    notes: list[str] = field(default_factory=list)

    @property
    def extrinsic(self):  # -> Extrinsic
        return extrinsic_from_params(self.params)


def _transform(points: np.ndarray, params: np.ndarray) -> np.ndarray:
    return extrinsic_from_params(params).apply(points)


def _pixels(frame: FrameFeatures, params: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return project(_transform(frame.contours.points, params), frame.intrinsics)


def coarse_search(frames: Sequence[FrameFeatures], config: EstimateConfig) -> np.ndarray:
    """The (tx, ty) grid point whose contours land on the strongest colour gradients summed over
    `frames` (each frame weighted alike); returns the 6 parameters (the rest zero)."""
    steps = np.arange(-config.search_m, config.search_m + 1e-9, config.coarse_step_m)
    tx, ty = (a.ravel() for a in np.meshgrid(steps, steps))
    total = np.zeros(tx.size)
    for frame in frames:
        p, c = frame.contours.points, frame.intrinsics
        weight = frame.contours.weight / frame.contours.weight.sum()
        for chunk in np.array_split(np.arange(tx.size), max(1, tx.size * len(p) // 2_000_000)):
            x = p[None, :, 0] + tx[chunk, None]
            y = p[None, :, 1] + ty[chunk, None]
            z = np.broadcast_to(p[None, :, 2], x.shape)
            u, v = project(np.stack([x, y, z], axis=-1).reshape(-1, 3), c)
            normals = np.broadcast_to(frame.contours.normals[None], x.shape + (2,)).reshape(-1, 2)
            score = frame.edges.along(u, v, normals).reshape(x.shape)
            total[chunk] += score @ weight
    best = int(np.argmax(total))
    return np.array([tx[best], ty[best], 0.0, 0.0, 0.0, 0.0])


def frame_score(frame: FrameFeatures, params: np.ndarray) -> float:
    """How well `params` puts the frame's contours on colour edges: the weighted mean `|grad I . n|`
    (about 1 on strong edges)."""
    u, v = _pixels(frame, params)
    return float(np.average(frame.edges.along(u, v, frame.contours.normals), weights=frame.contours.weight))


def frame_contrast(frame: FrameFeatures, params: np.ndarray, offset_m: float) -> float:
    """The frame's score at `params` over its mean score `offset_m` away in +-tx and +-ty: well above
    1 where its contours are colour edges, about 1 where its colour does not show its depth."""
    away = [frame_score(frame, params + np.array([dx, dy, 0.0, 0.0, 0.0, 0.0]))
            for dx, dy in ((offset_m, 0.0), (-offset_m, 0.0), (0.0, offset_m), (0.0, -offset_m))]
    return frame_score(frame, params) / max(float(np.mean(away)), 1e-9)


def _edge_gaps(frame: FrameFeatures, u: np.ndarray, v: np.ndarray, reach: float, min_edge: float) -> np.ndarray:
    """Per contour point, the signed distance (colour pixels, along its normal) to the strongest
    colour edge within `reach`, sub-pixel; NaN where none stands out."""
    offsets = np.arange(-reach, reach + 1e-9, 0.5)
    n = frame.contours.normals
    uu = u[:, None] + offsets[None, :] * n[:, 0:1]
    vv = v[:, None] + offsets[None, :] * n[:, 1:2]
    normals = np.broadcast_to(n[:, None, :], uu.shape + (2,))
    profile = frame.edges.along(uu, vv, normals)
    best = np.argmax(profile, axis=1)
    inner = (best > 0) & (best < offsets.size - 1)
    b = np.clip(best, 1, offsets.size - 2)
    rows = np.arange(best.size)
    left, mid, right = profile[rows, b - 1], profile[rows, b], profile[rows, b + 1]
    curvature = left - 2 * mid + right
    with np.errstate(invalid="ignore", divide="ignore"):
        vertex = np.where(curvature < 0, 0.5 * (left - right) / curvature, 0.0)
    gap = offsets[b] + 0.5 * np.clip(vertex, -0.5, 0.5)
    return np.where(inner & (mid >= min_edge), gap, np.nan)


@dataclass
class _System:
    """Stacked linearised equations `J delta = gap` (gap in colour pixels along the normals)."""

    jacobian: np.ndarray
    gap: np.ndarray
    weight: np.ndarray
    frame: np.ndarray


def _linearise(frames: Sequence[FrameFeatures], params: np.ndarray, active: list[int], reach: float,
               config: EstimateConfig) -> _System:
    rows_j, rows_g, rows_w, rows_f = [], [], [], []
    for index, frame in enumerate(frames):
        u, v = _pixels(frame, params)
        gap = _edge_gaps(frame, u, v, reach, config.min_edge)
        ok = np.isfinite(gap)
        columns = []
        for j in active:
            eps = 1e-4 if j < 3 else 1e-4 / max(float(np.median(frame.contours.points[:, 2])), 0.1)
            step = params.copy()
            step[j] += eps
            du, dv = _pixels(frame, step)
            columns.append(((du - u) * frame.contours.normals[:, 0] + (dv - v) * frame.contours.normals[:, 1]) / eps)
        rows_j.append(np.stack(columns, axis=1)[ok])
        rows_g.append(gap[ok])
        rows_w.append(frame.contours.weight[ok] / max(len(frame.contours), 1))
        rows_f.append(np.full(int(ok.sum()), index))
    return _System(np.concatenate(rows_j), np.concatenate(rows_g), np.concatenate(rows_w), np.concatenate(rows_f))


def _tukey(residual: np.ndarray, scale: float) -> np.ndarray:
    r = residual / max(scale, 1e-6)
    return np.where(np.abs(r) < 1.0, (1.0 - r * r) ** 2, 0.0)


def refine(frames: Sequence[FrameFeatures], params: np.ndarray, active: Sequence[int],
           config: EstimateConfig) -> np.ndarray:
    """Gauss-Newton from `params` on the `active` parameter indices (module docstring, step 2)."""
    params = np.array(params, dtype=np.float64)
    active = list(active)
    for reach in _REACHES_PX:
        system = _linearise(frames, params, active, reach, config)
        if system.gap.size < len(active) * 4:
            break
        weight = system.weight * _tukey(system.gap, reach)
        normal = system.jacobian.T @ (system.jacobian * weight[:, None])
        rhs = system.jacobian.T @ (weight * system.gap)
        delta = np.linalg.lstsq(normal + 1e-9 * np.trace(normal) * np.eye(len(active)), rhs, rcond=None)[0]
        params[active] += delta
    return params


def frame_shifts(frames: Sequence[FrameFeatures], params: np.ndarray, config: EstimateConfig) -> np.ndarray:
    """Per frame, the (tx, ty) change (metres) that frame alone asks for from `params` (NaN when it
    has too few matched contour points)."""
    system = _linearise(frames, params, [0, 1], _REACHES_PX[-1], config)
    out = np.full((len(frames), 2), np.nan)
    for index in range(len(frames)):
        mine = system.frame == index
        if mine.sum() < config.min_points // 2:
            continue
        j, g = system.jacobian[mine], system.gap[mine]
        w = system.weight[mine] * _tukey(g, _REACHES_PX[-1])
        normal = j.T @ (j * w[:, None])
        if np.linalg.cond(normal) < 1e8:
            out[index] = np.linalg.solve(normal, j.T @ (w * g))
    return out


def robust_inliers(values: np.ndarray, z_max: float, floor: float) -> np.ndarray:
    """Rows of `values` (N x k, NaN rows are outliers) within `z_max` robust standard deviations
    (1.4826 x MAD, at least `floor`) of the median in every column."""
    finite = np.all(np.isfinite(values), axis=1)
    if finite.sum() < 3:
        return finite
    median = np.median(values[finite], axis=0)
    spread = np.maximum(1.4826 * np.median(np.abs(values[finite] - median), axis=0), floor)
    return finite & np.all(np.abs(values - median) <= z_max * spread, axis=1)


def _contour_cells(frame: FrameFeatures, cell_px: float) -> np.ndarray:
    """The cells (`cell_px` colour pixels square) the frame's contours fall in, as sorted keys."""
    u, v = _pixels(frame, np.zeros(6))
    ok = np.isfinite(u) & np.isfinite(v)
    return np.unique(np.floor(v[ok] / cell_px).astype(np.int64) * (1 << 20) + np.floor(u[ok] / cell_px).astype(np.int64))


def view_labels(frames: Sequence[FrameFeatures], config: EstimateConfig) -> np.ndarray:
    """Per frame, the index of its view: a frame joins the first earlier view whose first frame's
    contour cells overlap its own by a Jaccard index of at least `same_view_overlap` (the same
    scene from the same place), else starts a new one."""
    leaders: list[np.ndarray] = []
    labels = np.zeros(len(frames), dtype=int)
    for index, frame in enumerate(frames):
        cells = _contour_cells(frame, config.view_cell_px)
        for view, lead in enumerate(leaders):
            union = np.union1d(cells, lead).size
            if union and np.intersect1d(cells, lead).size / union >= config.same_view_overlap:
                labels[index] = view
                break
        else:
            labels[index] = len(leaders)
            leaders.append(cells)
    return labels


def _solve(frames: Sequence[FrameFeatures], start: np.ndarray, active: list[int],
           config: EstimateConfig, views: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The refined parameters over `frames` and their grouped-jackknife standard deviations (NaN
    for the inactive ones); `views`: each frame's view (`view_labels`), never split across groups."""
    params = refine(frames, start, active, config)
    distinct = np.unique(views)
    groups = [np.flatnonzero(np.isin(views, chunk))
              for chunk in np.array_split(distinct, min(config.groups, distinct.size)) if chunk.size]
    samples = []
    for group in groups:
        rest = [f for i, f in enumerate(frames) if i not in set(group.tolist())]
        samples.append(refine(rest, params, active, config))
    std = np.full(6, np.nan)
    if len(samples) > 1:
        spread = np.asarray(samples) - np.mean(samples, axis=0)
        std[active] = np.sqrt((len(samples) - 1) / len(samples) * np.sum(spread**2, axis=0))[active]
    return params, std


def _metres(std: np.ndarray, depth_m: float) -> np.ndarray:
    """Standard deviations in metres of equivalent displacement: rotations times the depth."""
    return np.concatenate([std[:3], std[3:] * depth_m])


def _contour_shift_px(frames: Sequence[FrameFeatures], params: np.ndarray) -> float:
    """The median distance (colour pixels) that `params` moves the contour points."""
    moved = []
    for frame in frames:
        u0, v0 = _pixels(frame, np.zeros(6))
        u1, v1 = _pixels(frame, params)
        moved.append(np.hypot(u1 - u0, v1 - v0))
    values = np.concatenate(moved)
    values = values[np.isfinite(values)]
    return float(np.median(values)) if values.size else 0.0


def estimate(frames: Sequence[FrameFeatures], config: EstimateConfig = EstimateConfig(),
             previous: RegistrationEstimate | None = None) -> RegistrationEstimate:
    """The residual extrinsic over a window of frames (module docstring). When the window does not
    constrain (tx, ty), the result is "unconstrained" and carries `previous`'s parameters (identity
    when there is none)."""
    usable = [f for f in frames if len(f.contours) >= config.min_points]
    notes = []
    if len(usable) < len(frames):
        notes.append(f"{len(frames) - len(usable)} of {len(frames)} frames have fewer than {config.min_points} "
                     "contour points")

    def unconstrained(reason: str, rejected: int = 0) -> RegistrationEstimate:
        keep = previous.params.copy() if previous is not None else np.zeros(6)
        std = previous.std.copy() if previous is not None else np.full(6, np.nan)
        return RegistrationEstimate(keep, std, previous.solved if previous else (), "unconstrained",
                                    len(usable), rejected, notes=notes + [reason],
                                    significant=bool(previous and previous.significant))

    if len(usable) < config.min_views:
        return unconstrained(f"{len(usable)} frames with depth contours; at least {config.min_views} distinct views "
                             "needed (too few frames, or a flat scene: it does not constrain the registration)")
    seen = np.unique(view_labels(usable, config)).size
    if seen < config.min_views:
        return unconstrained(f"{len(usable)} frames with depth contours from {seen} distinct views; at least "
                             f"{config.min_views} needed")
    params = refine(usable, coarse_search(usable, config), [0, 1], config)
    inliers = robust_inliers(frame_shifts(usable, params, config), config.outlier_z, config.max_std_m / 2)
    inliers &= np.array([frame_contrast(f, params, config.contrast_offset_m) for f in usable]) >= config.min_contrast
    kept = [f for f, ok in zip(usable, inliers) if ok]
    rejected = len(usable) - len(kept)
    views = view_labels(kept, config)
    if np.unique(views).size < config.min_views:
        return unconstrained(f"{len(kept)} frames agree on the registration, from {np.unique(views).size} distinct "
                             f"views; at least {config.min_views} needed", rejected)
    depth_m = float(np.median(np.concatenate([f.contours.points[:, 2] for f in kept])))
    params, std = _solve(kept, params, [0, 1], config, views)
    solved: tuple[str, ...] = ("tx", "ty")
    extra = [PARAM_NAMES.index(name) for name in config.solve if name not in solved]
    if extra:
        full, full_std = _solve(kept, params, [0, 1] + extra, config, views)
        if np.all(_metres(full_std, depth_m)[[0, 1] + extra] <= config.max_extra_std_m):
            params, std, solved = full, full_std, ("tx", "ty") + tuple(PARAM_NAMES[j] for j in extra)
        else:
            notes.append(f"{', '.join(PARAM_NAMES[j] for j in extra)} not constrained by this window: "
                         "translation (tx, ty) only")
    if not np.all(std[:2] <= config.max_std_m):
        return unconstrained(f"tx, ty uncertain by {std[0] * 1000:.1f}, {std[1] * 1000:.1f} mm "
                             f"(more than {config.max_std_m * 1000:.1f} mm)", rejected)
    shift = _contour_shift_px(kept, params)
    active = [PARAM_NAMES.index(name) for name in solved]
    z = np.abs(params[active]) / np.maximum(std[active], 1e-12)
    least_px = max(config.min_shift_px, config.min_shift_input_px * float(np.median([f.input_px for f in kept])))
    significant = bool(np.any(z > config.apply_z) and shift >= least_px)
    return RegistrationEstimate(params, std, solved, "ok", len(kept), rejected, shift, significant, notes)
