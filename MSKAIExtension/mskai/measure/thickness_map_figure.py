"""The standard 2D cartilage thickness map of one plate, and a change map of two time points.

Projection (a :class:`PlateProjection`, in mm, fitted on one map and reusable for another so
two time points share the frame):

- tibial plates: onto the transverse plane, ``x = (p - c) . medial``, ``y = (p - c) .
  anterior`` around the plate's area-weighted centroid ``c``;
- patellar cartilage: onto the coronal plane, ``x = (p - c) . medial``, ``y = (p - c) .
  superior``;
- femoral cartilage: unrolled about the medio-lateral axis. A circle is fitted (least
  squares) to the points' sagittal coordinates ``(anterior, superior)``; ``x`` is the ML
  coordinate and ``y`` the arc length ``R * theta`` with ``theta`` the angle around the
  circle's centre from inferior (0, facing the tibia) towards anterior (trochlea, > 0) and
  posterior (< 0).

The image bins the points onto a ``bin_mm`` grid (area-weighted mean per bin) and draws it
on a fixed 0-4 mm scale; the change map pairs every baseline point with the nearest
follow-up point in the projected plane (within ``max_match_mm``) and shows follow-up minus
baseline on a diverging scale. Rendering uses matplotlib's Agg canvas, never pyplot.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mskai.measure.knee_axes import KneeAxes
from mskai.measure.thickness import ThicknessMap
from mskai.terminology import FEMORAL_CARTILAGE, PATELLAR_CARTILAGE

THICKNESS_RANGE_MM = (0.0, 4.0)
CHANGE_RANGE_MM = 1.5
BIN_MM = 0.75
MAX_MATCH_MM = 1.5


@dataclass
class PlateProjection:
    """A plate's 2D map frame in mm (see the module docstring)."""

    plate_id: str
    center_ras: np.ndarray
    x_axis: np.ndarray
    y_axis: np.ndarray
    radius_mm: float | None = None       # femur only: the unrolling cylinder's radius
    superior: np.ndarray | None = None   # femur only: theta = 0 faces -superior
    labels: tuple[str, str, str, str] = ("lateral", "medial", "posterior", "anterior")

    def project(self, points_ras: np.ndarray) -> np.ndarray:
        """(n, 2) map coordinates in mm."""
        rel = np.asarray(points_ras, dtype=float) - self.center_ras
        x = rel @ self.x_axis
        if self.radius_mm is None:
            return np.stack([x, rel @ self.y_axis], axis=1)
        theta = np.arctan2(rel @ self.y_axis, -(rel @ self.superior))
        return np.stack([x, self.radius_mm * theta], axis=1)


def fit_projection(thickness_map: ThicknessMap, plate_id: str, axes: KneeAxes) -> PlateProjection:
    """The map frame of ``plate_id`` fitted on ``thickness_map``."""
    from mskai.measure.subregions import weighted_centroid

    center = weighted_centroid(thickness_map)
    if plate_id == FEMORAL_CARTILAGE:
        anterior = _perpendicular_unit(axes.anterior, axes.medial)
        superior = _perpendicular_unit(axes.superior, axes.medial)
        superior = _perpendicular_unit(superior, anterior)
        center, radius = _sagittal_circle(thickness_map.points_ras, center, anterior, superior)
        return PlateProjection(plate_id, center, axes.medial, anterior, radius, superior)
    if plate_id == PATELLAR_CARTILAGE:
        return PlateProjection(plate_id, center, axes.medial, axes.superior,
                               labels=("lateral", "medial", "inferior", "superior"))
    return PlateProjection(plate_id, center, axes.medial, axes.anterior)


def _perpendicular_unit(v: np.ndarray, axis: np.ndarray) -> np.ndarray:
    out = v - (v @ axis) * axis
    return out / np.linalg.norm(out)


def _sagittal_circle(points: np.ndarray, center: np.ndarray, anterior: np.ndarray,
                     superior: np.ndarray) -> tuple[np.ndarray, float]:
    """Least-squares (Kasa) circle through the points' (anterior, superior) coordinates."""
    rel = points - center
    a, s = rel @ anterior, rel @ superior
    design = np.stack([a, s, np.ones_like(a)], axis=1)
    (ca2, cs2, k), *_ = np.linalg.lstsq(design, a**2 + s**2, rcond=None)
    ca, cs = ca2 / 2, cs2 / 2
    radius = float(np.sqrt(max(k + ca**2 + cs**2, 1e-6)))
    return center + ca * anterior + cs * superior, radius


def binned_map(xy: np.ndarray, values: np.ndarray, weights: np.ndarray,
               bin_mm: float = BIN_MM) -> tuple[np.ndarray, tuple[float, float, float, float]]:
    """Weighted mean of ``values`` per ``bin_mm`` square (NaN where empty) and its extent."""
    ok = np.isfinite(values) & (weights > 0)
    lo = xy.min(axis=0) - bin_mm
    shape = (np.ceil((xy.max(axis=0) - lo) / bin_mm).astype(int) + 2)[::-1]  # rows = y
    col, row = (np.floor((xy[ok] - lo) / bin_mm).astype(int)).T
    flat = row * shape[1] + col
    total = np.bincount(flat, weights=values[ok] * weights[ok], minlength=shape.prod())
    weight = np.bincount(flat, weights=weights[ok], minlength=shape.prod())
    with np.errstate(invalid="ignore", divide="ignore"):
        image = (total / weight).reshape(shape)
    extent = (lo[0], lo[0] + shape[1] * bin_mm, lo[1], lo[1] + shape[0] * bin_mm)
    return image, extent


@dataclass
class ChangeMap:
    """Follow-up minus baseline thickness at the baseline points (NaN: no partner)."""

    xy_mm: np.ndarray
    difference_mm: np.ndarray
    area_mm2: np.ndarray


def thickness_change(baseline: ThicknessMap, followup: ThicknessMap, plate_id: str,
                     axes: KneeAxes, max_match_mm: float = MAX_MATCH_MM) -> ChangeMap:
    """Nearest-point matching of the two maps in the baseline's projected plane."""
    from scipy.spatial import cKDTree

    frame = fit_projection(baseline, plate_id, axes)
    base_xy, follow_xy = frame.project(baseline.points_ras), frame.project(followup.points_ras)
    follow_ok = followup.valid
    distance, nearest = cKDTree(follow_xy[follow_ok]).query(base_xy, k=1)
    partner = followup.thickness_mm[follow_ok][nearest]
    difference = np.where(distance <= max_match_mm, partner - baseline.thickness_mm, np.nan)
    return ChangeMap(base_xy, difference, baseline.area_mm2)


def _render(image: np.ndarray, extent, labels, title: str, cmap: str, vmin: float,
            vmax: float, colorbar_label: str) -> bytes:
    import io

    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(5.5, 4.5), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    shown = ax.imshow(image, origin="lower", extent=extent, cmap=cmap, vmin=vmin, vmax=vmax,
                      interpolation="nearest")
    ax.set_aspect("equal")
    ax.set_xlabel(f"{labels[0]}  <-  mm  ->  {labels[1]}")
    ax.set_ylabel(f"{labels[2]}  <-  mm  ->  {labels[3]}")
    ax.set_title(title)
    fig.colorbar(shown, ax=ax, label=colorbar_label)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    return buffer.getvalue()


def _title(plate_id: str) -> str:
    return plate_id.replace("_", " ").capitalize()


def thickness_map_png(thickness_map: ThicknessMap, plate_id: str, axes: KneeAxes) -> bytes:
    """PNG of the plate's projected thickness map on a fixed 0-4 mm colour scale."""
    frame = fit_projection(thickness_map, plate_id, axes)
    xy = frame.project(thickness_map.points_ras)
    image, extent = binned_map(xy, thickness_map.thickness_mm, thickness_map.area_mm2)
    suffix = " (unrolled about the ML axis)" if frame.radius_mm else ""
    return _render(image, extent, frame.labels, f"{_title(plate_id)} thickness{suffix}",
                   "viridis", *THICKNESS_RANGE_MM, "thickness (mm)")


def thickness_change_png(baseline: ThicknessMap, followup: ThicknessMap, plate_id: str,
                         axes: KneeAxes) -> bytes:
    """PNG of follow-up minus baseline thickness (mm) on a diverging +-1.5 mm scale."""
    change = thickness_change(baseline, followup, plate_id, axes)
    labels = fit_projection(baseline, plate_id, axes).labels
    image, extent = binned_map(change.xy_mm, change.difference_mm, change.area_mm2)
    return _render(image, extent, labels, f"{_title(plate_id)} thickness change",
                   "RdBu", -CHANGE_RANGE_MM, CHANGE_RANGE_MM, "change (mm)")
