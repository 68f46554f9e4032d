"""Image -> network input: reorient, resample, normalise, and remember how to map back.

The tensor has shape ``(1, C, X, Y, Z)``: channel first, then the (i, j, k) axes of the
reoriented image, as MONAI's ``LoadImage`` + ``Orientation("RAS")`` would give it, so
external MONAI models see what they were trained on. Reorienting only permutes and flips
axes (SimpleITK ``DICOMOrient``); an oblique grid keeps its tilt and is not interpolated
for it. Resampling keeps the first voxel centre and covers the whole original extent.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from mskai.errors import InputError
from mskai.models.manifest import InputSpec
from mskai.volume import Volume


@dataclass(frozen=True)
class ModelGrid:
    """Physical geometry of the network input grid, (i, j, k) = tensor (X, Y, Z)."""

    size: tuple[int, int, int]
    spacing: tuple[float, float, float]
    origin: tuple[float, float, float]
    direction: tuple[float, ...]

    @classmethod
    def of(cls, image) -> ModelGrid:
        return cls(tuple(image.GetSize()), tuple(image.GetSpacing()),
                   tuple(image.GetOrigin()), tuple(image.GetDirection()))

    def image(self, array_xyz: np.ndarray):
        """A SimpleITK image on this grid from an ``(X, Y, Z)`` array."""
        import SimpleITK as sitk

        image = sitk.GetImageFromArray(np.ascontiguousarray(array_xyz.transpose(2, 1, 0)))
        image.SetSpacing(self.spacing)
        image.SetOrigin(self.origin)
        image.SetDirection(self.direction)
        return image


@dataclass(frozen=True)
class PreprocessContext:
    """What postprocessing needs: the model grid and the spec that produced it."""

    grid: ModelGrid
    spec: InputSpec


def preprocess(volume: Volume, spec: InputSpec):
    """``(tensor (1, C, X, Y, Z) float32, PreprocessContext)`` for a single-channel volume."""
    import SimpleITK as sitk
    import torch

    if spec.channels != 1:
        raise InputError(f"this model needs {spec.channels} input channels but one image was "
                         "given; choose a single-channel model.")
    if volume.array.ndim != 3 or min(volume.array.shape) < 1:
        raise InputError(f"the image has shape {volume.array.shape}, not a 3D volume; give "
                         "a 3D image.")
    image = sitk.Cast(volume.to_sitk(), sitk.sitkFloat32)
    image = sitk.DICOMOrient(image, spec.orientation)
    if spec.spacing_mm is not None:
        image = resample_to_spacing(image, spec.spacing_mm)
    array = sitk.GetArrayFromImage(image).transpose(2, 1, 0)
    array = normalise_intensity(array, spec.intensity)
    tensor = torch.from_numpy(np.ascontiguousarray(array, dtype=np.float32))[None, None]
    return tensor, PreprocessContext(ModelGrid.of(image), spec)


def resample_to_spacing(image, spacing: tuple[float, float, float]):
    """Linear resampling to ``spacing`` over the same extent, direction and first voxel."""
    import SimpleITK as sitk

    old_spacing = np.asarray(image.GetSpacing())
    extent = (np.asarray(image.GetSize()) - 1) * old_spacing
    size = np.ceil(extent / np.asarray(spacing) - 1e-6).astype(int) + 1
    array = sitk.GetArrayViewFromImage(image)
    return sitk.Resample(image, [int(s) for s in size], sitk.Transform(), sitk.sitkLinear,
                         image.GetOrigin(), tuple(float(s) for s in spacing),
                         image.GetDirection(), float(array.min()), sitk.sitkFloat32)


def normalise_intensity(array: np.ndarray, intensity: dict[str, Any]) -> np.ndarray:
    """Scale intensities as the manifest says (``ct_window``, ``mr_percentile``, ...)."""
    kind = intensity.get("type", "none")
    b_min, b_max = float(intensity.get("b_min", 0.0)), float(intensity.get("b_max", 1.0))
    array = array.astype(np.float32, copy=False)
    if kind == "ct_window":
        low, high = float(intensity["min"]), float(intensity["max"])
        return _scale(np.clip(array, low, high), low, high, b_min, b_max)
    if kind == "mr_percentile":
        values = _foreground(array, intensity)
        low, high = np.percentile(values, [intensity.get("low", 1), intensity.get("high", 99)])
        scaled = _scale(array, float(low), float(high), b_min, b_max)
        return np.clip(scaled, b_min, b_max) if intensity.get("clip", True) else scaled
    if kind == "zscore":
        values = _foreground(array, intensity)
        return (array - values.mean()) / max(float(values.std()), 1e-8)
    return array


def _foreground(array: np.ndarray, intensity: dict[str, Any]) -> np.ndarray:
    """All voxels, or the non-zero ones when ``"nonzero": true`` (background-free stats)."""
    if intensity.get("nonzero"):
        values = array[array != 0]
        return values if values.size else array.ravel()
    return array.ravel()


def _scale(array: np.ndarray, low: float, high: float, b_min: float, b_max: float):
    if high <= low:
        return np.full_like(array, b_min)
    return ((array - low) / (high - low) * (b_max - b_min) + b_min).astype(np.float32)
