"""Interactive tumour segmentation from clicks: the entry point used by TumorSeg and the CLI."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable

import numpy as np

from mskai.background import second_thread
from mskai.errors import CancelledError, InputError
from mskai.interactive import region
from mskai.interactive.boundary import refine_boundary
from mskai.interactive.priors import never_tumour
from mskai.interactive.prompts import Prompts
from mskai.interactive.refine import kept_seeds, merge_with_current
from mskai.volume import Volume

AIR_HU = -500.0
MARGINS_MM = (64.0, 100.0)   # auto ROI: half-size beyond the clicks, grown in turn
MAX_FILL = 0.5

_GRIDS: OrderedDict[tuple, region.WorkGrid] = OrderedDict()   # prepared crops, refinement reuse
_GRID_CACHE_SIZE = 4


def resolve_modality(volume: Volume, modality: str | None) -> str:
    """'CT' or 'MR': explicit argument, then the volume's tag, then a guess from air in HU."""
    name = (modality or volume.modality or "").upper()
    if name in ("CT", "MR"):
        return name
    if name:
        return "MR" if name.startswith("MR") else "CT" if name.startswith("CT") else "MR"
    return "CT" if float(np.min(volume.array)) < AIR_HU else "MR"


def check_not_air(volume: Volume, pos: np.ndarray, prompts: Prompts) -> None:
    for p, ras in zip(pos, prompts.positive_ras, strict=True):
        value = float(volume.array[tuple(p)])
        if value < AIR_HU:
            raise InputError(f"the seed at RAS {ras[0]:.1f},{ras[1]:.1f},{ras[2]:.1f} lies in air "
                             f"({value:.0f} HU < {AIR_HU:.0f} HU); click inside the tumour")


def _box_around(volume: Volume, points: np.ndarray, margin_mm: float) -> tuple[np.ndarray, ...]:
    spacing = np.array(volume.spacing[::-1])
    pad = np.ceil(margin_mm / spacing).astype(int)
    shape = np.array(volume.array.shape[:3])
    return np.maximum(points.min(0) - pad, 0), np.minimum(points.max(0) + pad + 1, shape)


def _volume_key(volume: Volume, modality: str) -> tuple:
    arr = volume.array
    probe = float(arr.flat[:: max(1, arr.size // 97)].sum())
    return (id(arr), arr.shape, str(arr.dtype), probe, modality, volume.spacing)


def _work_grid(volume: Volume, box: tuple[np.ndarray, np.ndarray],
               modality: str) -> region.WorkGrid:
    key = (*_volume_key(volume, modality), tuple(box[0]), tuple(box[1]))
    if key in _GRIDS:
        _GRIDS.move_to_end(key)
        return _GRIDS[key]
    lo, hi = box
    crop = volume.array[lo[0]:hi[0], lo[1]:hi[1], lo[2]:hi[2]]
    grid = region.prepare(crop, tuple(reversed(volume.spacing)))
    _GRIDS[key] = grid
    while len(_GRIDS) > _GRID_CACHE_SIZE:
        _GRIDS.popitem(last=False)
    return grid


def forget_prepared_crops() -> None:
    """Drop the prepared (smoothed, resampled) crops kept for refinement clicks, so the next
    click prepares its crop again, as the first click on a newly loaded image does."""
    _GRIDS.clear()


def _cached_box(volume: Volume, modality: str, need: tuple[np.ndarray, np.ndarray]):
    """The most recent cached crop of this volume that contains ``need``, or None."""
    vkey = _volume_key(volume, modality)
    for key in reversed(_GRIDS):
        if key[: len(vkey)] == vkey:
            lo, hi = np.array(key[len(vkey)]), np.array(key[len(vkey) + 1])
            if np.all(lo <= need[0]) and np.all(hi >= need[1]):
                return lo, hi
    return None


def _touches_open_border(mask: np.ndarray, box, shape, spacing_kji, near_mm: float = 8.0) -> bool:
    """True when the mask comes within ``near_mm`` of a crop face that is not the image's edge."""
    lo, hi = box
    for axis in range(3):
        n = min(mask.shape[axis], max(1, int(np.ceil(near_mm / spacing_kji[axis]))))
        first = np.take(mask, range(n), axis=axis).any()
        last = np.take(mask, range(mask.shape[axis] - n, mask.shape[axis]), axis=axis).any()
        if (first and lo[axis] > 0) or (last and hi[axis] < shape[axis]):
            return True
    return False


def _segment_box(volume: Volume, box, pos: np.ndarray, neg: np.ndarray, modality: str,
                 current: np.ndarray | None = None,
                 memo: region.SharedSolve | None = None):
    """The method's mask in ``box``; with ``current``, that mask seeds it (refine.kept_seeds).
    ``memo``: the background solve shared by the runs of one click (region.SharedSolve)."""
    grid = _work_grid(volume, box, modality)
    lo, hi = box
    pos_c, neg_c = pos - lo, neg - lo
    inside = np.all((neg_c >= 0) & (neg_c < hi - lo), axis=1) if len(neg) else np.zeros(0, bool)
    neg_c = neg_c[inside]
    pos_w, neg_w = grid.to_work(pos_c), grid.to_work(neg_c)
    level, noise = region.tumour_model(grid.image, pos_w[:1], grid.spacing)
    never = never_tumour(grid.image, modality, level)
    keep = None
    if current is not None:
        crop_current = current[lo[0]:hi[0], lo[1]:hi[1], lo[2]:hi[2]].astype(bool)
        work_current = region.to_work_mask(grid, crop_current)
        keep = kept_seeds(work_current, neg_w, grid.spacing)
    prob = region.geodesic_probability(grid, pos_w, neg_w, never=never, keep=keep, memo=memo)
    mask = region.to_crop_mask(grid, prob)
    crop = volume.array[lo[0]:hi[0], lo[1]:hi[1], lo[2]:hi[2]]
    mask = refine_boundary(crop, mask, tuple(reversed(volume.spacing)), level, noise,
                           modality=modality)
    mask[tuple(neg_c.T)] = False
    mask[tuple(pos_c.T)] = True
    return region.clean(mask, pos_c, tuple(reversed(volume.spacing)))


def _first_closed_box(volume: Volume, boxes: list, pos: np.ndarray, neg: np.ndarray,
                      modality: str, memo: region.SharedSolve,
                      progress: Callable[[float, str], None] | None,
                      cancel: Callable[[], bool] | None) -> tuple[np.ndarray, tuple]:
    """The method's mask in the first of ``boxes`` that it does not reach the open sides of
    (else in the last), and that box."""
    crop_mask, box = None, boxes[0]
    for n, box in enumerate(boxes):
        if cancel is not None and cancel():
            raise CancelledError("segmentation cancelled")
        if progress is not None:
            progress(n / len(boxes), "segmenting")
        crop_mask = _segment_box(volume, box, pos, neg, modality, memo=memo)
        if not _touches_open_border(crop_mask, box, volume.array.shape[:3],
                                    tuple(reversed(volume.spacing))):
            break
    if progress is not None:
        progress(1.0, "done")
    return crop_mask, box


def _on_volume(crop_mask: np.ndarray, box: tuple, shape: np.ndarray) -> np.ndarray:
    out = np.zeros(tuple(shape), dtype=bool)
    lo, hi = box
    out[lo[0]:hi[0], lo[1]:hi[1], lo[2]:hi[2]] = crop_mask
    return out


def segment_from_prompts(volume: Volume, prompts: Prompts, current_mask: np.ndarray | None = None,
                         modality: str | None = None,
                         progress: Callable[[float, str], None] | None = None,
                         cancel: Callable[[], bool] | None = None) -> np.ndarray:
    """Boolean tumour mask on the volume's grid from clicks (and an existing mask to refine).

    Without ``current_mask`` the result is the method's segmentation. With it, only changes
    connected to the clicks are applied to it (see :mod:`mskai.interactive.refine`).
    """
    modality = resolve_modality(volume, modality)
    pos, neg = prompts.to_indices(volume)
    if modality == "CT":
        check_not_air(volume, pos, prompts)
    shape = np.array(volume.array.shape[:3])
    if current_mask is not None and current_mask.shape != tuple(shape):
        raise InputError(f"the current mask has shape {current_mask.shape}, the image "
                         f"{tuple(shape)}; give a mask on the image's grid")
    roi = prompts.roi_box(volume)
    if roi is not None:
        if not np.all((pos >= roi[0]) & (pos < roi[1])):
            raise InputError("a seed lies outside the ROI; move the seed or enlarge the ROI")
        boxes = [roi]
    else:
        boxes = [_box_around(volume, pos, m) for m in MARGINS_MM]
        cached = _cached_box(volume, modality, boxes[0])
        if cached is not None:
            boxes = [cached] + [b for b in boxes if np.any(b[0] < cached[0])
                                or np.any(b[1] > cached[1])]
    seeded_by_current = current_mask is not None and len(neg) > 0
    memo = region.SharedSolve()
    with second_thread() as background:
        local_job = None
        if seeded_by_current:  # the run seeded with the current mask goes on the other core
            _work_grid(volume, boxes[0], modality)  # prepared here, once for both threads
            local_job = background.submit(_segment_box, volume, boxes[0], pos, neg, modality,
                                          current=current_mask, memo=memo)
        crop_mask, box = _first_closed_box(volume, boxes, pos, neg, modality, memo,
                                           progress, cancel)
    filled = crop_mask.mean()
    if filled > MAX_FILL:
        raise InputError(f"the result fills {filled:.0%} of the region searched; add background "
                         "clicks outside the tumour or give an ROI box around it")
    new = _on_volume(crop_mask, box, shape)
    if current_mask is None:
        if new.sum() <= len(pos):
            raise InputError("the segmentation is empty around the seeds; click well inside the "
                             "tumour or give an ROI box around it")
        return new
    local = None
    if seeded_by_current:
        local = _on_volume(local_job.result() if box is boxes[0] else _segment_box(
            volume, box, pos, neg, modality, current=current_mask, memo=memo), box, shape)
    return merge_with_current(current_mask, new, pos, neg, tuple(reversed(volume.spacing)),
                              local=local)
