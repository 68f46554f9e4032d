"""Ellipsoidal tumour phantoms with analytic truth, optionally next to a cortical bone slab.

Geometry (all in **RAS** millimetres, Slicer's convention): the lesion is the ellipsoid
``(x - c)^T M (x - c) <= 1`` with ``M = R diag(1/a^2, 1/b^2, 1/c^2) R^T``; column ``n`` of the
rotation ``R`` is the RAS direction of semi-axis ``n``. The optional bone is the half-space
``n . (x - c) >= h(n) + d`` where ``h(n) = sqrt(n^T R diag(a^2, b^2, c^2) R^T n)`` is the
ellipsoid's support function, so the minimum lesion-to-bone distance is exactly ``d``
(analytic, not sampled). Its first ``cortex_mm`` are cortical bone, marrow beyond.

The mask is "voxel centre inside"; the image carries partial volume (see ``intensity``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import ellipeinc, ellipkinc

from mskai.volume import Volume

from .grid import make_grid, rotation
from .intensity import (
    Tissue,
    fit_grid,
    ras_to_lps,
    render,
    resolve_direction,
    sample_labels,
    tissue_fractions,
)

THOMSEN_P = 1.6075
#: Largest relative error of the Knud Thomsen surface-area approximation.
THOMSEN_MAX_REL_ERROR = 0.01061

RotationSpec = np.ndarray | tuple[tuple[float, float, float], float] | None


# ----- analytic ellipsoid formulas ----------------------------------------------------------
def rotation_matrix(spec: RotationSpec) -> np.ndarray:
    """3x3 rotation from ``None`` (identity), ``(axis, degrees)`` or a 3x3 matrix."""
    if spec is None:
        return np.eye(3)
    if isinstance(spec, tuple) and len(spec) == 2 and np.ndim(spec[1]) == 0:
        return rotation(spec[0], float(spec[1]))
    r = np.asarray(spec, dtype=float).reshape(3, 3)
    if not np.allclose(r @ r.T, np.eye(3), atol=1e-6) or np.linalg.det(r) < 0:
        raise ValueError("rotation matrix must be orthonormal and right-handed")
    return r


def ellipsoid_volume_ml(a: float, b: float, c: float) -> float:
    """4/3 pi a b c, in mL (semi-axes in mm)."""
    return 4.0 / 3.0 * np.pi * a * b * c / 1000.0


def thomsen_surface_area_mm2(a: float, b: float, c: float) -> float:
    """Knud Thomsen's approximation, p = 1.6075; relative error at most about 1.061 %."""
    p = THOMSEN_P
    mean = ((a * b) ** p + (a * c) ** p + (b * c) ** p) / 3.0
    return float(4.0 * np.pi * mean ** (1.0 / p))


def ellipsoid_surface_area_mm2(a: float, b: float, c: float) -> float:
    """Exact surface area via Legendre's incomplete elliptic integrals (any order of axes).

    With a >= b >= c: S = 2 pi c^2 + 2 pi a b / sin(phi) (E(phi, m) sin^2 phi +
    F(phi, m) cos^2 phi), cos(phi) = c / a, m = a^2 (b^2 - c^2) / (b^2 (a^2 - c^2)).
    """
    a, b, c = sorted((float(a), float(b), float(c)), reverse=True)
    if np.isclose(a, c, rtol=1e-12):
        return float(4.0 * np.pi * a * a)
    phi = np.arccos(c / a)
    m = a * a * (b * b - c * c) / (b * b * (a * a - c * c))
    s = np.sin(phi)
    term = ellipeinc(phi, m) * s * s + ellipkinc(phi, m) * np.cos(phi) ** 2
    return float(2.0 * np.pi * c * c + 2.0 * np.pi * a * b / s * term)


def quadratic_form(semi_axes: tuple[float, float, float], rot: np.ndarray) -> np.ndarray:
    """M with ``(x - c)^T M (x - c) <= 1`` inside the ellipsoid."""
    return rot @ np.diag(1.0 / np.square(semi_axes)) @ rot.T


def support_mm(semi_axes: tuple[float, float, float], rot: np.ndarray, n: np.ndarray) -> float:
    """max over the ellipsoid of n . (x - c), for a unit vector ``n``."""
    shape = rot @ np.diag(np.square(semi_axes)) @ rot.T
    return float(np.sqrt(n @ shape @ n))


def axial_section_diameters(m: np.ndarray, offset_mm: float = 0.0) -> tuple[float, float]:
    """Long and short diameters of the cross-section in the axial plane ``S = c_S + offset``.

    Writing x - c = (u, t) with u in the R-A plane: the section is u'^T M2 u' <= 1 - t^2 / q
    with M2 the top-left 2x2 block of M and q = (M^-1)_SS (the Schur complement of M2 is
    1 / q), so it is the central section's ellipse scaled by sqrt(1 - t^2 / q). Its diameters
    are 2 / sqrt(eig(M2)) times that scale: the central slice (t = 0) is the largest, and the
    short axis (minor axis) is perpendicular to the long one in that slice. Returns (0, 0)
    when the plane misses the ellipsoid.
    """
    q = np.linalg.inv(m)[2, 2]
    scale2 = 1.0 - offset_mm**2 / q
    if scale2 <= 0:
        return 0.0, 0.0
    lam = np.linalg.eigvalsh(m[:2, :2])  # ascending
    scale = np.sqrt(scale2)
    return float(2.0 * scale / np.sqrt(lam[0])), float(2.0 * scale / np.sqrt(lam[1]))


# ----- truth and phantom --------------------------------------------------------------------
@dataclass(frozen=True)
class LesionTruth:
    """Analytic truth of an ellipsoid lesion. Points and directions are in RAS.

    ``recist_long_mm``/``recist_short_mm`` are the diameters of the central axial section (the
    patient's axial plane, normal = S in RAS) for *any* rotation; when the a and b semi-axes
    lie in the axial plane they equal 2a and 2b. An image whose axial slices do not pass
    through the centre shows ``axial_diameters_at(offset)`` instead.
    """

    centroid_ras: tuple[float, float, float]
    semi_axes_mm: tuple[float, float, float]
    axes_ras: np.ndarray  # columns: unit RAS direction of each semi-axis
    volume_ml: float
    surface_area_mm2: float  # exact (elliptic integrals)
    surface_area_thomsen_mm2: float  # Knud Thomsen, within ~1.061 % of the exact value
    sphericity: float  # (36 pi V^2)^(1/3) / A
    max_diameter_mm: float  # 2 * max semi-axis
    recist_long_mm: float
    recist_short_mm: float
    min_distance_to_bone_mm: float | None = None  # analytic (support function)
    bone_normal_ras: tuple[float, float, float] | None = None  # unit, lesion -> bone

    @property
    def quadratic_form(self) -> np.ndarray:
        return quadratic_form(self.semi_axes_mm, self.axes_ras)

    def axial_diameters_at(self, offset_mm: float) -> tuple[float, float]:
        """(long, short) diameters of the axial section ``offset_mm`` above the centre."""
        return axial_section_diameters(self.quadratic_form, offset_mm)

    def contains_ras(self, points_ras: np.ndarray) -> np.ndarray:
        """True for RAS points inside the ellipsoid (closed set)."""
        d = np.atleast_2d(points_ras) - np.asarray(self.centroid_ras)
        return np.einsum("ni,ij,nj->n", d, self.quadratic_form, d) <= 1.0


@dataclass
class LesionPhantom:
    """Image (HU for CT, arbitrary units for MR), masks (voxel centre inside) and truth.

    ``labels``: 0 background, 1 tumour, 2 bone (cortex and marrow).
    """

    image: Volume
    mask: np.ndarray
    bone_mask: np.ndarray | None
    labels: np.ndarray
    truth: LesionTruth


def lesion_truth(
    center_ras: np.ndarray,
    semi_axes: tuple[float, float, float],
    rot: np.ndarray,
    bone_distance_mm: float | None = None,
    bone_normal: np.ndarray | None = None,
) -> LesionTruth:
    """All analytic measurements of the ellipsoid (see :class:`LesionTruth`)."""
    a, b, c = semi_axes
    volume_ml = ellipsoid_volume_ml(a, b, c)
    area = ellipsoid_surface_area_mm2(a, b, c)
    long_mm, short_mm = axial_section_diameters(quadratic_form(semi_axes, rot), 0.0)
    return LesionTruth(
        centroid_ras=tuple(float(v) for v in center_ras),
        semi_axes_mm=(float(a), float(b), float(c)),
        axes_ras=rot.copy(),
        volume_ml=volume_ml,
        surface_area_mm2=area,
        surface_area_thomsen_mm2=thomsen_surface_area_mm2(a, b, c),
        sphericity=float((36.0 * np.pi * (volume_ml * 1000.0) ** 2) ** (1.0 / 3.0) / area),
        max_diameter_mm=2.0 * float(max(semi_axes)),
        recist_long_mm=long_mm,
        recist_short_mm=short_mm,
        min_distance_to_bone_mm=None if bone_distance_mm is None else float(bone_distance_mm),
        bone_normal_ras=None if bone_normal is None else tuple(float(v) for v in bone_normal),
    )


def _tissue_fn(truth: LesionTruth, bone_offset: float | None, cortex_mm: float):
    """Tissue code per RAS point: lesion, cortical slab, marrow beyond, soft tissue else."""
    center = np.asarray(truth.centroid_ras)
    normal = None if truth.bone_normal_ras is None else np.asarray(truth.bone_normal_ras)

    def tissue(points: np.ndarray) -> np.ndarray:
        codes = np.full(len(points), int(Tissue.SOFT_TISSUE), dtype=np.int8)
        codes[truth.contains_ras(points)] = Tissue.LESION
        if normal is not None:
            s = (points - center) @ normal
            codes[s >= bone_offset] = Tissue.MARROW
            codes[(s >= bone_offset) & (s < bone_offset + cortex_mm)] = Tissue.CORTICAL
        return codes

    return tissue


def _label_fn(tissue_fn):
    lut = np.zeros(len(Tissue), dtype=np.uint8)
    lut[Tissue.LESION] = 1
    lut[Tissue.CORTICAL] = lut[Tissue.MARROW] = 2
    return lambda points: lut[tissue_fn(points)]


def _fit_points(truth: LesionTruth, bone_far: float | None) -> np.ndarray:
    """Corners of the lesion's oriented bounding box, plus the bone slab's near part."""
    signs = np.array(np.meshgrid([-1, 1], [-1, 1], [-1, 1])).reshape(3, -1).T
    corners = (signs * truth.semi_axes_mm) @ truth.axes_ras.T + truth.centroid_ras
    if bone_far is None:
        return corners
    far = np.asarray(truth.centroid_ras) + bone_far * np.asarray(truth.bone_normal_ras)
    return np.vstack([corners, far])


def ellipsoid_lesion(
    semi_axes_mm: tuple[float, float, float] = (20.0, 14.0, 10.0),
    rotation_deg: RotationSpec = ((0.3, 0.5, 1.0), 35.0),
    center_ras: tuple[float, float, float] = (12.0, -25.0, 40.0),
    spacing: tuple[float, float, float] = (0.8, 0.8, 2.5),
    direction: np.ndarray | str = "oblique",
    size_ijk: tuple[int, int, int] | None = None,
    modality: str = "CT",
    noise_sd: float | None = None,
    seed: int = 0,
    with_bone: bool = False,
    bone_distance_mm: float = 6.0,
    bone_normal_ras: tuple[float, float, float] = (0.2, -1.0, 0.3),
    cortex_mm: float = 4.0,
    margin_mm: float = 6.0,
    supersample: int = 4,
    blur_sigma_mm: float = 0.0,
) -> LesionPhantom:
    """An ellipsoid tumour in soft tissue (CT: 40 HU around an 80 HU lesion; MR: bright lesion).

    ``rotation_deg`` is ``(axis_ras, degrees)`` or a 3x3 rotation; its columns are the RAS
    directions of the semi-axes. ``direction`` is the grid's LPS direction matrix (or
    ``"oblique"``/``"identity"``). With ``size_ijk=None`` the grid is fitted around the lesion
    (and the nearby bone) with ``margin_mm``. ``with_bone`` adds a cortical slab (1200 HU)
    with marrow (250 HU) behind it, at exactly ``bone_distance_mm`` from the lesion surface
    along ``bone_normal_ras``. ``seed`` only drives the noise.
    """
    rot = rotation_matrix(rotation_deg)
    center = np.asarray(center_ras, dtype=float)
    normal = np.asarray(bone_normal_ras, dtype=float)
    normal = normal / np.linalg.norm(normal)
    if with_bone and bone_distance_mm < 0:
        raise ValueError("bone_distance_mm must be >= 0 (the bone may touch, not invade)")
    truth = lesion_truth(center, semi_axes_mm, rot,
                         bone_distance_mm if with_bone else None, normal if with_bone else None)
    offset = support_mm(semi_axes_mm, rot, normal) + bone_distance_mm if with_bone else None
    if size_ijk is None:
        far = None if offset is None else offset + cortex_mm + 4.0
        grid = fit_grid(_fit_points(truth, far), spacing, direction, margin_mm)
    else:
        grid = make_grid(size_ijk, spacing, resolve_direction(direction),
                         tuple(ras_to_lps(center)))
    tissue = _tissue_fn(truth, offset, cortex_mm)
    labels = sample_labels(grid, _label_fn(tissue)).astype(np.uint8)
    fractions = tissue_fractions(grid, tissue, supersample=supersample)
    image = render(grid, fractions, modality, noise_sd, seed, blur_sigma_mm)
    return LesionPhantom(
        image=image,
        mask=labels == 1,
        bone_mask=(labels == 2) if with_bone else None,
        labels=labels,
        truth=truth,
    )
