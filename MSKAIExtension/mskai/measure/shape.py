"""Shape measurements of one segment (CONTRACT.md keys): volume, surface, diameter, ...

- ``volume_ml``: voxel count x voxel volume.
- ``volume_surface_ml``: volume enclosed by the smoothed closed surface (divergence theorem).
- ``surface_area_mm2``: area of the smoothed closed surface.
- ``max_diameter_mm``: largest distance between two surface vertices (over the vertices of
  their convex hull, which contains every farthest pair).
- ``centroid_ras``: mean RAS position of the voxel centres.
- ``sphericity``: (36 pi V^2)^(1/3) / A with the surface volume and area (1 for a sphere).
- ``mean_intensity``: mean image value inside the mask, when an image is given.
"""

from __future__ import annotations

import contextlib
from typing import Any

import numpy as np

from mskai.errors import InputError
from mskai.measure.mesh import mask_to_mesh, mesh_area_mm2, mesh_volume_mm3
from mskai.volume import Volume


def farthest_pair(points: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
    """Largest pairwise distance among points (2D or 3D) and the two points that realise it."""
    from scipy.spatial import ConvexHull, QhullError

    points = np.asarray(points, dtype=float)
    if len(points) > points.shape[1] + 1:
        with contextlib.suppress(QhullError):  # flat or collinear: keep every point
            points = points[ConvexHull(points).vertices]
    best, pair = -1.0, (0, 0)
    for start in range(0, len(points), 2048):
        block = points[start:start + 2048]
        d2 = ((block[:, None, :] - points[None, :, :]) ** 2).sum(-1)
        idx = np.unravel_index(int(np.argmax(d2)), d2.shape)
        if d2[idx] > best:
            best, pair = float(d2[idx]), (start + int(idx[0]), int(idx[1]))
    return float(np.sqrt(max(best, 0.0))), points[pair[0]], points[pair[1]]


def max_diameter_mm(verts_ras: np.ndarray) -> float:
    """Maximum 3D diameter of a surface: the largest distance between two of its vertices."""
    return farthest_pair(verts_ras)[0]


def centroid_kji(mask: np.ndarray) -> np.ndarray:
    """Mean voxel index ``[k, j, i]`` of a non-empty mask, from its three projections (no
    list of voxel indices: a 512x512x80 bone takes a third of the time).

    Two passes over the voxels, both summing bytes into narrow integers: row counts along
    ``i`` (then ``k`` and ``j`` from them) and the column counts of the ``(k j, i)`` view
    (a third of the time of three ``sum`` calls, with the same integer counts)."""
    voxels = np.asarray(mask, dtype=bool).view(np.uint8)
    row_type = np.uint16 if voxels.shape[2] < 2**16 else np.uint64
    rows = np.add.reduce(voxels, axis=2, dtype=row_type)
    columns = np.add.reduce(voxels.reshape(-1, voxels.shape[2]), axis=0, dtype=np.uint64)
    out = []
    for counts in (rows.sum(axis=1, dtype=np.int64), rows.sum(axis=0, dtype=np.int64),
                   columns.astype(np.int64)):
        out.append(float((np.arange(len(counts)) * counts).sum()) / float(counts.sum()))
    return np.asarray(out)


def centroid_ras(mask: np.ndarray, volume: Volume) -> list[float]:
    """Mean RAS position of the mask's voxel centres."""
    kji = centroid_kji(np.asarray(mask, dtype=bool))
    return [float(v) for v in volume.index_to_ras(kji[::-1])]


def _intensity_array(intensity: np.ndarray | Volume, mask: np.ndarray) -> np.ndarray:
    array = intensity.array if isinstance(intensity, Volume) else np.asarray(intensity)
    if array.shape[:3] != mask.shape:
        raise InputError(f"the intensity image shape {array.shape[:3]} differs from the mask "
                         f"shape {mask.shape}; pass the image the mask was drawn on")
    return array


def shape_measurements(mask: np.ndarray, volume: Volume,
                       intensity: np.ndarray | Volume | None = None) -> dict[str, Any]:
    """The CONTRACT.md shape keys of one mask on ``volume``'s grid (see module docstring)."""
    mask = np.asarray(mask, dtype=bool)
    if not mask.any():
        raise InputError("the segment to measure is empty; segment the structure first "
                         "or remove the empty segment")
    verts, faces = mask_to_mesh(mask, volume, smooth=True)
    surface_volume = mesh_volume_mm3(verts, faces)
    area = mesh_area_mm2(verts, faces)
    out: dict[str, Any] = {
        "volume_ml": float(mask.sum()) * volume.voxel_volume_mm3 / 1000.0,
        "volume_surface_ml": surface_volume / 1000.0,
        "surface_area_mm2": area,
        "max_diameter_mm": max_diameter_mm(verts),
        "centroid_ras": centroid_ras(mask, volume),
        "sphericity": float((36.0 * np.pi * surface_volume**2) ** (1.0 / 3.0) / area),
    }
    if intensity is not None:
        out["mean_intensity"] = float(_intensity_array(intensity, mask)[mask].mean())
    return out
