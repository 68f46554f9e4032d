"""Sampling grids for phantoms: oblique directions, anisotropic spacing, physical coordinates."""

from __future__ import annotations

import numpy as np

from mskai.volume import Volume


def rotation(axis: tuple[float, float, float], degrees: float) -> np.ndarray:
    """Right-handed 3x3 rotation about ``axis`` (Rodrigues' formula)."""
    a = np.asarray(axis, dtype=float)
    a = a / np.linalg.norm(a)
    t = np.radians(degrees)
    k = np.array([[0, -a[2], a[1]], [a[2], 0, -a[0]], [-a[1], a[0], 0]])
    return np.eye(3) + np.sin(t) * k + (1 - np.cos(t)) * (k @ k)


def oblique_direction(degrees: float = 25.0) -> np.ndarray:
    """A direction matrix tilted about a non-axial axis, like an oblique MR acquisition."""
    return rotation((1.0, 0.6, 0.3), degrees)


def make_grid(
    size_ijk: tuple[int, int, int],
    spacing: tuple[float, float, float],
    direction: np.ndarray | None = None,
    center_lps: tuple[float, float, float] = (0.0, 0.0, 0.0),
    dtype: type = np.float32,
) -> Volume:
    """An empty volume whose grid centre lies at ``center_lps``."""
    direction = np.eye(3) if direction is None else np.asarray(direction, dtype=float)
    half_extent = (np.asarray(size_ijk, dtype=float) - 1) / 2 * np.asarray(spacing)
    origin = np.asarray(center_lps, dtype=float) - direction @ half_extent
    array = np.zeros(tuple(reversed(size_ijk)), dtype=dtype)
    return Volume(array, spacing=spacing, origin=tuple(origin), direction=direction)


def physical_points(volume: Volume, supersample: int = 1) -> np.ndarray:
    """LPS coordinates of voxel centres, shape ``array.shape + (3,)``.

    With ``supersample`` > 1 each voxel is split into ``s**3`` sub-voxels and the result has
    shape ``array.shape + (s**3, 3)``: averaging an indicator over them gives partial volume.
    """
    k, j, i = (np.arange(n, dtype=float) for n in volume.array.shape[:3])
    kk, jj, ii = np.meshgrid(k, j, i, indexing="ij")
    ijk = np.stack([ii, jj, kk], axis=-1)
    if supersample > 1:
        s = supersample
        offsets = (np.arange(s) + 0.5) / s - 0.5
        sub = np.stack(np.meshgrid(offsets, offsets, offsets, indexing="ij"), -1).reshape(-1, 3)
        ijk = ijk[..., None, :] + sub
    m = volume.ijk_to_lps()
    return ijk @ m[:3, :3].T + m[:3, 3]
