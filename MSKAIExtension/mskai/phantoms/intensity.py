"""Rendering phantoms: sample geometry on a grid, then turn tissues into CT or MR intensities.

Phantom geometry is written as a *tissue function*: it takes points in **RAS** millimetres
(Slicer's convention), shape ``(n, 3)``, and returns an integer :class:`Tissue` code per point.
:class:`mskai.volume.Volume` stores **LPS**, so everything here converts at the boundary
(``RAS = diag(-1, -1, 1) @ LPS``).

Partial volume is exact up to sub-sampling: every voxel whose 3x3x3 neighbourhood holds more
than one tissue at its voxel centres is split into ``supersample**3`` sub-voxels and the
tissue fractions are averaged there; all other voxels are pure. Intensities are the
fraction-weighted mean of a tissue table, then optional Gaussian blur (sigma in mm, converted
per axis with the spacing), then noise (Gaussian for CT, Rician for MR magnitude images).
Noise is the only random part; it is drawn from ``numpy.random.default_rng(seed)``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from enum import IntEnum

import numpy as np
from scipy import ndimage

from mskai.volume import LPS_TO_RAS, Volume

from .grid import make_grid, oblique_direction, physical_points

TissueFn = Callable[[np.ndarray], np.ndarray]


class Tissue(IntEnum):
    """Tissue codes shared by all phantoms (index into the intensity tables)."""

    AIR = 0
    FAT = 1
    SOFT_TISSUE = 2
    LESION = 3
    CORTICAL = 4
    MARROW = 5


N_TISSUES = len(Tissue)

#: CT attenuation in Hounsfield units. Marrow stands for trabecular/cancellous bone.
CT_HU: Mapping[Tissue, float] = {
    Tissue.AIR: -1000.0,
    Tissue.FAT: -100.0,
    Tissue.SOFT_TISSUE: 40.0,
    Tissue.LESION: 80.0,
    Tissue.CORTICAL: 1200.0,
    Tissue.MARROW: 250.0,
}

#: MR signal in arbitrary units, roughly a fluid-sensitive (T2-weighted fat-saturated-like)
#: contrast: lesion bright, muscle intermediate, cortical bone and air dark.
MR_SIGNAL: Mapping[Tissue, float] = {
    Tissue.AIR: 0.0,
    Tissue.FAT: 150.0,
    Tissue.SOFT_TISSUE: 300.0,
    Tissue.LESION: 800.0,
    Tissue.CORTICAL: 20.0,
    Tissue.MARROW: 200.0,
}

DEFAULT_NOISE_SD = {"CT": 10.0, "MR": 20.0}


# ----- grids -------------------------------------------------------------------------------
def resolve_direction(direction: np.ndarray | str) -> np.ndarray:
    """LPS direction matrix from ``"oblique"`` (25 degrees, non-axial axis), ``"identity"``
    or an explicit 3x3 matrix whose columns are the i, j, k axes in LPS."""
    if isinstance(direction, str):
        if direction == "oblique":
            return oblique_direction(25.0)
        if direction == "identity":
            return np.eye(3)
        raise ValueError(f"direction must be 'oblique', 'identity' or a 3x3 matrix: {direction}")
    return np.asarray(direction, dtype=float).reshape(3, 3)


def ras_to_lps(points: np.ndarray) -> np.ndarray:
    """Flip RAS points to LPS (and back: the map is its own inverse)."""
    return np.asarray(points, dtype=float) @ LPS_TO_RAS


def fit_grid(
    points_ras: np.ndarray,
    spacing: tuple[float, float, float],
    direction: np.ndarray | str = "oblique",
    margin_mm: float = 5.0,
) -> Volume:
    """The smallest grid with ``direction``/``spacing`` holding ``points_ras`` plus a margin.

    The box is computed in the grid's own (i, j, k) axes, so oblique grids stay tight.
    """
    d = resolve_direction(direction)
    sp = np.asarray(spacing, dtype=float)
    q = ras_to_lps(np.atleast_2d(points_ras)) @ d  # coordinates along the i, j, k axes (mm)
    lo, hi = q.min(axis=0) - margin_mm, q.max(axis=0) + margin_mm
    size = np.ceil((hi - lo) / sp).astype(int) + 1
    center_lps = d @ ((lo + hi) / 2)
    return make_grid(tuple(int(n) for n in size), tuple(sp), d, tuple(center_lps))


def voxel_centres_ras(volume: Volume) -> np.ndarray:
    """RAS millimetres of all voxel centres, shape ``array.shape + (3,)``."""
    return ras_to_lps(physical_points(volume))


def sample_labels(volume: Volume, label_fn: TissueFn) -> np.ndarray:
    """``label_fn`` evaluated at every voxel centre: the 'voxel centre inside' rule."""
    pts = voxel_centres_ras(volume)
    return np.asarray(label_fn(pts.reshape(-1, 3))).reshape(volume.array.shape[:3])


# ----- partial volume ----------------------------------------------------------------------
def boundary_band(labels: np.ndarray) -> np.ndarray:
    """Voxels whose 3x3x3 neighbourhood (voxel centres) holds more than one label."""
    return ndimage.maximum_filter(labels, size=3) != ndimage.minimum_filter(labels, size=3)


def _sub_offsets(supersample: int) -> np.ndarray:
    s = supersample
    offsets = (np.arange(s) + 0.5) / s - 0.5
    return np.stack(np.meshgrid(offsets, offsets, offsets, indexing="ij"), -1).reshape(-1, 3)


def tissue_fractions(
    volume: Volume,
    tissue_fn: TissueFn,
    n_classes: int = N_TISSUES,
    supersample: int = 4,
    chunk: int = 20000,
    centre_codes: np.ndarray | None = None,
) -> np.ndarray:
    """Fraction of each voxel occupied by each tissue, shape ``(n_classes,) + array.shape``.

    Pure voxels (see :func:`boundary_band`) take the centre's tissue; band voxels average
    ``supersample**3`` regularly placed sub-voxel samples. ``centre_codes`` (the tissue at
    the voxel centres, when the caller has it already) saves one evaluation.
    """
    shape = volume.array.shape[:3]
    centre = sample_labels(volume, tissue_fn) if centre_codes is None else centre_codes
    fractions = np.zeros((n_classes, *shape), dtype=np.float32)
    for c in range(n_classes):
        fractions[c][centre == c] = 1.0
    band = np.argwhere(boundary_band(centre))  # (m, 3) as (k, j, i)
    if len(band) == 0:
        return fractions
    m = volume.ijk_to_ras()
    sub = _sub_offsets(supersample)
    weight = 1.0 / len(sub)
    for start in range(0, len(band), chunk):
        kji = band[start : start + chunk]
        ijk = kji[:, ::-1].astype(float)[:, None, :] + sub  # (m, s^3, 3)
        ras = ijk @ m[:3, :3].T + m[:3, 3]
        codes = np.asarray(tissue_fn(ras.reshape(-1, 3))).reshape(len(kji), len(sub))
        k, j, i = kji.T
        for c in range(n_classes):
            fractions[c, k, j, i] = (codes == c).sum(axis=1) * weight
    return fractions


def one_hot(labels: np.ndarray, n_classes: int = N_TISSUES) -> np.ndarray:
    """Integer labels as fractions (0 or 1), shape ``(n_classes,) + labels.shape``."""
    return (np.arange(n_classes)[:, None, None, None] == labels[None]).astype(np.float32)


def mean_intensity(tissue: np.ndarray, table: Mapping[Tissue, float]) -> np.ndarray:
    """Noise-free image: fraction-weighted mean of ``table`` (integer labels or fractions)."""
    fractions = one_hot(tissue) if np.issubdtype(tissue.dtype, np.integer) else tissue
    values = np.array([table.get(Tissue(c), 0.0) for c in range(len(fractions))])
    return np.tensordot(values, fractions, axes=1).astype(np.float32)


# ----- blur and noise ----------------------------------------------------------------------
def blur_mm(
    array: np.ndarray, spacing: tuple[float, float, float], sigma_mm: float
) -> np.ndarray:
    """Isotropic physical Gaussian blur: sigma in mm, converted per axis (array is k, j, i)."""
    if sigma_mm <= 0:
        return array
    sigma_vox = [sigma_mm / s for s in reversed(spacing)]
    return ndimage.gaussian_filter(array.astype(np.float32), sigma_vox, mode="nearest")


def gaussian_noise(array: np.ndarray, sd: float, rng: np.random.Generator) -> np.ndarray:
    """Additive white Gaussian noise (CT quantum noise model)."""
    if sd <= 0:
        return array.astype(np.float32)
    return (array + rng.normal(0.0, sd, array.shape)).astype(np.float32)


def rician_noise(array: np.ndarray, sd: float, rng: np.random.Generator) -> np.ndarray:
    """Magnitude of the signal plus complex Gaussian noise (MR magnitude images)."""
    if sd <= 0:
        return array.astype(np.float32)
    real = array + rng.normal(0.0, sd, array.shape)
    imag = rng.normal(0.0, sd, array.shape)
    return np.hypot(real, imag).astype(np.float32)


def ct_intensities(
    tissue: np.ndarray,
    table: Mapping[Tissue, float] = CT_HU,
    noise_sd: float = 10.0,
    seed: int = 0,
    spacing: tuple[float, float, float] = (1.0, 1.0, 1.0),
    blur_sigma_mm: float = 0.0,
) -> np.ndarray:
    """CT image in HU from labels or fractions: mean -> blur -> Gaussian noise -> clip."""
    img = blur_mm(mean_intensity(tissue, table), spacing, blur_sigma_mm)
    img = gaussian_noise(img, noise_sd, np.random.default_rng(seed))
    return np.clip(img, -1024.0, 3071.0).astype(np.float32)


def mr_intensities(
    tissue: np.ndarray,
    table: Mapping[Tissue, float] = MR_SIGNAL,
    noise_sd: float = 20.0,
    seed: int = 0,
    spacing: tuple[float, float, float] = (1.0, 1.0, 1.0),
    blur_sigma_mm: float = 0.0,
) -> np.ndarray:
    """MR magnitude image (arbitrary units) from labels or fractions: mean -> blur -> Rician."""
    img = blur_mm(mean_intensity(tissue, table), spacing, blur_sigma_mm)
    return rician_noise(img, noise_sd, np.random.default_rng(seed))


def render(
    volume: Volume,
    fractions: np.ndarray,
    modality: str,
    noise_sd: float | None,
    seed: int,
    blur_sigma_mm: float = 0.0,
) -> Volume:
    """The phantom image on ``volume``'s grid for ``modality`` ``"CT"`` or ``"MR"``."""
    modality = modality.upper()
    if modality not in DEFAULT_NOISE_SD:
        raise ValueError(f"modality must be 'CT' or 'MR', not {modality!r}")
    sd = DEFAULT_NOISE_SD[modality] if noise_sd is None else float(noise_sd)
    make = ct_intensities if modality == "CT" else mr_intensities
    array = make(fractions, noise_sd=sd, seed=seed, spacing=volume.spacing,
                 blur_sigma_mm=blur_sigma_mm)
    return volume.with_array(array, modality=modality)
