"""Simulated fractures of REAL bone: cut a bone of a CT along a plane and displace the piece.

Steps (all geometry in RAS millimetres, so any grid works):

1. pick a cut point on the bone's interior, at a random fraction of its length along its
   principal axis; the plane normal is the local bone axis (PCA of the bone within
   ``local_mm``) tilted by up to ``max_tilt_deg``;
2. the bone within ``gap_mm / 2`` of the plane (and within ``cut_radius_mm`` of the point)
   becomes soft tissue; the part beyond the plane that the cut detached is the distal piece;
3. the distal piece is moved rigidly, ``x -> c + Q (x - c) + t`` (rotation ``Q`` by
   ``angulation_deg`` about an axis perpendicular to the normal through the cut centre
   ``c``, then a translation ``t`` perpendicular to the normal), resampled with
   nearest-neighbour interpolation (``order=0``; linear interpolation lowered the peak HU of
   1-2 voxel thin ribs at 3 mm by a third to a half, so moved fragments came out fainter
   than any real bone and vanished from every bone mask); where it was, soft tissue
   (``soft_tissue_hu`` plus Gaussian noise) fills in.

The truth gives the cut centre (where the detector should report the fracture), the motion
and both fragment masks on the output grid.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mskai.volume import Volume

from .grid import rotation


@dataclass
class SimulatedFracture:
    image: Volume
    proximal: np.ndarray  # bone mask on the fracture's proximal side (unmoved)
    distal: np.ndarray  # moved distal piece
    center_ras: np.ndarray  # cut centre on the unmoved side (mid-gap)
    normal_ras: np.ndarray
    translation_ras: np.ndarray
    angulation_deg: float
    gap_mm: float


def _points(mask: np.ndarray, volume: Volume) -> np.ndarray:
    kji = np.argwhere(mask)
    return volume.index_to_ras(kji[:, ::-1].astype(float)).reshape(-1, 3)


def _perpendicular_unit(n: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    v = rng.normal(size=3)
    v -= (v @ n) * n
    return v / np.linalg.norm(v)


def _ras_of_grid(volume: Volume, box: tuple[slice, slice, slice]) -> np.ndarray:
    k, j, i = (np.arange(s.start, s.stop, dtype=float) for s in box)
    kk, jj, ii = np.meshgrid(k, j, i, indexing="ij")
    ijk = np.stack([ii.ravel(), jj.ravel(), kk.ravel()], axis=1)
    return volume.index_to_ras(ijk).reshape(-1, 3)


def simulate_fracture(image: Volume, bone: np.ndarray, seed: int = 0,
                      gap_mm: tuple[float, float] = (4.0, 8.0),
                      translation_mm: tuple[float, float] = (2.0, 8.0),
                      angulation_deg: tuple[float, float] = (3.0, 15.0),
                      max_tilt_deg: float = 15.0, position: tuple[float, float] = (0.3, 0.7),
                      local_mm: float = 25.0, cut_radius_mm: float = 35.0,
                      soft_tissue_hu: float = 40.0, noise_sd: float = 15.0,
                      tries: int = 20) -> SimulatedFracture:
    """A copy of ``image`` with ``bone`` (a boolean mask of one bone) broken (module doc).

    Parameters given as (low, high) are drawn uniformly with ``seed``. Raises ValueError
    when no plane within ``tries`` draws detaches a piece of the bone.
    """
    from scipy import ndimage

    rng = np.random.default_rng(seed)
    pts = _points(bone, image)
    centroid = pts.mean(axis=0)
    main = np.linalg.eigh(np.cov((pts - centroid).T))[1][:, -1]
    s = (pts - centroid) @ main
    for _ in range(tries):
        gap = float(rng.uniform(*gap_mm))
        s0 = np.quantile(s, rng.uniform(*position))
        near_s = pts[np.abs(s - s0) <= 3.0]
        c = near_s[np.argmin(np.linalg.norm(near_s - near_s.mean(axis=0), axis=1))]
        local = pts[np.linalg.norm(pts - c, axis=1) <= local_mm]
        axis = np.linalg.eigh(np.cov((local - local.mean(axis=0)).T))[1][:, -1]
        n = rotation(tuple(_perpendicular_unit(axis, rng)),
                     float(rng.uniform(0, max_tilt_deg))) @ axis
        sd = (pts - c) @ n
        disc = (np.abs(sd) <= 1.5) & (np.linalg.norm(pts - c, axis=1) <= cut_radius_mm)
        c = pts[disc].mean(axis=0)
        sd = (pts - c) @ n
        if np.count_nonzero(sd > 0) > np.count_nonzero(sd < 0):
            n, sd = -n, -sd  # the smaller side is the distal piece that moves
        within = np.linalg.norm(pts - c, axis=1) <= cut_radius_mm
        cut = (np.abs(sd) <= gap / 2) & within
        kji = np.argwhere(bone)
        cut_mask = np.zeros_like(bone)
        cut_mask[tuple(kji[cut].T)] = True
        rest, count = ndimage.label(bone & ~cut_mask, structure=np.ones((3, 3, 3)))
        side = rest[tuple(kji[(sd > gap / 2) & (sd <= gap / 2 + 3.0) & within].T)]
        side = side[side > 0]
        if count < 2 or side.size == 0:
            continue
        distal_label = np.bincount(side).argmax()
        other = rest[tuple(kji[(sd < -gap / 2) & (sd >= -gap / 2 - 3.0) & within].T)]
        if distal_label in set(other[other > 0].tolist()):
            continue  # the piece beyond the plane is still attached: not a fracture
        distal = rest == distal_label
        return _move(image, bone, cut_mask, distal, c, n, gap, rng, translation_mm,
                     angulation_deg, soft_tissue_hu, noise_sd)
    raise ValueError("no cut plane detached a piece of the bone; give a longer bone")


def _move(image: Volume, bone: np.ndarray, cut_mask: np.ndarray, distal: np.ndarray,
          c: np.ndarray, n: np.ndarray, gap: float, rng: np.random.Generator,
          translation_mm: tuple[float, float], angulation_deg: tuple[float, float],
          soft_tissue_hu: float, noise_sd: float, order: int = 0) -> SimulatedFracture:
    from scipy import ndimage

    from mskai.crop import padded_bbox

    angle = float(rng.uniform(*angulation_deg))
    q = rotation(tuple(_perpendicular_unit(n, rng)), angle)
    t = _perpendicular_unit(n, rng) * float(rng.uniform(*translation_mm))
    src = np.asarray(image.array, dtype=np.float32)
    out = src.copy()
    hole = distal | cut_mask
    out[hole] = soft_tissue_hu + rng.normal(0, noise_sd, size=int(hole.sum()))
    pad = float(np.linalg.norm(t)) + 60.0 * np.radians(angle) + 10.0
    box = padded_bbox(distal, image, pad_mm=pad)
    ras = _ras_of_grid(image, box)
    back = (ras - c - t) @ q + c  # inverse motion: q is orthonormal
    ijk = image.ras_to_index(back)
    coords = ijk[:, ::-1].T
    inside = ndimage.map_coordinates(distal.astype(np.float32), coords, order=order,
                                     cval=0) >= 0.5
    values = ndimage.map_coordinates(src, coords, order=order, cval=soft_tissue_hu)
    shape = tuple(sl.stop - sl.start for sl in box)
    moved = np.zeros(bone.shape, dtype=bool)
    moved[box] = inside.reshape(shape)
    block = out[box]
    block[moved[box]] = values.reshape(shape)[moved[box]]
    out[box] = block
    proximal = bone & ~distal & ~cut_mask & ~moved
    volume = image.with_array(out.astype(image.array.dtype))
    return SimulatedFracture(volume, proximal, moved, c, n, t, angle, gap)


# Bones of the TotalSegmentator example CT (total-v2 labels) cut for the learned scorer:
# left ribs 7-12 and the left femur for training, right ribs 7-12 and the right femur held
# out for evaluation; seeds differ as well (training from 1000, evaluation from 0).
TRAIN_BONES = (98, 99, 100, 101, 102, 103, 75)
HELD_OUT_BONES = (110, 111, 112, 113, 114, 115, 76)
TRAIN_SEED0 = 1000


def fracture_cases(image: Volume, seg: np.ndarray, split: str, per_bone: int,
                   gap_mm: tuple[float, float] = (4.0, 9.0)):
    """Yield ``(bone label, seed, SimulatedFracture)`` of the ``"train"`` or ``"test"`` split.

    Cuts that detach nothing (ValueError) are skipped, so a bone may give fewer cases.
    """
    bones = TRAIN_BONES if split == "train" else HELD_OUT_BONES
    seed0 = TRAIN_SEED0 if split == "train" else 0
    for rep in range(per_bone):
        for n, label in enumerate(bones):
            seed = seed0 + rep * len(bones) + n
            try:
                yield label, seed, simulate_fracture(image, seg == label, seed=seed,
                                                     gap_mm=gap_mm)
            except ValueError:
                continue
