"""RECIST 1.1 axes of a lesion: longest axial diameter and the longest perpendicular to it.

Method (documented because RECIST leaves the digital details open):

1. Slices. When one image axis lies within :data:`AXIAL_TOLERANCE_DEG` of the patient's
   superior axis, the image's own slices along it are used. Otherwise the mask is
   resampled onto an axial (LPS-aligned) grid at the finest in-plane spacing of the
   original, by linear interpolation of the mask and a 0.5 threshold.
2. Boundary. In each slice the lesion outline is the 0.5 contour of the binary slice
   (marching squares: it runs half-way between inside and outside pixel centres), mapped to
   millimetres through the full index->RAS matrix, so anisotropic and rotated pixels are exact.
3. Long axis. The largest distance between two outline points (over their convex hull) in
   each slice; the slice with the largest one wins.
4. Short axis. In that slice, the longest chord exactly perpendicular to the long axis:
   outline segments are cut by lines perpendicular to the long axis through every outline
   vertex (between two such lines the chord length is linear, so its maximum lies on one),
   and the chord spans the outermost cuts on each line.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from mskai.errors import InputError
from mskai.measure.shape import farthest_pair
from mskai.volume import Volume

AXIAL_TOLERANCE_DEG = 5.0


def axial_slice_axis(volume: Volume, tolerance_deg: float = AXIAL_TOLERANCE_DEG) -> int | None:
    """Image axis (0=i, 1=j, 2=k) within ``tolerance_deg`` of superior, or ``None`` if oblique."""
    superior = np.abs(volume.direction[2, :])  # |cos| of each axis with LPS z
    axis = int(np.argmax(superior))
    return axis if superior[axis] >= np.cos(np.radians(tolerance_deg)) else None


def resample_axial(mask: np.ndarray, volume: Volume) -> tuple[np.ndarray, Volume]:
    """The mask on an LPS-aligned grid covering it, at the original's finest in-plane spacing."""
    import SimpleITK as sitk

    slice_axis = int(np.argmax(np.abs(volume.direction[2, :])))
    in_plane = min(s for n, s in enumerate(volume.spacing) if n != slice_axis)
    spacing = np.array([in_plane, in_plane, volume.spacing[slice_axis]])
    lo, hi = np.argwhere(mask).min(0) - 1.5, np.argwhere(mask).max(0) + 1.5  # kji corners
    corners_kji = np.array(np.meshgrid(*zip(lo, hi, strict=True), indexing="ij")).reshape(3, -1).T
    m = volume.ijk_to_lps()
    corners = corners_kji[:, ::-1] @ m[:3, :3].T + m[:3, 3]
    origin = corners.min(0)
    size = np.ceil((corners.max(0) - origin) / spacing).astype(int) + 1
    reference = sitk.Image([int(s) for s in size], sitk.sitkFloat32)
    reference.SetSpacing(tuple(float(s) for s in spacing))
    reference.SetOrigin(tuple(float(o) for o in origin))
    source = volume.with_array(mask.astype(np.float32)).to_sitk()
    resampled = sitk.Resample(source, reference, sitk.Transform(), sitk.sitkLinear, 0.0)
    axial = Volume.from_sitk(resampled)
    return axial.array >= 0.5, axial


def _slice_outline_ras(mask2d: np.ndarray, slice_index: int, array_axis: int,
                       volume: Volume) -> list[np.ndarray]:
    """RAS points of each closed 0.5 contour of one slice."""
    from skimage.measure import find_contours

    outlines = []
    for contour in find_contours(np.pad(mask2d, 1).astype(np.float32), 0.5):
        kji = np.insert(contour - 1.0, array_axis, float(slice_index), axis=1)
        outlines.append(volume.index_to_ras(kji[:, ::-1]))
    return outlines


def _plane_basis(volume: Volume, slice_axis: int) -> np.ndarray:
    """3x2 orthonormal basis (RAS) of the plane spanned by the two in-slice image axes."""
    in_plane = [n for n in range(3) if n != slice_axis]
    q, _ = np.linalg.qr(volume.ijk_to_ras()[:3, in_plane])
    return q


def _perpendicular_chord(outlines_2d: list[np.ndarray],
                         direction: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
    """Longest chord perpendicular to unit ``direction``: (length, end point, end point), 2D."""
    normal = np.array([-direction[1], direction[0]])
    starts = np.concatenate([o[:-1] for o in outlines_2d])
    ends = np.concatenate([o[1:] for o in outlines_2d])
    t0, t1 = starts @ direction, ends @ direction
    w0, w1 = starts @ normal, ends @ normal
    slanted = np.abs(t1 - t0) > 1e-9
    t0, t1, w0, w1 = t0[slanted], t1[slanted], w0[slanted], w1[slanted]
    positions = np.unique(np.concatenate([t0, t1]))[:, None]
    frac = (positions - t0) / (t1 - t0)
    cut = (frac >= -1e-9) & (frac <= 1 + 1e-9)
    w = w0 + np.clip(frac, 0.0, 1.0) * (w1 - w0)
    top = np.where(cut, w, -np.inf).max(axis=1)
    bottom = np.where(cut, w, np.inf).min(axis=1)
    best = int(np.argmax(top - bottom))
    t = positions[best, 0]
    return (float(top[best] - bottom[best]), t * direction + bottom[best] * normal,
            t * direction + top[best] * normal)


def _slice_axes(outlines: list[np.ndarray], basis: np.ndarray) -> dict[str, Any]:
    """Long and short axis of one slice's outlines (RAS) in the plane ``basis``."""
    origin = outlines[0][0]
    flat = [(o - origin) @ basis for o in outlines]
    long_mm, p, q = farthest_pair(np.concatenate(flat))
    direction = (q - p) / long_mm if long_mm > 0 else np.array([1.0, 0.0])
    short_mm, s0, s1 = _perpendicular_chord(flat, direction)
    to_ras = lambda pt: [float(v) for v in origin + basis @ pt]  # noqa: E731
    return {"long_axis_mm": long_mm, "short_axis_mm": short_mm,
            "long_endpoints_ras": [to_ras(p), to_ras(q)],
            "short_endpoints_ras": [to_ras(s0), to_ras(s1)]}


def recist_axes(mask: np.ndarray, volume: Volume) -> dict[str, Any]:
    """RECIST 1.1 long and short axis (mm) with their slice and RAS end points.

    Returns ``long_axis_mm``, ``short_axis_mm``, ``slice_index`` (along the image axis used
    for slicing, or along the axial resampled grid when ``resampled`` is true),
    ``long_endpoints_ras`` and ``short_endpoints_ras`` (two RAS points each).
    """
    mask = np.asarray(mask, dtype=bool)
    if mask.shape != volume.array.shape[:3]:
        raise InputError(f"the mask shape {mask.shape} differs from the image shape "
                         f"{volume.array.shape[:3]}; resample the mask onto the image grid")
    if not mask.any():
        raise InputError("the lesion mask is empty, so it has no RECIST axes; "
                         "segment the lesion first")
    slice_axis = axial_slice_axis(volume)
    resampled = slice_axis is None
    if resampled:
        mask, volume = resample_axial(mask, volume)
        slice_axis = 2
    array_axis = 2 - slice_axis
    basis = _plane_basis(volume, slice_axis)
    best: dict[str, Any] | None = None
    for index in np.flatnonzero(mask.any(axis=tuple(a for a in range(3) if a != array_axis))):
        outlines = _slice_outline_ras(np.take(mask, index, axis=array_axis), int(index),
                                      array_axis, volume)
        axes = _slice_axes(outlines, basis)
        if best is None or axes["long_axis_mm"] > best["long_axis_mm"] + 1e-9:
            best = {**axes, "slice_index": int(index)}
    if best is None:
        raise InputError("the lesion mask is smaller than one voxel of the axial grid; "
                         "check the mask or the image geometry")
    return {**best, "resampled": resampled}
