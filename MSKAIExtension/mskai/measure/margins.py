"""Safety margins and distances for resection planning, exact in physical space.

Distances use the Euclidean distance transform with the voxel spacing as sampling, so
anisotropic voxels are handled exactly (the direction matrix is a rotation and does not
change distances).
"""

from __future__ import annotations

import numpy as np

from mskai.errors import InputError
from mskai.volume import Volume


def _spacing_kji(volume: Volume) -> tuple[float, float, float]:
    sx, sy, sz = volume.spacing
    return (sz, sy, sx)


def distance_to_mask_mm(mask: np.ndarray, volume: Volume) -> np.ndarray:
    """Distance (mm) from every voxel centre to the nearest voxel centre of ``mask``."""
    from scipy.ndimage import distance_transform_edt

    if not mask.any():
        raise InputError("the mask to measure distances from is empty; segment it first")
    return distance_transform_edt(~mask, sampling=_spacing_kji(volume)).astype(np.float32)


def grow_margin(mask: np.ndarray, volume: Volume, margin_mm: float) -> np.ndarray:
    """The mask grown by ``margin_mm`` in every direction (includes the mask itself)."""
    if margin_mm < 0:
        raise InputError(f"a safety margin of {margin_mm} mm is negative; give a positive one")
    return distance_to_mask_mm(mask, volume) <= margin_mm + 1e-6


def min_surface_distance_mm(mask_a: np.ndarray, mask_b: np.ndarray,
                            volume: Volume) -> float | None:
    """Smallest distance between the sub-voxel surfaces of two masks; ``None`` if one is empty.

    Surfaces come from marching cubes at the 0.5 level, so the value is not biased by half a
    voxel the way voxel-centre distances are. Overlapping masks give 0.
    """
    from scipy.spatial import cKDTree

    from mskai.measure.mesh import mask_to_mesh

    if not mask_a.any() or not mask_b.any():
        return None
    if np.logical_and(mask_a, mask_b).any():
        return 0.0
    verts_a, _ = mask_to_mesh(mask_a, volume)
    verts_b, _ = mask_to_mesh(mask_b, volume)
    distances, _ = cKDTree(verts_b).query(verts_a, k=1)
    return float(distances.min())


def margin_summary(tumor: np.ndarray, bone: np.ndarray | None, volume: Volume,
                   margin_mm: float) -> dict:
    """The contract's ``margin`` block: margin, minimum tumour-to-bone distance, bone inside."""
    if bone is None or not bone.any():
        return {"margin_mm": margin_mm, "min_distance_to_bone_mm": None,
                "bone_within_margin": False}
    distance = min_surface_distance_mm(tumor, bone, volume)
    return {"margin_mm": margin_mm, "min_distance_to_bone_mm": distance,
            "bone_within_margin": bool(distance is not None and distance <= margin_mm)}
