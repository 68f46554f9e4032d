"""Synthetic knee MR images (DESS, PD-FS, T2) with exact labels, from one real segmentation.

One case = one seed. Per case (all vectorised numpy/scipy, a few seconds at 1 mm):

1. a random spatial transform of the tissue model (:mod:`mskai.phantoms.knee_anatomy`):
   smooth elastic displacement (B-spline-like, cubic upsampling of a coarse random grid),
   anisotropic scaling, small rotations about the grid centre, and left/right
   mirroring (left knees);
2. partial volume: every output voxel averages 2x2x2 sub-samples of the 0.5 mm tissue
   model, each given its tissue's intensity (table :data:`INTENSITY`, randomised per case)
   times per-tissue texture noise;
3. acquisition: in-plane blur, a slice profile of random thickness (box filter along one
   axis, decimation, linear interpolation back), smooth multiplicative bias field, Rician
   noise at a random SNR, on the decimated grid;
4. the result is normalised exactly as :mod:`mskai.inference.preprocess` will do at
   inference time (:data:`INTENSITY_SPEC`).

Labels are the network labels of :data:`mskai.phantoms.knee_anatomy.LABELS` at the output
voxel centres.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mskai.phantoms.knee_anatomy import CODE_TO_LABEL, CODE_TO_TISSUE, CODES, TISSUES, Anatomy

SPACING = 1.0  # mm, isotropic network grid
# The seed of the CI test case and of ``mskai demo``; never a training or held-out seed
# (the seed plan is training/knee/cases.py).
TEST_SEED = 90001
SEQUENCES = ("DESS", "PDFS", "T2")
INTENSITY_SPEC = {"type": "mr_percentile", "low": 1, "high": 99.5, "b_min": 0.0,
                  "b_max": 1.0, "clip": True}

# Relative signal per tissue (fluid ~ 1). DESS = 3D double-echo steady state with water
# excitation (OAI-like): fluid and cartilage bright, fat and marrow dark. PD-FS = fat-
# suppressed proton density FSE: fluid bright, cartilage intermediate, marrow and fat dark.
# T2 = T2-weighted FSE without fat suppression: fluid bright, cartilage dark-intermediate,
# marrow and fat intermediate-bright, muscle dark. Cortex, menisci, air: dark everywhere.
INTENSITY: dict[str, dict[str, float]] = {
    #        air   fat   muscle fluid cortex marrow cartilage meniscus capsule
    "DESS": dict(zip(TISSUES, (0.0, 0.10, 0.28, 1.00, 0.03, 0.16, 0.60, 0.06, 0.35),
                     strict=True)),
    "PDFS": dict(zip(TISSUES, (0.0, 0.10, 0.33, 0.95, 0.03, 0.14, 0.48, 0.07, 0.40),
                     strict=True)),
    "T2": dict(zip(TISSUES, (0.0, 0.62, 0.20, 1.00, 0.03, 0.55, 0.28, 0.05, 0.30),
                   strict=True)),
    # Evaluation-only contrasts (never in SEQUENCES, so no model trains on them):
    # T1-weighted SE: fat and fatty marrow brightest, fluid dark, cartilage intermediate.
    "T1": dict(zip(TISSUES, (0.0, 1.00, 0.35, 0.20, 0.03, 0.90, 0.45, 0.05, 0.40),
                   strict=True)),
    # PD-weighted FSE without fat suppression: fat, marrow and fluid bright, muscle dark.
    "PD": dict(zip(TISSUES, (0.0, 0.85, 0.40, 0.75, 0.03, 0.75, 0.55, 0.06, 0.50),
                   strict=True)),
}
UNSEEN_SEQUENCES = ("T1", "PD")  # held-out evaluation contrasts of knee_unet_v1 and v2
# Texture noise amplitude (fraction of the tissue's intensity) and its spatial scale.
TEXTURE = dict(zip(TISSUES, (0.0, 0.08, 0.10, 0.05, 0.0, 0.15, 0.07, 0.25, 0.10),
                   strict=True))
INTENSITY_JITTER = 0.15  # per-case relative sd of each tissue's mean signal


@dataclass(frozen=True)
class Case:
    """One synthetic image ``[X, Y, Z]`` (normalised, float32) with its labels (uint8)."""

    image: np.ndarray
    labels: np.ndarray
    sequence: str
    seed: int
    spacing: float
    origin: tuple[float, float, float]
    direction: tuple[float, ...]
    info: dict


def synthesize(anatomy: Anatomy, seed: int, sequence: str, spacing: float = SPACING,
               deform: bool = True) -> Case:
    """One case. ``deform=False`` renders the reference anatomy itself (no transform)."""
    from scipy import ndimage

    rng = np.random.default_rng(seed)
    shape = tuple(int(n) for n in
                  np.floor((np.asarray(anatomy.codes.shape) - 1) * anatomy.spacing
                           / spacing).astype(int) + 1)
    info: dict = {"sequence": sequence, "seed": seed}
    coords, mirror = _source_points(anatomy, shape, spacing, rng, deform, info)
    tissue_mean, tissue_tex = _tissue_tables(sequence, rng, info)
    fine = _smooth_noise(shape, 0.8, rng)
    coarse = _smooth_noise(shape, 3.0, rng)
    texture = 0.6 * fine + 0.4 * coarse
    effusion = ndimage.gaussian_filter(rng.standard_normal(shape), 4.0)
    effusion = effusion > np.quantile(effusion, rng.uniform(0.1, 0.9))
    image = np.zeros(shape, dtype=np.float32)
    half = spacing / 4.0
    for offset in np.array(np.meshgrid(*[[-half, half]] * 3, indexing="ij")).reshape(3, -1).T:
        codes = _sample(anatomy, coords, offset, shape)
        tissue = CODE_TO_TISSUE[codes]
        fluid_far = codes == [c[0] for c in CODES].index("fluid_far")
        tissue = np.where(fluid_far & effusion, TISSUES.index("fluid"), tissue)
        image += tissue_mean[tissue] * (1.0 + tissue_tex[tissue] * texture)
    image /= 8.0
    labels = CODE_TO_LABEL[_sample(anatomy, coords, np.zeros(3), shape)]
    image = _acquire(image, spacing, rng, info)
    if mirror:
        image = np.flip(image, anatomy.lr_axis)
        labels = np.flip(labels, anatomy.lr_axis)
    image = _normalise(np.ascontiguousarray(image))
    return Case(image, np.ascontiguousarray(labels), sequence, seed, spacing,
                anatomy.origin, anatomy.direction, info)


def _source_points(anatomy: Anatomy, shape: tuple[int, ...], spacing: float,
                   rng: np.random.Generator, deform: bool, info: dict):
    """Anatomy-grid mm positions of the output voxel centres (before sub-sample offsets)."""
    from scipy import ndimage
    from scipy.spatial.transform import Rotation

    grid = np.stack(np.meshgrid(*[np.arange(n, dtype=np.float32) * spacing for n in shape],
                                indexing="ij"))
    if not deform:
        info.update(mirror=False)
        return grid, False
    centre = (np.asarray(shape) - 1) * spacing / 2.0
    angles = rng.uniform(-10, 10, 3)
    scale = rng.uniform(0.88, 1.12) * rng.uniform(0.95, 1.05, 3)
    matrix = Rotation.from_euler("xyz", angles, degrees=True).as_matrix() / scale[:, None]
    moved = np.einsum("ij,j...->i...", matrix.astype(np.float32),
                      grid - centre[:, None, None, None].astype(np.float32))
    moved += centre[:, None, None, None].astype(np.float32)
    amplitude = rng.uniform(2.0, 5.0)
    nodes = rng.integers(4, 7)
    for axis in range(3):
        control = rng.standard_normal((nodes,) * 3) * amplitude
        moved[axis] += ndimage.zoom(control, np.asarray(shape) / nodes, order=3,
                                    mode="nearest", grid_mode=True)[:shape[0], :shape[1],
                                                                    :shape[2]]
    mirror = bool(rng.random() < 0.5)
    info.update(rotation_deg=[round(float(a), 2) for a in angles],
                scale=[round(float(s), 3) for s in scale], elastic_mm=round(amplitude, 2),
                mirror=mirror)
    return moved, mirror


def _tissue_tables(sequence: str, rng: np.random.Generator, info: dict):
    table = INTENSITY[sequence]
    mean = np.array([table[t] for t in TISSUES], dtype=np.float32)
    mean *= np.clip(1.0 + INTENSITY_JITTER * rng.standard_normal(len(TISSUES)), 0.6, 1.5)
    tex = np.array([TEXTURE[t] for t in TISSUES], dtype=np.float32)
    tex *= rng.uniform(0.5, 1.5)
    info["tissue_signal"] = {t: round(float(m), 3) for t, m in zip(TISSUES, mean, strict=True)}
    return mean, tex


def _sample(anatomy: Anatomy, coords: np.ndarray, offset: np.ndarray,
            shape: tuple[int, ...]) -> np.ndarray:
    """Tissue codes at ``coords + offset`` (mm), nearest neighbour, edges extended."""
    from scipy import ndimage

    index = (coords + offset.astype(np.float32)[:, None, None, None]) / anatomy.spacing
    return ndimage.map_coordinates(anatomy.codes, index.reshape(3, -1), order=0,
                                   mode="nearest").reshape(shape)


def _smooth_noise(shape: tuple[int, ...], sigma: float, rng: np.random.Generator):
    from scipy import ndimage

    field = ndimage.gaussian_filter(rng.standard_normal(shape).astype(np.float32), sigma)
    return field / max(float(field.std()), 1e-6)


def _acquire(image: np.ndarray, spacing: float, rng: np.random.Generator,
             info: dict) -> np.ndarray:
    """Point spread, slice thickness, bias field and Rician noise of an acquisition."""
    from scipy import ndimage

    sigma = rng.uniform(0.0, 0.6)
    axis = int(rng.choice(3, p=[0.6, 0.2, 0.2]))
    thickness = spacing if rng.random() < 0.35 else rng.uniform(spacing, 3.5)
    step = max(1, int(round(thickness / spacing)))
    in_plane = [sigma] * 3
    in_plane[axis] = 0.0
    image = ndimage.gaussian_filter(image, in_plane)
    if step > 1:
        image = ndimage.uniform_filter1d(image, step, axis=axis)
    acquired = np.take(image, np.arange(0, image.shape[axis], step), axis=axis)
    acquired = acquired * _bias(acquired.shape, rng)
    snr = rng.uniform(10.0, 40.0)
    noise = 1.0 / snr  # fluid ~ 1
    real = acquired + rng.normal(0.0, noise, acquired.shape)
    imag = rng.normal(0.0, noise, acquired.shape)
    acquired = np.sqrt(real * real + imag * imag).astype(np.float32)
    info.update(blur_sigma_vox=round(sigma, 2), slice_axis=axis,
                slice_mm=round(step * spacing, 2), snr=round(snr, 1))
    return _interpolate_back(acquired, step, axis, image.shape[axis])


def _bias(shape: tuple[int, ...], rng: np.random.Generator) -> np.ndarray:
    """exp of a smooth random field: a multiplicative bias of roughly 0.6..1.6."""
    from scipy import ndimage

    control = rng.normal(0.0, 0.25, (3, 3, 3))
    field = ndimage.zoom(control, np.asarray(shape) / 3.0, order=3, mode="nearest",
                         grid_mode=True)[:shape[0], :shape[1], :shape[2]]
    return np.exp(field).astype(np.float32)


def _interpolate_back(acquired: np.ndarray, step: int, axis: int, length: int):
    """Linear interpolation along ``axis`` from slices every ``step`` voxels to all voxels."""
    if step == 1:
        return acquired
    position = np.arange(length) / step
    low = np.clip(np.floor(position).astype(int), 0, acquired.shape[axis] - 1)
    high = np.clip(low + 1, 0, acquired.shape[axis] - 1)
    weight = (position - low).clip(0, 1).astype(np.float32)
    shape = [1, 1, 1]
    shape[axis] = length
    weight = weight.reshape(shape)
    return (np.take(acquired, low, axis=axis) * (1 - weight)
            + np.take(acquired, high, axis=axis) * weight)


def _normalise(image: np.ndarray) -> np.ndarray:
    from mskai.inference.preprocess import normalise_intensity

    return normalise_intensity(image, INTENSITY_SPEC).astype(np.float32)


def to_volume(case: Case, image: bool = True):
    """The case's image (or labels) as an mskai Volume with its physical geometry."""
    from mskai.volume import Volume

    array = case.image if image else case.labels
    return Volume(np.ascontiguousarray(array.transpose(2, 1, 0)), (case.spacing,) * 3,
                  case.origin, np.asarray(case.direction).reshape(3, 3), modality="MR")


def save_case(case: Case, folder: Path) -> Path:
    """Compressed ``.npz`` (image float16, labels uint8) named by sequence and seed."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{case.sequence}_{case.seed:05d}.npz"
    np.savez_compressed(path, image=case.image.astype(np.float16), labels=case.labels)
    return path
