"""Resource limits checked before pyradiomics allocates anything.

A few settings make pyradiomics allocate without bound: a tiny ``resampledPixelSpacing``
resamples the ROI's bounding box to billions of voxels, and a tiny ``binWidth`` (or a huge
``binCount``) gives millions of grey levels, and the GLCM is grey levels squared times the
directions. Each is checked against a fixed limit, then the whole run's memory is
estimated (resampled voxels and texture matrices) and compared with the memory available.
The checks mirror pyradiomics 3.0.1's own arithmetic (``imageoperations.resampleImage``,
``getBinEdges``, the ``_calculateMatrix`` of each texture class).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from mskai.errors import InputError

MAX_RESAMPLED_VOXELS = 50_000_000  # resampled bounding box of the ROI, padding included
MAX_GREY_LEVELS = 10_000  # grey levels after discretisation (binWidth or binCount)
BYTES_PER_VOXEL = 64  # image and mask copies pyradiomics keeps per resampled voxel
FALLBACK_MEMORY = 8 * 1024**3  # when /proc/meminfo is not there
MEMORY_SHARE = 0.8  # of the available memory that one extraction may plan to use
TEXTURE = ("glcm", "glrlm", "glszm", "gldm", "ngtdm")


def check_resources(extractor, sitk_image, sitk_mask, available: int | None = None) -> None:
    """InputError (one line, naming the setting) when the settings would exhaust memory."""
    classes = set(extractor.enabledFeatures)
    image_types = extractor.enabledImagetypes or {"Original": {}}
    values = _roi_values(sitk_image, sitk_mask)
    budget = int((available_memory() if available is None else available) * MEMORY_SHARE)
    for custom in image_types.values():
        settings = {**extractor.settings, **(custom or {})}
        size = resampled_size(sitk_mask, settings)
        levels = grey_levels(values, sitk_image, settings) if classes & {
            "firstorder", *TEXTURE} else 1
        need, what = memory_estimate(size, levels, classes, settings)
        if need > budget:
            raise InputError(
                f"these radiomics settings would need about {_gb(need)} of memory "
                f"({what}), more than the {_gb(budget)} available; "
                f"{_advice(what, settings)}")


def available_memory() -> int:
    """Available memory in bytes (a fixed budget where the machine does not say)."""
    from mskai.resources import available_memory_bytes

    return available_memory_bytes() or FALLBACK_MEMORY


def resampled_size(sitk_mask, settings: Mapping[str, Any]) -> tuple[int, int, int]:
    """Size (x, y, z) of the cropped box pyradiomics works on, after any resampling.

    Raises InputError when ``resampledPixelSpacing`` makes it more than
    :data:`MAX_RESAMPLED_VOXELS` voxels.
    """
    low, high = _bounding_box(sitk_mask)
    box = high - low + 1
    spacing_setting = settings.get("resampledPixelSpacing")
    if not spacing_setting:
        return tuple(int(v) for v in box)
    mask_spacing = np.array(sitk_mask.GetSpacing(), dtype=float)
    new = np.array(spacing_setting, dtype=float)
    new = np.where(new == 0, mask_spacing, new)
    new = np.where(box != 1, new, mask_spacing)
    pad = int(settings.get("padDistance", 5))
    ratio = mask_spacing / new
    lower = np.maximum(np.floor((low - 0.5) * ratio - pad), 0)
    upper = np.minimum(np.ceil((low + box - 0.5) * ratio + pad),
                       np.ceil(np.array(sitk_mask.GetSize()) * ratio) - 1)
    size = upper - lower + 1
    voxels = float(np.prod(size))
    if voxels > MAX_RESAMPLED_VOXELS:
        extent = box * mask_spacing
        suggestion = _round_up(float(np.max(new)) * (voxels / MAX_RESAMPLED_VOXELS) ** (1 / 3))
        raise InputError(
            f"resampledPixelSpacing {list(spacing_setting)} mm would resample the ROI's "
            f"{' x '.join(f'{e:g}' for e in extent)} mm bounding box to "
            f"{' x '.join(f'{s:,.0f}' for s in size)} voxels, more than the "
            f"{MAX_RESAMPLED_VOXELS:,} allowed; use a spacing of about {suggestion:g} mm or "
            "more (or leave it empty for no resampling)")
    return tuple(int(s) for s in size)


def grey_levels(values: np.ndarray, sitk_image, settings: Mapping[str, Any]) -> int:
    """Grey levels after discretisation (pyradiomics' ``Ng``), at most MAX_GREY_LEVELS."""
    count = settings.get("binCount")
    if count is not None:
        if count > MAX_GREY_LEVELS:
            raise InputError(f"binCount {count} is more than the {MAX_GREY_LEVELS:,} grey "
                             f"levels allowed; use a binCount from 1 to {MAX_GREY_LEVELS:,} "
                             "(16 to 256 is usual)")
        return int(count)
    width = float(settings.get("binWidth", 25))
    low, high = _intensity_range(values, sitk_image, settings)
    levels = (high - low) / width + 2  # pyradiomics anchors bins at multiples of binWidth
    if not math.isfinite(levels) or levels > MAX_GREY_LEVELS:
        smallest = _round_up((high - low) / (MAX_GREY_LEVELS - 2))
        raise InputError(
            f"binWidth {width:g} gives {_count(levels)} grey levels over the ROI's intensity "
            f"range {low:g} to {high:g}, more than the {MAX_GREY_LEVELS:,} allowed; use a "
            f"binWidth of at least {smallest:g} (30 to 130 grey levels is usual)")
    return max(int(math.floor(high / width) - math.floor(low / width)) + 1, 1)


def memory_estimate(size: tuple[int, int, int], levels: int, classes: set[str],
                    settings: Mapping[str, Any]) -> tuple[int, str]:
    """(bytes, what takes most of them) for one image type of an extraction.

    GLSZM's matrix is grey levels x the largest zone, which is not known before the zones
    are found; it is bounded through the grey-level limit only.
    """
    parts = {"resampled image and mask": BYTES_PER_VOXEL * int(np.prod(size, dtype=np.int64))}
    two_d = bool(settings.get("force2D", False))
    longest = max(size)
    if "glcm" in classes:
        distances = {int(d) for d in settings.get("distances", [1]) if 0 < int(d) <= longest}
        directions = sum(4 * d if two_d else ((2 * d + 1) ** 3 - (2 * d - 1) ** 3) // 2
                         for d in distances) or 1
        # the C matrix and one copy (without empty grey levels, then the symmetric sum)
        parts[f"GLCM of {levels:,} grey levels x {directions} directions"] = \
            2 * 8 * levels * levels * directions
    if "glrlm" in classes:
        parts[f"GLRLM of {levels:,} grey levels x {longest} run lengths"] = \
            2 * 8 * levels * longest * (4 if two_d else 13)
    total = int(sum(parts.values()))
    return total, max(parts, key=parts.get)


def _advice(what: str, settings: Mapping[str, Any]) -> str:
    if what.startswith("resampled"):
        return ("use a coarser resampledPixelSpacing (or leave it empty for no resampling), "
                "or a smaller mask")
    knob = "lower binCount" if settings.get("binCount") is not None else "increase binWidth"
    return f"{knob} to get fewer grey levels (30 to 130 is usual)"


def _intensity_range(values: np.ndarray, sitk_image,
                     settings: Mapping[str, Any]) -> tuple[float, float]:
    """ROI minimum and maximum, after pyradiomics' normalisation when it is on."""
    low, high = float(values.min()), float(values.max())
    if not settings.get("normalize", False):
        return low, high
    import SimpleITK as sitk

    array = sitk.GetArrayViewFromImage(sitk_image)
    mean, std = float(np.mean(array)), float(np.std(array))
    scale = float(settings.get("normalizeScale", 1))
    if std == 0:
        return 0.0, 0.0
    return (low - mean) / std * scale, (high - mean) / std * scale


def _roi_values(sitk_image, sitk_mask) -> np.ndarray:
    import SimpleITK as sitk

    image = sitk.GetArrayViewFromImage(sitk_image)
    mask = sitk.GetArrayViewFromImage(sitk_mask).astype(bool)
    if image.ndim > mask.ndim:  # vector image: pyradiomics takes the first component
        image = image[..., 0]
    return np.asarray(image[mask], dtype=float)


def _bounding_box(sitk_mask) -> tuple[np.ndarray, np.ndarray]:
    """Lowest and highest ROI index (x, y, z) as sitk orders them."""
    import SimpleITK as sitk

    mask = sitk.GetArrayViewFromImage(sitk_mask)
    where = np.nonzero(mask)
    low = np.array([int(w.min()) for w in where][::-1])
    high = np.array([int(w.max()) for w in where][::-1])
    return low, high


def _round_up(value: float) -> float:
    """Up to two significant digits (a value to suggest to the user)."""
    if value <= 0 or not math.isfinite(value):
        return value
    digits = 1 - int(math.floor(math.log10(value)))
    return math.ceil(value * 10**digits) / 10**digits


def _count(levels: float) -> str:
    return "an unbounded number of" if not math.isfinite(levels) else f"{levels:,.0f}"


def _gb(value: float) -> str:
    return f"{value / 1024**3:.1f} GB"
