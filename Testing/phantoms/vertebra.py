"""Vertebral-body phantom with known anterior, middle and posterior heights (Genant grading
of the quantitative-morphometry height reductions, :func:`qm_reductions`).

Geometry in the vertebra's local frame (x: patient left-right, y: posterior -> anterior,
z: inferior -> superior), mapped to **RAS** by ``x_ras = center + V @ local`` where the
columns of ``V`` are the RAS directions of the local R, A and S axes. The body is

    |x| <= W / 2,   |y| <= D / 2,   |z| <= h(y) / 2,

with ``h`` piecewise linear through ``h(-D/2) = posterior``, ``h(0) = middle`` and
``h(D/2) = anterior`` height: both endplates are tilted/bent symmetrically about the
mid-plane, so every height is measured along the local S axis. Volume = W D (hp + 2 hm + ha)/4.
A rim ``cortex_mm`` thick (inwards in x and y, and along S in z) is cortical bone (CORTICAL,
1200 HU before partial volume: a 1 mm rim images at a few hundred HU like a real vertebral
shell); the inside is cancellous bone (MARROW, 250 HU).
The mask is "voxel centre inside"; the image carries partial volume (see ``intensity``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mskai.volume import Volume

from .intensity import Tissue, fit_grid, render, sample_labels, tissue_fractions
from .lesion import RotationSpec, rotation_matrix

GENANT_THRESHOLDS = (0.20, 0.25, 0.40)
LORDOTIC_HA_HP = 1.25  # normal lumbar anterior/posterior ratio allowed before "crush"


def qm_reductions(anterior: float, middle: float, posterior: float,
                  adjacent_posterior_mm: tuple[float, ...] = ()) -> dict[str, float]:
    """Height reductions as quantitative morphometry defines them (clipped at 0, rounded to
    1e-12): wedge ``1 - Ha/Hp``; biconcave ``1 - Hm / ((Ha + Hp) / 2)`` (the middle against
    straight endplates between the corners); crush ``1 - Hp / Hp_ref`` with Hp_ref the mean
    posterior height of the adjacent vertebrae, or without them ``Ha / 1.25`` (a posterior
    shorter than the normal lumbar lordotic shape).

    The truth used ``1 - min/max`` of the three heights until the grade followed QM; that
    called a normal lordotic lumbar body (anterior taller, concave middle) a fracture, and
    graded a posterior-short body without neighbours one grade higher than QM does.
    """
    reference = (float(np.mean(adjacent_posterior_mm)) if len(adjacent_posterior_mm)
                 else anterior / LORDOTIC_HA_HP)
    ratios = {"wedge": anterior / posterior,
              "biconcave": middle / ((anterior + posterior) / 2),
              "crush": posterior / reference}
    return {k: round(max(0.0, 1.0 - v), 12) for k, v in ratios.items()}


def height_reduction(anterior: float, middle: float, posterior: float,
                     adjacent_posterior_mm: tuple[float, ...] = ()) -> float:
    """The largest of the :func:`qm_reductions`."""
    return max(qm_reductions(anterior, middle, posterior, adjacent_posterior_mm).values())


def genant_grade(anterior: float, middle: float, posterior: float,
                 adjacent_posterior_mm: tuple[float, ...] = ()) -> int:
    """Genant semi-quantitative grade from :func:`height_reduction` r:
    0 if r < 0.20; 1 (mild) if 0.20 <= r < 0.25; 2 (moderate) if 0.25 <= r <= 0.40;
    3 (severe) if r > 0.40."""
    r = height_reduction(anterior, middle, posterior, adjacent_posterior_mm)
    if r < GENANT_THRESHOLDS[0]:
        return 0
    if r < GENANT_THRESHOLDS[1]:
        return 1
    return 2 if r <= GENANT_THRESHOLDS[2] else 3


def deformity_type(anterior: float, middle: float, posterior: float,
                   adjacent_posterior_mm: tuple[float, ...] = ()) -> str:
    """'none' for grade 0; else the largest of the :func:`qm_reductions` ('wedge',
    'biconcave', 'crush'; ties resolved in that order)."""
    if genant_grade(anterior, middle, posterior, adjacent_posterior_mm) == 0:
        return "none"
    reductions = qm_reductions(anterior, middle, posterior, adjacent_posterior_mm)
    return max(reductions, key=reductions.__getitem__)


@dataclass(frozen=True)
class VertebraTruth:
    """Analytic truth; points and directions in RAS, lengths in mm."""

    center_ras: tuple[float, float, float]
    anterior_height_mm: float
    middle_height_mm: float
    posterior_height_mm: float
    depth_mm: float
    width_mm: float
    si_axis_ras: tuple[float, float, float]  # unit, inferior -> superior
    ap_axis_ras: tuple[float, float, float]  # unit, posterior -> anterior
    lr_axis_ras: tuple[float, float, float]  # unit, towards the patient's right (local R)
    volume_ml: float
    height_reduction: float
    genant_grade: int
    deformity: str

    def height_at(self, ap_mm: float) -> float:
        """Height along the S axis at ``ap_mm`` from the centre (positive: anterior)."""
        half = self.depth_mm / 2
        return float(np.interp(ap_mm, [-half, 0.0, half], [self.posterior_height_mm,
                                                            self.middle_height_mm,
                                                            self.anterior_height_mm]))

    def point_ras(self, lr_mm: float, ap_mm: float, si_mm: float) -> np.ndarray:
        """RAS point at local coordinates (mm along the lr, ap and si axes from the centre)."""
        return (np.asarray(self.center_ras) + lr_mm * np.asarray(self.lr_axis_ras)
                + ap_mm * np.asarray(self.ap_axis_ras) + si_mm * np.asarray(self.si_axis_ras))


@dataclass
class VertebraPhantom:
    """Image (CT HU or MR units), mask (voxel centre inside the body) and truth."""

    image: Volume
    mask: np.ndarray
    truth: VertebraTruth


def _local(truth: VertebraTruth, points: np.ndarray) -> np.ndarray:
    axes = np.array([truth.lr_axis_ras, truth.ap_axis_ras, truth.si_axis_ras]).T
    return (points - np.asarray(truth.center_ras)) @ axes


def _tissue_fn(truth: VertebraTruth, cortex_mm: float):
    half_w, half_d = truth.width_mm / 2, truth.depth_mm / 2
    heights = [truth.posterior_height_mm, truth.middle_height_mm, truth.anterior_height_mm]

    def tissue(points: np.ndarray) -> np.ndarray:
        x, y, z = _local(truth, points).T
        half_h = np.interp(y, [-half_d, 0.0, half_d], heights) / 2
        ax, ay, az = np.abs(x), np.abs(y), np.abs(z)
        body = (ax <= half_w) & (ay <= half_d) & (az <= half_h)
        inner = (ax <= half_w - cortex_mm) & (ay <= half_d - cortex_mm) & (az <= half_h - cortex_mm)
        codes = np.full(len(points), int(Tissue.SOFT_TISSUE), dtype=np.int8)
        codes[body] = Tissue.CORTICAL
        codes[inner] = Tissue.MARROW
        return codes

    return tissue


def vertebral_body(
    anterior_height_mm: float = 18.0,
    middle_height_mm: float = 24.0,
    posterior_height_mm: float = 26.0,
    depth_mm: float = 30.0,
    width_mm: float = 40.0,
    center_ras: tuple[float, float, float] = (0.0, 30.0, -40.0),
    orientation: RotationSpec = ((1.0, 0.0, 0.0), 12.0),
    spacing: tuple[float, float, float] = (0.7, 0.7, 1.5),
    direction: np.ndarray | str = "oblique",
    seed: int = 0,
    modality: str = "CT",
    noise_sd: float | None = None,
    cortex_mm: float = 1.0,
    margin_mm: float = 5.0,
    supersample: int = 3,
    blur_sigma_mm: float = 0.0,
    adjacent_posterior_mm: tuple[float, ...] = (),
) -> VertebraPhantom:
    """A wedge/biconcave/crush-deformed block (see module doc) in soft tissue.

    ``orientation`` is ``(axis_ras, degrees)`` or a 3x3 rotation ``V`` whose columns are the
    RAS directions of the local R, A, S axes (default: 12 degrees of sagittal tilt about R).
    Truth: heights, ``si_axis_ras``, ``genant_grade`` (:func:`genant_grade`, with
    ``adjacent_posterior_mm`` as the neighbours' posterior heights for crush), ``deformity``.
    ``seed`` only drives the noise.
    """
    heights = (anterior_height_mm, middle_height_mm, posterior_height_mm)
    if min(heights) <= 2 * cortex_mm:
        raise ValueError("every height must exceed twice the cortical thickness")
    v = rotation_matrix(orientation)
    truth = VertebraTruth(
        center_ras=tuple(float(c) for c in center_ras),
        anterior_height_mm=float(anterior_height_mm),
        middle_height_mm=float(middle_height_mm),
        posterior_height_mm=float(posterior_height_mm),
        depth_mm=float(depth_mm),
        width_mm=float(width_mm),
        lr_axis_ras=tuple(float(c) for c in v[:, 0]),
        ap_axis_ras=tuple(float(c) for c in v[:, 1]),
        si_axis_ras=tuple(float(c) for c in v[:, 2]),
        volume_ml=width_mm * depth_mm * (posterior_height_mm + 2 * middle_height_mm
                                         + anterior_height_mm) / 4 / 1000,
        height_reduction=height_reduction(*heights, tuple(adjacent_posterior_mm)),
        genant_grade=genant_grade(*heights, tuple(adjacent_posterior_mm)),
        deformity=deformity_type(*heights, tuple(adjacent_posterior_mm)),
    )
    half = np.array([width_mm, depth_mm, max(heights)]) / 2
    signs = np.array(np.meshgrid([-1, 1], [-1, 1], [-1, 1])).reshape(3, -1).T
    corners = np.array([truth.point_ras(*(s * half)) for s in signs])
    grid = fit_grid(corners, spacing, direction, margin_mm)
    tissue = _tissue_fn(truth, cortex_mm)
    centre = sample_labels(grid, tissue)
    image = render(grid, tissue_fractions(grid, tissue, supersample=supersample,
                                          centre_codes=centre),
                   modality, noise_sd, seed, blur_sigma_mm)
    return VertebraPhantom(image=image, mask=centre != Tissue.SOFT_TISSUE, truth=truth)

