"""Runner job of FractureDetect, and the region-of-interest crop it shares with the module.

``{"task": "mskai.tasks.fracture_jobs:detect_fractures", "args": {"image": PATH, "out": DIR,
"roi": ROI | null, "min_score": 0.5, "split_touching": false}}`` reads the image, runs
:func:`mskai.tasks.fracture.run_fracture` on the part inside the ROI and writes
``segmentation.seg.nrrd`` and ``measurements.json`` (CONTRACT.md) into ``out``, both on the
**whole** input grid. Files, not arrays, cross the process boundary.

An ROI is an oriented box in RAS millimetres (what a ``vtkMRMLMarkupsROINode`` is)::

    {"center_ras": [R, A, S], "axes_ras": [[x axis], [y axis], [z axis]], "size_mm": [x, y, z]}

The image is cropped to the voxel-grid box enclosing the ROI (so an oblique image is cut
along its own axes and the crop is an exact sub-grid); voxels of that box whose centres lie
outside the ROI are set to the image minimum (air in a CT), so nothing is found there.
Segments computed on the crop are put back at their place on the whole grid.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from mskai.errors import InputError
from mskai.results.job_files import write_job_files
from mskai.runner.base import job
from mskai.segments import Result, Segment
from mskai.tasks.fracture import MIN_SCORE
from mskai.volume import Volume

Slices = tuple[slice, slice, slice]


def roi_box(roi: dict[str, Any]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(centre (3,), unit axes as rows (3, 3), size (3,)) of an ROI dict; InputError if bad."""
    try:
        center = np.asarray(roi["center_ras"], dtype=float).reshape(3)
        axes = np.asarray(roi["axes_ras"], dtype=float).reshape(3, 3)
        size = np.asarray(roi["size_mm"], dtype=float).reshape(3)
    except (KeyError, TypeError, ValueError):
        raise InputError("the region of interest must give center_ras, axes_ras (3 x 3) and "
                         "size_mm; draw the ROI again") from None
    norms = np.linalg.norm(axes, axis=1)
    if not (np.all(np.isfinite(axes)) and np.all(norms > 1e-9) and np.all(size > 0)):
        raise InputError("the region of interest has no volume; give it a size in all three "
                         "directions")
    return center, axes / norms[:, None], size


def roi_slices(volume: Volume, roi: dict[str, Any]) -> Slices:
    """``[k, j, i]`` slices of the grid box holding every voxel centre inside the ROI."""
    center, axes, size = roi_box(roi)
    signs = np.array(np.meshgrid([-0.5, 0.5], [-0.5, 0.5], [-0.5, 0.5])).reshape(3, -1).T
    corners = center + (signs * size) @ axes
    ijk = volume.ras_to_index(corners)
    lo = np.maximum(np.ceil(ijk.min(axis=0) - 1e-6).astype(int), 0)
    hi = np.minimum(np.floor(ijk.max(axis=0) + 1e-6).astype(int), np.asarray(volume.size) - 1)
    if np.any(hi < lo):
        raise InputError("the region of interest lies outside the image; move the ROI onto "
                         "the bone (or clear it to search the whole volume)")
    if np.any(hi - lo < 1):
        raise InputError("the region of interest holds less than 2 voxels in some direction; "
                         "make the ROI larger")
    return tuple(slice(int(a), int(b) + 1) for a, b in zip(lo[::-1], hi[::-1], strict=True))


def inside_roi(volume: Volume, roi: dict[str, Any]) -> np.ndarray:
    """Bool ``[k, j, i]``: voxel centres of ``volume`` that lie inside the ROI."""
    center, axes, size = roi_box(roi)
    k, j, i = np.indices(volume.array.shape[:3])
    ijk = np.stack([i.ravel(), j.ravel(), k.ravel()], axis=1).astype(float)
    local = (volume.index_to_ras(ijk).reshape(-1, 3) - center) @ axes.T
    inside = np.all(np.abs(local) <= size / 2 + 1e-6, axis=1)
    return inside.reshape(volume.array.shape[:3])


def crop_to_roi(volume: Volume, roi: dict[str, Any]) -> tuple[Volume, Slices]:
    """The image inside the ROI (outside voxels set to the image minimum) and its slices."""
    box = roi_slices(volume, roi)
    crop = volume.crop(box)
    array = np.array(crop.array, copy=True)
    array[~inside_roi(crop, roi)] = volume.array.min()
    return crop.with_array(array), box


def embed_result(result: Result, full: Volume, box: Slices) -> Result:
    """``result`` (computed on a crop) with every mask put back on the whole grid."""
    shape = full.array.shape[:3]
    segments = []
    for seg in result.segments:
        mask = np.zeros(shape, dtype=bool)
        mask[box] = seg.mask
        segments.append(Segment(seg.id, mask, seg.label, seg.name, seg.color, seg.status,
                                dict(seg.measurements)))
    return Result(result.module, full, result.provenance, segments,
                  dict(result.measurements), list(result.warnings))


def detect(volume: Volume, roi: dict[str, Any] | None = None, min_score: float = MIN_SCORE,
           split_touching: bool = False,
           progress: Callable[[float, str], None] | None = None,
           cancel: Callable[[], bool] | None = None) -> Result:
    """:func:`run_fracture` on the ROI (or the whole image); the result is on the whole grid."""
    from mskai.tasks.fracture import run_fracture

    if roi is None:
        return run_fracture(volume, progress=progress, cancel=cancel, min_score=min_score,
                            split_touching=split_touching)
    crop, box = crop_to_roi(volume, roi)
    result = run_fracture(crop, progress=progress, cancel=cancel, min_score=min_score,
                          split_touching=split_touching)
    return embed_result(result, volume, box)


@job
def detect_fractures(image: str, out: str, roi: dict[str, Any] | None = None,
                     min_score: float = MIN_SCORE, split_touching: bool = False,
                     modality: str | None = None, *,
                     progress: Callable[[float, str], None],
                     cancel: threading.Event) -> dict[str, Any]:
    """Detect fractures in an image file; returns ``{"segmentation", "measurements"}`` paths."""
    from mskai.image import read_image

    volume = read_image(image)
    if modality:
        volume.modality = modality
    result = detect(volume, roi, float(min_score), bool(split_touching), progress,
                    cancel.is_set)
    return write_job_outputs(result, out)


#: The files a FractureDetect job hands back (also what fake runners in tests write).
write_job_outputs = write_job_files


def roi_dict(center_ras: Sequence[float], axes_ras: Sequence[Sequence[float]],
             size_mm: Sequence[float]) -> dict[str, Any]:
    """An ROI dict (plain JSON) from its parts."""
    return {"center_ras": [float(v) for v in center_ras],
            "axes_ras": [[float(v) for v in row] for row in axes_ras],
            "size_mm": [float(v) for v in size_mm]}
