"""Feature extraction with pyradiomics on in-memory SimpleITK images (no temporary files)."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from mskai.errors import InputError
from mskai.radiomics.limits import check_resources
from mskai.radiomics.params import check_params, first_line, read_params_file
from mskai.volume import Volume

DEFAULT_PARAMS = Path(__file__).with_name("default_params.yaml")
DIAGNOSTICS_PREFIX = "diagnostics_"

Params = Path | str | Mapping[str, Any] | None


def make_extractor(params: Params = None):
    """A pyradiomics extractor from a parameter file, a parameter mapping or the defaults.

    A mapping has the file's structure (``setting``, ``imageType``, ``featureClass``).
    """
    from radiomics import featureextractor, setVerbosity

    setVerbosity(logging.ERROR)  # pyradiomics prints INFO/WARNING lines to stderr otherwise
    if isinstance(params, Mapping):
        data, what = dict(params), "the radiomics parameters"
    else:
        path = Path(params) if params is not None else DEFAULT_PARAMS
        if not path.is_file():
            raise InputError(f"the radiomics parameter file {path} does not exist; check the "
                             "path or leave out --params to use the defaults")
        # read here, bounded and alias-free; pyradiomics gets the checked mapping
        data, what = read_params_file(path), f"the radiomics parameter file {path.name}"
    check_params(data, what)
    return _checked(lambda: featureextractor.RadiomicsFeatureExtractor(data), what)


def _checked(build, what: str):
    """Run ``build``; any parsing or schema error becomes one InputError line.

    pykwalify logs its findings as several ERROR lines before raising; its logger is
    silenced and the first finding goes into the one line instead.
    """
    kwalify = logging.getLogger("pykwalify")
    level = kwalify.level
    kwalify.setLevel(logging.CRITICAL + 1)
    try:
        return build()
    except Exception as exc:  # yaml, pykwalify and pyradiomics raise unrelated types
        raise InputError(f"{what} is not a valid pyradiomics parameter set "
                         f"({_finding(exc)}); see mskai/radiomics/default_params.yaml for "
                         "the format") from None
    finally:
        kwalify.setLevel(level)


def _finding(exc: Exception) -> str:
    """pykwalify's first validation error, else the exception's first line."""
    for line in str(exc).splitlines():
        line = line.strip()
        if line.startswith("- "):
            return line[2:].rstrip(".")
    return first_line(exc)


def roi_mask(mask: np.ndarray, image: Volume, label: int = 1) -> np.ndarray:
    """The ROI as uint8 0/1 on the image grid; boolean masks are taken as they are."""
    mask = np.asarray(mask)
    if mask.shape != image.array.shape[:3]:
        raise InputError(f"the mask shape {mask.shape} differs from the image shape "
                         f"{image.array.shape[:3]}; give the mask drawn on this image")
    roi = mask if mask.dtype == bool else mask == label
    if not roi.any():
        raise InputError(f"the mask has no voxels with label {label}; the region to analyse "
                         "is empty")
    return roi.astype(np.uint8)


def to_sitk_pair(image: Volume, roi: np.ndarray):
    """Image and ROI as SimpleITK images sharing the image's geometry."""
    import SimpleITK as sitk

    sitk_image = image.to_sitk()
    sitk_mask = sitk.GetImageFromArray(np.ascontiguousarray(roi))
    sitk_mask.CopyInformation(sitk_image)
    return sitk_image, sitk_mask


def features_only(raw: Mapping[str, Any]) -> dict[str, float]:
    """pyradiomics' result without its ``diagnostics_*`` entries, values as floats."""
    return {name: float(np.asarray(value)) for name, value in raw.items()
            if not name.startswith(DIAGNOSTICS_PREFIX)}


def extract_features(image: Volume, mask: np.ndarray, params: Params = None,
                     label: int = 1) -> dict[str, float]:
    """pyradiomics features of the ROI ``mask == label`` (or a boolean ``mask``).

    Names are pyradiomics' own (``original_firstorder_Mean``); see :func:`to_ibsi` for
    IBSI tags. The ROI is passed to pyradiomics as label 1 whatever ``label`` is, so a
    ``label`` setting in the parameter file has no effect.
    """
    return features_only(execute(make_extractor(params), image, mask, label))


def execute(extractor, image: Volume, mask: np.ndarray, label: int = 1) -> dict[str, Any]:
    """Run an extractor; pyradiomics' ROI checks (too small, flat) become InputError.

    Settings that would exhaust memory (tiny resampledPixelSpacing or binWidth, see
    :mod:`mskai.radiomics.limits`) are refused before pyradiomics allocates anything.
    """
    sitk_image, sitk_mask = to_sitk_pair(image, roi_mask(mask, image, label))
    check_resources(extractor, sitk_image, sitk_mask)
    try:
        return dict(extractor.execute(sitk_image, sitk_mask, label=1))
    except ValueError as exc:
        raise InputError(f"pyradiomics cannot use this mask: {str(exc).strip()}") from None


def effective_params(extractor) -> dict[str, Any]:
    """Settings, image types and feature classes the extractor actually used (JSON-safe)."""
    return {"setting": _plain(extractor.settings),
            "imageType": _plain(extractor.enabledImagetypes),
            "featureClass": _plain(extractor.enabledFeatures)}


def _plain(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return value
