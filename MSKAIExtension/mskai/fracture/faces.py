"""The voxel faces of a 3D grid: each pair of face neighbours, one axis at a time."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np


def face_pairs(*arrays: np.ndarray) -> Iterator[tuple[int, list[tuple[np.ndarray, np.ndarray]]]]:
    """Per axis, (axis, [(lower, upper) of each array]): the values of the two voxels on
    either side of every face across that axis (all arrays of one shape)."""
    for axis in range(3):
        lo = [slice(None)] * 3
        hi = [slice(None)] * 3
        lo[axis], hi[axis] = slice(None, -1), slice(1, None)
        yield axis, [(a[tuple(lo)], a[tuple(hi)]) for a in arrays]
