"""Image file headers read without ITK: where the voxel data is and how much there must be.

NIfTI headers are read with nibabel, NRRD and MetaImage headers as text. Each reader gives a
:class:`RawLayout` (or None when the header is not understood; ITK then reports the file)
and raises :class:`InputError` for what ITK would silently turn into something else:
invalid spacing (ITK makes it 1 mm), sheared or conflicting NIfTI transforms, complex voxels.
"""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mskai.errors import InputError

HEADER_MAX_BYTES = 1 << 20
SHEAR_TOLERANCE = 1e-3
SPACING_RTOL = 1e-3
FIX_SPACING = ("fix the spacing in the file header (each image axis needs a positive, finite "
               "spacing in millimetres)")
NIFTI_COMPLEX = {32: "complex64", 1792: "complex128", 2048: "complex256"}
NRRD_SIZES = {
    1: "signed char, int8, int8_t, uchar, unsigned char, uint8, uint8_t",
    2: "short, short int, signed short, signed short int, int16, int16_t, ushort, "
       "unsigned short, unsigned short int, uint16, uint16_t",
    4: "int, signed int, int32, int32_t, uint, unsigned int, uint32, uint32_t, float",
    8: "longlong, long long, long long int, signed long long, signed long long int, int64, "
       "int64_t, ulonglong, unsigned long long, unsigned long long int, uint64, uint64_t, "
       "double",
}
NRRD_TYPE_SIZE = {name.strip(): size for size, names in NRRD_SIZES.items()
                  for name in names.split(",")}
NRRD_ENCODINGS = {"raw": "raw", "gzip": "gzip", "gz": "gzip", "bzip2": "bzip2", "bz2": "bzip2"}
MET_TYPE_SIZE = {"MET_CHAR": 1, "MET_UCHAR": 1, "MET_SHORT": 2, "MET_USHORT": 2, "MET_INT": 4,
                 "MET_UINT": 4, "MET_LONG": 4, "MET_ULONG": 4, "MET_LONG_LONG": 8,
                 "MET_ULONG_LONG": 8, "MET_FLOAT": 4, "MET_DOUBLE": 8}


@dataclass
class RawLayout:
    """The voxel data a header describes.

    ``data_path`` None means the data cannot be checked cheaply (text encodings, file lists):
    only the memory it takes is checked. ``offset`` is where the (compressed) data starts;
    ``skip_after_inflate`` bytes precede the voxels once decompressed.
    """

    shape: tuple[int, ...]
    itemsize: int
    encoding: str
    data_path: Path | None
    offset: int = 0
    skip_after_inflate: int = 0
    compressed_size: int | None = None

    @property
    def nbytes(self) -> int:
        return int(np.prod(self.shape, dtype=object)) * self.itemsize


# ----- NIfTI ------------------------------------------------------------------------------------
def nifti_header(path: Path):
    """The NIfTI-1/2 header as stored (no voxel data is read), or None when it is unreadable.

    Read with nibabel's header classes directly: ``nibabel.load`` resets ``vox_offset`` and
    moves ``scl_slope``/``scl_inter`` out of the header.
    """
    import gzip
    import io

    import nibabel as nib

    opener = gzip.open if path.name.lower().endswith(".gz") else open
    try:
        with opener(path, "rb") as handle:
            raw = handle.read(540)
        size = int.from_bytes(raw[:4], "little")
        if size not in (348, 540):
            size = int.from_bytes(raw[:4], "big")
        klass = nib.Nifti2Header if size == 540 else nib.Nifti1Header
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return klass.from_fileobj(io.BytesIO(raw), check=False)
    except Exception:  # nibabel and gzip raise many types for broken files; ITK reports them
        return None


def nifti_layout(path: Path, *, compressed: bool) -> RawLayout | None:
    header = nifti_header(path)
    if header is None or not hasattr(header, "get_sform"):
        return None
    dims = [int(v) for v in header["dim"]]
    if not 1 <= dims[0] <= 7:
        return None
    shape = tuple(dims[1:dims[0] + 1])
    if any(n < 1 for n in shape):
        raise InputError(f"the image {path.name} has an invalid size {list(shape)} in its NIfTI "
                         "header; re-export or re-download it")
    code = int(header["datatype"])
    if code in NIFTI_COMPLEX:
        raise InputError(f"the image {path.name} holds complex values ({NIFTI_COMPLEX[code]}); "
                         "give a real-valued image, e.g. the magnitude of the complex data")
    try:
        itemsize = header.get_data_dtype().itemsize
    except Exception:  # unknown datatype code: ITK reports it
        return None
    _check_nifti_geometry(path.name, header, min(dims[0], 3))
    offset = int(header["vox_offset"])
    if compressed:
        return RawLayout(shape, itemsize, "gzip", path, skip_after_inflate=offset)
    return RawLayout(shape, itemsize, "raw", path, offset=offset)


def _check_nifti_geometry(name: str, header, n_axes: int) -> None:
    pixdim = np.asarray(header["pixdim"][1:n_axes + 1], dtype=float)
    if not np.all(np.isfinite(pixdim)) or np.any(pixdim <= 0):
        raise InputError(f"the image {name} has invalid voxel spacing {_fmt(pixdim)} in its "
                         f"NIfTI header (pixdim); {FIX_SPACING}")
    scaling = np.array([header["scl_slope"], header["scl_inter"]], dtype=float)
    if np.any(np.isinf(scaling)):
        raise InputError(f"the image {name} has an infinite intensity scaling (scl_slope "
                         f"{scaling[0]}, scl_inter {scaling[1]}) in its NIfTI header; fix or "
                         "remove the scaling in the header")
    if int(header["qform_code"]) > 0:
        quaternion = np.array([header[k] for k in ("quatern_b", "quatern_c", "quatern_d",
                                                   "qoffset_x", "qoffset_y", "qoffset_z")],
                              dtype=float)
        if not np.all(np.isfinite(quaternion)):
            raise InputError(f"the image {name} has NaN or infinite values in its NIfTI qform "
                             "(orientation); fix the orientation in the file header")
    if int(header["sform_code"]) > 0 and n_axes == 3:
        _check_sform(name, np.array([header["srow_x"], header["srow_y"], header["srow_z"]],
                                    dtype=float), pixdim)


def _check_sform(name: str, srow: np.ndarray, pixdim: np.ndarray) -> None:
    if not np.all(np.isfinite(srow)):
        raise InputError(f"the image {name} has NaN or infinite values in its NIfTI sform "
                         "(orientation); fix the orientation in the file header")
    matrix = srow[:, :3]
    norms = np.linalg.norm(matrix, axis=0)
    if np.any(norms <= 0):
        raise InputError(f"the image {name} has a zero-length axis in its NIfTI sform; "
                         f"{FIX_SPACING}")
    if not np.allclose(norms, pixdim, rtol=SPACING_RTOL, atol=1e-6):
        raise InputError(f"the image {name} states two different voxel spacings in its NIfTI "
                         f"header: {_fmt(pixdim)} mm (pixdim) and {_fmt(norms)} mm (sform); "
                         "fix the spacing in the header so that both agree")
    unit = matrix / norms
    if np.abs(unit.T @ unit - np.eye(3)).max() > SHEAR_TOLERANCE:
        raise InputError(f"the image {name} has sheared axes in its NIfTI sform (the axes are "
                         "not perpendicular, not orthonormal); resample the image to an "
                         "orthogonal grid or fix the orientation in the header")


# ----- NRRD -------------------------------------------------------------------------------------
def nrrd_layout(path: Path) -> RawLayout | None:
    with path.open("rb") as handle:
        head = handle.read(HEADER_MAX_BYTES)
    if not head.startswith(b"NRRD"):
        return None
    match = re.search(rb"\r?\n\r?\n", head)
    if match is None and len(head) == HEADER_MAX_BYTES:
        return None
    end = match.end() if match else len(head)
    fields = {}
    for line in head[:end].decode("latin-1").splitlines()[1:]:
        if line.startswith("#") or ":=" in line.split(": ", 1)[0] or ": " not in line:
            continue
        key, value = line.split(": ", 1)
        fields[key.strip().lower().replace(" ", "")] = value.strip()
    try:
        dimension = int(fields["dimension"])
        sizes = tuple(int(v) for v in fields["sizes"].split())
    except (KeyError, ValueError):
        return None
    itemsize = NRRD_TYPE_SIZE.get(" ".join(fields.get("type", "").lower().split()))
    if itemsize is None or len(sizes) != dimension:
        return None
    if any(n < 1 for n in sizes):
        raise InputError(f"the image {path.name} has an invalid size {list(sizes)} in its NRRD "
                         "header; re-export or re-download it")
    _check_nrrd_spacing(path.name, fields, _nrrd_spatial_axes(fields, dimension))
    return _nrrd_data(path, fields, sizes, itemsize, end)


def _nrrd_data(path: Path, fields: dict[str, str], sizes: tuple[int, ...], itemsize: int,
               header_end: int) -> RawLayout:
    encoding = NRRD_ENCODINGS.get(fields.get("encoding", "").lower(), "text")
    try:
        line_skip = int(fields.get("lineskip", "0"))
        byte_skip = int(fields.get("byteskip", "0"))
    except ValueError:
        line_skip, byte_skip = 1, 0
    data_file = fields.get("datafile")
    data_path, offset = path, header_end
    if data_file is not None:
        if len(data_file.split()) > 1 or data_file.startswith("LIST"):
            data_path = None
        else:
            data_path, offset = path.parent / data_file, 0
    if encoding == "text" or line_skip > 0 or byte_skip < 0:
        data_path = None
    if encoding == "raw":
        return RawLayout(sizes, itemsize, encoding, data_path, offset + byte_skip)
    return RawLayout(sizes, itemsize, encoding, data_path, offset, skip_after_inflate=byte_skip)


def _nrrd_spatial_axes(fields: dict[str, str], dimension: int) -> list[int]:
    kinds = fields.get("kinds", "").lower().split()
    if len(kinds) == dimension:
        return [i for i, kind in enumerate(kinds) if kind in ("domain", "space", "???", "none")]
    return list(range(min(dimension, 3)))


def _check_nrrd_spacing(name: str, fields: dict[str, str], axes: list[int]) -> None:
    problem = None
    if "spacings" in fields:
        values = fields["spacings"].split()
        try:
            spacing = [float(values[i]) for i in axes]
        except (ValueError, IndexError):
            spacing = [np.nan]
        if not np.all(np.isfinite(spacing)) or min(spacing, default=1.0) <= 0:
            problem = f"spacings: {fields['spacings']}"
    if "spacedirections" in fields:
        tokens = re.findall(r"\(([^)]*)\)|(none)", fields["spacedirections"])
        try:
            vectors = [np.array([float(v) for v in tokens[i][0].split(",")])
                       for i in axes if not tokens[i][1]]
        except (ValueError, IndexError):
            vectors = [np.array([np.nan])]
        if any(not np.all(np.isfinite(v)) or np.linalg.norm(v) == 0 for v in vectors):
            problem = f"space directions: {fields['spacedirections']}"
    if problem:
        raise InputError(f"the image {name} has invalid voxel spacing in its NRRD header "
                         f"({problem}); {FIX_SPACING}")


# ----- MetaImage -------------------------------------------------------------------------------
def metaimage_layout(path: Path) -> RawLayout | None:
    with path.open("rb") as handle:
        head = handle.read(HEADER_MAX_BYTES)
    match = re.search(rb"(?im)^\s*ElementDataFile\s*=\s*([^\r\n]*)\r?\n?", head)
    if match is None:
        return None
    fields = {}
    for line in head[:match.start()].decode("latin-1").splitlines():
        if "=" in line:
            key, value = line.split("=", 1)
            fields[key.strip().lower()] = value.strip()
    try:
        n_dims = int(fields["ndims"])
        dims = [int(v) for v in fields["dimsize"].split()][:n_dims]
        channels = int(fields.get("elementnumberofchannels", "1"))
        header_size = int(fields.get("headersize", "0"))
        compressed_size = (int(fields["compresseddatasize"]) if "compresseddatasize" in fields
                           else None)
    except (KeyError, ValueError):
        return None
    itemsize = MET_TYPE_SIZE.get(fields.get("elementtype", "").upper())
    if itemsize is None or len(dims) != n_dims:
        return None
    if any(n < 1 for n in dims) or channels < 1:
        raise InputError(f"the image {path.name} has an invalid size {dims} in its MetaImage "
                         "header; re-export or re-download it")
    key = "elementspacing" if "elementspacing" in fields else "elementsize"
    if key in fields:
        try:
            spacing = [float(v) for v in fields[key].split()][:min(n_dims, 3)]
        except ValueError:
            spacing = [np.nan]
        if not np.all(np.isfinite(spacing)) or min(spacing, default=1.0) <= 0:
            raise InputError(f"the image {path.name} has invalid voxel spacing in its MetaImage "
                             f"header ({key}: {fields[key]}); {FIX_SPACING}")
    shape = tuple(dims) + ((channels,) if channels > 1 else ())
    compressed = fields.get("compresseddata", "false").lower() == "true"
    data_file = match.group(1).decode("latin-1").strip()
    data_path, offset = path, match.end()
    if data_file.upper() != "LOCAL":
        data_path, offset = path.parent / data_file, 0
        if len(data_file.split()) > 1 or data_file.upper().startswith("LIST") or "%" in data_file:
            data_path = None
    if fields.get("binarydata", "true").lower() != "true" or (header_size < 0 and not compressed):
        data_path = None
    if compressed:
        return RawLayout(shape, itemsize, "zlib", data_path, offset,
                         compressed_size=compressed_size)
    return RawLayout(shape, itemsize, "raw", data_path, offset + max(header_size, 0))


def _fmt(values) -> str:
    return "(" + ", ".join(f"{float(v):g}" for v in values) + ")"
