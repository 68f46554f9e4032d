"""Fingerprints of masks, to tell an AI segment from one a person has edited since.

Pure numpy (no Slicer): the seg.nrrd writers in the core can stamp the same tags, so a
result written by the ``mskai`` command and loaded into Slicer is still recognised as
unedited AI output.
"""

from __future__ import annotations

import hashlib

import numpy as np

from mskai.volume import Volume


def mask_fingerprint(mask: np.ndarray) -> str:
    """sha1 of the shape and the bit-packed mask: equal exactly when the voxels are equal."""
    mask = np.ascontiguousarray(mask, dtype=bool)
    digest = hashlib.sha1(np.asarray(mask.shape, dtype=np.int64).tobytes())
    digest.update(np.packbits(mask).tobytes())
    return digest.hexdigest()


def geometry_string(volume: Volume) -> str:
    """The grid in Slicer's ``vtkSegmentationConverter::SerializeImageGeometry`` format.

    Sixteen IJK-to-RAS matrix elements (row major) then the extent ``i0;i1;j0;j1;k0;k1``,
    each followed by ``;``.
    """
    i, j, k = volume.size
    values = [repr(float(v)) for v in volume.ijk_to_ras().ravel()]
    values += [str(v) for v in (0, i - 1, 0, j - 1, 0, k - 1)]
    return "".join(f"{v};" for v in values)
