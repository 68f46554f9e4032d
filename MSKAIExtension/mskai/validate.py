"""Input checks that turn bad images, masks and points into one clear :class:`InputError`.

Every message says what is wrong and what to do. The checks never change the data.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from mskai.errors import InputError
from mskai.volume import Volume

MIN_SPACING_MM = 0.01
MAX_SPACING_MM = 50.0
DIRECTION_TOLERANCE = 1e-3
PICK_ONE = ("pick one time point or channel first, e.g. with Slicer's Sequences module or "
            "SimpleITK (image[:, :, :, t] or VectorIndexSelectionCast)")


def validate_image(volume: Volume, *, name: str = "image") -> None:
    """Raise :class:`InputError` unless ``volume`` is a usable 3D scalar image."""
    check_dimensions(volume, name=name)
    check_pixel_type(volume, name=name)
    check_spacing(volume, name=name)
    check_direction(volume, name=name)
    check_finite(volume, name=name)
    if volume.array.size and np.all(volume.array == volume.array.flat[0]):
        raise InputError(f"the {name} is empty: every voxel has the value "
                         f"{volume.array.flat[0]}; give an image with content")


def check_dimensions(volume: Volume, *, name: str = "image") -> None:
    """A 3D scalar volume: no 2D image, no single slice, no 4D or multi-component image."""
    array = volume.array
    if array.ndim == 4 or volume.metadata.get("dimension") == 4:
        kind = ("a 4D image" if volume.metadata.get("dimension") == 4
                else f"a multi-component image ({array.shape[-1]} values per voxel)")
        raise InputError(f"the {name} is {kind}; {PICK_ONE}")
    if array.ndim != 3 or volume.metadata.get("dimension") == 2:
        raise InputError(f"the {name} is a 2D image; a 3D volume is required "
                         "(load the whole series or a 3D file)")
    if min(array.shape) <= 1:
        raise InputError(f"the {name} has size {list(volume.size)}: a single slice; a 3D volume "
                         "is required (load the whole series, not one file)")


def check_pixel_type(volume: Volume, *, name: str = "image") -> None:
    """Real numbers only: complex (or other non-numeric) voxels cannot be measured."""
    dtype = volume.array.dtype
    if np.issubdtype(dtype, np.complexfloating):
        raise InputError(f"the {name} holds complex values ({dtype}); give a real-valued image, "
                         "e.g. the magnitude of the complex data")
    if not (np.issubdtype(dtype, np.number) or np.issubdtype(dtype, np.bool_)):
        raise InputError(f"the {name} has voxels of type {dtype}, not numbers; give a "
                         "grey-value image")


def check_direction(volume: Volume, *, name: str = "image") -> None:
    """Finite origin and axis directions that are unit length and mutually perpendicular."""
    direction = np.asarray(volume.direction, dtype=float)
    if not np.all(np.isfinite(direction)) or not np.all(np.isfinite(volume.origin)):
        raise InputError(f"the {name} has NaN or infinite values in its origin or axis "
                         "directions; fix the orientation in the file header")
    error = np.abs(direction.T @ direction - np.eye(3)).max()
    if error > DIRECTION_TOLERANCE:
        raise InputError(f"the {name} has sheared axes: its direction matrix is not "
                         f"orthonormal (off by {error:.3g}), so distances and volumes would be "
                         "wrong; resample it to an orthogonal grid or fix the directions in "
                         "the file header")


def check_spacing(volume: Volume, *, name: str = "image") -> None:
    spacing = np.asarray(volume.spacing, dtype=float)
    if not np.all(np.isfinite(spacing)) or np.any(spacing <= 0):
        raise InputError(f"the {name} has invalid voxel spacing {volume.spacing} mm; "
                         "fix the spacing in the file header")
    if np.any(spacing < MIN_SPACING_MM) or np.any(spacing > MAX_SPACING_MM):
        raise InputError(f"the {name} has implausible voxel spacing "
                         f"{tuple(round(s, 4) for s in volume.spacing)} mm (expected "
                         f"{MIN_SPACING_MM} to {MAX_SPACING_MM} mm); fix the spacing in the "
                         "file header (units must be millimetres)")


def check_finite(volume: Volume, *, name: str = "image") -> None:
    array = volume.array
    if not np.issubdtype(array.dtype, np.floating):
        return
    bad = ~np.isfinite(array)
    if bad.any():
        kinds = [k for k, test in (("NaN", np.isnan), ("infinite", np.isinf))
                 if test(array).any()]
        raise InputError(f"the {name} has {int(bad.sum())} {' and '.join(kinds)} voxel(s); "
                         "replace them with a valid value (e.g. the background intensity)")


def geometry_mismatch(volume: Volume, reference: Volume) -> str | None:
    """What differs between the two voxel grids, or None when they are the same."""
    if volume.array.shape[:3] != reference.array.shape[:3]:
        return f"size {list(volume.size)} vs {list(reference.size)}"
    ref_spacing = np.asarray(reference.spacing)
    if not np.allclose(volume.spacing, ref_spacing, rtol=1e-3, atol=1e-4):
        return f"spacing {_fmt(volume.spacing)} vs {_fmt(reference.spacing)} mm"
    if not np.allclose(volume.origin, reference.origin, atol=max(1e-3, 0.01 * ref_spacing.min())):
        return f"origin {_fmt(volume.origin)} vs {_fmt(reference.origin)} mm (LPS)"
    if not np.allclose(volume.direction, reference.direction, atol=1e-3):
        return "axis directions differ"
    return None


def grid_error(problem: str) -> InputError:
    """The error for labels off the image grid: ``problem`` plus how to resample."""
    return InputError(
        f"{problem}; resample the labels onto the image grid, e.g. in Slicer with "
        "'Resample Scalar/Vector/DWI Volume' (nearest neighbour) or by exporting the "
        "segmentation with the image as reference geometry")


def validate_mask(mask_volume: Volume, reference: Volume, *, binary: bool = True,
                  name: str = "mask") -> None:
    """Raise :class:`InputError` unless the mask lies on the reference grid and labels voxels.

    With ``binary`` the values must be 0/1 (or False/True); label maps pass ``binary=False``.
    """
    check_dimensions(mask_volume, name=name)
    diff = geometry_mismatch(mask_volume, reference)
    if diff is not None:
        raise grid_error(f"the {name} is not on the image grid ({diff})")
    array = mask_volume.array
    if not np.any(array):
        raise InputError(f"the {name} is empty: no voxel is labelled; give a mask that "
                         "contains the structure")
    if binary:
        values = np.unique(array)
        if not set(values.tolist()) <= {0, 1}:
            shown = ", ".join(str(v) for v in values[:8]) + (" ..." if len(values) > 8 else "")
            raise InputError(f"the {name} is not binary (values {shown}); give a 0/1 mask or a "
                             "label map with --label-names NAME=VALUE")


def ras_bounds(volume: Volume) -> tuple[np.ndarray, np.ndarray]:
    """RAS minimum and maximum corners of the box spanned by the voxel centres."""
    i, j, k = (np.array([0, n - 1], dtype=float) for n in volume.size)
    corners = np.array(np.meshgrid(i, j, k, indexing="ij")).reshape(3, -1).T
    ras = volume.index_to_ras(corners)
    return ras.min(axis=0), ras.max(axis=0)


def validate_point_ras(volume: Volume, ras: Sequence[float] | np.ndarray,
                       what: str = "seed") -> np.ndarray:
    """Raise :class:`InputError` unless the RAS point is inside the image; return its (i, j, k)."""
    point = np.asarray(ras, dtype=float)
    if point.shape != (3,) or not np.all(np.isfinite(point)):
        raise InputError(f"the {what} point {list(np.ravel(point))} is not three finite "
                         "numbers; give it as R,A,S in millimetres")
    ijk = volume.ras_to_index(point)
    if not volume.contains_index(ijk):
        low, high = ras_bounds(volume)
        raise InputError(
            f"the {what} point {_fmt(point)} (RAS mm) lies outside the image, which spans "
            f"R {low[0]:.1f}..{high[0]:.1f}, A {low[1]:.1f}..{high[1]:.1f}, "
            f"S {low[2]:.1f}..{high[2]:.1f} mm; give a point inside the image")
    return ijk


def _fmt(values: Sequence[float] | np.ndarray) -> str:
    return "(" + ", ".join(f"{float(v):.3f}" for v in values) + ")"
