"""Displacement and angulation of two fragments that touch along a rough fracture surface.

:func:`mskai.fracture.alignment.fragment_alignment` fits each fragment's axis to the bone
within a ball around the gap. Where the fracture surface is oblique or rough, that ball
holds a wedge of the fragment's end, whose centroid lies off the shaft axis: on a 24 mm
shaft cut at 17 degrees the two axes come out 2 mm apart with no displacement at all.
Here each axis is fitted (with the same PCA, :func:`alignment.principal_axis`) only to the
part of the fragment *beyond* the whole fracture surface: a slab of ``reach_mm`` along the
axis that starts ``clearance_mm`` past the surface's last point, so both ends of the slab
are cut square. The fracture centre is the centroid of the contact surface (the faces
between the two labels), projected on the proximal axis; displacement is its distance to
the distal axis, angulation the angle between the axes, as in :mod:`alignment`.

The axis of each fragment comes first from its lateral surface (:func:`lateral_surface_axis`):
a shaft's outer surface has normals perpendicular to its axis, however short or irregular
the piece and whatever bone lies next to it, so the axis is the direction the normals
avoid; its position is the centre of a circle fitted to those surface points across the
axis. Only where the normals avoid no direction (``MAX_NORMAL_SPREAD``: a joint end, not a
shaft) does PCA give the axis: of the slab above, or of the whole fragment where that is
the more rod-like (:func:`non_shaft_axis`). On 9 real sarcoma CT shafts broken on a rough
touching surface (1 mm, 3 degrees; ``Testing/benchmarks/eval_fragment_split.py``) the PCA
slab alone missed the displacement by 15.9 mm on average (worst 53.5 mm: in these crops the
slab's PCA turned across the shaft), the lateral surface by 0.36 mm (1.6 mm while the one
fragment that is no shaft took the slab's axis); on the phantoms it costs 0.2 mm and, on
the bridged gaps, about 3 degrees (0.37 mm / 0.77 degrees on average against 0.13 mm /
0.06 degrees).
"""

from __future__ import annotations

import numpy as np

from mskai.fracture.alignment import (
    Alignment,
    Axis,
    angle_deg,
    local_axis,
    oriented,
    principal_axis,
    voxel_points_ras,
)
from mskai.volume import Volume

MIN_CONTACT_FACES = 20
MAX_NORMAL_SPREAD = 0.25  # smallest over middle eigenvalue of the normals' scatter: a shaft
SURFACE_SMOOTHING_MM = 1.0  # Gaussian of the mask whose gradient gives the surface normals
FRACTURE_CLEARANCE_MM = 4.0  # surface points this near the other fragment: fracture faces
EDGE_VOXELS = 2  # surface points this near the image's edge are the crop's cut faces


def contact_points(labels: np.ndarray, volume: Volume, a: int, b: int) -> np.ndarray:
    """RAS centres (n, 3) of the voxel faces between labels ``a`` and ``b``."""
    points = []
    for axis in range(3):
        lo = [slice(None)] * 3
        hi = [slice(None)] * 3
        lo[axis], hi[axis] = slice(None, -1), slice(1, None)
        la, lb = labels[tuple(lo)], labels[tuple(hi)]
        hit = ((la == a) & (lb == b)) | ((la == b) & (lb == a))
        kji = np.argwhere(hit).astype(float)
        kji[:, axis] += 0.5
        points.append(kji)
    kji = np.vstack(points)
    return volume.index_to_ras(kji[:, ::-1]).reshape(-1, 3)


def axis_beyond(points_ras: np.ndarray, surface_ras: np.ndarray, reach_mm: float,
                clearance_mm: float, iterations: int = 3) -> Axis:
    """Axis of a fragment fitted to a square-cut slab beyond the fracture surface, pointing
    from the fragment towards the surface."""
    centre = surface_ras.mean(axis=0)
    axis, _ = local_axis(points_ras, centre, reach_mm)
    for _ in range(iterations):
        axis = oriented(axis, centre)
        d = points_ras - axis.centroid_ras
        along = d @ axis.direction_ras
        radial = np.linalg.norm(d - along[:, None] * axis.direction_ras, axis=1)
        start = float(((surface_ras - axis.centroid_ras) @ axis.direction_ras).min())
        start -= clearance_mm
        sel = (along <= start) & (along >= start - reach_mm) & (radial <= reach_mm)
        if np.count_nonzero(sel) < 4:
            break
        axis = principal_axis(points_ras[sel])
    return oriented(axis, centre)


class NotAShaftError(ValueError):
    """The fragment's surface normals do not avoid any one direction: no shaft to fit."""


def fragment_axis(mask: np.ndarray, other: np.ndarray, volume: Volume, surface_ras: np.ndarray,
                  reach_mm: float, clearance_mm: float) -> Axis:
    """The lateral-surface axis, or :func:`non_shaft_axis` where the fragment is no shaft
    (module doc); pointing from the fragment towards the surface."""
    try:
        axis = lateral_surface_axis(mask, other, volume, surface_ras, reach_mm)
    except NotAShaftError:
        axis = non_shaft_axis(voxel_points_ras(mask, volume), surface_ras, reach_mm,
                              clearance_mm)
    return oriented(axis, surface_ras.mean(axis=0))


def non_shaft_axis(points_ras: np.ndarray, surface_ras: np.ndarray, reach_mm: float,
                   clearance_mm: float) -> Axis:
    """The more rod-like (:attr:`Axis.elongation`) of the slab axis beyond the fracture
    (:func:`axis_beyond`) and the whole fragment's principal axis.

    Beyond a steep oblique surface a short fragment leaves only a disk, whose PCA turns
    across the bone: on STS_025's joint end (elongation 1.6) 22 degrees off, where the
    whole fragment (elongation 2.6) lay within 1.5 degrees of the other fragment's shaft.
    """
    slab = axis_beyond(points_ras, surface_ras, reach_mm, clearance_mm)
    whole = principal_axis(points_ras)
    return whole if whole.elongation > slab.elongation else slab


def lateral_surface_axis(mask: np.ndarray, other: np.ndarray, volume: Volume,
                         surface_ras: np.ndarray, reach_mm: float) -> Axis:
    """Axis of a shaft fragment from its outer surface within ``reach_mm`` of the fracture.

    Surface points are the fragment's boundary voxels (holes filled slice by slice, so the
    medullary canal is inside), without those within ``FRACTURE_CLEARANCE_MM`` of the
    ``other`` fragment (the fracture faces, across a contact or a narrow gap) or
    ``EDGE_VOXELS`` of the image's edge (the faces the field of view cut). Their normals
    (gradient of the mask smoothed over ``SURFACE_SMOOTHING_MM``) are perpendicular to a
    shaft's axis: the axis is the eigenvector of the smallest eigenvalue of the normals'
    scatter. The point on the axis is the centre of the least-squares circle (Kasa) through
    the surface points seen along it.
    Raises NotAShaftError when that eigenvalue exceeds ``MAX_NORMAL_SPREAD`` of the middle
    one (on the shafts measured it stays under 0.09; a joint end read 0.87). The work is done
    in the mask's padded bounding box (:func:`_surface_box`), not on the whole CT.
    """
    from scipy import ndimage
    from scipy.spatial import cKDTree

    from mskai.segmentation.bone_ct import fill_holes_along
    from mskai.segmentation.bone_ct_filters import erode_cross

    box = _surface_box(mask, volume)
    start = np.array([s.start for s in box])
    spacing_kji = np.asarray(tuple(reversed(volume.spacing)), dtype=float)
    filled = fill_holes_along(np.asarray(mask[box], dtype=bool), 0)
    smooth = ndimage.gaussian_filter(filled.astype(np.float32),
                                     SURFACE_SMOOTHING_MM / spacing_kji)
    rim = filled & ~erode_cross(filled)
    _clear_edges(rim, EDGE_VOXELS)
    kji = np.argwhere(rim)  # in the box; positions from the whole image's grid
    points = volume.index_to_ras((kji + start)[:, ::-1].astype(float)).reshape(-1, 3)
    centre = surface_ras.mean(axis=0)
    near = np.linalg.norm(points - centre, axis=1) <= reach_mm
    other_ras = voxel_points_ras(other, volume)
    # only the other fragment's voxels that can lie within the clearance of a near point
    other_ras = other_ras[np.linalg.norm(other_ras - centre, axis=1)
                          <= reach_mm + FRACTURE_CLEARANCE_MM]
    keep = near.copy()
    if len(other_ras):
        keep[near] = cKDTree(other_ras).query(points[near])[0] > FRACTURE_CLEARANCE_MM
    if np.count_nonzero(keep) < 20:
        raise ValueError("a fragment has too little outer surface near the fracture")
    kji, points = kji[keep], points[keep]
    gradient_kji = np.stack([_gradient_at(smooth, kji, a) / spacing_kji[a]
                             for a in range(3)], axis=1)
    normals = gradient_kji[:, ::-1] @ _index_directions(volume)
    normals /= np.linalg.norm(normals, axis=1, keepdims=True) + 1e-12
    values, vectors = np.linalg.eigh(normals.T @ normals)
    if values[0] > MAX_NORMAL_SPREAD * values[1]:
        raise NotAShaftError("the fragment's surface near the fracture is not a shaft")
    direction = vectors[:, 0]
    return Axis(_circle_centre(points, direction), direction,
                principal_axis(points).spread_mm)


def _surface_box(mask: np.ndarray, volume: Volume) -> tuple[slice, slice, slice]:
    """The mask's bounding box, padded past the smoothing's reach and ``EDGE_VOXELS``: the
    surface points and normals found in it are those of the whole image, where the box ends
    inside the image its edges are background, and only the image's own edges are cleared.
    """
    from mskai.crop import padded_bbox

    pad_mm = 4.0 * SURFACE_SMOOTHING_MM + (EDGE_VOXELS + 2) * max(volume.spacing)
    return padded_bbox(mask, volume, pad_mm)


def _gradient_at(values: np.ndarray, kji: np.ndarray, axis: int) -> np.ndarray:
    """``np.gradient(values, axis=axis)[tuple(kji.T)]`` (central differences, one-sided at
    the array's ends) computed at the points only, not over a whole box per fragment."""
    n = values.shape[axis]
    at = kji[:, axis]
    lo, hi = kji.copy(), kji.copy()
    lo[:, axis] = np.maximum(at - 1, 0)
    hi[:, axis] = np.minimum(at + 1, n - 1)
    step = np.where((at == 0) | (at == n - 1), 1.0, 2.0)
    return ((values[tuple(hi.T)] - values[tuple(lo.T)]) / step).astype(values.dtype)


def _pair_box(labels: np.ndarray, volume: Volume, a: int,
              b: int) -> tuple[slice, slice, slice] | None:
    """Both fragments' bounding box padded as :func:`_surface_box` pads one: each fragment's
    surface box then lies inside it, cut only where the image ends, so its edges are the
    image's edges and nothing else. None when neither label is present."""
    pair = (labels == a) | (labels == b)
    return _surface_box(pair, volume) if pair.any() else None


def _clear_edges(mask: np.ndarray, voxels: int) -> None:
    for axis in range(mask.ndim):
        index = [slice(None)] * mask.ndim
        for edge in (slice(0, voxels), slice(-voxels, None)):
            index[axis] = edge
            mask[tuple(index)] = False


def _index_directions(volume: Volume) -> np.ndarray:
    """Rows: the RAS unit vectors of the i, j and k index axes."""
    origin = volume.index_to_ras(np.zeros(3))
    return np.stack([(volume.index_to_ras(np.eye(3)[n]) - origin) / volume.spacing[n]
                     for n in range(3)])


def _circle_centre(points_ras: np.ndarray, direction: np.ndarray) -> np.ndarray:
    """The point of the axis line: centre of the least-squares circle through the points
    seen along ``direction``, at their mean height along it."""
    e1 = np.cross(direction, [1.0, 0.0, 0.0])
    if np.linalg.norm(e1) < 0.1:
        e1 = np.cross(direction, [0.0, 1.0, 0.0])
    e1 /= np.linalg.norm(e1)
    e2 = np.cross(direction, e1)
    x, y = points_ras @ e1, points_ras @ e2
    a, b, _ = np.linalg.lstsq(np.c_[x, y, np.ones(len(x))], x * x + y * y, rcond=None)[0]
    return a / 2 * e1 + b / 2 * e2 + float(np.mean(points_ras @ direction)) * direction


def split_alignment(labels: np.ndarray, volume: Volume, proximal: int, distal: int,
                    reach_mm: float = 40.0, clearance_mm: float = 2.0) -> Alignment | None:
    """Alignment of two touching fragments of a label map; None when they share fewer than
    ``MIN_CONTACT_FACES`` faces or a fragment is too small for an axis.

    Measured in the pair's box (:func:`_pair_box`): the same result as on the whole label
    map, without a pass over a whole CT per fragment (a bone-full 512x512x300 CT with 29
    touching pairs took 130 s here, 45 s of it listing voxels)."""
    box = _pair_box(labels, volume, proximal, distal)
    if box is None:
        return None
    labels, volume = labels[box], volume.crop(box)
    surface = contact_points(labels, volume, proximal, distal)
    if len(surface) < MIN_CONTACT_FACES:
        return None
    first, second = labels == proximal, labels == distal
    try:
        u = fragment_axis(first, second, volume, surface, reach_mm, clearance_mm)
        v = fragment_axis(second, first, volume, surface, reach_mm, clearance_mm)
    except ValueError:
        return None
    v = Axis(v.centroid_ras, -v.direction_ras, v.spread_mm)  # from the surface into it
    mean = surface.mean(axis=0)
    centre = u.centroid_ras + ((mean - u.centroid_ras) @ u.direction_ras) * u.direction_ras
    offset = centre - v.centroid_ras
    transverse = offset - (offset @ v.direction_ras) * v.direction_ras
    return Alignment(centre, float(np.linalg.norm(transverse)), 0.0,
                     angle_deg(u.direction_ras, v.direction_ras), u, v)
