"""One-slice HU dips inside bone: a fracture line that runs within a thick slice.

At 2.5-5 mm slices a fracture surface that crosses the slice axis at a steep angle lies
inside one or two slices. Partial volume with the 0.3-1 mm line lowers that slice by a few
noise SDs against the slices above and below, even where the fragments touch or interlock
and no in-plane valley shows (:mod:`mskai.fracture.valley_candidates` looks for valleys
within the slice and misses them).

:func:`slice_dip` measures, at each bone voxel, how far it lies below the lower of its two
neighbours along the slice axis (one slice away), where both neighbours and the voxel
itself are bone (``BONE_HU``): a dip inside bone, not the bone's end. Only slices of at
least ``THICK_SLICE_MM`` are measured: thinner slices show a fracture line within the
slice, where the valley detector looks, and the reducer was trained on 3-3.3 mm slices only
(on the 1.5 mm TPTBox spine, one and two slices away, intact vertebrae gave dips the reducer
scored as fractures). The dip is clipped at ``CLIP_SD``
noise SDs (a dense cortex next to marrow is not a stronger line), averaged in-plane over
``SHEET_MM`` (a fracture line is a sheet, noise and trabeculae are specks) and expressed in
noise SDs (:func:`mskai.noise.noise_sd`), so one threshold holds for quiet and noisy scans.

:func:`dip_regions` turns the map into regions; the learned false-positive reducer
(:mod:`mskai.fracture.valley_reducer`) scores them beside the valley regions. Trabecular
texture, nutrient canals and joint surfaces dip as well, so the dip alone is not a detector.
"""

from __future__ import annotations

import numpy as np

from mskai.volume import Volume

BONE_HU = 250.0
CLIP_SD = 6.0
SHEET_MM = 2.0
THICK_SLICE_MM = 2.5
REGION_SD = 1.5  # region voxels: dip at least this many noise SDs
PEAK_SD = 2.5  # a region counts when its peak reaches this
MIN_VOXELS = 20  # support of a region: noise and trabecular dips are small on any grid
MAX_REGIONS = 60  # strongest peaks kept per scan: bounds the feature work on large CTs
SLICE_AXIS = 0  # k of a (k, j, i) array


def measures_slices(image: Volume) -> bool:
    """Whether the slices are thick enough for the dip to be measured."""
    return image.spacing[2] >= THICK_SLICE_MM


def slice_dip(image: Volume, bone: np.ndarray, noise_sd_hu: float | None = None) -> np.ndarray:
    """The one-slice dip inside ``bone``, in noise SDs (float32, 0 outside the bone).

    The bone is grown by one voxel (6-connected) so a line at the bone's surface keeps its
    neighbours.
    """
    from scipy import ndimage

    from mskai.noise import noise_sd
    from mskai.segmentation.bone_ct_filters import dilate_cross

    bone = np.asarray(bone, dtype=bool)
    if not measures_slices(image) or not bone.any():
        return np.zeros(bone.shape, dtype=np.float32)
    sd = float(noise_sd_hu if noise_sd_hu is not None else noise_sd(image))
    grown = dilate_cross(bone)
    hu = np.where(grown, np.asarray(image.array, dtype=np.float32), np.float32(-1000.0))
    del grown
    dip = np.zeros(bone.shape, dtype=np.float32)
    _dip_into(dip, hu, CLIP_SD * sd)
    del hu
    spacing_kji = np.asarray(tuple(reversed(image.spacing)), dtype=float)
    sigma = [0.0 if a == SLICE_AXIS else SHEET_MM / spacing_kji[a] for a in range(3)]
    dip = ndimage.gaussian_filter(dip, sigma, output=np.float32)
    dip /= np.float32(max(sd, 1e-3))
    return dip


def _dip_into(dip: np.ndarray, hu: np.ndarray, clip_hu: float) -> None:
    """``dip = clip(min(below, above) - hu, 0, clip_hu)`` where the voxel and both slices next
    to it are bone; the first and last slices have no dip (views, no copies of the whole
    volume)."""
    if hu.shape[SLICE_AXIS] < 3:
        return
    mid = hu[1:-1]
    floor = np.minimum(hu[:-2], hu[2:])
    ok = (floor > BONE_HU) & (mid > BONE_HU)
    floor -= mid
    np.clip(floor, 0.0, clip_hu, out=floor)
    floor[~ok] = 0.0
    dip[1:-1] = floor


def dip_regions(dip: np.ndarray, region_sd: float = REGION_SD, peak_sd: float = PEAK_SD,
                min_voxels: int = MIN_VOXELS,
                max_regions: int = MAX_REGIONS) -> list[tuple[tuple, np.ndarray]]:
    """(bounding box, region mask inside it) of each 26-connected region of ``dip >=
    region_sd`` whose peak reaches ``peak_sd`` and that holds at least ``min_voxels``
    voxels, strongest peak first, at most ``max_regions``.

    The floor counts voxels, not mm2: it asks for enough independent noise samples behind
    a dip, and a coarse grid (3 mm pixels, where the 2 mm in-plane averaging barely acts)
    gives noise dips of few but large voxels. It was chosen on the training patients
    (``training/fracture/train_valley_reducer.py``, out of fold): 12 of the 13 dip regions on
    the 17 intact training CTs hold fewer than 20 voxels, 90 % of those on a fracture more
    than 36; the out-of-fold sensitivity at 0.2 false positives per intact training CT rose
    from 0.16 (every region of 4 voxels or more) to 0.34, and an in-plane area floor of
    20 mm2 per slice reached only 0.21."""
    from scipy import ndimage

    labels, n = ndimage.label(dip >= region_sd, structure=np.ones((3, 3, 3)))
    if n == 0:
        return []
    peaks = ndimage.maximum(dip, labels, index=np.arange(1, n + 1))
    boxes = ndimage.find_objects(labels)
    out = []
    for lab in np.argsort(-np.asarray(peaks)) + 1:
        if peaks[lab - 1] < peak_sd or len(out) >= max_regions:
            break
        box = boxes[lab - 1]
        here = labels[box] == lab
        if np.count_nonzero(here) >= min_voxels:
            out.append((box, here))
    return out

