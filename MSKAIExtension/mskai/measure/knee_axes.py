"""Anatomical axes of a knee, derived from its label map in physical (RAS mm) space.

All three axes are unit vectors in RAS and mutually perpendicular:

- ``superior``: from the tibia's centroid to the femur's centroid (the long axis of the
  joint; both bones are required).
- ``medial``: from the lateral to the medial tibial cartilage centroid, when both plates
  are labelled. This works for either knee side and any scanner orientation. Without them:
  away from the fibula (which is lateral), else from the knee side given by the caller
  (right knee: medial = -R), else a right knee is assumed and a warning is recorded.
- ``anterior``: from the femur's centroid towards the patella (or the patellar cartilage);
  without either, RAS +A with a warning.

Each axis is made perpendicular to the ones before it, in the order superior, medial,
anterior (superior is the most reliable, anterior the least); the fibula direction, which is
posterolateral, is first made perpendicular to the patella's forward direction too.
``ml_center_ras`` is a point on the medio-lateral split plane: half-way between the two
tibial plate centroids, else the tibial cartilage's gap at the tibial spine, else the
femur's centroid.
``plateau_ap_mm`` is the antero-posterior extent of the tibial plateau (1st and 99th
percentiles of ``p . anterior`` over the tibial cartilage voxels, else the proximal 10 mm of
the tibia), used to tell the weight-bearing femur from the trochlea and posterior condyles.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from mskai.errors import InputError
from mskai.terminology import (
    FEMUR,
    FIBULA,
    KNEE_REQUIRED_BONES,
    LATERAL_TIBIAL_CARTILAGE,
    MEDIAL_TIBIAL_CARTILAGE,
    PATELLA,
    PATELLAR_CARTILAGE,
    TIBIA,
    TIBIAL_CARTILAGE,
    TIBIAL_CARTILAGES,
    TIBIAL_PLATE_PAIR,
)
from mskai.volume import Volume

PROXIMAL_TIBIA_MM = 10.0


@dataclass
class KneeAxes:
    """Unit anatomical directions (RAS) and reference positions of one knee."""

    superior: np.ndarray
    medial: np.ndarray
    anterior: np.ndarray
    ml_center_ras: np.ndarray
    plateau_ap_mm: tuple[float, float]
    sources: dict[str, str] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)

    @property
    def side_known(self) -> bool:
        """Whether medial/lateral comes from anatomy or the caller, not from an assumption."""
        return self.sources.get("medial") != "assumed right knee"

    def to_json(self) -> dict:
        return {"superior": _listed(self.superior), "medial": _listed(self.medial),
                "anterior": _listed(self.anterior), "ml_center_ras": _listed(self.ml_center_ras),
                "plateau_ap_mm": [float(v) for v in self.plateau_ap_mm],
                "sources": dict(self.sources)}


def _listed(v: np.ndarray) -> list[float]:
    return [float(x) for x in v]


def _unit(v: np.ndarray) -> np.ndarray:
    return np.asarray(v, dtype=float) / np.linalg.norm(v)


def _perpendicular(v: np.ndarray, *axes: np.ndarray) -> np.ndarray | None:
    """``v`` without its components along ``axes`` (unit), or None if nothing is left."""
    out = np.asarray(v, dtype=float).copy()
    for axis in axes:
        out -= (out @ axis) * axis
    norm = np.linalg.norm(out)
    return out / norm if norm > 1e-6 * max(np.linalg.norm(v), 1e-12) else None


def voxel_points_ras(mask: np.ndarray, volume: Volume) -> np.ndarray:
    """RAS positions of the mask's voxel centres."""
    return volume.index_to_ras(np.argwhere(mask)[:, ::-1].astype(float))


def mask_centroid_ras(mask: np.ndarray, volume: Volume) -> np.ndarray:
    from mskai.measure.shape import centroid_kji

    return volume.index_to_ras(centroid_kji(np.asarray(mask, dtype=bool))[::-1])


def _present(labels: dict[str, np.ndarray], name: str) -> bool:
    return name in labels and bool(np.any(labels[name]))


def knee_axes(labels: dict[str, np.ndarray], volume: Volume,
              knee_side: Literal["right", "left"] | None = None) -> KneeAxes:
    """Axes of the knee in ``labels`` (canonical ids -> masks); see the module docstring."""
    for bone in KNEE_REQUIRED_BONES:
        if not _present(labels, bone):
            raise InputError(f"the labels have no {bone}, so this is not a knee segmentation "
                             f"CartilageQuant can measure; name it with --label-names {bone}=N")
    centroid = {name: mask_centroid_ras(mask, volume) for name, mask in labels.items()
                if np.any(mask)}
    sources: dict[str, str] = {"superior": "femur and tibia centroids"}
    warnings: list[str] = []
    superior = _unit(centroid[FEMUR] - centroid[TIBIA])
    forward, sources["anterior"] = _anterior(centroid, superior)
    medial, sources["medial"] = _medial(centroid, superior, forward, knee_side)
    if sources["medial"] == "assumed right knee":
        warnings.append("the knee side could not be derived (no separate medial and lateral "
                        "tibial cartilage, no fibula); medial/lateral assume a right knee")
    anterior = _perpendicular(forward, superior, medial)
    if sources["anterior"] == "image axes":
        warnings.append("no patella is labelled; anterior is taken from the image's A axis")
    return KneeAxes(superior, medial, anterior, _ml_center(labels, centroid, volume, medial),
                    _plateau_ap(labels, volume, superior, anterior), sources, warnings)


def _medial(centroid: dict[str, np.ndarray], superior: np.ndarray, forward: np.ndarray,
            knee_side: str | None) -> tuple[np.ndarray, str]:
    """Medial direction; the fibula lies posterolaterally, so its AP part is removed."""
    if all(name in centroid for name in TIBIAL_PLATE_PAIR):
        v = _perpendicular(centroid[MEDIAL_TIBIAL_CARTILAGE]
                           - centroid[LATERAL_TIBIAL_CARTILAGE], superior)
        if v is not None:
            return v, "tibial plates"
    if FIBULA in centroid:
        v = _perpendicular(centroid[TIBIA] - centroid[FIBULA], superior, forward)
        if v is not None:
            return v, FIBULA
    if knee_side not in (None, "right", "left"):
        raise InputError(f"knee side {knee_side!r} is not 'right' or 'left'")
    sign = 1.0 if knee_side == "left" else -1.0
    v = _perpendicular(np.array([sign, 0.0, 0.0]), superior)
    if v is None:
        raise InputError("the femur lies beside the tibia along the image's left-right axis; "
                         "check the label names")
    return v, f"{knee_side} knee" if knee_side else "assumed right knee"


def _anterior(centroid: dict[str, np.ndarray], superior: np.ndarray) -> tuple[np.ndarray, str]:
    """Forward direction (perpendicular to superior only), from the patella if labelled."""
    for name in (PATELLA, PATELLAR_CARTILAGE):
        if name in centroid:
            v = _perpendicular(centroid[name] - centroid[FEMUR], superior)
            if v is not None:
                return v, name
    v = _perpendicular(np.array([0.0, 1.0, 0.0]), superior)
    if v is None:
        raise InputError("the femur lies in front of the tibia along the image's A axis; "
                         "check the label names")
    return v, "image axes"


def _ml_center(labels: dict[str, np.ndarray], centroid: dict[str, np.ndarray], volume: Volume,
               medial: np.ndarray) -> np.ndarray:
    if all(name in centroid for name in TIBIAL_PLATE_PAIR):
        return (centroid[MEDIAL_TIBIAL_CARTILAGE] + centroid[LATERAL_TIBIAL_CARTILAGE]) / 2
    if TIBIAL_CARTILAGE in centroid:
        points = voxel_points_ras(labels[TIBIAL_CARTILAGE], volume)
        center = centroid[TIBIAL_CARTILAGE]
        offset = spine_offset_mm((points - center) @ medial)
        return center + offset * medial
    return centroid[FEMUR]


def spine_offset_mm(ml_mm: np.ndarray, bin_mm: float = 1.0) -> float:
    """ML coordinate of the emptiest 1 mm bin in the middle 40 % of a tibial plate's extent.

    The tibial spine carries no cartilage, so the medial and lateral plates are separated by
    a gap (or at least a waist) there.
    """
    lo, hi = np.percentile(ml_mm, [1, 99])
    edges = np.arange(lo, hi + bin_mm, bin_mm)
    counts, edges = np.histogram(ml_mm, bins=edges)
    centers = (edges[:-1] + edges[1:]) / 2
    middle = np.abs(centers - (lo + hi) / 2) <= 0.2 * (hi - lo)
    if not middle.any():
        return float((lo + hi) / 2)
    candidates = np.flatnonzero(middle)
    return float(centers[candidates[np.argmin(counts[candidates])]])


def _plateau_ap(labels: dict[str, np.ndarray], volume: Volume, superior: np.ndarray,
                anterior: np.ndarray) -> tuple[float, float]:
    plates = [labels[n] for n in TIBIAL_CARTILAGES if _present(labels, n)]
    if plates:
        points = np.vstack([voxel_points_ras(m, volume) for m in plates])
    else:
        points = voxel_points_ras(labels[TIBIA], volume)
        height = points @ superior
        points = points[height >= height.max() - PROXIMAL_TIBIA_MM]
    lo, hi = np.percentile(points @ anterior, [1, 99])
    return float(lo), float(hi)
