"""Cartilage subregions after Eckstein (Wirth & Eckstein 2008) / CartiMorph, in RAS mm.

Subregions partition the bone-interface points of a :class:`ThicknessMap` (the subchondral
bone area covered by cartilage); each point keeps its share of the interface area. The
anatomical directions come from :func:`mskai.measure.knee_axes.knee_axes` (derived from the
label map, so they hold for either knee side and any scan orientation).

**Tibial plates** (``medial_tibial_cartilage``, ``lateral_tibial_cartilage``): with ``c`` the
area-weighted centroid of the plate's interface points, each point gets the coordinates
``x = (p - c) . internal`` and ``y = (p - c) . anterior``, where ``internal`` points towards
the tibial spine (lateral for the medial plate, medial for the lateral plate). Scaled by
the plate's area-weighted standard deviations, ``X = x / sd_x`` and ``Y = y / sd_y``:

- ``central``: the ellipse ``X^2 + Y^2 <= r^2`` (semi-axes proportional to the plate's
  extent along ML and AP, centred at the centroid) whose ``r`` is chosen so that it holds
  20 % of the plate's interface area;
- the rest is cut by the ellipse's diagonals ``|Y| = |X|`` into ``anterior`` (Y > 0) and
  ``posterior`` (Y < 0) where ``|Y| >= |X|``, and ``internal`` (X > 0) and ``external``
  (X < 0) otherwise. A circular plate gives four sectors of 20 % each.

An unsplit ``tibial_cartilage`` gets the same scheme over the whole plateau, its ML
sectors named ``medial`` and ``lateral``.

**Femoral cartilage**: with ``a = p . anterior`` and the plateau's AP extent
``[a_post, a_ant]`` (``KneeAxes.plateau_ap_mm``) and the sagittal angle of the interface
normal ``phi = atan2(n . anterior, -n . superior)`` (0 = facing the tibia, +90 degrees
anterior, -90 degrees posterior):

- ``trochlea``: ``a > a_ant`` (in front of the tibial plateau);
- ``posterior_medial`` / ``posterior_lateral``: not trochlea, and ``a < a_post`` or
  ``phi < -POSTERIOR_ANGLE_DEG`` (facing backwards more than downwards);
- ``central_medial`` / ``central_lateral``: the rest, the weight-bearing condyles over the
  plateau, facing the tibia.

Medial and lateral are split by the plane through ``KneeAxes.ml_center_ras`` (between the
two tibial plates, i.e. at the intercondylar notch) normal to ``medial``.

**Patellar cartilage**: ``medial_facet`` / ``lateral_facet`` split by the plane through the
plate's area-weighted centroid (approximately the patellar ridge) normal to ``medial``.

Per subregion: ``area_mm2`` (interface area), ``mean_thickness_mm`` (area-weighted over
measured points) and ``denuded_area_fraction`` (share of the measured area thinner than
``threshold_mm``; a segmentation cannot show fully denuded bone, which has no cartilage
and so no interface, only cartilage thinner than the threshold).
"""

from __future__ import annotations

import numpy as np

from mskai.errors import InputError
from mskai.measure.knee_axes import KneeAxes
from mskai.measure.thickness import ThicknessMap
from mskai.terminology import (
    FEMORAL_CARTILAGE,
    KNEE_CARTILAGES,
    LATERAL_TIBIAL_CARTILAGE,
    MEDIAL_TIBIAL_CARTILAGE,
    PATELLAR_CARTILAGE,
    TIBIAL_CARTILAGES,
)

CENTRAL_FRACTION = 0.2
POSTERIOR_ANGLE_DEG = 45.0
DENUDED_THRESHOLD_MM = 0.5
TIBIAL_PLATES = TIBIAL_CARTILAGES


def subregions(thickness_map: ThicknessMap, plate_id: str, axes: KneeAxes,
               threshold_mm: float = DENUDED_THRESHOLD_MM) -> list[dict]:
    """``[{"name", "area_mm2", "mean_thickness_mm", "denuded_area_fraction"}, ...]``."""
    names = subregion_labels(thickness_map, plate_id, axes)
    return [subregion_summary(thickness_map, names == name, name, threshold_mm)
            for name in _ordered(names)]


def subregion_labels(thickness_map: ThicknessMap, plate_id: str, axes: KneeAxes) -> np.ndarray:
    """The subregion name of every interface point (see the module docstring)."""
    if plate_id in TIBIAL_PLATES:
        return tibial_labels(thickness_map, plate_id, axes)
    if plate_id == FEMORAL_CARTILAGE:
        return femoral_labels(thickness_map, axes)
    if plate_id == PATELLAR_CARTILAGE:
        return patellar_labels(thickness_map, axes)
    raise InputError(f"{plate_id!r} is not a cartilage plate; use one of "
                     f"{', '.join(KNEE_CARTILAGES)}")


def _ordered(names: np.ndarray) -> list[str]:
    order = ("central", "anterior", "posterior", "internal", "external", "medial", "lateral",
             "trochlea", "central_medial", "central_lateral", "posterior_medial",
             "posterior_lateral", "medial_facet", "lateral_facet")
    present = set(names.tolist())
    return [n for n in order if n in present]


def weighted_centroid(thickness_map: ThicknessMap) -> np.ndarray:
    w = thickness_map.area_mm2
    return (thickness_map.points_ras * w[:, None]).sum(axis=0) / w.sum()


def weighted_quantile(values: np.ndarray, weights: np.ndarray, q: float) -> float:
    order = np.argsort(values)
    cumulative = np.cumsum(weights[order])
    return float(values[order][np.searchsorted(cumulative, q * cumulative[-1])])


def tibial_labels(thickness_map: ThicknessMap, plate_id: str, axes: KneeAxes) -> np.ndarray:
    """Eckstein's central ellipse (20 % of the area) and four sectors of a tibial plate."""
    w = thickness_map.area_mm2
    rel = thickness_map.points_ras - weighted_centroid(thickness_map)
    if plate_id == MEDIAL_TIBIAL_CARTILAGE:
        sides, internal = ("internal", "external"), -axes.medial
    elif plate_id == LATERAL_TIBIAL_CARTILAGE:
        sides, internal = ("internal", "external"), axes.medial
    else:
        sides, internal = ("medial", "lateral"), axes.medial
    x, y = rel @ internal, rel @ axes.anterior
    sx = np.sqrt(np.average(x**2, weights=w))
    sy = np.sqrt(np.average(y**2, weights=w))
    big_x, big_y = x / max(sx, 1e-9), y / max(sy, 1e-9)
    radius = np.hypot(big_x, big_y)
    central = radius <= weighted_quantile(radius, w, CENTRAL_FRACTION)
    ap = np.abs(big_y) >= np.abs(big_x)
    return np.where(central, "central",
                    np.where(ap, np.where(big_y > 0, "anterior", "posterior"),
                             np.where(big_x > 0, sides[0], sides[1])))


def sagittal_normal_angle_deg(normals: np.ndarray, axes: KneeAxes) -> np.ndarray:
    """Angle of each normal in the sagittal plane: 0 inferior, +90 anterior, -90 posterior."""
    return np.degrees(np.arctan2(normals @ axes.anterior, -(normals @ axes.superior)))


def femoral_labels(thickness_map: ThicknessMap, axes: KneeAxes) -> np.ndarray:
    """Trochlea, and central (weight-bearing) / posterior condyles split medial/lateral."""
    pts = thickness_map.points_ras
    a = pts @ axes.anterior
    a_post, a_ant = axes.plateau_ap_mm
    phi = sagittal_normal_angle_deg(thickness_map.normals_ras, axes)
    medial = (pts - axes.ml_center_ras) @ axes.medial > 0
    side = np.where(medial, "medial", "lateral")
    posterior = (a < a_post) | (phi < -POSTERIOR_ANGLE_DEG)
    region = np.where(posterior, "posterior_", "central_")
    return np.where(a > a_ant, "trochlea", np.char.add(region, side))


def patellar_labels(thickness_map: ThicknessMap, axes: KneeAxes) -> np.ndarray:
    """Medial and lateral facets, split at the plate's centroid (about the patellar ridge)."""
    rel = thickness_map.points_ras - weighted_centroid(thickness_map)
    return np.where(rel @ axes.medial > 0, "medial_facet", "lateral_facet")


def subregion_summary(thickness_map: ThicknessMap, member: np.ndarray, name: str,
                      threshold_mm: float) -> dict:
    """Area, mean thickness and denuded fraction of the points in ``member``."""
    area = float(thickness_map.area_mm2[member].sum())
    ok = member & thickness_map.valid
    if not ok.any():
        return {"name": name, "area_mm2": area, "mean_thickness_mm": None,
                "denuded_area_fraction": None}
    values, weights = thickness_map.thickness_mm[ok], thickness_map.area_mm2[ok]
    return {
        "name": name,
        "area_mm2": area,
        "mean_thickness_mm": float(np.average(values, weights=weights)),
        "denuded_area_fraction": float(weights[values < threshold_mm].sum() / weights.sum()),
    }
