"""How two fragments of a long bone sit relative to each other: axes, displacement, angulation.

All in physical RAS millimetres, so oblique grids and anisotropic voxels do not bias angles.

- Fragment axis: first principal axis (PCA) of the fragment's voxel centres, restricted to
  those within ``reach_mm`` of the fracture so that a curved bone or an attached joint far
  away does not tilt the local shaft axis. Oriented from the proximal fragment towards the
  fracture and from the fracture into the distal fragment.
- End of a fragment: the point of its axis at the extreme projection of its voxels towards
  the fracture (the centre of the end face for a transverse break).
- Fracture centre ``c``: on the proximal axis, halfway across the gap between the end faces.
- ``displacement_mm``: distance from ``c`` to the distal axis, the side-to-side (transverse)
  translation of the distal fragment at the fracture. Distraction or shortening along the
  shaft is reported separately as ``gap_mm`` (distance between the end faces along the axis),
  because a gap the fracture itself created cannot be told apart from one opened by motion.
- ``angulation_deg``: angle between the two fragment axes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mskai.volume import Volume


@dataclass(frozen=True)
class Axis:
    """A fragment's principal axis: centroid, unit direction and PCA spread (sd, mm)."""

    centroid_ras: np.ndarray
    direction_ras: np.ndarray
    spread_mm: np.ndarray  # standard deviations along the three principal axes, descending

    @property
    def elongation(self) -> float:
        """sd along the axis over the next largest sd (1 for a ball, large for a rod)."""
        return float(self.spread_mm[0] / max(self.spread_mm[1], 1e-6))


@dataclass(frozen=True)
class Alignment:
    """Displacement and angulation of a distal fragment relative to a proximal one."""

    fracture_center_ras: np.ndarray
    displacement_mm: float
    gap_mm: float
    angulation_deg: float
    proximal_axis: Axis
    distal_axis: Axis


def voxel_points_ras(mask: np.ndarray, volume: Volume) -> np.ndarray:
    """RAS positions (n, 3) of the mask's voxel centres."""
    kji = np.argwhere(mask)
    return volume.index_to_ras(kji[:, ::-1].astype(float)).reshape(-1, 3)


def principal_axis(points_ras: np.ndarray) -> Axis:
    """PCA of a point cloud (n >= 3) in millimetres."""
    centroid = points_ras.mean(axis=0)
    cov = np.cov((points_ras - centroid).T)
    values, vectors = np.linalg.eigh(cov)
    order = np.argsort(values)[::-1]
    return Axis(centroid, vectors[:, order[0]], np.sqrt(np.maximum(values[order], 0.0)))


def near(points_ras: np.ndarray, center_ras: np.ndarray, reach_mm: float) -> np.ndarray:
    """The points within ``reach_mm`` of ``center_ras``."""
    return points_ras[np.linalg.norm(points_ras - center_ras, axis=1) <= reach_mm]


def local_axis(points_ras: np.ndarray, gap_center_ras: np.ndarray, reach_mm: float,
               iterations: int = 2) -> tuple[Axis, np.ndarray]:
    """Axis of the part of a fragment near the gap, and the points it was fitted to.

    A first PCA over the points within ``reach_mm`` of the gap centre; then refits over
    the points within ``reach_mm`` of the gap along that axis and within ``reach_mm`` of
    the axis line. A cylinder cut by planes perpendicular to its axis has an unbiased PCA
    axis, whereas a ball centred off the axis (a displaced fragment) cuts it obliquely.
    """
    pts = near(points_ras, gap_center_ras, reach_mm)
    if len(pts) < 4:
        raise ValueError("a fragment has fewer than 4 voxels near the fracture")
    axis = principal_axis(pts)
    for _ in range(iterations):
        d = points_ras - axis.centroid_ras
        along = d @ axis.direction_ras
        radial = np.linalg.norm(d - along[:, None] * axis.direction_ras, axis=1)
        s_gap = (gap_center_ras - axis.centroid_ras) @ axis.direction_ras
        sel = (np.abs(along - s_gap) <= reach_mm) & (radial <= reach_mm)
        if np.count_nonzero(sel) < 4:
            break
        pts = points_ras[sel]
        axis = principal_axis(pts)
    return axis, pts


def oriented(axis: Axis, towards_ras: np.ndarray) -> Axis:
    """The axis with its direction pointing from its centroid towards a point."""
    sign = 1.0 if (towards_ras - axis.centroid_ras) @ axis.direction_ras >= 0 else -1.0
    return Axis(axis.centroid_ras, sign * axis.direction_ras, axis.spread_mm)


def end_point(points_ras: np.ndarray, axis: Axis, quantile: float = 0.995) -> np.ndarray:
    """Point of the axis at the (robust) extreme projection of the points along it."""
    s = (points_ras - axis.centroid_ras) @ axis.direction_ras
    return axis.centroid_ras + float(np.quantile(s, quantile)) * axis.direction_ras


def angle_deg(a: np.ndarray, b: np.ndarray) -> float:
    """Angle between two unit directions, 0..180 degrees."""
    return float(np.degrees(np.arccos(np.clip(a @ b, -1.0, 1.0))))


def fragment_alignment(proximal_ras: np.ndarray, distal_ras: np.ndarray,
                       gap_center_ras: np.ndarray, reach_mm: float = 60.0) -> Alignment:
    """Alignment of two fragments (voxel centres in RAS) meeting near ``gap_center_ras``."""
    u, prox = local_axis(proximal_ras, gap_center_ras, reach_mm)
    v, dist = local_axis(distal_ras, gap_center_ras, reach_mm)
    u = oriented(u, gap_center_ras)
    v = oriented(v, gap_center_ras)
    v = Axis(v.centroid_ras, -v.direction_ras, v.spread_mm)  # from the gap into the fragment
    end_p = end_point(prox, u)
    end_d = end_point(dist, Axis(v.centroid_ras, -v.direction_ras, v.spread_mm))
    gap = float((end_d - end_p) @ u.direction_ras)
    center = end_p + 0.5 * max(gap, 0.0) * u.direction_ras
    offset = center - end_d
    transverse = offset - (offset @ v.direction_ras) * v.direction_ras
    return Alignment(center, float(np.linalg.norm(transverse)), gap,
                     angle_deg(u.direction_ras, v.direction_ras), u, v)
