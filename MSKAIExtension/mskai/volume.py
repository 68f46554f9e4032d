"""Volume: a 3D array with its physical geometry.

Conventions (the same as SimpleITK and Slicer's ``arrayFromVolume``):

- ``array`` is indexed ``[k, j, i]`` (slice, row, column).
- ``spacing`` and ``origin`` are given in ``(i, j, k)`` / ``(x, y, z)`` order.
- ``direction`` is the 3x3 matrix whose columns are the i, j, k axis directions in **LPS**
  (DICOM/ITK convention, what files store). Slicer works in **RAS**; :meth:`ijk_to_ras`
  and :meth:`ras_to_ijk` convert at the boundary.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0])


@dataclass
class Volume:
    array: np.ndarray
    spacing: tuple[float, float, float] = (1.0, 1.0, 1.0)
    origin: tuple[float, float, float] = (0.0, 0.0, 0.0)
    direction: np.ndarray = field(default_factory=lambda: np.eye(3))
    modality: str | None = None
    path: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.spacing = tuple(float(s) for s in self.spacing)
        self.origin = tuple(float(o) for o in self.origin)
        self.direction = np.asarray(self.direction, dtype=float).reshape(3, 3)

    # ----- geometry -------------------------------------------------------------------
    @property
    def size(self) -> tuple[int, int, int]:
        """Size in (i, j, k) order, as in CONTRACT.md."""
        k, j, i = self.array.shape[:3]
        return (int(i), int(j), int(k))

    @property
    def voxel_volume_mm3(self) -> float:
        return float(np.prod(self.spacing))

    def ijk_to_lps(self) -> np.ndarray:
        """4x4 homogeneous matrix from (i, j, k) index to LPS millimetres."""
        m = np.eye(4)
        m[:3, :3] = self.direction @ np.diag(self.spacing)
        m[:3, 3] = self.origin
        return m

    def ijk_to_ras(self) -> np.ndarray:
        """4x4 homogeneous matrix from (i, j, k) index to RAS millimetres (Slicer)."""
        flip = np.eye(4)
        flip[:3, :3] = LPS_TO_RAS
        return flip @ self.ijk_to_lps()

    def ras_to_ijk(self) -> np.ndarray:
        return np.linalg.inv(self.ijk_to_ras())

    def ras_to_index(self, ras: np.ndarray | list[float]) -> np.ndarray:
        """Continuous (i, j, k) index of RAS point(s); shape (3,) or (n, 3)."""
        pts = np.atleast_2d(np.asarray(ras, dtype=float))
        homog = np.c_[pts, np.ones(len(pts))]
        ijk = (self.ras_to_ijk() @ homog.T).T[:, :3]
        return ijk[0] if np.ndim(ras) == 1 else ijk

    def index_to_ras(self, ijk: np.ndarray | list[float]) -> np.ndarray:
        """RAS millimetres of (i, j, k) index/indices; shape (3,) or (n, 3)."""
        pts = np.atleast_2d(np.asarray(ijk, dtype=float))
        homog = np.c_[pts, np.ones(len(pts))]
        ras = (self.ijk_to_ras() @ homog.T).T[:, :3]
        return ras[0] if np.ndim(ijk) == 1 else ras

    def contains_index(self, ijk: np.ndarray, tol: float = 0.5) -> bool:
        """True when the continuous index lies inside the voxel grid (voxel centres +/- tol)."""
        ijk = np.asarray(ijk, dtype=float)
        upper = np.asarray(self.size, dtype=float) - 1 + tol
        return bool(np.all(ijk >= -tol) and np.all(ijk <= upper))

    def same_geometry(self, other: Volume, tol_mm: float = 1e-3) -> bool:
        """True when both volumes sample the same grid (size, spacing, origin, direction)."""
        return (
            self.array.shape[:3] == other.array.shape[:3]
            and np.allclose(self.spacing, other.spacing, atol=tol_mm)
            and np.allclose(self.origin, other.origin, atol=tol_mm)
            and np.allclose(self.direction, other.direction, atol=1e-4)
        )

    def with_array(self, array: np.ndarray, **changes: Any) -> Volume:
        """A volume on the same grid holding another array (labels, maps, ...)."""
        if array.shape[:3] != self.array.shape[:3]:
            raise ValueError(f"array shape {array.shape} does not match {self.array.shape}")
        return replace(self, array=array, metadata=dict(self.metadata), **changes)

    def crop(self, box: tuple[slice, slice, slice]) -> Volume:
        """The sub-volume ``array[box]`` (k, j, i slices) with physical positions unchanged."""
        starts = [s.start or 0 for s in box]
        start_ijk = np.array([starts[2], starts[1], starts[0]], dtype=float)
        origin = self.ijk_to_lps()[:3, :3] @ start_ijk + np.asarray(self.origin)
        return replace(self, array=self.array[box], origin=tuple(origin),
                       metadata=dict(self.metadata))

    # ----- SimpleITK interop -------------------------------------------------------------
    def to_sitk(self):
        import SimpleITK as sitk

        img = sitk.GetImageFromArray(np.ascontiguousarray(self.array))
        img.SetSpacing(self.spacing)
        img.SetOrigin(self.origin)
        img.SetDirection(tuple(self.direction.ravel()))
        return img

    @classmethod
    def from_sitk(cls, img, **kwargs: Any) -> Volume:
        import SimpleITK as sitk

        return cls(
            array=sitk.GetArrayFromImage(img),
            spacing=img.GetSpacing(),
            origin=img.GetOrigin(),
            direction=np.asarray(img.GetDirection()).reshape(3, 3),
            **kwargs,
        )
