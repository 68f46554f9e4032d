"""Cartilage thickness maps in physical space (RAS mm), two methods.

Both start from the sub-voxel surfaces of :mod:`mskai.measure.cartilage_surfaces`: the bone
interface (where thickness is reported, one value per interface vertex) and the articular
surface. By default the 0.5 iso-surface of the binary mask (no blur: a Gaussian thins
one-voxel-thick layers) is relaxed by 60 Taubin iterations, which removes the voxel
staircase without shrinking; without it nearest-neighbour thickness is 0.1-0.3 mm too small
(the nearest point of a rough surface is always a bump).

- ``"nearest"``: the distance from each interface vertex to the nearest articular-surface
  vertex. As in Eckstein's definition (the articular surface excludes the cartilage
  margins), articular vertices whose outward normal is more than 60 degrees from the local
  bone normal (steep plate edges) are not targets; otherwise every interface point near a
  plate edge would measure its distance to the edge.
- ``"normal"``: the distance along the bone-interface normal (into the cartilage) to the
  first crossing of the articular mesh. Normals are averaged over the interface within
  ``normal_radius_mm`` (default: the largest voxel spacing, at least 1 mm) to remove the
  voxel staircase. Rays that meet nothing within ``max_thickness_mm`` are misses (NaN) and
  are left out of the summary.

Summary statistics weight each vertex by its share of the interface mesh area, so the
uneven vertex density of anisotropic grids does not bias them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mskai.errors import InputError
from mskai.measure.cartilage_surfaces import CartilageSurfaces, cartilage_surfaces
from mskai.volume import Volume

METHODS = ("nearest", "normal")
EDGE_ANGLE_DEG = 60.0


@dataclass
class ThicknessMap:
    """Thickness at the bone-interface vertices of one cartilage plate."""

    points_ras: np.ndarray     # (n, 3)
    normals_ras: np.ndarray    # (n, 3) unit, from bone into cartilage
    thickness_mm: np.ndarray   # (n,) NaN where not measured
    area_mm2: np.ndarray       # (n,) interface area represented by each point
    method: str
    volume_ml: float
    interface_area_mm2: float

    @property
    def valid(self) -> np.ndarray:
        """Points with a measured thickness and a share of the interface area."""
        return np.isfinite(self.thickness_mm) & (self.area_mm2 > 0)

    def summary(self) -> dict:
        """The CONTRACT's per-segment keys plus point count, volume and interface area."""
        ok = self.valid
        values, weights = self.thickness_mm[ok], self.area_mm2[ok]
        stats = _weighted_stats(values, weights) if ok.any() else dict.fromkeys(
            ("mean", "median", "sd", "max"))
        return {
            "mean_thickness_mm": stats["mean"],
            "median_thickness_mm": stats["median"],
            "sd_thickness_mm": stats["sd"],
            "max_thickness_mm": stats["max"],
            "thickness_method": self.method,
            "n_points": int(ok.sum()),
            "volume_ml": self.volume_ml,
            "interface_area_mm2": self.interface_area_mm2,
        }


def _weighted_stats(values: np.ndarray, weights: np.ndarray) -> dict:
    mean = float(np.average(values, weights=weights))
    sd = float(np.sqrt(np.average((values - mean) ** 2, weights=weights)))
    order = np.argsort(values)
    cumulative = np.cumsum(weights[order])
    median = float(values[order][np.searchsorted(cumulative, cumulative[-1] / 2)])
    return {"mean": mean, "median": median, "sd": sd, "max": float(values.max())}


def vertex_areas(verts: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """One third of the area of every face a vertex belongs to, summed per vertex."""
    a, b, c = (verts[faces[:, n]] for n in range(3))
    face_area = np.linalg.norm(np.cross(b - a, c - a), axis=1) / 2.0
    out = np.zeros(len(verts))
    for n in range(3):
        out += np.bincount(faces[:, n], face_area / 3.0, minlength=len(verts))
    return out


def smoothed_normals(points: np.ndarray, normals: np.ndarray, radius_mm: float) -> np.ndarray:
    """Unit normals averaged over all points within ``radius_mm`` (physical distance)."""
    from scipy.spatial import cKDTree

    tree = cKDTree(points)
    pairs = tree.query_pairs(radius_mm, output_type="ndarray")
    summed = normals.astype(float, copy=True)
    n = len(points)
    for axis in range(normals.shape[1]):  # bincount: np.add.at without its slowness
        summed[:, axis] += np.bincount(pairs[:, 0], normals[pairs[:, 1], axis], minlength=n)
        summed[:, axis] += np.bincount(pairs[:, 1], normals[pairs[:, 0], axis], minlength=n)
    return summed / np.maximum(np.linalg.norm(summed, axis=1, keepdims=True), 1e-12)


def _articular_targets(surf: CartilageSurfaces, interface_pts: np.ndarray,
                       inward: np.ndarray) -> np.ndarray:
    """Articular vertices that face away from the bone (not steep plate edges)."""
    from scipy.spatial import cKDTree

    articular = np.flatnonzero(~surf.is_interface)
    _, nearest = cKDTree(interface_pts).query(surf.verts_ras[articular], k=1, workers=-1)
    cosine = np.einsum("ij,ij->i", surf.normals_ras[articular], inward[nearest])
    return articular[cosine >= np.cos(np.radians(EDGE_ANGLE_DEG))]


def _nearest(surf: CartilageSurfaces, pts: np.ndarray, inward: np.ndarray) -> np.ndarray:
    from scipy.spatial import cKDTree

    targets = _articular_targets(surf, pts, inward)
    if len(targets) == 0:
        return np.full(len(pts), np.nan)
    distance, _ = cKDTree(surf.verts_ras[targets]).query(pts, k=1, workers=-1)
    return distance


def _along_normal(surf: CartilageSurfaces, pts: np.ndarray, inward: np.ndarray,
                  max_thickness_mm: float) -> np.ndarray:
    from mskai.measure.ray_mesh import first_hits

    return first_hits(pts, inward, surf.verts_ras, surf.articular_faces(), surf.normals_ras,
                      max_thickness_mm)


def cartilage_thickness(
    cartilage_mask: np.ndarray,
    bone_mask: np.ndarray,
    volume: Volume,
    method: str = "nearest",
    sigma_voxels: float = 0.0,
    smooth_iterations: int = 60,
    max_thickness_mm: float = 10.0,
    normal_radius_mm: float | None = None,
) -> ThicknessMap:
    """Thickness map of one cartilage plate on its bone (see the module docstring)."""
    return cartilage_thickness_maps(cartilage_mask, bone_mask, volume, (method,), sigma_voxels,
                                    smooth_iterations, max_thickness_mm,
                                    normal_radius_mm)[method]


def cartilage_thickness_maps(
    cartilage_mask: np.ndarray,
    bone_mask: np.ndarray,
    volume: Volume,
    methods: tuple[str, ...] = METHODS,
    sigma_voxels: float = 0.0,
    smooth_iterations: int = 60,
    max_thickness_mm: float = 10.0,
    normal_radius_mm: float | None = None,
) -> dict[str, ThicknessMap]:
    """:func:`cartilage_thickness` of several methods, sharing one surface extraction."""
    for method in methods:
        if method not in METHODS:
            raise InputError(f"unknown thickness method {method!r}; use one of "
                             f"{', '.join(METHODS)}")
    cartilage = np.asarray(cartilage_mask, dtype=bool)
    bone = np.asarray(bone_mask, dtype=bool)
    surf = cartilage_surfaces(cartilage, bone, volume, sigma_voxels, smooth_iterations)
    interface = np.flatnonzero(surf.is_interface)
    if len(interface) == 0:
        raise InputError("cartilage does not touch the bone: check the label names")
    pts = surf.verts_ras[interface]
    radius = normal_radius_mm or max(1.0, 2.0 * max(volume.spacing))
    inward = smoothed_normals(pts, -surf.normals_ras[interface], radius)
    areas = vertex_areas(surf.verts_ras, surf.interface_faces())[interface]
    volume_ml = float(np.count_nonzero(cartilage)) * volume.voxel_volume_mm3 / 1000.0
    out = {}
    for method in methods:
        if method == "nearest":
            thickness = _nearest(surf, pts, inward)
        else:
            thickness = _along_normal(surf, pts, inward, max_thickness_mm)
        out[method] = ThicknessMap(points_ras=pts, normals_ras=inward, thickness_mm=thickness,
                                   area_mm2=areas, method=method, volume_ml=volume_ml,
                                   interface_area_mm2=float(areas.sum()))
    return out


def denuded_area_fraction(thickness_map: ThicknessMap, threshold_mm: float = 0.5) -> float:
    """Fraction of the measured interface area where the cartilage is thinner than threshold."""
    ok = thickness_map.valid
    if not ok.any():
        return float("nan")
    thin = thickness_map.thickness_mm[ok] < threshold_mm
    weights = thickness_map.area_mm2[ok]
    return float(weights[thin].sum() / weights.sum())
