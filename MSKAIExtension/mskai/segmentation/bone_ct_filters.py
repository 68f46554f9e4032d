"""Exact, faster forms of the scipy.ndimage steps of the bone and fracture pipelines.

Each function gives the same values as the scipy call it replaces (named in its docstring;
``Testing/test_fracture_speedups.py`` checks the equality), in a fraction of the time on a
512x512x300 CT:

- :func:`box_max` / :func:`box_min`: ``ndimage.maximum_filter`` / ``minimum_filter`` with an
  odd box (default ``mode="reflect"``: the part of the window outside the array is a mirror
  of values inside the window, so it is simply left out), as a few whole-array maxima of
  shifted slices per axis (the window width doubles each step) instead of a ring buffer
  per line; on booleans a box dilation / erosion;
- :func:`erode_cross` / :func:`dilate_cross`: ``ndimage.binary_erosion`` /
  ``binary_dilation`` with the face-connected cross (in 3D or in-plane), border value 0,
  as logical ands / ors of shifted slices.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def box_max(values: np.ndarray, size: Sequence[int]) -> np.ndarray:
    """``ndimage.maximum_filter(values, size=size)`` for odd ``size`` (same values)."""
    return _box(values, size, np.maximum)


def box_min(values: np.ndarray, size: Sequence[int]) -> np.ndarray:
    """``ndimage.minimum_filter(values, size=size)`` for odd ``size`` (same values)."""
    return _box(values, size, np.minimum)


def box_closing(values: np.ndarray, size: Sequence[int]) -> np.ndarray:
    """``ndimage.grey_closing(values, size=size)`` for odd ``size`` (same values)."""
    return box_min(box_max(values, size), size)


def _box(values: np.ndarray, size: Sequence[int], op: np.ufunc) -> np.ndarray:
    out = np.asarray(values)
    for axis, width in enumerate(size):
        if int(width) % 2 != 1:
            raise ValueError(f"box widths must be odd, got {tuple(size)}")
        out = _slide(out, int(width) // 2, axis, op)
    return out if out is not values else out.copy()


def _identity(dtype: np.dtype, op: np.ufunc):
    """The value that never wins ``op`` (padding outside the array: left out)."""
    if dtype == np.bool_:
        return op is np.minimum
    if np.issubdtype(dtype, np.floating):
        return np.inf if op is np.minimum else -np.inf
    info = np.iinfo(dtype)
    return info.max if op is np.minimum else info.min


def _slide(values: np.ndarray, radius: int, axis: int, op: np.ufunc) -> np.ndarray:
    """``op`` over the window [p - radius, p + radius] along ``axis`` (outside: left out).

    Padded by ``radius`` identity values at both ends, ``cur[q]`` holds ``op`` over
    [q, q + w - 1] for w = 1, 2, 4, ... up to the largest power of two within the window;
    two such windows then cover it.
    """
    if radius == 0 or values.shape[axis] == 0:
        return values
    pad_shape = list(values.shape)
    pad_shape[axis] = radius
    pad = np.full(pad_shape, _identity(values.dtype, op), dtype=values.dtype)
    cur = np.concatenate([pad, values, pad], axis=axis)
    need, w = 2 * radius + 1, 1
    while 2 * w <= need:
        cur = op(_take(cur, w, None, axis), _take(cur, 0, -w, axis))
        w *= 2
    n = values.shape[axis]
    return op(_take(cur, 0, n, axis), _take(cur, need - w, need - w + n, axis))


def _take(array: np.ndarray, start: int, stop: int | None, axis: int) -> np.ndarray:
    index = [slice(None)] * array.ndim
    index[axis] = slice(start, stop)
    return array[tuple(index)]


def erode_cross(mask: np.ndarray, axes: Sequence[int] = (0, 1, 2),
                iterations: int = 1) -> np.ndarray:
    """``ndimage.binary_erosion`` with the face-connected cross along ``axes`` (all three:
    the default structure; two: in-plane), border value 0, ``iterations`` times."""
    out = np.asarray(mask, dtype=bool)
    for _ in range(iterations):
        eroded = out.copy()
        for axis in axes:
            _shifted_into(eroded, out, axis, np.logical_and, border=False)
        out = eroded
    return out


def dilate_cross(mask: np.ndarray, axes: Sequence[int] = (0, 1, 2)) -> np.ndarray:
    """``ndimage.binary_dilation`` with the face-connected cross along ``axes`` (one step)."""
    out = np.asarray(mask, dtype=bool)
    dilated = out.copy()
    for axis in axes:
        _shifted_into(dilated, out, axis, np.logical_or, border=None)
    return dilated


def _shifted_into(target: np.ndarray, source: np.ndarray, axis: int, op: np.ufunc,
                  border: bool | None) -> None:
    """``target = op(target, source shifted by +1 and by -1 along axis)``; the neighbour
    beyond the array is ``border`` (None: left out)."""
    n = source.shape[axis]
    if n == 0:
        return
    lo, hi = _take(target, 0, n - 1, axis), _take(target, 1, None, axis)
    op(lo, _take(source, 1, None, axis), out=lo)
    op(hi, _take(source, 0, n - 1, axis), out=hi)
    if border is not None:
        for end in (0, n - 1):
            edge = _take(target, end, end + 1, axis)
            op(edge, border, out=edge)
