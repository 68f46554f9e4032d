"""Cartilage and joint-space phantoms with analytic truth (label volumes, no image).

Labels (uint8): 1 bone, 2 cartilage; the joint-space phantom uses 1 femur, 2 tibia.

Labelling: by default a voxel takes the label of the region containing its **centre**
(voxel-centre inclusion). With ``supersample=s`` it takes the label held by the majority of
``s**3`` regularly spaced sub-points (partial-volume majority). Both are unbiased on
average, so the analytic volume, area and thickness are the truth for either.

The geometry is defined in LPS millimetres (the same space as :func:`physical_points`), and
every generator takes the grid's ``spacing`` and ``direction``, so oblique acquisitions with
thick slices are covered. Cartilage margins (the rim of a cap or sector, the edge of a slab
disc) are cut perpendicular to the bone surface, so the thickness is ``t`` at every point of
the bone-cartilage interface, including its border.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from mskai.volume import LPS_TO_RAS, Volume
from phantoms.grid import make_grid, physical_points, rotation

BONE = 1
CARTILAGE = 2
FEMUR = 1
TIBIA = 2

LabelFn = Callable[[np.ndarray], np.ndarray]


@dataclass
class CartilagePhantom:
    """A bone + cartilage label volume and its analytic measurements."""

    labels: Volume
    thickness_mm: float
    cartilage_volume_ml: float
    interface_area_mm2: float
    name: str
    frame_lps: np.ndarray | None = None  # rows: the slab's in-plane u, v and its normal

    @property
    def bone(self) -> np.ndarray:
        return self.labels.array == BONE

    @property
    def cartilage(self) -> np.ndarray:
        return self.labels.array == CARTILAGE


@dataclass
class JointSpacePhantom:
    """Femur-like spheres (medial, lateral condyle) above a tibia-like slab."""

    labels: Volume
    jsw_min_mm: float
    jsw_medial_mm: float
    jsw_lateral_mm: float
    split_center_ras: np.ndarray
    medial_direction_ras: np.ndarray
    name: str

    @property
    def femur(self) -> np.ndarray:
        return self.labels.array == FEMUR

    @property
    def tibia(self) -> np.ndarray:
        return self.labels.array == TIBIA


# ----- helpers --------------------------------------------------------------------------------
def _unit(v) -> np.ndarray:
    v = np.asarray(v, dtype=float)
    return v / np.linalg.norm(v)


def _orthonormal_frame(axis) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Two unit vectors perpendicular to ``axis`` and to each other, then the axis."""
    w = _unit(axis)
    helper = np.array([1.0, 0.0, 0.0]) if abs(w[0]) < 0.9 else np.array([0.0, 1.0, 0.0])
    u = _unit(np.cross(w, helper))
    return u, np.cross(w, u), w


def _grid_around(extreme_points: np.ndarray, spacing, direction, margin_mm: float) -> Volume:
    """An empty grid whose inscribed sphere contains ``extreme_points`` plus a margin."""
    lo, hi = extreme_points.min(axis=0), extreme_points.max(axis=0)
    center = (lo + hi) / 2
    radius = np.linalg.norm(extreme_points - center, axis=1).max() + margin_mm
    size = tuple(int(np.ceil(2 * radius / s)) + 1 for s in spacing)
    return make_grid(size, spacing, direction, center_lps=tuple(center), dtype=np.uint8)


def _rasterise(grid: Volume, label_fn: LabelFn, supersample: int, n_labels: int) -> Volume:
    """Fill the grid with ``label_fn`` at voxel centres or by sub-point majority."""
    out = np.empty(grid.array.shape, dtype=np.uint8)
    for k in range(grid.array.shape[0]):  # slice by slice keeps supersampling memory small
        sub = grid.crop((slice(k, k + 1), slice(None), slice(None)))
        pts = physical_points(sub, supersample)
        labels = label_fn(pts.reshape(-1, 3)).reshape(pts.shape[:-1])
        if supersample > 1:
            counts = np.stack([(labels == v).sum(axis=-1) for v in range(n_labels + 1)])
            labels = counts.argmax(axis=0)
        out[k] = labels[0]
    return grid.with_array(out)


def _sphere_points(center, radius: float, n: int = 2000) -> np.ndarray:
    rng = np.random.default_rng(0)
    d = rng.normal(size=(n, 3))
    return np.asarray(center) + radius * d / np.linalg.norm(d, axis=1, keepdims=True)


# ----- cartilage phantoms ---------------------------------------------------------------------
def spherical_shell(
    radius_mm: float = 15.0,
    thickness_mm: float = 2.0,
    cap_half_angle_deg: float = 60.0,
    spacing: tuple[float, float, float] = (0.4, 0.4, 1.0),
    direction: np.ndarray | None = None,
    axis: tuple[float, float, float] = (0.2, -0.3, 1.0),
    supersample: int = 1,
) -> CartilagePhantom:
    """Bone ball of radius R; cartilage R < r <= R + t within ``cap_half_angle`` of ``axis``.

    ``cap_half_angle_deg=180`` gives a full shell. The rim is a cone through the centre, so it
    meets the bone at right angles.
    """
    r, t, a = radius_mm, thickness_mm, _unit(axis)
    alpha = np.radians(cap_half_angle_deg)
    center = np.zeros(3)

    def label_fn(p: np.ndarray) -> np.ndarray:
        rel = p - center
        dist = np.linalg.norm(rel, axis=1)
        cos_angle = rel @ a / np.maximum(dist, 1e-12)
        cart = (dist > r) & (dist <= r + t) & (cos_angle >= np.cos(alpha))
        return np.where(dist <= r, BONE, np.where(cart, CARTILAGE, 0)).astype(np.uint8)

    pts = _sphere_points(center, r + t)
    pts = pts[(pts - center) @ a >= (r + t) * np.cos(alpha) - 1e-9]
    rim = center + r * np.cos(alpha) * a  # the cap's base circle centre: bone under the rim
    grid = _grid_around(np.vstack([pts, rim[None]]), spacing, direction, margin_mm=2.0)
    cap = 1 - np.cos(alpha)
    return CartilagePhantom(
        labels=_rasterise(grid, label_fn, supersample, 2),
        thickness_mm=t,
        cartilage_volume_ml=2 * np.pi / 3 * cap * ((r + t) ** 3 - r**3) / 1000.0,
        interface_area_mm2=2 * np.pi * r**2 * cap,
        name=f"sphere R{r:g} t{t:g} cap{cap_half_angle_deg:g}",
    )


def cylindrical_shell(
    radius_mm: float = 15.0,
    thickness_mm: float = 2.0,
    length_mm: float = 20.0,
    sector_deg: float = 120.0,
    spacing: tuple[float, float, float] = (0.4, 0.4, 1.0),
    direction: np.ndarray | None = None,
    axis: tuple[float, float, float] = (1.0, 0.3, 0.2),
    supersample: int = 1,
) -> CartilagePhantom:
    """Bone cylinder of radius R; cartilage shell R < rho <= R + t over an angular sector.

    The cartilage spans ``length_mm`` along the axis (planar ends perpendicular to it) and
    ``sector_deg`` around it (radial sides); the bone cylinder is 6 mm longer at each end.
    """
    r, t, half_len = radius_mm, thickness_mm, length_mm / 2
    u, v, w = _orthonormal_frame(axis)
    half_sector = np.radians(sector_deg) / 2

    def label_fn(p: np.ndarray) -> np.ndarray:
        z, x, y = p @ w, p @ u, p @ v
        rho = np.hypot(x, y)
        phi = np.arctan2(y, x)
        bone = (rho <= r) & (np.abs(z) <= half_len + 6.0)
        cart = (rho > r) & (rho <= r + t) & (np.abs(z) <= half_len) & (np.abs(phi) <= half_sector)
        return np.where(bone, BONE, np.where(cart, CARTILAGE, 0)).astype(np.uint8)

    phis = np.linspace(-half_sector, half_sector, 64)
    ring = np.stack([np.cos(phis), np.sin(phis)], axis=1)
    pts = [(rad * ring[:, :1]) * u + (rad * ring[:, 1:]) * v + z * w
           for rad in (r - 3.0, r + t) for z in (-half_len, half_len)]
    grid = _grid_around(np.vstack(pts), spacing, direction, margin_mm=2.0)
    sector = np.radians(sector_deg)
    return CartilagePhantom(
        labels=_rasterise(grid, label_fn, supersample, 2),
        thickness_mm=t,
        cartilage_volume_ml=sector / 2 * ((r + t) ** 2 - r**2) * length_mm / 1000.0,
        interface_area_mm2=sector * r * length_mm,
        name=f"cylinder R{r:g} t{t:g} sector{sector_deg:g}",
    )


def slab(
    thickness_mm: float = 2.0,
    tilt_deg: float = 0.0,
    disc_radius_mm: float = 10.0,
    spacing: tuple[float, float, float] = (0.4, 0.4, 1.0),
    direction: np.ndarray | None = None,
    supersample: int = 1,
    thin_thickness_mm: float | None = None,
    thin_beyond_mm: float = 0.0,
) -> CartilagePhantom:
    """Bone half-space below a plane; a cartilage disc of thickness t on top of it.

    The plane's normal is LPS S tilted by ``tilt_deg`` about (1, 1, 0) ("flat" with 0, a
    "tilted slab" otherwise). The disc's edge is a cylinder perpendicular to the plane.
    With ``thin_thickness_mm`` the circular segment ``p . u > thin_beyond_mm`` (``u`` is
    ``frame_lps[0]``) is only that thick: a thinned (or, below a threshold, denuded) region
    of area ``R^2 acos(d / R) - d sqrt(R^2 - d^2)``.
    """
    t = thickness_mm
    n = rotation((1.0, 1.0, 0.0), tilt_deg) @ np.array([0.0, 0.0, 1.0])
    u, v, _ = _orthonormal_frame(n)

    def label_fn(p: np.ndarray) -> np.ndarray:
        height = p @ n
        in_disc = np.hypot(p @ u, p @ v) <= disc_radius_mm
        top = np.full(len(p), t)
        if thin_thickness_mm is not None:
            top[p @ u > thin_beyond_mm] = thin_thickness_mm
        cart = (height > 0) & (height <= top) & in_disc
        return np.where(height <= 0, BONE, np.where(cart, CARTILAGE, 0)).astype(np.uint8)

    phis = np.linspace(0, 2 * np.pi, 64, endpoint=False)
    ring = disc_radius_mm * (np.cos(phis)[:, None] * u + np.sin(phis)[:, None] * v)
    pts = np.vstack([ring - 3.0 * n, ring + t * n])
    grid = _grid_around(pts, spacing, direction, margin_mm=2.0)
    area = np.pi * disc_radius_mm**2
    thinned = circular_segment_area(disc_radius_mm, thin_beyond_mm)
    return CartilagePhantom(
        labels=_rasterise(grid, label_fn, supersample, 2),
        thickness_mm=t,
        cartilage_volume_ml=(area * t - thinned * (t - (thin_thickness_mm or t))) / 1000.0,
        interface_area_mm2=area,
        name=f"slab t{t:g} tilt{tilt_deg:g}",
        frame_lps=np.stack([u, v, n]),
    )


def circular_segment_area(radius_mm: float, distance_mm: float) -> float:
    """Area of the part of a disc beyond a chord at ``distance_mm`` from its centre."""
    r, d = radius_mm, float(np.clip(distance_mm, -radius_mm, radius_mm))
    return float(r**2 * np.arccos(d / r) - d * np.sqrt(r**2 - d**2))


# ----- joint space ----------------------------------------------------------------------------
def joint_space(
    gap_medial_mm: float = 3.0,
    gap_lateral_mm: float = 5.0,
    condyle_radius_mm: float = 12.0,
    condyle_separation_mm: float = 22.0,
    spacing: tuple[float, float, float] = (0.4, 0.4, 1.0),
    direction: np.ndarray | None = None,
    up: tuple[float, float, float] = (0.1, -0.2, 1.0),
    supersample: int = 1,
) -> JointSpacePhantom:
    """Two femoral "condyles" (balls, fused into one femur) above a tibial slab.

    The tibia occupies ``-6 mm <= height <= 0`` below the plane with normal ``up``; the medial
    condyle's lowest point is ``gap_medial_mm`` above it, the lateral one's ``gap_lateral_mm``.
    The medial condyle lies towards the patient's left (LPS +x), as in a right knee; the true
    medio-lateral split is the plane half-way between the condyle centres.
    """
    n = _unit(up)
    left = np.array([1.0, 0.0, 0.0])  # LPS +x: the patient's left, medial in a right knee
    medial_dir = _unit(left - (left @ n) * n)
    rc, half_sep = condyle_radius_mm, condyle_separation_mm / 2
    c_med = half_sep * medial_dir + (rc + gap_medial_mm) * n
    c_lat = -half_sep * medial_dir + (rc + gap_lateral_mm) * n
    plateau = half_sep + rc  # half-width of the tibial slab along the medio-lateral axis

    def label_fn(p: np.ndarray) -> np.ndarray:
        height = p @ n
        femur = ((np.linalg.norm(p - c_med, axis=1) <= rc)
                 | (np.linalg.norm(p - c_lat, axis=1) <= rc))
        lateral_extent = np.linalg.norm(p - np.outer(height, n), axis=1)
        tibia = (height <= 0) & (height >= -6.0) & (lateral_extent <= plateau)
        return np.where(femur, FEMUR, np.where(tibia, TIBIA, 0)).astype(np.uint8)

    pts = np.vstack([_sphere_points(c_med, rc), _sphere_points(c_lat, rc),
                     plateau * np.array([medial_dir, -medial_dir]) - 6.0 * n])
    grid = _grid_around(pts, spacing, direction, margin_mm=1.0)
    return JointSpacePhantom(
        labels=_rasterise(grid, label_fn, supersample, 2),
        jsw_min_mm=min(gap_medial_mm, gap_lateral_mm),
        jsw_medial_mm=gap_medial_mm,
        jsw_lateral_mm=gap_lateral_mm,
        split_center_ras=LPS_TO_RAS @ np.zeros(3),
        medial_direction_ras=LPS_TO_RAS @ medial_dir,
        name=f"jsw med{gap_medial_mm:g} lat{gap_lateral_mm:g}",
    )
