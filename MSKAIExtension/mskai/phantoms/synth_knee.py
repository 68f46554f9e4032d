"""SynthSeg-style training patches for the knee: random contrast, resolution and artefacts.

After Billot et al., "SynthSeg: Segmentation of brain MRI scans of any contrast and
resolution without retraining", Medical Image Analysis 86 (2023) 102789. Only label maps
are used: the real pymskt knee segmentation (:mod:`knee_anatomy`, which adds cortex,
marrow, fluid, fat, muscle and air) plus per-sample made-up tissues
(:mod:`synth_knee_labels`: skin, muscle bellies and fascia, marrow and fat blobs,
ligaments, vessels). Per patch (:func:`sample_patch`):

1. spatial: a class-balanced centre, rotation up to +/-15 degrees about each axis, global
   and per-axis scaling, smooth elastic displacement, left/right flip;
2. partial volume: each output voxel averages 2x2x2 sub-samples of the 0.5 mm anatomy;
3. contrast: a Gaussian mixture - every generation label gets a random mean in [0, 1] and a
   random standard deviation (labels of one tissue group share a mean half of the time);
   no MR sequence table is used;
4. acquisition: blur, slice thickness 0.3-4 mm along a random axis (box profile,
   decimation, linear interpolation back), truncation (Gibbs ringing), ghosting,
   multiplicative bias field, Rician noise, field-of-view truncation;
5. normalisation by random percentiles (as ``mr_percentile`` does at inference) and gamma.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mskai.phantoms.knee_anatomy import Anatomy
from mskai.phantoms.synth_knee_labels import (
    GEN,
    GEN_TO_GROUP,
    GEN_TO_LABEL,
    N_GEN,
    add_skin,
    elaborate,
    random_fields,
)
from mskai.terminology import FEMUR, FIBULA, PATELLA, TIBIA

SPACING = 1.0            # mm, the network grid
N_CLASSES = int(GEN_TO_LABEL.max()) + 1
CLASS_CENTRED = 0.85     # share of patches centred near a voxel of a uniformly drawn class
MAX_CENTRES = 20000      # voxel positions kept per class for drawing centres
DARK = ("femur_cortex", "tibia_cortex", "patella_cortex", "fibula_cortex", "meniscus",
        "ligament")      # dark on nearly every MR sequence: usually drawn dark
BONES = (FEMUR, TIBIA, PATELLA, FIBULA)
SURROUNDINGS = ("subcutaneous_fat", "muscle", "periarticular_fat", "fluid_far", "skin",
                "muscle_2", "muscle_3", "muscle_4", "fascia", "fat_b", "ligament", "vessel")
FOV_MARGIN_MM = 25.0     # wide-field patches may be centred this far outside the anatomy


@dataclass(frozen=True)
class Recipe:
    """Probabilities of the sampling options added after ``knee_unet_v2`` (all 0 for v2).

    ``homogeneous_bone``: cortex and marrow of each bone share one mean (bone as one dark or
    bright tissue, as on fat-suppressed or water-excitation sequences at low resolution);
    ``uniform_surroundings``: every soft tissue around the joint (fat, muscle, skin, capsule,
    ligaments, vessels) shares one mean, sometimes air too (a featureless background);
    ``anisotropic``: a DESS-like acquisition, 0.3 mm in-plane and 1.2-2.0 mm slices
    along a random axis (any axis order), with full-resolution noise;
    ``class_centred``: share of class-centred patches (the rest anywhere in a field of
    view widened by ``FOV_MARGIN_MM``: whole-knee scans hold much background).
    """

    homogeneous_bone: float = 0.0
    uniform_surroundings: float = 0.0
    anisotropic: float = 0.0
    class_centred: float = CLASS_CENTRED
    fov_margin_mm: float = 0.0


V2_RECIPE = Recipe()
V3_RECIPE = Recipe(homogeneous_bone=0.3, uniform_surroundings=0.3, anisotropic=0.35,
                   class_centred=0.7, fov_margin_mm=FOV_MARGIN_MM)
# Trial continuation of v3 (train_synth.py --model v3b): fewer homogeneous bones, no
# patches beyond the label map (edge labels replicated there).
V3B_RECIPE = Recipe(homogeneous_bone=0.2, uniform_surroundings=0.3, anisotropic=0.35,
                    class_centred=0.75, fov_margin_mm=0.0)


@dataclass(frozen=True)
class LabelBank:
    """The anatomy as generation labels, and voxel positions (mm) per network class."""

    gen: np.ndarray
    spacing: float
    lr_axis: int
    centres: tuple[np.ndarray, ...]


def make_bank(anatomy: Anatomy, seed: int = 0) -> LabelBank:
    """Generation labels with skin, and up to :data:`MAX_CENTRES` positions per class."""
    rng = np.random.default_rng(seed)
    gen = add_skin(anatomy.codes, anatomy.spacing)
    net = GEN_TO_LABEL[gen]
    centres = []
    for label in range(1, N_CLASSES):
        found = np.argwhere(net == label)
        keep = rng.choice(len(found), min(len(found), MAX_CENTRES), replace=False)
        centres.append((found[keep] * anatomy.spacing).astype(np.float32))
    return LabelBank(gen, anatomy.spacing, anatomy.lr_axis, tuple(centres))


def sample_patch(bank: LabelBank, rng: np.random.Generator, patch: int = 80,
                 spacing: float = SPACING, recipe: Recipe = V2_RECIPE
                 ) -> tuple[np.ndarray, np.ndarray, dict]:
    """One training patch: (image float32 [P, P, P] in [0, 1], labels uint8, info)."""
    return render(sample_geometry(bank, rng, patch, spacing, recipe), rng, recipe)


@dataclass(frozen=True)
class Geometry:
    """One deformed patch of the anatomy: generation labels of its 2x2x2 sub-samples."""

    sub_labels: tuple[np.ndarray, ...]
    labels: np.ndarray
    spacing: float
    lr_axis: int
    info: dict


def sample_geometry(bank: LabelBank, rng: np.random.Generator, patch: int = 80,
                    spacing: float = SPACING, recipe: Recipe = V2_RECIPE) -> Geometry:
    """The spatial part of a sample (the costly one; several contrasts can share it)."""
    info: dict = {}
    shape = (patch,) * 3
    coords, matrix = _source_points(bank, shape, spacing, rng, info, recipe)
    fields = random_fields(shape, spacing, rng)
    half = spacing / 4.0
    offsets = np.array(np.meshgrid(*[[-half, half]] * 3, indexing="ij")).reshape(3, -1).T
    sub = tuple(elaborate(_sample(bank, coords + (matrix @ o)[:, None, None, None]), fields)
                for o in offsets)
    labels = GEN_TO_LABEL[_sample(bank, coords)]
    return Geometry(sub, labels, spacing, bank.lr_axis, info)


def render(geometry: Geometry, rng: np.random.Generator, recipe: Recipe = V2_RECIPE
           ) -> tuple[np.ndarray, np.ndarray, dict]:
    """Random contrast, acquisition, normalisation and flip of one geometry."""
    info = dict(geometry.info)
    mean, sd = _gaussian_mixture(rng, info)
    mean = _share_means(mean, rng, recipe, info)
    shape = geometry.labels.shape
    image = np.zeros(shape, np.float32)
    spread = np.zeros(shape, np.float32)
    for gen in geometry.sub_labels:
        image += mean[gen]
        spread += sd[gen]
    n = len(geometry.sub_labels)
    image = (image + spread * rng.standard_normal(shape, dtype=np.float32)) / n
    if recipe.anisotropic > 0 and rng.random() < recipe.anisotropic:
        image = acquire_anisotropic(image, geometry.spacing, rng, info)
    else:
        image = acquire(image, geometry.spacing, rng, info)
    image, labels = _truncate_fov(image, geometry.labels, rng, info)
    image = _normalise(image, rng)
    if rng.random() < 0.5:  # a mirrored right knee is a left knee: labels unchanged
        axis = geometry.lr_axis
        image, labels = np.flip(image, axis), np.flip(labels, axis)
        info["flipped"] = True
    return (np.ascontiguousarray(image, dtype=np.float32), np.ascontiguousarray(labels), info)


def _source_points(bank: LabelBank, shape: tuple[int, ...], spacing: float,
                   rng: np.random.Generator, info: dict, recipe: Recipe = V2_RECIPE):
    """Anatomy mm positions of the patch voxel centres, and the linear part of the map."""
    from scipy.spatial.transform import Rotation

    if rng.random() < recipe.class_centred:
        options = bank.centres[int(rng.integers(len(bank.centres)))]
        centre = options[rng.integers(len(options))] + rng.uniform(-16, 16, 3)
    else:
        extent = (np.asarray(bank.gen.shape) - 1) * bank.spacing + 2 * recipe.fov_margin_mm
        centre = rng.uniform(0, 1, 3) * extent - recipe.fov_margin_mm
    grid = np.stack(np.meshgrid(*[(np.arange(n, dtype=np.float32) - (n - 1) / 2) * spacing
                                  for n in shape], indexing="ij"))
    angles = rng.uniform(-15, 15, 3)
    scale = rng.uniform(0.85, 1.15) * rng.uniform(0.93, 1.07, 3)
    matrix = (Rotation.from_euler("xyz", angles, degrees=True).as_matrix()
              / scale[:, None]).astype(np.float32)
    coords = np.einsum("ij,j...->i...", matrix, grid) + centre[:, None, None, None]
    amplitude = rng.uniform(0.0, 4.0)
    nodes = int(rng.integers(3, 6))
    for axis in range(3):
        control = (rng.standard_normal((nodes,) * 3) * amplitude).astype(np.float32)
        coords[axis] += upsample(control, shape)
    info.update(rotation_deg=np.round(angles, 1).tolist(), scale=np.round(scale, 3).tolist(),
                elastic_mm=round(float(amplitude), 2))
    return coords.astype(np.float32), matrix


def _sample(bank: LabelBank, coords: np.ndarray) -> np.ndarray:
    from scipy import ndimage

    shape = coords.shape[1:]
    index = coords.reshape(3, -1) / bank.spacing
    return ndimage.map_coordinates(bank.gen, index, order=0, mode="nearest").reshape(shape)


def _gaussian_mixture(rng: np.random.Generator, info: dict) -> tuple[np.ndarray, np.ndarray]:
    """Random mean and standard deviation per generation label."""
    if rng.random() < 0.5:  # tissues of one group share a mean (as on real MR)
        group_mean = rng.uniform(0.0, 1.0, int(GEN_TO_GROUP.max()) + 1)
        mean = group_mean[GEN_TO_GROUP] * rng.uniform(0.9, 1.1, N_GEN)
    else:
        mean = rng.uniform(0.0, 1.0, N_GEN)
    for name in DARK:
        if rng.random() < 0.8:
            mean[GEN[name]] = rng.uniform(0.0, 0.15)
    if rng.random() < 0.9:
        mean[GEN["air"]] = rng.uniform(0.0, 0.05)
    sd = rng.uniform(0.0, 0.08, N_GEN) * rng.uniform(0.3, 1.0)
    info["gmm_mean"] = np.round(mean, 3).tolist()
    return mean.astype(np.float32), sd.astype(np.float32)


def _share_means(mean: np.ndarray, rng: np.random.Generator, recipe: Recipe,
                 info: dict) -> np.ndarray:
    """Recipe options that give groups of generation labels one mean (see :class:`Recipe`)."""
    if recipe.homogeneous_bone > 0 and rng.random() < recipe.homogeneous_bone:
        for bone in BONES:
            parts = [GEN[f"{bone}_cortex"], GEN[f"{bone}_marrow"]]
            mean[parts] = mean[GEN[f"{bone}_marrow"]]
        mean[GEN["marrow_b"]] = mean[GEN["femur_marrow"]]
        info["homogeneous_bone"] = True
    if recipe.uniform_surroundings > 0 and rng.random() < recipe.uniform_surroundings:
        names = SURROUNDINGS + (("air",) if rng.random() < 0.5 else ())
        mean[[GEN[name] for name in names]] = rng.uniform(0.0, 1.0)
        info["uniform_surroundings"] = True
    return mean


def acquire_anisotropic(image: np.ndarray, spacing: float, rng: np.random.Generator,
                        info: dict) -> np.ndarray:
    """A DESS-like 3D acquisition: fine in-plane, 1.2-2.0 mm slices along a random axis,
    linear interpolation back to the network grid, bias field and Rician noise at the
    network grid (full-resolution noise is not averaged by the linear resampling)."""
    from scipy import ndimage

    axis = int(rng.integers(3))
    thickness = rng.uniform(1.2, 2.0)
    image = ndimage.gaussian_filter(image, rng.uniform(0.0, 0.4))
    image = resample_slices(image, thickness / spacing, axis, rng.uniform(0.0, 1.0))
    if rng.random() < 0.8:
        image = image * _bias(image.shape, rng)
    noise = rng.uniform(0.0, 0.06)
    real = image + rng.normal(0.0, noise, image.shape)
    imag = rng.normal(0.0, noise, image.shape)
    info.update(slice_axis=axis, slice_mm=round(float(thickness), 2), noise_sd=round(noise, 3),
                anisotropic=True)
    return np.sqrt(real * real + imag * imag).astype(np.float32)


def resample_slices(image: np.ndarray, step: float, axis: int, phase: float) -> np.ndarray:
    """Slices ``step`` voxels thick and apart along ``axis`` (box profile approximated by a
    Gaussian of the same variance), then linear interpolation back to every voxel."""
    from scipy import ndimage

    image = ndimage.gaussian_filter1d(image, step / np.sqrt(12.0), axis=axis)
    length = image.shape[axis]
    taken = np.arange(phase * step, length - 1 + 1e-6, step)
    index = np.arange(length, dtype=np.float64)
    image = np.moveaxis(image, axis, 0)
    low = np.clip(np.floor(taken).astype(int), 0, length - 2)
    frac = (taken - low).astype(np.float32)[:, None, None]
    slices = image[low] * (1 - frac) + image[low + 1] * frac
    position = np.clip(np.interp(index, taken, np.arange(len(taken))), 0, len(taken) - 1)
    lo = np.minimum(np.floor(position).astype(int), max(len(taken) - 2, 0))
    hi = np.minimum(lo + 1, len(taken) - 1)
    weight = (position - lo).astype(np.float32)[:, None, None]
    return np.moveaxis(slices[lo] * (1 - weight) + slices[hi] * weight, 0, axis)


def acquire(image: np.ndarray, spacing: float, rng: np.random.Generator,
            info: dict) -> np.ndarray:
    """Blur, slice thickness, Gibbs ringing, ghosting, bias field and Rician noise."""
    from scipy import ndimage

    image = ndimage.gaussian_filter(image, rng.uniform(0.0, 0.7))
    axis = int(rng.integers(3))
    thickness = rng.uniform(0.3, 4.0) if rng.random() < 0.7 else spacing
    step = max(1, int(round(thickness / spacing)))
    if step > 1:
        image = _thick_slices(image, step, axis, int(rng.integers(step)))
    if rng.random() < 0.3:
        image = _gibbs(image, int(rng.integers(3)), rng.uniform(0.3, 0.8))
    if rng.random() < 0.2:
        ghost_axis = int(rng.choice([a for a in range(3) if a != axis]))
        shift = int(rng.integers(6, image.shape[ghost_axis] // 2 + 1))
        image = image + rng.uniform(0.03, 0.2) * 0.5 * (
            np.roll(image, shift, ghost_axis) + np.roll(image, -shift, ghost_axis))
    if rng.random() < 0.8:
        image = image * _bias(image.shape, rng)
    noise = rng.uniform(0.0, 0.06)
    real = image + rng.normal(0.0, noise, image.shape)
    imag = rng.normal(0.0, noise, image.shape)
    info.update(slice_axis=axis, slice_mm=round(step * spacing, 2), noise_sd=round(noise, 3))
    return np.sqrt(real * real + imag * imag).astype(np.float32)


def _thick_slices(image: np.ndarray, step: int, axis: int, phase: int) -> np.ndarray:
    """Box slice profile of ``step`` voxels, slices every ``step``, linear back."""
    from scipy import ndimage

    image = ndimage.uniform_filter1d(image, step, axis=axis)
    length = image.shape[axis]
    taken = np.arange(phase, length, step)
    slices = np.take(image, taken, axis=axis)
    position = np.clip((np.arange(length) - phase) / step, 0, len(taken) - 1)
    low = np.floor(position).astype(int)
    high = np.minimum(low + 1, len(taken) - 1)
    weight = (position - low).astype(np.float32)
    shape = [1, 1, 1]
    shape[axis] = length
    weight = weight.reshape(shape)
    return (np.take(slices, low, axis=axis) * (1 - weight)
            + np.take(slices, high, axis=axis) * weight)


def _gibbs(image: np.ndarray, axis: int, keep: float) -> np.ndarray:
    """k-space truncation along ``axis`` to the central ``keep`` fraction (ringing)."""
    spectrum = np.fft.rfft(image, axis=axis)
    cut = max(2, int(spectrum.shape[axis] * keep))
    index = [slice(None)] * 3
    index[axis] = slice(cut, None)
    spectrum[tuple(index)] = 0
    return np.fft.irfft(spectrum, n=image.shape[axis], axis=axis).astype(np.float32)


def _bias(shape: tuple[int, ...], rng: np.random.Generator) -> np.ndarray:
    control = rng.normal(0.0, rng.uniform(0.1, 0.35), (3, 3, 3)).astype(np.float32)
    return np.exp(upsample(control, shape))


def upsample(control: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Separable linear interpolation of a small 3D grid spanning ``shape`` (fast zoom)."""
    out = control.astype(np.float32)
    for axis, n in enumerate(shape):
        m = control.shape[axis]
        position = np.linspace(0, m - 1, n)
        low = np.minimum(np.floor(position).astype(int), m - 2) if m > 1 else np.zeros(n, int)
        weight = np.zeros((n, m), np.float32)
        frac = position - low
        weight[np.arange(n), low] = 1 - frac
        if m > 1:
            weight[np.arange(n), low + 1] += frac
        out = np.moveaxis(np.tensordot(weight, np.moveaxis(out, axis, 0), axes=1), 0, axis)
    return out


def _truncate_fov(image: np.ndarray, labels: np.ndarray, rng: np.random.Generator,
                  info: dict) -> tuple[np.ndarray, np.ndarray]:
    """Now and then the field of view ends inside the patch: zeros (and background) beyond."""
    if rng.random() >= 0.15:
        return image, labels
    axis = int(rng.integers(3))
    width = int(rng.uniform(0.05, 0.3) * image.shape[axis])
    index = [slice(None)] * 3
    index[axis] = slice(0, width) if rng.random() < 0.5 else slice(image.shape[axis] - width,
                                                                     None)
    image, labels = image.copy(), labels.copy()
    image[tuple(index)] = 0.0
    labels[tuple(index)] = 0
    info["fov_cut"] = (axis, width)
    return image, labels


def _normalise(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Random-percentile scaling to [0, 1] (``mr_percentile`` is 1-99.5 %) and a gamma."""
    low, high = np.percentile(image, [rng.uniform(0.0, 2.0), rng.uniform(98.5, 99.9)])
    scaled = np.clip((image - low) / max(float(high - low), 1e-6), 0.0, 1.0)
    return scaled ** float(np.exp(rng.normal(0.0, 0.2)))
