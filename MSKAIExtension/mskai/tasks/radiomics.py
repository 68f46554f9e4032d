"""Radiomics module: pyradiomics features of one tumour mask, IBSI tags alongside.

Mask files: a label map whose tumour has label 1, or any label map with one non-zero label
(that label is the tumour), or a Slicer ``.seg.nrrd`` with a segment named ``tumor`` or with
a single segment. The mask must lie on the image grid (mskai.labels checks it).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from mskai.errors import InputError
from mskai.segments import Provenance, Result, Segment
from mskai.volume import Volume

MODULE = "Radiomics"
TUMOR = "tumor"


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
        return _segment_from_segmentation(read_labels(path, image), path.name)
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
    import SimpleITK as sitk

    try:
        array = sitk.GetArrayFromImage(sitk.ReadImage(str(path)))
    except RuntimeError:
        return None
    return {int(v) for v in np.unique(array) if v != 0}
