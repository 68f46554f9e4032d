"""Existing segmentations as boolean masks on the image grid: label maps and Slicer .seg.nrrd.

A ``.seg.nrrd`` is read from its NRRD header keys (``Segment{N}_ID/_Name/_LabelValue/
_Layer``), in the 3D form (one layer) and the 4D layered form (overlapping segments), and
Slicer's cropped extents are padded back onto the reference grid. No ``slicer`` import.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mskai.errors import InputError
from mskai.validate import check_dimensions, geometry_mismatch, grid_error, validate_mask
from mskai.volume import Volume

_SEGMENT_KEY = re.compile(r"^Segment(\d+)_ID$")
_NAME = re.compile(r"^[a-z][a-z0-9_]*$")


@dataclass(frozen=True)
class SegmentInfo:
    """One segment as a Slicer ``.seg.nrrd`` header describes it."""

    index: int
    id: str
    name: str
    label_value: int
    layer: int


def canonical_id(name: str) -> str:
    """'Femoral Cartilage' -> 'femoral_cartilage': lower case, spaces/hyphens to underscores."""
    return re.sub(r"[\s\-]+", "_", name.strip()).lower()


def parse_label_names(text: str) -> dict[str, int]:
    """Parse ``"femur=1,femoral_cartilage=2"`` into ``{"femur": 1, "femoral_cartilage": 2}``."""
    example = "e.g. femur=1,femoral_cartilage=2"
    items = [item.strip() for item in (text or "").split(",") if item.strip()]
    if not items:
        raise InputError(f"--label-names is empty; give NAME=VALUE pairs, {example}")
    names: dict[str, int] = {}
    for item in items:
        name, sep, value = item.partition("=")
        name = canonical_id(name)
        if not sep or not _NAME.match(name):
            raise InputError(f"--label-names item '{item}' is not NAME=VALUE; {example}")
        try:
            label = int(value.strip())
        except ValueError:
            raise InputError(f"--label-names item '{item}': the label value must be a whole "
                             f"number; {example}") from None
        if label <= 0:
            raise InputError(f"--label-names item '{item}': label values must be positive "
                             "(0 is background)")
        if name in names:
            raise InputError(f"--label-names gives '{name}' twice; give each name once")
        clash = [other for other, v in names.items() if v == label]
        if clash:
            raise InputError(f"--label-names gives label value {label} to both '{clash[0]}' "
                             f"and '{name}'; give each structure its own value")
        names[name] = label
    return names


def read_labels(path: str | Path, reference: Volume,
                label_names: dict[str, int] | None = None) -> dict[str, np.ndarray]:
    """Boolean masks on ``reference``'s grid, keyed by canonical segment id.

    ``label_names`` maps ids to label values in the file; for a ``.seg.nrrd`` without it the
    segment names become the ids. Empty segments of a ``.seg.nrrd`` are left out.
    """
    image = _read_sitk(Path(path))
    keys = set(image.GetMetaDataKeys())
    if any(_SEGMENT_KEY.match(k) for k in keys):
        return _masks_from_segmentation(image, reference, label_names, Path(path).name)
    return _masks_from_label_map(image, reference, label_names, Path(path).name)


def read_seg_nrrd(path: str | Path) -> tuple[Volume, list[SegmentInfo]]:
    """The stored label layers (array [k, j, i] or [k, j, i, layer]) and the segment list."""
    image = _read_sitk(Path(path))
    return _to_volume(image), segment_infos(image)


def segment_infos(image) -> list[SegmentInfo]:
    """Segments listed in a SimpleITK image's metadata (Slicer .seg.nrrd header keys)."""
    layered = image.GetNumberOfComponentsPerPixel() > 1

    def get(n: int, key: str) -> str | None:
        full = f"Segment{n}_{key}"
        return image.GetMetaData(full).strip() if image.HasMetaDataKey(full) else None

    infos = []
    for n in sorted(int(m.group(1)) for k in image.GetMetaDataKeys()
                    if (m := _SEGMENT_KEY.match(k))):
        seg_id = get(n, "ID") or f"Segment_{n}"
        try:
            label = int(get(n, "LabelValue") or 1)
            layer = int(get(n, "Layer") or (n if layered else 0))
        except ValueError:
            raise InputError(f"segment {n} of the segmentation has an invalid LabelValue or "
                             "Layer in its header; re-save it from Slicer") from None
        infos.append(SegmentInfo(n, seg_id, get(n, "Name") or seg_id, label, layer))
    return infos


# ----- reading ----------------------------------------------------------------------------
def _read_sitk(path: Path):
    import SimpleITK as sitk

    from mskai.image import FILE_FORMATS, image_suffix
    from mskai.image_checks import check_image_file, check_regular

    if not path.exists():
        raise InputError(f"the labels file {path} does not exist; check the path")
    if path.is_dir() or image_suffix(path) not in FILE_FORMATS:
        raise InputError(f"{path.name} is not a label map file; give a label map (NRRD, "
                         "NIfTI, MHA) or a Slicer .seg.nrrd")
    check_regular(path)  # a FIFO would block, a truncated file would read as zeros
    check_image_file(path, image_suffix(path))
    try:
        return sitk.ReadImage(str(path))
    except RuntimeError:
        raise InputError(f"cannot read the labels file {path.name}: it is corrupt or not a "
                         "valid image; re-export it") from None


def _to_volume(image) -> Volume:
    from mskai.image import sitk_to_volume

    volume = sitk_to_volume(image)
    if volume.metadata["dimension"] != 3:
        check_dimensions(volume, name="labels file")
    if not np.issubdtype(volume.array.dtype, np.integer) and not _whole(volume.array):
        raise InputError("the labels file holds fractional values; give integer labels "
                         "(a label map, not an image or probability map)")
    return volume


def _whole(array: np.ndarray) -> bool:
    return bool(np.all(np.isfinite(array)) and np.all(array == np.round(array)))


# ----- plain label maps -------------------------------------------------------------------
def _masks_from_label_map(image, reference: Volume, label_names: dict[str, int] | None,
                          filename: str) -> dict[str, np.ndarray]:
    volume = _to_volume(image)
    validate_mask(volume, reference, binary=False, name=f"label map {filename}")
    if label_names is None:
        raise InputError(f"the label map {filename} has no segment names; give "
                         "--label-names NAME=VALUE,... (e.g. tumor=1)")
    present = {int(v) for v in np.unique(volume.array)} - {0}
    _require_values(label_names, present, filename)
    return {name: volume.array == value for name, value in label_names.items()}


def _require_values(label_names: dict[str, int], present: set[int], filename: str) -> None:
    missing = {n: v for n, v in label_names.items() if v not in present}
    if missing:
        wanted = ", ".join(f"{n}={v}" for n, v in missing.items())
        have = ", ".join(str(v) for v in sorted(present)) or "none"
        raise InputError(f"{filename} has no voxels with label value(s) {wanted}; the values "
                         f"present are {have}: correct --label-names")


# ----- Slicer segmentations ---------------------------------------------------------------
def _masks_from_segmentation(image, reference: Volume, label_names: dict[str, int] | None,
                             filename: str) -> dict[str, np.ndarray]:
    infos = segment_infos(image)
    stored = _to_volume(image)
    layers = _onto_reference(stored, reference, filename)
    masks = {info: _layer(layers, info.layer, filename) == info.label_value for info in infos}
    if label_names is not None:
        return _masks_by_value(masks, label_names, filename)
    keyed: dict[str, np.ndarray] = {}
    for info, mask in masks.items():
        key = canonical_id(info.name) or canonical_id(info.id)
        if key in keyed:
            raise InputError(f"{filename} has two segments named '{info.name}'; rename one "
                             "in Slicer's Segment Editor")
        if mask.any():
            keyed[key] = mask
    if not keyed:
        raise InputError(f"the segmentation {filename} is empty: no segment has labelled "
                         "voxels; paint the structures first")
    return keyed


def _masks_by_value(masks: dict[SegmentInfo, np.ndarray], label_names: dict[str, int],
                    filename: str) -> dict[str, np.ndarray]:
    present = {info.label_value for info, mask in masks.items() if mask.any()}
    _require_values(label_names, present, filename)
    result = {}
    for name, value in label_names.items():
        matches = [m for info, m in masks.items() if info.label_value == value and m.any()]
        if len(matches) > 1:
            raise InputError(f"{filename} has several segments with label value {value} (in "
                             "different layers); leave out --label-names to use the segment "
                             "names")
        result[name] = matches[0]
    return result


def _layer(layers: np.ndarray, index: int, filename: str) -> np.ndarray:
    if layers.ndim == 3:
        if index != 0:
            raise InputError(f"{filename} names layer {index} but stores only one layer; "
                             "re-save the segmentation from Slicer")
        return layers
    if not 0 <= index < layers.shape[-1]:
        raise InputError(f"{filename} names layer {index} but stores {layers.shape[-1]}; "
                         "re-save the segmentation from Slicer")
    return layers[..., index]


def _onto_reference(stored: Volume, reference: Volume, filename: str) -> np.ndarray:
    """The stored layers on the reference grid; Slicer crops to the painted extent."""
    diff = geometry_mismatch(stored, reference)
    if diff is None:
        return stored.array
    offset = _grid_offset(stored, reference)
    if offset is None:
        raise grid_error(f"the segmentation {filename} is not on the image grid ({diff})")
    out = np.zeros(reference.array.shape[:3] + stored.array.shape[3:], stored.array.dtype)
    src, dst = [], []
    for start, n_src, n_ref in zip(offset[::-1], stored.array.shape[:3],
                                   reference.array.shape[:3], strict=True):
        lo, hi = max(start, 0), min(start + n_src, n_ref)
        if hi <= lo:
            lo = hi = 0
        dst.append(slice(lo, hi))
        src.append(slice(lo - start, hi - start) if hi > lo else slice(0, 0))
    copied = stored.array[tuple(src)]
    if np.count_nonzero(copied) != np.count_nonzero(stored.array):
        raise grid_error(f"the segmentation {filename} extends outside the image")
    out[tuple(dst)] = copied
    return out


def _grid_offset(stored: Volume, reference: Volume) -> tuple[int, int, int] | None:
    """Integer (i, j, k) index of the stored origin on the reference grid, if aligned."""
    same_axes = (np.allclose(stored.spacing, reference.spacing, rtol=1e-3, atol=1e-4)
                 and np.allclose(stored.direction, reference.direction, atol=1e-3))
    if not same_axes:
        return None
    to_index = np.linalg.inv(reference.ijk_to_lps()[:3, :3])
    ijk = to_index @ (np.asarray(stored.origin) - np.asarray(reference.origin))
    rounded = np.round(ijk)
    if np.any(np.abs(ijk - rounded) > 0.01):
        return None
    i, j, k = (int(v) for v in rounded)
    return i, j, k
