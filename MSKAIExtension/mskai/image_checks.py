"""Checks of an image file before its voxels are read: the data the header promises is there.

ITK reads some damaged files quietly: its NIfTI reader fills a short file with zeros and
turns NaN/inf voxels into 0, and invalid spacing becomes 1 mm; other readers allocate
what a broken header claims before failing. So the header is read here (NIfTI with
nibabel, NRRD and MetaImage as text) and compared with the file: size, compressed stream,
spacing, pixel type and the memory reading would take. Each problem is one
:class:`InputError` line. Header parsing lives in :mod:`mskai.image_headers`.
"""

from __future__ import annotations

import bz2
import os
import stat
import zlib
from pathlib import Path

import numpy as np

from mskai.errors import InputError
from mskai.image_headers import RawLayout, metaimage_layout, nifti_header, nifti_layout, nrrd_layout
from mskai.resources import available_memory_bytes

MAX_DEFLATE_RATIO = 1100          # deflate cannot expand data more than ~1032:1
STREAM_CHECK_MAX_BYTES = 200 * 2**20  # compressed files above this get the cheap check
READ_COPIES = 2                   # ITK's buffer and the numpy array made from it
CHUNK = 1 << 20
REDO = "re-export or re-download it"


def check_regular(path: Path) -> None:
    """Refuse FIFOs, devices and sockets: reading them blocks or never ends."""
    mode = path.stat().st_mode
    if stat.S_ISREG(mode) or stat.S_ISDIR(mode):
        return
    kind = ("a FIFO (named pipe)" if stat.S_ISFIFO(mode)
            else "a device" if stat.S_ISCHR(mode) or stat.S_ISBLK(mode)
            else "a socket" if stat.S_ISSOCK(mode) else "a special file")
    raise InputError(f"{path} is {kind}, not a regular file; give an image file or a DICOM "
                     "series folder")


def check_image_file(path: Path, suffix: str) -> None:
    """InputError when the header of ``path`` is invalid or promises more data than is there."""
    if suffix in (".nii", ".nii.gz"):
        layout = nifti_layout(path, compressed=suffix == ".nii.gz")
    elif suffix in (".nrrd", ".nhdr"):
        layout = nrrd_layout(path)
    elif suffix in (".mha", ".mhd"):
        layout = metaimage_layout(path)
    else:
        return
    if layout is not None:
        check_layout(path, layout)


def check_layout(path: Path, layout: RawLayout) -> None:
    """Compare what the header describes with the data file; refuse what cannot fit memory."""
    if layout.data_path is None:
        check_memory(path, layout)
        return
    if not layout.data_path.is_file():
        raise InputError(f"the data file {layout.data_path.name} named in the header of "
                         f"{path.name} is missing or not a regular file; keep the header and "
                         "its data file together in one folder")
    held = layout.data_path.stat().st_size - layout.offset
    if layout.encoding == "raw":
        if held < layout.nbytes:
            raise InputError(f"the image {path.name} is truncated: its header describes "
                             f"{layout.nbytes} bytes of voxel data but the file holds "
                             f"{max(held, 0)}; {REDO}")
        check_memory(path, layout)
        return
    if layout.compressed_size is not None and held < layout.compressed_size:
        raise InputError(f"the image {path.name} is truncated: its header describes "
                         f"{layout.compressed_size} bytes of compressed voxel data but the file "
                         f"holds {max(held, 0)}; {REDO}")
    if layout.encoding in ("gzip", "zlib") and layout.nbytes > MAX_DEFLATE_RATIO * held + CHUNK:
        raise InputError(f"the image {path.name} is truncated or corrupt: its header describes "
                         f"{layout.nbytes} bytes of voxel data, far more than its {max(held, 0)} "
                         f"compressed bytes can hold; {REDO}")
    check_memory(path, layout)
    if layout.encoding in ("gzip", "zlib", "bzip2"):
        _check_stream(path, layout, held)


def check_memory(path: Path, layout: RawLayout) -> None:
    need = READ_COPIES * layout.nbytes
    available = available_memory_bytes()
    if available is not None and need > available:
        raise InputError(f"the image {path.name} would need about {need / 2**30:.1f} GB of "
                         f"memory to read ({' x '.join(str(n) for n in layout.shape)} values of "
                         f"{layout.itemsize} bytes) but only {available / 2**30:.1f} GB is "
                         "available; crop or downsample the image, or free memory")


# ----- compressed streams ---------------------------------------------------------------------
def _check_stream(path: Path, layout: RawLayout, held: int) -> None:
    expected = layout.nbytes + layout.skip_after_inflate
    if held > STREAM_CHECK_MAX_BYTES:
        if layout.encoding == "gzip" and _gzip_trailer_size(layout) == expected % 2**32:
            return
        if layout.encoding != "gzip":
            return  # too big to inflate twice; the reader reports a broken stream itself
    try:
        total, complete = _inflated_size(layout)
    except (zlib.error, OSError, EOFError, ValueError) as exc:
        raise InputError(f"the image {path.name} is corrupt: its compressed voxel data cannot "
                         f"be decompressed ({exc}); {REDO}") from None
    if not complete or total < expected:
        raise InputError(f"the image {path.name} is truncated: its header describes "
                         f"{layout.nbytes} bytes of voxel data but its compressed data ends "
                         f"after {max(total - layout.skip_after_inflate, 0)} (the file is "
                         f"corrupt); {REDO}")


def _gzip_trailer_size(layout: RawLayout) -> int | None:
    """ISIZE of the last gzip member: the uncompressed length modulo 2**32."""
    with layout.data_path.open("rb") as handle:
        handle.seek(-4, os.SEEK_END)
        trailer = handle.read(4)
    return int.from_bytes(trailer, "little") if len(trailer) == 4 else None


def _inflated_size(layout: RawLayout) -> tuple[int, bool]:
    """Bytes the compressed data inflates to (in chunks), and whether its stream ended properly.

    Consecutive gzip (or bzip2) streams count together; bytes after the last one are ignored.
    """
    bzip = layout.encoding == "bzip2"
    magic = b"BZh" if bzip else b"\x1f\x8b"

    def new():
        return bz2.BZ2Decompressor() if bzip else zlib.decompressobj(47)

    decompressor, total = new(), 0
    with layout.data_path.open("rb") as handle:
        handle.seek(layout.offset)
        data = handle.read(CHUNK)
        while True:
            if decompressor.eof:
                data = decompressor.unused_data
                if len(data) < len(magic):
                    data += handle.read(CHUNK)
                if not data.startswith(magic):
                    return total, True
                decompressor = new()
            if not data:
                data = handle.read(CHUNK)
            if not data:
                if not bzip:
                    total += len(decompressor.flush())
                return total, decompressor.eof
            total += len(decompressor.decompress(data, CHUNK))
            if bzip:
                data = b""
                while not decompressor.eof and not decompressor.needs_input:
                    total += len(decompressor.decompress(b"", CHUNK))
            else:
                data = decompressor.unconsumed_tail


# ----- NIfTI NaN/inf ------------------------------------------------------------------------
def restore_nifti_non_finite(volume, path: Path) -> None:
    """Put back the NaN/inf voxels ITK's NIfTI reader turns into 0, so validation sees them."""
    array = volume.array
    if not np.issubdtype(array.dtype, np.floating):
        return
    header = nifti_header(path)
    if header is None or header.get_data_dtype().kind != "f":
        return
    slope, inter = float(header["scl_slope"]), float(header["scl_inter"])
    scaled = np.isfinite(slope) and slope != 0
    inter = inter if scaled and np.isfinite(inter) else 0.0
    if not np.any(array == inter):  # where ITK wrote 0 (scaled: 0 * slope + inter)
        return
    dims = [int(n) for n in header["dim"][1:int(header["dim"][0]) + 1]]
    raw = _nifti_voxels(path, header).reshape(dims[::-1])
    if raw.ndim == 2:
        raw = raw[np.newaxis]
    elif raw.ndim == 4 and array.ndim == 4:
        raw = np.moveaxis(raw, 0, -1)
    bad = ~np.isfinite(raw)
    if not bad.any():
        return
    if raw.shape != array.shape:
        raise InputError(f"the image {path.name} has {int(bad.sum())} NaN or infinite voxel(s); "
                         "replace them with a valid value (e.g. the background intensity)")
    values = raw[bad].astype(float)
    array[bad] = (values * slope + inter if scaled else values).astype(array.dtype)


def read_float_nifti(path: Path):
    """A 3D float NIfTI as a Volume with one decompression, NaN/inf kept; None for other files.

    ITK's reader zeroes NaN/inf, so the voxels are read here; the geometry is ITK's own
    (``ReadImageInformation`` reads only the header), the same as a full ITK read gives.
    """
    import SimpleITK as sitk

    from mskai.image import _quiet_itk
    from mskai.volume import Volume

    header = nifti_header(path)
    if header is None or header.get_data_dtype().kind != "f" or int(header["dim"][0]) != 3:
        return None
    reader = sitk.ImageFileReader()
    reader.SetFileName(str(path))
    try:
        with _quiet_itk():
            reader.ReadImageInformation()
    except RuntimeError:
        return None
    dims = [int(n) for n in header["dim"][1:4]]
    dtype = {sitk.sitkFloat32: np.float32, sitk.sitkFloat64: np.float64}.get(reader.GetPixelID())
    if (dtype is None or reader.GetDimension() != 3 or reader.GetNumberOfComponents() != 1
            or list(reader.GetSize()) != dims):
        return None
    raw = _nifti_voxels(path, header).reshape(dims[::-1])
    slope, inter = float(header["scl_slope"]), float(header["scl_inter"])
    if np.isfinite(slope) and slope != 0 and (slope, inter) != (1.0, 0.0):
        raw = raw * slope + (inter if np.isfinite(inter) else 0.0)
    return Volume(np.asarray(raw, dtype=dtype), spacing=reader.GetSpacing(),
                  origin=reader.GetOrigin(), direction=np.reshape(reader.GetDirection(), (3, 3)),
                  metadata={"dimension": 3, "components": 1, "warnings": []})


def _nifti_voxels(path: Path, header) -> np.ndarray:
    """The stored voxel values of a NIfTI file as a flat array (file order)."""
    dtype = header.get_data_dtype()
    count = int(np.prod([int(n) for n in header["dim"][1:int(header["dim"][0]) + 1]]))
    offset = int(header["vox_offset"])
    need = offset + count * dtype.itemsize
    with path.open("rb") as handle:
        if not path.name.lower().endswith(".gz"):
            handle.seek(offset)
            data = handle.read(need - offset)
        else:
            decompressor, buffer = zlib.decompressobj(47), bytearray()
            while len(buffer) < need:
                chunk = handle.read(16 * CHUNK)
                if not chunk:
                    break
                while chunk and len(buffer) < need:
                    buffer += decompressor.decompress(chunk, need - len(buffer))
                    chunk = decompressor.unconsumed_tail
            data = memoryview(buffer)[offset:]
    if len(data) < need - offset:
        raise InputError(f"the image {path.name} is truncated: its header describes "
                         f"{need - offset} bytes of voxel data but the file holds "
                         f"{len(data)}; {REDO}")
    return np.frombuffer(data, dtype=dtype, count=count)
