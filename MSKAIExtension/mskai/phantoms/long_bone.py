"""Long-bone shaft phantoms, intact or with one displaced, angulated fracture; analytic truth.

Geometry (all in **RAS** millimetres): the shaft is a hollow cylinder along the unit axis
``u`` (proximal -> distal), from ``start = center - L/2 u`` to ``start + L u``; cortical bone
for outer radius R >= r >= R - t, marrow inside (open ends). The fracture centre ``c`` is the
axis point at ``fracture_position_mm`` from the proximal end; the fracture plane passes
through ``c`` with unit normal ``n`` (``n . u > 0``) and the gap is the slab
``|n . (x - c)| < gap / 2`` (filled with soft tissue).

- proximal fragment (label 1): shaft points with ``n . (x - c) <= -gap / 2``, not moved;
- distal fragment (label 2): shaft points ``y`` with ``n . (y - c) >= gap / 2`` moved by the
  rigid motion ``T(y) = c + Q (y - c) + t``: rotation ``Q`` by ``angulation_deg`` about an axis
  through ``c`` perpendicular to the shaft, then translation ``t``.

So the angle between the fragment axes ``u`` and ``Q u`` is exactly ``angulation_deg`` and the
fracture centre travels with the distal fragment by ``|t|`` (``displacement_mm``). Masks are
"voxel centre inside"; the image carries partial volume (see ``intensity``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from mskai.terminology import BONE_FRAGMENT_PREFIX
from mskai.volume import Volume

from .grid import rotation
from .intensity import Tissue, fit_grid, render, tissue_fractions, voxel_centres_ras


def _unit(v: tuple[float, float, float] | np.ndarray) -> np.ndarray:
    v = np.asarray(v, dtype=float)
    return v / np.linalg.norm(v)


def _perpendicular(u: np.ndarray, hint: tuple[float, float, float] | None) -> np.ndarray:
    """Unit vector perpendicular to ``u``: ``hint`` with its ``u`` component removed."""
    h = np.array([1.0, 0.0, 0.0]) if hint is None else np.asarray(hint, dtype=float)
    if abs(_unit(h) @ u) > 0.99:
        h = np.array([0.0, 1.0, 0.0])
    return _unit(h - (h @ u) * u)


@dataclass(frozen=True)
class Shaft:
    """Hollow cylinder (cortex) with marrow inside, in RAS."""

    start_ras: np.ndarray  # centre of the proximal end face
    axis_ras: np.ndarray  # unit vector, proximal -> distal
    length_mm: float
    outer_radius_mm: float
    cortical_thickness_mm: float

    def tissue(self, points: np.ndarray) -> np.ndarray:
        """CORTICAL / MARROW inside the shaft, -1 outside."""
        d = points - self.start_ras
        s = d @ self.axis_ras
        r = np.linalg.norm(d - s[:, None] * self.axis_ras, axis=1)
        inside = (s >= 0) & (s <= self.length_mm) & (r <= self.outer_radius_mm)
        codes = np.full(len(points), -1, dtype=np.int8)
        codes[inside] = Tissue.MARROW
        codes[inside & (r >= self.outer_radius_mm - self.cortical_thickness_mm)] = Tissue.CORTICAL
        return codes

    def point(self, s_mm: float) -> np.ndarray:
        return self.start_ras + s_mm * self.axis_ras

    def cross_section_mm2(self) -> tuple[float, float]:
        """(whole, cortical) cross-section areas."""
        r_out, r_in = self.outer_radius_mm, self.outer_radius_mm - self.cortical_thickness_mm
        return float(np.pi * r_out**2), float(np.pi * (r_out**2 - r_in**2))


@dataclass(frozen=True)
class RigidMotion:
    """x -> c + Q (x - c) + t (rotation about ``center`` then translation)."""

    center: np.ndarray
    rotation: np.ndarray
    translation: np.ndarray

    def apply(self, points: np.ndarray) -> np.ndarray:
        return (points - self.center) @ self.rotation.T + self.center + self.translation

    def inverse(self, points: np.ndarray) -> np.ndarray:
        return (points - self.center - self.translation) @ self.rotation + self.center


@dataclass(frozen=True)
class FractureTruth:
    """One fracture. Points and directions in RAS, lengths in mm, angles in degrees.

    ``center_ras`` stays in the (soft-tissue) gap as long as the translation does not push the
    distal fragment back across it (``t . n`` well below ``gap / 2``).
    """

    center_ras: tuple[float, float, float]  # centre of rotation, mid-gap on the proximal axis
    plane_normal_ras: tuple[float, float, float]
    gap_mm: float
    translation_ras: tuple[float, float, float]  # t
    displacement_mm: float  # |t|: how far the fracture centre moves with the distal fragment
    transverse_displacement_mm: float  # |t| perpendicular to the distal axis
    axial_displacement_mm: float  # t . distal axis (positive: fragments pulled apart)
    angulation_deg: float  # angle between the fragment axes
    angulation_axis_ras: tuple[float, float, float]
    proximal_axis_ras: tuple[float, float, float]  # unit, proximal -> distal
    distal_axis_ras: tuple[float, float, float]  # unit, Q u
    fragment_labels: tuple[int, int] = (1, 2)

    def as_contract(self, bone: str = "long_bone") -> dict:
        """The entry of ``fractures`` in measurements.json (CONTRACT.md), without score."""
        return {
            "position_ras": list(self.center_ras),
            "bone": bone,
            "fragments": [f"{BONE_FRAGMENT_PREFIX}{k}" for k in self.fragment_labels],
            "displacement_mm": self.displacement_mm,
            "angulation_deg": self.angulation_deg,
        }


@dataclass(frozen=True)
class LongBoneTruth:
    """The shaft and its fractures (``[]`` for an intact bone)."""

    shaft_center_ras: tuple[float, float, float]
    shaft_axis_ras: tuple[float, float, float]
    length_mm: float
    outer_radius_mm: float
    cortical_thickness_mm: float
    fragment_volumes_ml: dict[int, float]  # label -> whole-fragment volume (cortex + marrow)
    cortical_volumes_ml: dict[int, float]  # label -> cortical volume
    fractures: list[FractureTruth] = field(default_factory=list)

    def _only(self) -> FractureTruth:
        if len(self.fractures) != 1:
            raise AttributeError("this bone has no single fracture")
        return self.fractures[0]

    @property
    def displacement_mm(self) -> float:
        return self._only().displacement_mm

    @property
    def angulation_deg(self) -> float:
        return self._only().angulation_deg

    @property
    def fracture_center_ras(self) -> tuple[float, float, float]:
        return self._only().center_ras

    @property
    def fragment_axes_ras(self) -> dict[int, tuple[float, float, float]]:
        f = self._only()
        return {1: f.proximal_axis_ras, 2: f.distal_axis_ras}


@dataclass
class FracturePhantom:
    """Image (CT HU or MR units), labels (0 background, 1 proximal/intact bone, 2 distal)."""

    image: Volume
    labels: np.ndarray
    truth: LongBoneTruth


def _body_tissue(shaft: Shaft, body_radius_mm: float | None):
    """Soft tissue, or air outside a cylinder of ``body_radius_mm`` around the shaft axis."""

    def tissue(points: np.ndarray) -> np.ndarray:
        codes = np.full(len(points), int(Tissue.SOFT_TISSUE), dtype=np.int8)
        if body_radius_mm is not None:
            d = points - shaft.start_ras
            s = d @ shaft.axis_ras
            r = np.linalg.norm(d - s[:, None] * shaft.axis_ras, axis=1)
            codes[r > body_radius_mm] = Tissue.AIR
        return codes

    return tissue


def _pieces(shaft: Shaft, center: np.ndarray, normal: np.ndarray, gap: float,
            motion: RigidMotion):
    """Per point: bone tissue code of the proximal and of the moved distal piece (-1: none)."""

    def pieces(points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        prox = shaft.tissue(points)
        prox[(points - center) @ normal > -gap / 2] = -1
        back = motion.inverse(points)
        dist = shaft.tissue(back)
        dist[(back - center) @ normal < gap / 2] = -1
        return prox, dist

    return pieces


def _fragments(pieces):
    """Per point: (bone tissue or -1, fragment label 0/1/2); the proximal fragment wins."""

    def fragments(points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        prox, dist = pieces(points)
        label = np.where(prox >= 0, 1, np.where(dist >= 0, 2, 0)).astype(np.uint8)
        return np.where(prox >= 0, prox, dist), label

    return fragments


def _compose(background, bone):
    def tissue(points: np.ndarray) -> np.ndarray:
        codes = background(points)
        bone_codes = bone(points)[0]
        return np.where(bone_codes >= 0, bone_codes, codes)

    return tissue


def _ring_points(shaft: Shaft, s_values: list[float], radius: float) -> np.ndarray:
    e1 = _perpendicular(shaft.axis_ras, None)
    e2 = np.cross(shaft.axis_ras, e1)
    ang = np.linspace(0, 2 * np.pi, 24, endpoint=False)
    ring = radius * (np.cos(ang)[:, None] * e1 + np.sin(ang)[:, None] * e2)
    return np.vstack([shaft.point(s) + ring for s in s_values])


def _cut_positions(s_axis: float, cos_tilt: float, gap: float) -> tuple[float, float]:
    """Where the two cut planes cross the axis (s of the proximal end, distal start). A cylinder cut
    by an oblique plane has the volume of the straight cylinder up to that crossing."""
    half = gap / (2.0 * cos_tilt)
    return s_axis - half, s_axis + half


def fractured_long_bone(
    length_mm: float = 120.0,
    outer_radius_mm: float = 12.0,
    cortical_thickness_mm: float = 3.0,
    fracture_plane_normal: tuple[float, float, float] | None = None,
    fracture_position_mm: float = 60.0,
    translation_mm: tuple[float, float, float] = (3.0, -2.0, 0.5),
    angulation_deg: float = 10.0,
    angulation_axis_ras: tuple[float, float, float] | None = (1.0, 0.0, 0.0),
    gap_mm: float = 4.0,
    shaft_axis_ras: tuple[float, float, float] = (0.15, -0.1, -1.0),
    center_ras: tuple[float, float, float] = (10.0, -5.0, 20.0),
    spacing: tuple[float, float, float] = (0.7, 0.7, 1.25),
    direction: np.ndarray | str = "oblique",
    seed: int = 0,
    modality: str = "CT",
    noise_sd: float | None = None,
    body_radius_mm: float | None = None,
    margin_mm: float = 5.0,
    supersample: int = 3,
    blur_sigma_mm: float = 0.0,
) -> FracturePhantom:
    """A shaft broken at ``fracture_position_mm`` from the proximal end (see module doc).

    ``fracture_plane_normal`` defaults to the shaft axis (transverse fracture); an oblique
    plane must keep ``R tan(tilt) + gap / (2 cos(tilt))`` inside both pieces.
    ``angulation_axis_ras`` is made perpendicular to the shaft. CT: soft tissue 40 HU (air
    -1000 HU outside ``body_radius_mm`` if given), cortex 1200 HU, marrow 250 HU.
    Raises ValueError when the moved distal fragment overlaps the proximal one at a voxel
    centre (widen the gap or reduce the angulation). ``seed`` only drives the noise.
    """
    u = _unit(shaft_axis_ras)
    center = np.asarray(center_ras, dtype=float)
    shaft = Shaft(center - length_mm / 2 * u, u, length_mm, outer_radius_mm,
                  cortical_thickness_mm)
    n = u if fracture_plane_normal is None else _unit(fracture_plane_normal)
    n = n if n @ u > 0 else -n
    c = shaft.point(fracture_position_mm)
    axis = _perpendicular(u, angulation_axis_ras)
    motion = RigidMotion(c, rotation(tuple(axis), angulation_deg),
                         np.asarray(translation_mm, dtype=float))
    _check_cut(shaft, n, fracture_position_mm, gap_mm)

    fit = np.vstack([_ring_points(shaft, [0.0, fracture_position_mm], outer_radius_mm),
                     motion.apply(_ring_points(shaft, [fracture_position_mm, length_mm],
                                               outer_radius_mm))])
    if body_radius_mm is not None:
        fit = np.vstack([fit, _ring_points(shaft, [0.0, length_mm], body_radius_mm)])
    grid = fit_grid(fit, spacing, direction, margin_mm)

    pieces = _pieces(shaft, c, n, gap_mm, motion)
    labels, image = _render_bone(grid, _fragments(pieces), _body_tissue(shaft, body_radius_mm),
                                 modality, noise_sd, seed, supersample, blur_sigma_mm, pieces)
    truth = _fracture_truth(shaft, c, n, gap_mm, motion, axis, fracture_position_mm)
    return FracturePhantom(image=image, labels=labels, truth=truth)


def _check_cut(shaft: Shaft, n: np.ndarray, s_c: float, gap: float) -> None:
    cos_t = float(n @ shaft.axis_ras)
    reach = shaft.outer_radius_mm * np.tan(np.arccos(min(cos_t, 1.0))) + gap / (2 * cos_t)
    if reach >= min(s_c, shaft.length_mm - s_c):
        raise ValueError("the fracture plane or gap reaches an end of the shaft")


def _render_bone(grid: Volume, bone, background, modality: str, noise_sd: float | None,
                 seed: int, supersample: int, blur_sigma_mm: float,
                 pieces=None) -> tuple[np.ndarray, Volume]:
    """Fragment labels at voxel centres and the partial-volume image, evaluating the voxel
    centres once. With ``pieces`` given, refuse fragments that overlap at a voxel centre."""
    shape = grid.array.shape[:3]
    points = voxel_centres_ras(grid).reshape(-1, 3)
    if pieces is not None:
        prox, dist = pieces(points)
        if np.any((prox >= 0) & (dist >= 0)):
            raise ValueError("distal fragment overlaps the proximal one: widen gap_mm or "
                             "reduce angulation_deg")
    codes, labels = bone(points)
    centre = np.where(codes >= 0, codes, background(points)).reshape(shape)
    tissue = _compose(background, bone)
    fractions = tissue_fractions(grid, tissue, supersample=supersample, centre_codes=centre)
    image = render(grid, fractions, modality, noise_sd, seed, blur_sigma_mm)
    return labels.reshape(shape).astype(np.uint8), image


def _fracture_truth(shaft: Shaft, c: np.ndarray, n: np.ndarray, gap: float,
                    motion: RigidMotion, axis: np.ndarray, s_c: float) -> LongBoneTruth:
    u = shaft.axis_ras
    d2 = motion.rotation @ u
    t = motion.translation
    axial = float(t @ d2)
    fracture = FractureTruth(
        center_ras=tuple(float(v) for v in c),
        plane_normal_ras=tuple(float(v) for v in n),
        gap_mm=float(gap),
        translation_ras=tuple(float(v) for v in t),
        displacement_mm=float(np.linalg.norm(t)),
        transverse_displacement_mm=float(np.linalg.norm(t - axial * d2)),
        axial_displacement_mm=axial,
        angulation_deg=float(np.degrees(np.arccos(np.clip(u @ d2, -1.0, 1.0)))),
        angulation_axis_ras=tuple(float(v) for v in axis),
        proximal_axis_ras=tuple(float(v) for v in u),
        distal_axis_ras=tuple(float(v) for v in d2),
    )
    end_prox, start_dist = _cut_positions(s_c, float(n @ u), gap)
    whole, cortical = shaft.cross_section_mm2()
    lengths = {1: end_prox, 2: shaft.length_mm - start_dist}
    return _bone_truth(shaft, {k: whole * v / 1000 for k, v in lengths.items()},
                       {k: cortical * v / 1000 for k, v in lengths.items()}, [fracture])


def _bone_truth(shaft: Shaft, volumes: dict[int, float], cortical: dict[int, float],
                fractures: list[FractureTruth]) -> LongBoneTruth:
    return LongBoneTruth(
        shaft_center_ras=tuple(float(v) for v in shaft.point(shaft.length_mm / 2)),
        shaft_axis_ras=tuple(float(v) for v in shaft.axis_ras),
        length_mm=float(shaft.length_mm),
        outer_radius_mm=float(shaft.outer_radius_mm),
        cortical_thickness_mm=float(shaft.cortical_thickness_mm),
        fragment_volumes_ml=volumes,
        cortical_volumes_ml=cortical,
        fractures=fractures,
    )


def intact_long_bone(
    length_mm: float = 120.0,
    outer_radius_mm: float = 12.0,
    cortical_thickness_mm: float = 3.0,
    shaft_axis_ras: tuple[float, float, float] = (0.15, -0.1, -1.0),
    center_ras: tuple[float, float, float] = (10.0, -5.0, 20.0),
    spacing: tuple[float, float, float] = (0.7, 0.7, 1.25),
    direction: np.ndarray | str = "oblique",
    seed: int = 0,
    modality: str = "CT",
    noise_sd: float | None = None,
    body_radius_mm: float | None = None,
    margin_mm: float = 5.0,
    supersample: int = 3,
    blur_sigma_mm: float = 0.0,
) -> FracturePhantom:
    """The same shaft without a fracture: labels 0/1, ``truth.fractures == []``."""
    u = _unit(shaft_axis_ras)
    center = np.asarray(center_ras, dtype=float)
    shaft = Shaft(center - length_mm / 2 * u, u, length_mm, outer_radius_mm,
                  cortical_thickness_mm)
    radius = outer_radius_mm if body_radius_mm is None else body_radius_mm
    grid = fit_grid(_ring_points(shaft, [0.0, length_mm], radius), spacing, direction,
                    margin_mm)

    def bone(points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        codes = shaft.tissue(points)
        return codes, (codes >= 0).astype(np.uint8)

    labels, image = _render_bone(grid, bone, _body_tissue(shaft, body_radius_mm), modality,
                                 noise_sd, seed, supersample, blur_sigma_mm)
    whole, cortical = shaft.cross_section_mm2()
    truth = _bone_truth(shaft, {1: whole * length_mm / 1000}, {1: cortical * length_mm / 1000},
                        [])
    return FracturePhantom(image=image, labels=labels, truth=truth)
