"""Arg-max of linearly interpolated class probabilities, when the model grid's axes are the
reference grid's axes permuted, flipped and rescaled (what :mod:`preprocess` makes: it only
reorients and resamples).

Where all 8 model voxels around a point share one arg-max class, the interpolated
probabilities (a convex combination of them) have that arg-max too, ties included. So the
label of most voxels is looked up from the model grid's cells; only voxels in cells with
mixed classes (a shell along the boundaries) are interpolated, all classes at once. The
result equals resampling every class over the whole grid and taking the arg-max (up to
rounding in near-exact ties), at a fraction of the cost on a large image.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mskai.volume import Volume

MIXED = np.uint8(255)


@dataclass(frozen=True)
class AxisMap:
    """Model continuous index along model axis ``a`` = ``scale[a] * r + offset[a]``, where
    ``r`` is the reference voxel index along reference axis ``source[a]`` (i, j, k order)."""

    source: tuple[int, int, int]
    scale: tuple[float, float, float]
    offset: tuple[float, float, float]


def axis_map(grid, reference: Volume, tolerance: float = 1e-6) -> AxisMap | None:
    """The per-axis map from reference index to model index, or None for rotated grids."""
    model_dir = np.asarray(grid.direction, dtype=float).reshape(3, 3)
    ref_dir = np.asarray(reference.direction, dtype=float).reshape(3, 3)
    linear = (model_dir.T @ ref_dir) * np.asarray(reference.spacing)[None, :] \
        / np.asarray(grid.spacing)[:, None]
    offset = model_dir.T @ (np.asarray(reference.origin) - np.asarray(grid.origin)) \
        / np.asarray(grid.spacing)
    source = tuple(int(np.argmax(np.abs(row))) for row in linear)
    if sorted(source) != [0, 1, 2]:
        return None
    for a, r in enumerate(source):
        rest = np.delete(linear[a], r)
        if np.any(np.abs(rest) > tolerance * max(abs(linear[a, r]), 1.0)):
            return None
    return AxisMap(source, tuple(float(linear[a, r]) for a, r in enumerate(source)),
                   tuple(float(v) for v in offset))


def argmax_onto(probs: np.ndarray, amap: AxisMap, shape_kji: tuple[int, int, int]
                ) -> np.ndarray:
    """uint16 ``[k, j, i]`` arg-max of ``probs`` (``(K, X, Y, Z)`` on the model grid)
    interpolated linearly at the reference voxels; background where a voxel lies outside
    the model grid (beyond half a voxel)."""
    size_ijk = shape_kji[::-1]
    coords = [amap.scale[a] * np.arange(size_ijk[r]) + amap.offset[a]
              for a, r in enumerate(amap.source)]
    cells, weights, inside = [], [], []
    for a, c in enumerate(coords):
        n = probs.shape[1 + a]
        inside.append((c >= -0.5) & (c <= n - 0.5))
        c = np.clip(c, 0.0, n - 1.0)
        low = np.minimum(np.floor(c).astype(np.int64), max(n - 2, 0))
        cells.append(low)
        weights.append((c - low).astype(np.float32))
    order = [0, 0, 0]  # model axis a holds reference axis source[a]; want (k, j, i)
    for a, r in enumerate(amap.source):
        order[2 - r] = a
    looked_up = _lookup(np.transpose(_cell_labels(probs), order), [cells[a] for a in order])
    for axis, a in enumerate(order):  # outside the model grid: background
        index = [slice(None)] * 3
        index[axis] = ~inside[a]
        looked_up[tuple(index)] = 0
    mixed = np.nonzero(looked_up == MIXED)
    labels = looked_up.astype(np.uint16)
    if mixed[0].size:
        labels[mixed] = _interpolated_argmax(probs, amap, mixed, cells, weights)
    return labels


def _lookup(table: np.ndarray, index: list[np.ndarray]) -> np.ndarray:
    """``table[np.ix_(*index)]`` as one ``take`` per axis (a contiguous result, no
    broadcast index arrays)."""
    out = table
    for axis, positions in enumerate(index):
        out = np.take(out, positions, axis=axis)
    return np.ascontiguousarray(out)


def _cell_labels(probs: np.ndarray) -> np.ndarray:
    """Per model cell (between voxels x..x+1, ...): the class shared by its 8 corners'
    arg-max, or :data:`MIXED`. A grid axis of one voxel makes cells of that one voxel.

    The corners are views into the arg-max padded by one edge voxel per axis (the last
    voxel repeated, as an index clipped to the grid gives), so no index arrays are built."""
    best = _first_argmax(probs)
    cell = best.copy()
    mixed = np.zeros(best.shape, dtype=bool)
    padded = np.pad(best, [(0, 1)] * 3, mode="edge")
    nx, ny, nz = best.shape
    for dx, dy, dz in [(dx, dy, dz) for dx in (0, 1) for dy in (0, 1) for dz in (0, 1)][1:]:
        mixed |= padded[dx:dx + nx, dy:dy + ny, dz:dz + nz] != best
    cell[mixed] = MIXED
    return cell


def _first_argmax(probs: np.ndarray) -> np.ndarray:
    """uint8 ``np.argmax(probs, axis=0)`` (the first of equal maxima) by one comparison per
    class over contiguous arrays, not a strided search per voxel."""
    best = np.zeros(probs.shape[1:], dtype=np.uint8)
    top = probs[0].copy()
    for channel in range(1, probs.shape[0]):
        better = probs[channel] > top
        best[better] = channel
        np.maximum(top, probs[channel], out=top)
    return best


def _interpolated_argmax(probs: np.ndarray, amap: AxisMap, mixed: tuple[np.ndarray, ...],
                         cells: list[np.ndarray], weights: list[np.ndarray]) -> np.ndarray:
    """Arg-max of the trilinearly interpolated probabilities at the listed voxels.

    The classes of one model voxel are gathered together (a channel-last copy of
    ``probs``): one contiguous row per corner instead of one scattered read per class."""
    n_classes, sx, sy, sz = probs.shape
    index_ijk = (mixed[2], mixed[1], mixed[0])
    low = [cells[a][index_ijk[r]] for a, r in enumerate(amap.source)]
    frac = [weights[a][index_ijk[r]] for a, r in enumerate(amap.source)]
    rows = np.ascontiguousarray(probs.reshape(n_classes, -1).T)
    total = np.zeros((len(low[0]), n_classes), dtype=np.float32)
    steps = [(1 if n > 1 else 0) for n in (sx, sy, sz)]
    base = (low[0] * sy + low[1]) * sz + low[2]
    for dx in (0, 1):
        wx = frac[0] if dx else 1 - frac[0]
        for dy in (0, 1):
            wy = frac[1] if dy else 1 - frac[1]
            for dz in (0, 1):
                wz = frac[2] if dz else 1 - frac[2]
                shift = (dx * steps[0] * sy + dy * steps[1]) * sz + dz * steps[2]
                total += rows[base + shift] * (wx * wy * wz)[:, None]
    return np.argmax(total, axis=1).astype(np.uint16)
