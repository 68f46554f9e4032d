"""Oblique two-bone knee phantom for joint space width, with analytic truth.

Two femoral condyles (balls of radius ``R``) stand over a flat tibial plateau (a slab whose
top is the plane ``height = 0``), the medial one ``gap_medial_mm`` above it, the lateral one
``gap_lateral_mm``; the condyles are far enough apart that each compartment's contact area
(see :mod:`mskai.measure.joint_space`) is a whole disc on the plateau. The grid is a
sagittal or axial acquisition rotated off the patient axes, with thick slices, and voxels
take the label of the region holding their centre.

Truth: for a plateau point at distance ``r`` from below a condyle's centre, the distance to
the nearest femoral surface point is ``sqrt(r^2 + D^2) - R`` with ``D = R + gap``. Its minimum
is the gap; its area mean over the disc ``r <= a`` is
``2 / (3 a^2) * ((a^2 + D^2)^(3/2) - D^3) - R`` (:func:`mean_gap_over_disc`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mskai.volume import LPS_TO_RAS, Volume
from phantoms.grid import make_grid, rotation

FEMUR = 1
TIBIA = 2
# grid axes (columns: i, j, k) of an unrotated acquisition, in LPS
BASE_AXES = {
    "sagittal": np.array([[0.0, -1.0, 0.0], [0.0, 0.0, -1.0], [1.0, 0.0, 0.0]]).T,  # i A, j I, k L
    "axial": np.eye(3),
}


@dataclass
class JointGapPhantom:
    labels: Volume
    radius_mm: float
    gap_medial_mm: float
    gap_lateral_mm: float
    center_medial_ras: np.ndarray     # condyle centres
    center_lateral_ras: np.ndarray
    split_center_ras: np.ndarray
    medial_direction_ras: np.ndarray
    up_ras: np.ndarray                # plateau normal, towards the femur

    @property
    def femur(self) -> np.ndarray:
        return self.labels.array == FEMUR

    @property
    def tibia(self) -> np.ndarray:
        return self.labels.array == TIBIA

    def truth_mean(self, side: str, contact_mm: float, fraction: float) -> float:
        """Mean gap over the central disc: ``fraction`` of the contact disc's radius."""
        gap = self.gap_medial_mm if side == "medial" else self.gap_lateral_mm
        d = self.radius_mm + gap
        contact_radius = np.sqrt(2 * d * contact_mm + contact_mm**2)
        return mean_gap_over_disc(self.radius_mm, gap, fraction * contact_radius)


def mean_gap_over_disc(radius_mm: float, gap_mm: float, disc_radius_mm: float) -> float:
    """Area mean of ``sqrt(r^2 + D^2) - R`` over ``r <= a`` (ball of radius R over a plane)."""
    d, a = radius_mm + gap_mm, disc_radius_mm
    return float(2 / (3 * a**2) * ((a**2 + d**2) ** 1.5 - d**3) - radius_mm)


def joint_gap(
    gap_medial_mm: float = 5.7,
    gap_lateral_mm: float = 4.0,
    spacing: tuple[float, float, float] = (0.5, 0.5, 1.2),
    tilt_deg: float = 15.0,
    tilt_axis: tuple[float, float, float] = (1.0, 0.6, 0.3),
    orientation: str = "sagittal",
    radius_mm: float = 16.0,
    separation_mm: float = 40.0,
    offset_mm: tuple[float, float, float] = (0.0, 0.0, 0.0),
) -> JointGapPhantom:
    """The phantom on a grid rotated ``tilt_deg`` about ``tilt_axis`` from ``orientation``.

    The patient axes are LPS: up is S, medial is L (+x, a right knee), AP is y. ``offset_mm``
    moves the grid (sub-voxel phase) without moving the bones.
    """
    r = radius_mm
    up = np.array([0.0, 0.0, 1.0])
    medial = np.array([1.0, 0.0, 0.0])
    c_med = separation_mm / 2 * medial + (r + gap_medial_mm) * up
    c_lat = -separation_mm / 2 * medial + (r + gap_lateral_mm) * up
    reach = np.sqrt(2 * (r + max(gap_medial_mm, gap_lateral_mm)) * 8.0 + 64.0)
    half_ml, half_ap = separation_mm / 2 + reach, reach  # plateau beyond every contact disc

    def label_fn(p: np.ndarray) -> np.ndarray:
        femur = (np.linalg.norm(p - c_med, axis=1) <= r) | (np.linalg.norm(p - c_lat, axis=1) <= r)
        tibia = ((p[:, 2] <= 0) & (p[:, 2] >= -12.0) & (np.abs(p[:, 0]) <= half_ml)
                 & (np.abs(p[:, 1]) <= half_ap))
        return np.where(femur, FEMUR, np.where(tibia, TIBIA, 0)).astype(np.uint8)

    direction = rotation(tilt_axis, tilt_deg) @ BASE_AXES[orientation]
    # the grid covers the box |x| <= half_ml + 2, |y| <= half_ap + 2, -14 <= z <= top
    top = max(c_med[2], c_lat[2]) + 2.0
    corners = np.array([[x, y, z] for x in (-half_ml - 2, half_ml + 2)
                        for y in (-half_ap - 2, half_ap + 2) for z in (-14.0, top)])
    local = corners @ direction  # coordinates along the grid axes
    extent = local.max(axis=0) - local.min(axis=0)
    size = tuple(int(np.ceil(e / s)) + 1 for e, s in zip(extent, spacing, strict=True))
    center = direction @ ((local.max(axis=0) + local.min(axis=0)) / 2) + np.asarray(offset_mm)
    grid = make_grid(size, spacing, direction, center_lps=tuple(center), dtype=np.uint8)
    m = grid.ijk_to_lps()
    out = np.empty(grid.array.shape, dtype=np.uint8)
    kk = np.arange(grid.array.shape[0])
    jj, ii = np.meshgrid(np.arange(grid.array.shape[1]), np.arange(grid.array.shape[2]),
                         indexing="ij")
    for k in kk:
        ijk = np.stack([ii.ravel(), jj.ravel(), np.full(ii.size, k)], axis=1).astype(float)
        out[k] = label_fn(ijk @ m[:3, :3].T + m[:3, 3]).reshape(ii.shape)
    return JointGapPhantom(
        labels=grid.with_array(out),
        radius_mm=r,
        gap_medial_mm=gap_medial_mm,
        gap_lateral_mm=gap_lateral_mm,
        center_medial_ras=LPS_TO_RAS @ c_med,
        center_lateral_ras=LPS_TO_RAS @ c_lat,
        split_center_ras=LPS_TO_RAS @ np.zeros(3),
        medial_direction_ras=LPS_TO_RAS @ medial,
        up_ras=LPS_TO_RAS @ up,
    )
