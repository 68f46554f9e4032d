"""Joint space width: the smallest femur-to-tibia bone-surface distance, in mm.

Both bones are meshed inside the joint region only: the overlap of their bounding boxes,
each grown by ``REGION_MARGIN_MM``.
Each mask is blurred by a Gaussian of ``BLUR_VOXELS`` voxels before marching cubes at
0.5: a minimum distance is an extreme value, and on the raw voxel staircase it comes out
up to a voxel too small; the blurred surface is smooth and, for bone-sized curvature,
shifted by well under 0.1 mm. The residual error is the voxel terrace: on phantoms the
width is 0-0.45 mm too small (0.7 mm once, on 1.5 mm slices), within one slice spacing.
Vertices are mapped to RAS millimetres through the volume's IJK->RAS matrix; those on the
region's cut faces are dropped.
Each tibial vertex gets its distance to the nearest femoral vertex (cKDTree); the joint
space width is the smallest of them, overall and on each side of a medio-lateral split.

The split is a plane through the tibial plateau's centre whose normal is the medio-lateral
axis. For a real knee it comes from the patient axes: the axis is RAS left-right, medial is
towards the patient's left (-R) in a right knee and towards the right (+R) in a left knee;
the centre is half-way between the medial- and lateral-most tibial surface points that lie
within ``CONTACT_MM`` of the smallest gap (the load-bearing plateau).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from mskai.errors import InputError
from mskai.volume import Volume

REGION_MARGIN_MM = 12.0
CONTACT_MM = 5.0
BLUR_VOXELS = 1.0


@dataclass
class MedialLateralSplit:
    """A plane through ``center_ras``; points on the ``medial_direction_ras`` side are medial."""

    center_ras: np.ndarray
    medial_direction_ras: np.ndarray

    def is_medial(self, points_ras: np.ndarray) -> np.ndarray:
        direction = np.asarray(self.medial_direction_ras, dtype=float)
        direction = direction / np.linalg.norm(direction)
        return (points_ras - np.asarray(self.center_ras, dtype=float)) @ direction > 0


def _joint_region(femur: np.ndarray, tibia: np.ndarray, volume: Volume) -> tuple[slice, ...]:
    """Overlap of the two bones' bounding boxes, each grown by the region margin."""
    from mskai.measure.cartilage_surfaces import bounding_box

    margin = int(np.ceil(REGION_MARGIN_MM / min(volume.spacing)))
    box_f = bounding_box(femur, femur.shape, margin)
    box_t = bounding_box(tibia, tibia.shape, margin)
    region = tuple(slice(max(a.start, b.start), min(a.stop, b.stop))
                   for a, b in zip(box_f, box_t, strict=True))
    if any(s.stop <= s.start for s in region):
        raise InputError("the femur and tibia are far apart: check the label names")
    return region


def _surface_points(mask: np.ndarray, volume: Volume, region: tuple[slice, ...]) -> np.ndarray:
    """RAS vertices of the blurred mask's 0.5 surface in the region, without its cut faces."""
    from scipy.ndimage import gaussian_filter
    from skimage.measure import marching_cubes

    crop = mask[region]
    if not crop.any():
        raise InputError("a bone has no voxels near the joint: check the label names")
    field = gaussian_filter(crop.astype(np.float32), BLUR_VOXELS, mode="nearest")
    verts, _, _, _ = marching_cubes(field, level=0.5)
    inner = np.all((verts > 0.5) & (verts < np.asarray(field.shape) - 1.5), axis=1)
    start = np.array([s.start for s in region], dtype=float)
    return volume.index_to_ras((verts[inner] + start)[:, ::-1])


def knee_split(tibia_points: np.ndarray, gaps: np.ndarray,
               side: Literal["right", "left"]) -> MedialLateralSplit:
    """Split plane of a right or left knee from the tibial surface and its gaps to the femur."""
    if side not in ("right", "left"):
        raise InputError(f"knee side {side!r} is not 'right' or 'left'")
    medial = np.array([-1.0, 0.0, 0.0]) if side == "right" else np.array([1.0, 0.0, 0.0])
    plateau = tibia_points[gaps <= gaps.min() + CONTACT_MM]
    lr = plateau[:, 0]
    center = plateau.mean(axis=0)
    center[0] = (lr.min() + lr.max()) / 2
    return MedialLateralSplit(center, medial)


def joint_space_width(
    femur_mask: np.ndarray,
    tibia_mask: np.ndarray,
    volume: Volume,
    medial_lateral_split: MedialLateralSplit | Literal["right", "left"] | None = None,
) -> dict:
    """``{"min", "medial", "lateral"}`` in mm; medial/lateral are None without a split.

    ``medial_lateral_split`` is an explicit plane, or the knee's side ("right"/"left") to
    derive it from the patient axes (see the module docstring).
    """
    from scipy.spatial import cKDTree

    femur = np.asarray(femur_mask, dtype=bool)
    tibia = np.asarray(tibia_mask, dtype=bool)
    if not femur.any() or not tibia.any():
        raise InputError("the femur or tibia mask is empty: segment both bones first")
    if (femur & tibia).any():
        raise InputError("the femur and tibia masks overlap: check the label names")
    region = _joint_region(femur, tibia, volume)
    femur_pts = _surface_points(femur, volume, region)
    tibia_pts = _surface_points(tibia, volume, region)
    gaps, _ = cKDTree(femur_pts).query(tibia_pts, k=1)
    result = {"min": float(gaps.min()), "medial": None, "lateral": None}
    if medial_lateral_split is None:
        return result
    split = (medial_lateral_split if isinstance(medial_lateral_split, MedialLateralSplit)
             else knee_split(tibia_pts, gaps, medial_lateral_split))
    medial = split.is_medial(tibia_pts)
    if medial.any():
        result["medial"] = float(gaps[medial].min())
    if (~medial).any():
        result["lateral"] = float(gaps[~medial].min())
    return result
