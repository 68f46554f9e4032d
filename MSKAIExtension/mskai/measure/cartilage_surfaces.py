"""The two surfaces of a cartilage plate, sub-voxel and in RAS millimetres.

Marching cubes (level 0.5) runs on the cartilage mask, cropped to its bounding box plus a
margin; with ``sigma_voxels`` > 0 the mask is first blurred by a Gaussian of that width (in
voxels along each axis), and with ``smooth_iterations`` > 0 the mesh is relaxed by Taubin
smoothing (vertex normals then come from the smoothed mesh). Every vertex lies
on a grid edge between a voxel inside the cartilage and one outside; the vertex belongs to
the **bone interface** when that outside voxel is bone and to the **articular surface**
otherwise (joint space, menisci, other cartilage). Vertices are then mapped through the
volume's IJK->RAS matrix, and gradient normals through its inverse transpose, so oblique
directions and anisotropic voxels are exact.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mskai.errors import InputError
from mskai.volume import Volume

MARGIN_VOXELS = 3


@dataclass
class CartilageSurfaces:
    """Closed cartilage mesh split into bone interface and articular surface."""

    verts_ras: np.ndarray      # (n, 3)
    faces: np.ndarray          # (m, 3) int
    normals_ras: np.ndarray    # (n, 3) unit, pointing out of the cartilage
    is_interface: np.ndarray   # (n,) bool: vertex faces bone

    def interface_faces(self) -> np.ndarray:
        """Faces whose three vertices all lie on the bone interface."""
        return self.faces[self.is_interface[self.faces].all(axis=1)]

    def articular_faces(self) -> np.ndarray:
        """Faces with no vertex on the bone interface."""
        return self.faces[~self.is_interface[self.faces].any(axis=1)]


def check_cartilage_and_bone(cartilage: np.ndarray, bone: np.ndarray, volume: Volume
                             ) -> tuple[slice, ...]:
    """Raise InputError unless both masks are on the grid, non-empty and touching; returns
    the cartilage's bounding box grown by one voxel."""
    from scipy.ndimage import binary_dilation

    shape = volume.array.shape[:3]
    for name, mask in (("cartilage", cartilage), ("bone", bone)):
        if mask.shape != shape:
            raise InputError(f"the {name} mask shape {mask.shape} differs from the image shape "
                             f"{shape}; resample it onto the image grid")
    if not cartilage.any():
        raise InputError("no cartilage voxels: segment the cartilage first")
    if not bone.any():
        raise InputError("no bone voxels: segment the bone under the cartilage first")
    box = bounding_box(cartilage, shape, margin=1)
    if not (binary_dilation(cartilage[box]) & bone[box]).any():
        raise InputError("cartilage does not touch the bone: check the label names")
    return box


def grow_box(box: tuple[slice, ...], shape: tuple[int, ...], margin: int) -> tuple[slice, ...]:
    """``box`` grown by ``margin`` voxels on every side, inside ``shape``."""
    return tuple(slice(max(s.start - margin, 0), min(s.stop + margin, n))
                 for s, n in zip(box, shape, strict=True))


def bounding_box(mask: np.ndarray, shape: tuple[int, ...], margin: int) -> tuple[slice, ...]:
    """Box (k, j, i slices) around the mask's voxels, grown by ``margin`` inside ``shape``."""
    box = []
    for axis in range(3):
        other = tuple(a for a in range(3) if a != axis)
        nonzero = np.flatnonzero(mask.any(axis=other))
        box.append(slice(max(int(nonzero[0]) - margin, 0),
                         min(int(nonzero[-1]) + 1 + margin, shape[axis])))
    return tuple(box)


def _outside_voxels(verts_kji: np.ndarray, field: np.ndarray) -> np.ndarray:
    """Index (k, j, i) of the below-level end of the grid edge each vertex lies on."""
    low = np.clip(np.floor(verts_kji).astype(np.int64), 0, np.array(field.shape) - 1)
    high = np.clip(np.ceil(verts_kji).astype(np.int64), 0, np.array(field.shape) - 1)
    low_value = field[low[:, 0], low[:, 1], low[:, 2]]
    high_value = field[high[:, 0], high[:, 1], high[:, 2]]
    return np.where((low_value <= high_value)[:, None], low, high)


def _faces_bone(outside: np.ndarray, bone: np.ndarray, cartilage: np.ndarray) -> np.ndarray:
    """Whether each vertex's outside voxel is bone, or a blurred-away cartilage voxel on bone.

    After blurring, a cartilage voxel wedged into a bone staircase can fall below 0.5; the
    vertex then lies inside the labelled cartilage but still on the bone side.
    """
    from scipy.ndimage import binary_dilation

    on_bone = bone | (cartilage & binary_dilation(bone, np.ones((3, 3, 3), bool)))
    return on_bone[outside[:, 0], outside[:, 1], outside[:, 2]]


def mesh_vertex_normals(verts: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """Unit vertex normals: area-weighted sums of the normals of the faces around a vertex."""
    a, b, c = (verts[faces[:, n]] for n in range(3))
    face_normals = np.cross(b - a, c - a)  # length = twice the area: area weighting
    out = np.zeros_like(verts)
    for n in range(3):
        for axis in range(3):  # bincount: np.add.at without its slowness
            out[:, axis] += np.bincount(faces[:, n], face_normals[:, axis],
                                        minlength=len(verts))
    return out / np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)


def cartilage_surfaces(cartilage: np.ndarray, bone: np.ndarray, volume: Volume,
                       sigma_voxels: float = 0.5,
                       smooth_iterations: int = 0) -> CartilageSurfaces:
    """Extract and classify the cartilage surface (see the module docstring)."""
    from scipy.ndimage import gaussian_filter
    from skimage.measure import marching_cubes

    box = grow_box(check_cartilage_and_bone(cartilage, bone, volume), cartilage.shape,
                   MARGIN_VOXELS - 1)
    pad = 1  # an empty layer so surfaces at the image border still close
    cartilage_crop = np.pad(cartilage[box], pad)
    field = cartilage_crop.astype(np.float32)
    bone_crop = np.pad(bone[box], pad)
    if sigma_voxels > 0:
        field = gaussian_filter(field, sigma_voxels, mode="constant")
    verts, faces, normals, _ = marching_cubes(field, level=0.5, allow_degenerate=False)
    outside = _outside_voxels(verts, field)
    is_interface = _faces_bone(outside, bone_crop, cartilage_crop)

    offset = np.array([s.start for s in box], dtype=float) - pad
    verts_ras = volume.index_to_ras((verts + offset)[:, ::-1])
    linear = volume.ijk_to_ras()[:3, :3]
    normals_ras = normals[:, ::-1] @ np.linalg.inv(linear)  # gradients: inverse transpose
    normals_ras /= np.maximum(np.linalg.norm(normals_ras, axis=1, keepdims=True), 1e-12)
    if smooth_iterations > 0:
        from mskai.measure.mesh import taubin_smooth

        verts_ras = taubin_smooth(verts_ras, faces, iterations=smooth_iterations)
        mesh_normals = mesh_vertex_normals(verts_ras, faces)
        sign = np.sign(np.einsum("ij,ij->", mesh_normals, normals_ras))
        normals_ras = sign * mesh_normals
    return CartilageSurfaces(verts_ras, faces.astype(np.int64), normals_ras,
                             np.asarray(is_interface, dtype=bool))
