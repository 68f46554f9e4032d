"""Fracture candidates from the HU valley inside bone: a classic, non-learned detector.

A fracture line, even where the fragments touch, reads darker than the bone on both sides
(:func:`mskai.fracture.fracture_landscape.hu_valley`, a black top-hat of the CT normalised by
the local bone contrast, 0..1). Normal anatomy also has valleys (trabecular texture, marrow,
concave bone edges), so the response counted here is kept only where a line would cross
cortex:

1. the bone is the HU bone mask, eroded by one voxel in-plane so the partial-volume rim of a
   concave bone surface does not read as a line;
2. the response is the valley on cortex-like bone (grey closing >= ``DENSE_HU``,
   :func:`mskai.fracture.fracture_landscape.dense_bone`);
3. regions (26-connected) of response >= ``VALLEY_THRESHOLD`` are candidates when they
   hold at least ``MIN_VOXELS`` voxels and reach the outer ``RIM_MM`` of the bone (a line
   that crosses the cortex; holes filled slice by slice, so the medullary canal is inside);
4. score = mean response of the region x its extent through cortex, ``extent_mm /
   FULL_EXTENT_MM`` capped at 1, where the extent is the longest side of the region's
   bounding box in mm: a line across a cortex is long, a vessel canal or a speck is short.

Position is the region voxel nearest its response-weighted centroid. The thresholds were
chosen on simulated fractures of TRAINING bones only (``training/fracture/split.json``; 77
fractures of 16 sarcoma patients, seeds from 5001): region threshold 0.5 and full extent
10 mm gave the best sensitivity at 1 FP/scan (0.36; 0.03 when the same place is read on the
intact CT; 0.17 without the outer-rim requirement); a 1 mm closing, or no sheet
averaging, made it worse (0.35 and 0.21 at best, without the rim requirement)
(``training/fracture/tune_valley.py``). ``OPERATING_SCORE`` is above every region on the
16 intact training CTs; there the training sensitivity is at most 0.03, so this detector
alone is NOT a default candidate source (measured in
``Testing/benchmarks/froc_real_fracture.py``). Its regions, rescored by the learned
false-positive reducer (:mod:`mskai.fracture.valley_reducer`), are a default source.
"""

from __future__ import annotations

import numpy as np

from mskai.fracture.candidates import SOURCE_SLICE_DIP, SOURCE_VALLEY, Candidate
from mskai.fracture.fracture_landscape import CLOSING_MM, SHEET_MM
from mskai.terminology import BONE
from mskai.volume import Volume

VALLEY_THRESHOLD = 0.5
MIN_VOXELS = 4
FULL_EXTENT_MM = 10.0
OPERATING_SCORE = 0.85  # training intact CTs: 0 regions at or above (16 scans)
RIM_MM = 2.0  # a region must reach bone within this of the bone's outside (crosses cortex)
LINE_PIXEL_MM = RIM_MM / 1.5  # the coarsest in-plane pixel with a two-layer rim (reaches_rim)
IN_PLANE_AXES = (1, 2)  # (j, i) of a (k, j, i) array: erosions within each slice


def valley_response(image: Volume, bone: np.ndarray, closing_mm: float = CLOSING_MM,
                    sheet_mm: float = SHEET_MM) -> np.ndarray:
    """HU valley on the eroded, cortex-like part of ``bone`` (0..1, float32)."""
    from mskai.fracture.fracture_landscape import dense_bone, hu_valley
    from mskai.segmentation.bone_ct_filters import erode_cross

    inner = erode_cross(bone, IN_PLANE_AXES)  # ndimage.binary_erosion's voxels, faster
    if not inner.any():
        return np.zeros(bone.shape, dtype=np.float32)
    valley = hu_valley(image, bone, closing_mm=closing_mm, sheet_mm=sheet_mm)
    return np.where(inner & dense_bone(image, bone), valley, 0.0).astype(np.float32)


def outer_rim(bone: np.ndarray, spacing: tuple[float, float, float],
              depth_mm: float = RIM_MM) -> np.ndarray:
    """Bone voxels within ``depth_mm`` (in-plane) of the outside of the bone.

    Holes are filled slice by slice, so the medullary canal is inside, not outside.
    """
    from mskai.segmentation.bone_ct_filters import erode_cross

    filled = fill_holes_in_plane(bone)
    inner = erode_cross(filled, IN_PLANE_AXES, iterations=rim_steps(spacing, depth_mm))
    return bone & ~inner


def rim_steps(spacing: tuple[float, float, float], depth_mm: float = RIM_MM) -> int:
    """In-plane voxel layers of the outer rim (at least one)."""
    return max(1, int(round(depth_mm / min(spacing[0], spacing[1]))))


def reaches_rim(spacing: tuple[float, float, float]) -> bool:
    """Whether a valley region can reach the outer rim at this spacing at all.

    Known limit: the valley is read one in-plane voxel inside the bone
    (:func:`valley_response`), so with a one-layer rim (in-plane voxels over 1.33 mm) no
    region reaches it and the detector finds nothing (TPTBox, 1.5 mm; ts_example, 3 mm). Two
    layers there were measured on 2026-12-06: held-out sensitivity at 1 FP/scan 0.55 ->
    0.61, but the intact 1.5 mm CTs then read false fractures the reducer scores 0.6-1.0
    (TPTBox, ts_example), and the reducer retrained with them lost more than that (0.47), so
    the rim stays as it was and the task warns instead
    (:func:`mskai.tasks.fracture.line_detection_warning`).
    """
    return rim_steps(spacing) >= 2


def fill_holes_in_plane(mask: np.ndarray) -> np.ndarray:
    """``binary_fill_holes`` of every slice (4-connected background): background not
    connected in-plane to a slice's border is a hole (:func:`mskai.segmentation.bone_ct.
    fill_holes_along` across the slice axis)."""
    from mskai.segmentation.bone_ct import fill_holes_along

    return fill_holes_along(mask, 0)


def valley_candidates(image: Volume, bone: np.ndarray | None = None,
                      threshold: float = VALLEY_THRESHOLD,
                      min_voxels: int = MIN_VOXELS) -> list[Candidate]:
    """Candidates of the valley response inside ``bone`` (HU bone mask when None), best first."""
    if bone is None:
        from mskai.segmentation.bone_ct import segment_bone_ct

        bone = segment_bone_ct(image)
    bone = np.asarray(bone, dtype=bool)
    response = valley_response(image, bone)
    return regions_as_candidates(response, image, threshold, min_voxels,
                                 rim=outer_rim(bone, image.spacing))


def regions_as_candidates(response: np.ndarray, volume: Volume, threshold: float,
                          min_voxels: int, full_extent_mm: float = FULL_EXTENT_MM,
                          rim: np.ndarray | None = None) -> list[Candidate]:
    """One candidate per connected region of ``response >= threshold`` (module doc, 3-4);
    with ``rim``, only regions that reach it (a line open to the bone's outside)."""
    out = [region_candidate(box, here, response, volume, full_extent_mm)
           for box, here in valley_regions(response, threshold, min_voxels, rim)]
    return sorted(out, key=lambda c: -c.score)


def valley_regions(response: np.ndarray, threshold: float, min_voxels: int,
                   rim: np.ndarray | None = None) -> list[tuple[tuple, np.ndarray]]:
    """(bounding box, region mask inside it) of each 26-connected region of ``response >=
    threshold`` with at least ``min_voxels`` voxels (and reaching ``rim`` when given)."""
    from scipy import ndimage

    regions, _ = ndimage.label(response >= threshold, structure=np.ones((3, 3, 3)))
    out = []
    for lab, box in enumerate(ndimage.find_objects(regions), start=1):
        if box is None:
            continue
        here = regions[box] == lab
        if np.count_nonzero(here) < min_voxels or (rim is not None and not rim[box][here].any()):
            continue
        out.append((box, here))
    return out


def region_candidate(box: tuple, here: np.ndarray, response: np.ndarray, volume: Volume,
                     full_extent_mm: float = FULL_EXTENT_MM) -> Candidate:
    """The candidate of one region: score = mean response x extent (module doc, 4)."""
    kji = np.argwhere(here)
    w = response[box][here]
    extent = extent_mm(kji, volume.spacing)
    score = float(w.mean()) * min(1.0, extent / full_extent_mm)
    return _candidate(kji, w, box, volume, score, extent)


def dip_candidate(box: tuple, here: np.ndarray, dip: np.ndarray, volume: Volume) -> Candidate:
    """The candidate of one slice-dip region (:mod:`mskai.fracture.slice_dip`): placed like a
    valley region, weighted by the dip; its hand-set score is 0 (only the reducer scores it)."""
    kji = np.argwhere(here)
    return _candidate(kji, dip[box][here], box, volume, 0.0, extent_mm(kji, volume.spacing),
                      "slice_dip_mean", SOURCE_SLICE_DIP)


def extent_mm(kji: np.ndarray, spacing: tuple[float, float, float]) -> float:
    """The longest side (mm) of the bounding box of voxels ``kji`` on a grid of ``spacing``
    (x, y, z)."""
    span = kji.max(axis=0) - kji.min(axis=0) + 1
    return float((span * np.asarray(tuple(reversed(spacing)), dtype=float)).max())


def _candidate(kji: np.ndarray, w: np.ndarray, box: tuple, volume: Volume, score: float,
               extent_mm: float, mean_term: str = "valley_mean",
               source: int = SOURCE_VALLEY) -> Candidate:
    centroid = (kji * w[:, None]).sum(axis=0) / w.sum()
    on = kji[np.argmin(np.linalg.norm(kji - centroid, axis=1))] + [s.start for s in box]
    position = np.asarray(volume.index_to_ras(on[::-1].astype(float))).reshape(3)
    size_ml = len(kji) * volume.voxel_volume_mm3 / 1000.0
    return Candidate((), position, float("nan"), score,
                     {mean_term: float(w.mean()), "valley_extent_mm": extent_mm,
                      "valley_ml": size_ml}, None, bone=BONE, source=source,
                     axes_ras=region_axes_ras(kji, volume))


def region_axes_ras(kji: np.ndarray, volume: Volume) -> np.ndarray:
    """The region's principal axes as RAS unit vectors, rows from the longest spread to the
    shortest (the last is the normal of a sheet-like region)."""
    spacing = np.asarray(tuple(reversed(volume.spacing)), dtype=float)
    _, vectors = principal_axes(kji * spacing, floor=spacing / np.sqrt(12.0))
    to_ras = volume.ijk_to_ras()[:3, :3]
    rows = [to_ras @ (vectors[:, n] / spacing)[::-1] for n in range(3)]
    return np.array([r / np.linalg.norm(r) for r in rows])


def principal_axes(points_mm: np.ndarray, floor: np.ndarray | float = 0.0) -> tuple[
        np.ndarray, np.ndarray]:
    """(spreads (SD, largest first), unit vectors as columns) of a point cloud.

    ``floor`` (per axis, mm) is the spread of a single voxel, added so one-voxel-thick
    regions do not read as infinitely thin.
    """
    centred = points_mm - points_mm.mean(axis=0)
    cov = centred.T @ centred / max(len(points_mm), 1) + np.diag(
        np.broadcast_to(np.asarray(floor, dtype=float), (3,)) ** 2)
    values, vectors = np.linalg.eigh(cov)
    order = np.argsort(values)[::-1]
    return np.sqrt(np.maximum(values[order], 0.0)), vectors[:, order]

