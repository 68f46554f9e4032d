"""Automatic fragments split along the fractures the detector reported.

:func:`mskai.fracture.fragment_split.split_bone` splits a bone wherever its fracture
landscape has a line, with no idea where the fractures are: on held-out simulated fractures
it parts too much of sound bone, or nothing where the line is faint. Here each reported
fracture places what a person's clicks would: one seed on either side of its surface, the
deepest bone voxel within ``reach_mm`` of the fracture and at least ``side_mm`` off its plane,
and :func:`mskai.fracture.fragment_split.split_from_seeds` floods the landscape from them.

The plane's normal comes from the detected region (:attr:`Candidate.axes_ras`):

- a slice-dip region is a sheet: its shortest axis is the normal;
- a valley region is the band where the line crosses the cortex; its shortest axis is as
  often the cortex's thickness as the line's normal, so the normal is the band's long axis
  (along the line) crossed with the bone's surface normal there.

Up to ``max_splits`` fractures are used, best first, at least ``separation_mm`` apart; a
further one splits the fragment it lies in, so a comminuted fracture can give three pieces.
On simulated fractures of the TRAINING patients (78, seeds from 5001) this gave a mean
worst-fragment Dice of 0.547 against 0.468 for ``split_bone`` alone, and was chosen there
among 20 settings (normal rule, reach, side distance, one or two splits;
``training/fracture/tune_guided_split.py``, its output in
``training/fracture/guided_split_tuning.md``); held-out numbers are in
``Testing/benchmarks/results_fragment_split_held_out.md``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from mskai.fracture.candidates import SOURCE_VALLEY, Candidate
from mskai.volume import Volume


@dataclass(frozen=True)
class GuidedSplitParams:
    """Where the seeds of a reported fracture go (mm), and how many fractures are used."""

    reach_mm: float = 40.0        # seeds lie within this of the fracture's position
    side_mm: float = 5.0          # and at least this far off its plane
    max_splits: int = 2
    separation_mm: float = 10.0   # fractures closer than this to a used one are the same
    surface_sigma_mm: float = 2.0  # smoothing of the bone mask for its surface normal
    min_cross: float = 0.3        # |long axis x surface normal| below: use the short axis
    band_normal: bool = True      # a valley band's normal from its long axis (False: short)


DEFAULT_GUIDED = GuidedSplitParams()


@dataclass
class GuidedSplit:
    """Fragment labels (uint8: 1..n in the split bone components, 0 elsewhere) and, per
    fracture used, the two labels its seeds grew."""

    labels: np.ndarray
    pairs: list[tuple[Candidate, tuple[int, int]]]


def split_at_fractures(image: Volume, bone: np.ndarray, fractures: Sequence[Candidate],
                       landscape: np.ndarray | None = None,
                       params: GuidedSplitParams = DEFAULT_GUIDED) -> GuidedSplit:
    """Split ``bone`` at the given fractures, best first (module doc). Fractures without a
    region (no ``axes_ras``), off the bone, or with bone on one side only are skipped."""
    from mskai.fracture.fragment_split import split_from_seeds

    bone = np.asarray(bone, dtype=bool)
    spacing = np.asarray(tuple(reversed(image.spacing)), dtype=float)
    labels = bone.astype(np.uint8)  # at most 1 + max_splits labels; a CT is large
    touched = np.zeros(bone.shape, dtype=bool)
    pairs: list[tuple[Candidate, tuple[int, int]]] = []
    used: list[np.ndarray] = []
    for c in sorted(fractures, key=lambda c: -c.score):
        if len(pairs) >= params.max_splits or c.axes_ras is None:
            continue
        at = position_kji_mm(image, c.position_ras)
        if any(np.linalg.norm(at - u) <= params.separation_mm for u in used):
            continue
        voxel = tuple(np.clip(np.round(at / spacing).astype(int), 0, np.array(bone.shape) - 1))
        part = labels == labels[voxel] if labels[voxel] > 0 else None
        if part is None:
            continue
        normal = fracture_normal(image, bone, c, at, params)
        seeds = plane_seeds(part, at, normal, spacing, params)
        if seeds is None:
            continue
        if landscape is None:
            from mskai.fracture.fracture_landscape import fracture_landscape

            landscape = fracture_landscape(image, bone)
        grown = split_from_seeds(image, part, [s[None] for s in seeds], landscape)
        new = len(pairs) + 2
        kept = int(labels[tuple(seeds[0])])
        labels[part & (grown == 2)] = new
        touched |= grown > 0
        pairs.append((c, (kept, new)))
        used.append(at)
    return _consecutive(np.where(touched, labels, 0), pairs)


def automatic_fragments(image: Volume, bone: np.ndarray, fractures: Sequence[Candidate],
                        landscape: np.ndarray | None = None,
                        params: GuidedSplitParams = DEFAULT_GUIDED) -> np.ndarray:
    """The split at the reported fractures, or :func:`split_bone` where none could be used."""
    guided = split_at_fractures(image, bone, fractures, landscape, params)
    if guided.pairs:
        return guided.labels
    from mskai.fracture.fragment_split import split_bone

    return split_bone(image, bone, landscape)


def fracture_normal(image: Volume, bone: np.ndarray, fracture: Candidate, at_kji_mm: np.ndarray,
                    params: GuidedSplitParams = DEFAULT_GUIDED) -> np.ndarray:
    """Unit normal (k, j, i mm) of the fracture's plane (module doc)."""
    axes = np.array([ras_to_kji_direction(image, a) for a in fracture.axes_ras])
    if fracture.source != SOURCE_VALLEY or not params.band_normal:
        return axes[2]
    across = np.cross(axes[0], surface_normal(bone, at_kji_mm, image, params.surface_sigma_mm))
    size = float(np.linalg.norm(across))
    return across / size if size >= params.min_cross else axes[2]


def plane_seeds(part: np.ndarray, at_kji_mm: np.ndarray, normal: np.ndarray,
                spacing: np.ndarray, params: GuidedSplitParams = DEFAULT_GUIDED) -> list[
                    np.ndarray] | None:
    """The deepest voxel of the piece of ``part`` holding the fracture, on each side of the
    plane (module doc), [k, j, i] each; None when a side has no bone."""
    from scipy import ndimage

    box, lo = _ball_box(at_kji_mm, params.reach_mm, spacing, part.shape)
    pieces, _ = ndimage.label(part[box], structure=np.ones((3, 3, 3)))
    here_piece = pieces[tuple(np.clip(np.round(at_kji_mm / spacing).astype(int) - lo, 0,
                                      np.array(pieces.shape) - 1))]
    if here_piece == 0:
        return None
    local = pieces == here_piece
    depth = ndimage.distance_transform_edt(np.pad(local, 1), sampling=spacing)[1:-1, 1:-1, 1:-1]
    grid = np.meshgrid(*[(np.arange(s.start, s.stop) * h) - c
                         for s, h, c in zip(box, spacing, at_kji_mm, strict=True)], indexing="ij")
    offset = np.stack(grid, axis=-1)
    along = offset @ normal
    near = local & (np.linalg.norm(offset, axis=-1) <= params.reach_mm)
    seeds = []
    for side in (1.0, -1.0):
        here = near & (side * along >= params.side_mm)
        if not here.any():
            return None
        best = np.unravel_index(int(np.argmax(np.where(here, depth, -1.0))), local.shape)
        seeds.append(np.array(best) + lo)
    return seeds


def surface_normal(bone: np.ndarray, at_kji_mm: np.ndarray, image: Volume,
                   sigma_mm: float) -> np.ndarray:
    """Unit gradient (k, j, i mm) of the smoothed bone mask at a point: across its surface."""
    from scipy import ndimage

    spacing = np.asarray(tuple(reversed(image.spacing)), dtype=float)
    box, lo = _ball_box(at_kji_mm, 4.0 * sigma_mm + 2.0 * spacing.max(), spacing, bone.shape)
    smooth = ndimage.gaussian_filter(bone[box].astype(np.float32), sigma_mm / spacing)
    here = tuple(np.clip(np.round(at_kji_mm / spacing).astype(int) - lo, 0,
                         np.array(smooth.shape) - 1))
    grad = np.array([np.gradient(smooth, axis=a)[here] / spacing[a] for a in range(3)])
    return grad / max(float(np.linalg.norm(grad)), 1e-9)


def position_kji_mm(image: Volume, ras: Sequence[float]) -> np.ndarray:
    """A RAS point as (k, j, i) mm on the image's voxel grid."""
    ijk = np.asarray(image.ras_to_index(np.asarray(ras, dtype=float)), dtype=float).reshape(3)
    return ijk[::-1] * np.asarray(tuple(reversed(image.spacing)), dtype=float)


def ras_to_kji_direction(image: Volume, direction_ras: Sequence[float]) -> np.ndarray:
    """A RAS direction as a unit vector in (k, j, i) mm."""
    step = image.ras_to_ijk()[:3, :3] @ np.asarray(direction_ras, dtype=float)
    kji = step[::-1] * np.asarray(tuple(reversed(image.spacing)), dtype=float)
    return kji / max(float(np.linalg.norm(kji)), 1e-12)


def _ball_box(at_kji_mm: np.ndarray, radius_mm: float, spacing: np.ndarray,
              shape: tuple[int, ...]) -> tuple[tuple[slice, ...], np.ndarray]:
    centre = np.round(at_kji_mm / spacing).astype(int)
    half = np.ceil(radius_mm / spacing).astype(int) + 1
    lo = np.clip(centre - half, 0, np.array(shape))
    hi = np.clip(centre + half + 1, 0, np.array(shape))
    return tuple(slice(int(a), int(b)) for a, b in zip(lo, hi, strict=True)), lo


def _consecutive(labels: np.ndarray, pairs: list) -> GuidedSplit:
    """Labels renumbered 1..n in order of appearance; the pairs follow."""
    present = np.unique(labels[labels > 0])
    lookup = np.zeros(int(labels.max()) + 1, dtype=labels.dtype)
    lookup[present] = np.arange(1, len(present) + 1)
    return GuidedSplit(lookup[labels], [(c, (int(lookup[a]), int(lookup[b]))) for c, (a, b)
                                        in pairs])
