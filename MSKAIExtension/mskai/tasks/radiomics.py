"""Radiomics module: pyradiomics features of one tumour mask, IBSI tags alongside.

Mask files: a label map whose tumour has label 1, or any label map with one non-zero label
(that label is the tumour), or a Slicer ``.seg.nrrd`` with a segment named ``tumor`` or with
a single segment. The mask must lie on the image grid (mskai.labels checks it).

A mask must be a label image (:func:`check_label_image`): whole, non-negative values, at most
``MAX_LABELS`` distinct labels; an image given as its own mask (``mskai radiomics CT CT``)
fails these checks. A tumour mask covering ``MAX_MASK_FRACTION`` or more of the image has no
background and is refused too (the IBSI digital phantom's mask covers 92.5 %).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from mskai.errors import InputError
from mskai.segments import Provenance, Result, Segment
from mskai.terminology import TUMOR
from mskai.volume import Volume

MODULE = "Radiomics"
MAX_LABELS = 255  # distinct non-zero values; more than an 8-bit label map holds is an image
MAX_MASK_FRACTION = 0.99
ASK = "give a binary (0/1) or label mask of the tumour on the image grid, background 0"


def run_radiomics(image: Volume, mask_path: str | Path,
                  params: str | Path | None = None) -> Result:
    """Features of the tumour in ``mask_path`` on ``image``; ``params`` a pyradiomics file."""
    from mskai.radiomics.extract import (
        DEFAULT_PARAMS,
        effective_params,
        execute,
        features_only,
        make_extractor,
    )

    mask = read_tumor_mask(mask_path, image)
    extractor = make_extractor(params)
    features = features_only(execute(extractor, image, mask))
    source = str(params) if params is not None else DEFAULT_PARAMS.name
    standard = feature_standard(features, int(mask.sum()),
                                {"source": source, **effective_params(extractor)})
    result = Result(MODULE, image, Provenance(method=standard["naming"]))
    result.segments.append(Segment(TUMOR, mask, 1,
                                   measurements={"voxel_count": int(mask.sum())}))
    result.measurements["features"] = features
    result.measurements["feature_standard"] = standard
    return result


def feature_standard(features: dict[str, float], voxel_count: int,
                     params: dict[str, Any]) -> dict[str, Any]:
    """The ``feature_standard`` block: naming, IBSI tags and values, settings, deviations."""
    import radiomics

    from mskai.radiomics.names import DEVIATIONS, ibsi_tag, to_ibsi

    tags = {name: tag for name in features if (tag := ibsi_tag(name))}
    return {"naming": f"pyradiomics {radiomics.__version__.lstrip('v')}",
            "ibsi_tags": tags,
            "ibsi_values": to_ibsi(features, voxel_count=voxel_count),
            "params": params,
            "deviations": list(DEVIATIONS)}


def read_tumor_mask(mask_path: str | Path, image: Volume) -> np.ndarray:
    """The tumour's boolean mask on ``image``'s grid (see the module docstring)."""
    from mskai.labels import read_labels

    path = Path(mask_path)
    if path.name.lower().endswith(".seg.nrrd"):
        mask = _segment_from_segmentation(read_labels(path, image), path.name)
    else:
        mask = _label_map_mask(path, image)
    fraction = float(np.count_nonzero(mask)) / max(mask.size, 1)
    if fraction >= MAX_MASK_FRACTION:
        raise InputError(f"the mask {path.name} labels {fraction:.0%} of the image's voxels: "
                         f"it has no background, so it is not a tumour mask; {ASK}")
    return mask


def _label_map_mask(path: Path, image: Volume) -> np.ndarray:
    from mskai.labels import read_labels

    check_label_image(path)
    try:
        return read_labels(path, image, {TUMOR: 1})[TUMOR]
    except InputError:
        values = _label_values(path)
        if values == set():
            raise InputError(f"the mask {path.name} is empty: it has no labelled voxels; "
                             "draw the tumour first") from None
        if values is None or len(values) != 1:
            raise
        return read_labels(path, image, {TUMOR: values.pop()})[TUMOR]


def check_label_image(path: Path) -> None:
    """Refuse a mask file whose values are not labels: non-finite, fractional or negative
    values, or more than ``MAX_LABELS`` distinct labels (an image given as a mask).

    A file that cannot be read is left to :func:`mskai.labels.read_labels` to report.
    """
    array = _read_array(path)
    if array is None or array.size == 0:
        return
    if np.issubdtype(array.dtype, np.floating):
        if not np.all(np.isfinite(array)):
            raise InputError(f"the mask {path.name} has NaN or infinite values, so it is not "
                             f"a mask; {ASK}")
        fractional = array[array != np.round(array)]
        if fractional.size:
            raise InputError(f"the mask {path.name} holds fractional values (e.g. "
                             f"{float(fractional.flat[0]):.4g}), so it is an image or "
                             f"probability map, not a mask; {ASK}")
    low = array.min()
    if low < 0:
        raise InputError(f"the mask {path.name} has negative values (down to {float(low):g}), "
                         f"so it is an image, not a mask; {ASK}")
    count = int(np.unique(array).size) - int(bool((array == 0).any()))
    if count > MAX_LABELS:
        raise InputError(f"the mask {path.name} has {count} distinct values, more than a label "
                         f"map's {MAX_LABELS}, so it is an image, not a mask; {ASK}")


def _segment_from_segmentation(masks: dict[str, np.ndarray], filename: str) -> np.ndarray:
    if TUMOR in masks:
        return masks[TUMOR]
    if len(masks) == 1:
        return next(iter(masks.values()))
    names = ", ".join(sorted(masks))
    raise InputError(f"{filename} has several segments ({names}) and none is named 'tumor'; "
                     "rename the tumour segment to 'tumor' in Segment Editor")


def _label_values(path: Path) -> set[int] | None:
    """Non-zero values in a label map file; None when the file cannot be read."""
    array = _read_array(path)
    if array is None:
        return None
    return {int(v) for v in np.unique(array) if v != 0}


def _read_array(path: Path) -> np.ndarray | None:
    """The voxel values of a file, or None when it cannot be read."""
    import SimpleITK as sitk

    if not path.is_file():
        return None
    try:
        return sitk.GetArrayFromImage(sitk.ReadImage(str(path)))
    except RuntimeError:
        return None
