"""Vertebral body heights (anterior, middle, posterior) and the Genant semi-quantitative grade.

Frame: the superior-inferior axis is the body's smallest principal axis (PCA in physical
space; a vertebral body is wider and deeper than it is high) or a given axis, oriented
towards the patient's S. The anterior-posterior axis is the patient's A direction (or a given
one) made perpendicular to it; left-right completes the frame.

Heights are column heights: the body's voxels in a central left-right band (the middle half
of its width) are binned on a ``bin_mm`` grid across the (LR, AP) plane; a bin's height is
its voxel count times the voxel volume over the bin area, which is unbiased at any grid
orientation and voxel shape.

The measure is continuous in its input. Voxel centres lie on a lattice, so with hard bins
and a hard band many of them sit exactly on an edge, and a rounding difference (another BLAS
kernel computing the PCA frame) moved a whole row of voxels and the TPTBox L3 anterior
height by 0.36 mm. So each point is shared linearly between the two nearest bins along each
axis (cloud-in-cell), the band edges are ramps one bin wide, and the front and back halves
are chosen by bin index, not by comparing coordinates.

Voxels larger than half a bin are represented by a lattice of sub-voxel points (each
carrying its share of the volume); otherwise a 2 mm bin over 3 mm voxels catches one, two or
no voxel columns and the heights alias (a 3 mm CT gave middle heights of 40 mm for a 27 mm
body before this).

Heights along AP are fitted by a straight line over each half of the depth of the central
band, without the rim (the outer 15 % of the depth, at least two voxels: rounded endplate
corners and partial-volume columns there). Each line is evaluated at its corner, where the
rounded rim begins (see :func:`_corner`); the middle height is the fitted value at
mid-depth (mean of both lines).

Grade as quantitative morphometry (QM) does: each height is compared with the height it
should have, by three ratios (Eastell et al., J Bone Miner Res 1991; McCloskey et al.,
Osteoporos Int 1993: wedge Ha/Hp, mid/biconcave Hm/Hp, crush Hp against the posterior height
predicted from the adjacent vertebrae), and the largest of the three height reductions is
graded on Genant's semi-quantitative scale: 0 if r < 0.20, 1 if 0.20 <= r < 0.25,
2 if 0.25 <= r <= 0.40, 3 if r > 0.40. The reductions (clipped at 0):

- wedge ``1 - Ha / Hp``: only an anterior shorter than the posterior counts.
- biconcave ``1 - Hm / ((Ha + Hp) / 2)``: the middle against the height a body with straight
  endplates between its corners would have at mid-depth. Against max(Ha, Hp) the normal
  lumbar lordotic shape (anterior taller, Ha/Hp 1.15-1.28 on the normal L3-L5 here) read as
  concavity: 0.22 for the normal TPTBox L3 (0.14 now). The normal central concavity itself is
  small (QM reference means of Hm/Hp are about 0.9) and below the 20 % threshold, and QM's
  own limit (3 SD below the normal mean ratio) lands near a 20 % reduction, so no further
  allowance is made.
- crush ``1 - Hp / Hp_ref``: with ``adjacent_posterior_mm`` (the posterior heights of the
  labelled vertebrae above and/or below) Hp_ref is their mean, as McCloskey-Kanis predict
  Hp from the neighbours. Without neighbours only a posterior shorter than the normal lordotic
  shape allows counts: Hp_ref = Ha / LORDOTIC_HA_HP (Ha/Hp = 1.25, about the lordotic shape
  of the normal L3-L5 measured here, 1.15-1.28; QM compares a ratio with its normal mean). A
  uniformly crushed body needs its neighbours to be seen.

The deformity type is the one with the largest reduction, or 'none' at grade 0. A whole
spine is graded against the neighbours by :func:`spine_heights`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from mskai.errors import InputError
from mskai.volume import Volume

GENANT_THRESHOLDS = (0.20, 0.25, 0.40)
LORDOTIC_HA_HP = 1.25  # normal lumbar Ha/Hp allowed before a short posterior counts as crush
CORNER_FRACTION = 0.9  # a column below 90 % of the trend is in the rounded rim


@dataclass(frozen=True)
class Morphometry:
    """QM ratios and height reductions (see the module docstring)."""

    wedge_ratio: float  # Ha / Hp
    biconcave_ratio: float  # Hm / ((Ha + Hp) / 2)
    crush_ratio: float  # Hp / Hp_ref
    crush_reference_mm: float  # Hp_ref
    crush_reference: str  # 'adjacent' (mean of the neighbours) or 'anterior' (Ha / 1.25)

    @property
    def reductions(self) -> dict[str, float]:
        return {"wedge": max(0.0, 1.0 - self.wedge_ratio),
                "biconcave": max(0.0, 1.0 - self.biconcave_ratio),
                "crush": max(0.0, 1.0 - self.crush_ratio)}

    @property
    def reduction(self) -> float:
        return max(self.reductions.values())

    @property
    def grade(self) -> int:
        return genant_grade(self.reduction)

    @property
    def deformity(self) -> str:
        """'wedge', 'biconcave' or 'crush' (the largest reduction), 'none' at grade 0."""
        if self.grade == 0:
            return "none"
        reductions = self.reductions
        return max(reductions, key=reductions.__getitem__)


def morphometry(anterior: float, middle: float, posterior: float,
                adjacent_posterior_mm: Sequence[float] | None = None) -> Morphometry:
    """The three QM ratios of one body; ``adjacent_posterior_mm``: posterior heights of the
    labelled neighbours (none, one or two), the crush reference when given."""
    neighbours = [float(h) for h in (adjacent_posterior_mm or ()) if h is not None]
    if any(not np.isfinite(h) or h <= 0 for h in neighbours):
        raise InputError("adjacent posterior heights must be positive numbers of mm")
    if neighbours:
        reference, kind = float(np.mean(neighbours)), "adjacent"
    else:
        reference, kind = anterior / LORDOTIC_HA_HP, "anterior"
    return Morphometry(wedge_ratio=anterior / posterior,
                       biconcave_ratio=middle / (0.5 * (anterior + posterior)),
                       crush_ratio=posterior / reference, crush_reference_mm=reference,
                       crush_reference=kind)


@dataclass(frozen=True)
class VertebralHeights:
    """Heights in mm, the QM height reduction (0..1), Genant grade 0-3 and the frame used;
    ``qm``: the ratios, reductions and deformity type behind the grade."""

    anterior_mm: float
    middle_mm: float
    posterior_mm: float
    reduction: float
    grade: int
    si_axis_ras: tuple[float, float, float]
    ap_axis_ras: tuple[float, float, float]
    qm: Morphometry | None = None

    @property
    def deformity(self) -> str:
        return self.qm.deformity if self.qm is not None else "none"

    def graded_against(self, adjacent_posterior_mm: Sequence[float] | None) -> VertebralHeights:
        """The same heights graded with the neighbours' posterior heights as crush reference."""
        qm = morphometry(self.anterior_mm, self.middle_mm, self.posterior_mm,
                         adjacent_posterior_mm)
        return VertebralHeights(self.anterior_mm, self.middle_mm, self.posterior_mm,
                                qm.reduction, qm.grade, self.si_axis_ras, self.ap_axis_ras, qm)

    def as_dict(self) -> dict:
        out = {"height_anterior_mm": self.anterior_mm, "height_middle_mm": self.middle_mm,
               "height_posterior_mm": self.posterior_mm, "height_reduction": self.reduction,
               "genant_grade": self.grade, "deformity": self.deformity}
        if self.qm is not None:
            out.update({"wedge_ratio": self.qm.wedge_ratio,
                        "biconcave_ratio": self.qm.biconcave_ratio,
                        "crush_ratio": self.qm.crush_ratio,
                        "crush_reference_mm": self.qm.crush_reference_mm,
                        "crush_reference": self.qm.crush_reference,
                        **{f"{k}_reduction": v for k, v in self.qm.reductions.items()}})
        return out


def height_reduction(anterior: float, middle: float, posterior: float,
                     adjacent_posterior_mm: Sequence[float] | None = None) -> float:
    """The largest QM height reduction (wedge, biconcave, crush; see the module docstring)."""
    return morphometry(anterior, middle, posterior, adjacent_posterior_mm).reduction


def genant_grade(reduction: float) -> int:
    """Genant grade 0-3 from a height reduction (see the module docstring)."""
    if reduction < GENANT_THRESHOLDS[0]:
        return 0
    if reduction < GENANT_THRESHOLDS[1]:
        return 1
    return 2 if reduction <= GENANT_THRESHOLDS[2] else 3


def _unit(v: np.ndarray) -> np.ndarray:
    return v / np.linalg.norm(v)


def body_frame(points_ras: np.ndarray, si_axis_ras: np.ndarray | None,
               anterior_ras: np.ndarray) -> np.ndarray:
    """3x3 matrix whose columns are the LR, AP, SI unit axes (RAS)."""
    if si_axis_ras is None:
        cov = np.cov((points_ras - points_ras.mean(axis=0)).T)
        si = np.linalg.eigh(cov)[1][:, 0]
        si = si if si[2] >= 0 else -si
    else:
        si = _unit(np.asarray(si_axis_ras, dtype=float))
    ap = np.asarray(anterior_ras, dtype=float)
    ap = _unit(ap - (ap @ si) * si)
    return np.column_stack([np.cross(ap, si), ap, si])


def _edge_extent(volume: Volume, axis_ras: np.ndarray) -> float:
    """Half a voxel's extent along a physical direction."""
    cols = (volume.ijk_to_ras()[:3, :3])
    return 0.5 * float(np.sum(np.abs(axis_ras @ cols)))


def vertebral_heights(mask: np.ndarray, volume: Volume,
                      si_axis_ras: np.ndarray | None = None,
                      anterior_ras: np.ndarray | tuple[float, float, float] = (0.0, 1.0, 0.0),
                      bin_mm: float = 2.0,
                      adjacent_posterior_mm: Sequence[float] | None = None) -> VertebralHeights:
    """Anterior, middle and posterior heights and the Genant grade of one vertebral body.

    ``adjacent_posterior_mm``: posterior heights (mm) of the labelled vertebrae above and/or
    below, the reference for crush; without them crush is judged against the anterior height.
    """
    from mskai.fracture.alignment import voxel_points_ras

    if np.count_nonzero(mask) < 50:
        raise InputError("the vertebral body mask is empty or tiny; give the body's segment")
    pts = voxel_points_ras(mask, volume)
    frame = body_frame(pts, si_axis_ras, np.asarray(anterior_ras, dtype=float))
    pts, point_mm3 = _sub_voxel_points(pts, volume, bin_mm)
    local = (pts - pts.mean(axis=0)) @ frame
    x, y = local[:, 0], local[:, 1]
    x_lo, x_hi = np.quantile(x, [0.25, 0.75])
    weight = _band_weight(x, x_lo, x_hi, bin_mm)
    band = weight > 0
    edge = _edge_extent(volume, frame[:, 1])
    y_min, y_max = y[band].min() - edge, y[band].max() + edge  # edges of the central band
    rel, heights = _column_heights(x[band], y[band], weight[band] * point_mm3, x_lo, x_hi,
                                   y_min, y_max, bin_mm)
    y_mid = 0.5 * (y_min + y_max)
    centres = y_mid + rel * bin_mm
    inner = np.zeros(rel.size, bool)
    inner[1:-1] = True  # the outermost bins are partly outside the body
    rim_bins = max(0.15 * (y_max - y_min), 4.0 * edge) / bin_mm
    half_bins = 0.5 * (y_max - y_min) / bin_mm
    front = inner & (rel >= -1) & (rel <= half_bins - rim_bins)
    back = inner & (rel <= 1) & (rel >= rim_bins - half_bins)
    if np.count_nonzero(front) < 2 or np.count_nonzero(back) < 2:
        raise InputError("the vertebral body mask is too small to measure heights; give a "
                         "mask at least a few voxels deep")
    line_a = np.polyfit(centres[front], heights[front], 1)
    line_p = np.polyfit(centres[back], heights[back], 1)
    ha = float(np.polyval(line_a, y_mid + bin_mm * _corner(rel, heights, line_a, front, +1,
                                                            half_bins, y_mid, bin_mm)))
    hp = float(np.polyval(line_p, y_mid + bin_mm * _corner(rel, heights, line_p, back, -1,
                                                            half_bins, y_mid, bin_mm)))
    hm = float(0.5 * (np.polyval(line_a, y_mid) + np.polyval(line_p, y_mid)))
    qm = morphometry(ha, hm, hp, adjacent_posterior_mm)
    return VertebralHeights(ha, hm, hp, qm.reduction, qm.grade,
                            tuple(float(v) for v in frame[:, 2]),
                            tuple(float(v) for v in frame[:, 1]), qm)


def spine_heights(masks: Sequence[np.ndarray | None], volume: Volume,
                  **kwargs) -> list[VertebralHeights | None]:
    """Heights of several bodies in spinal order (either direction), each graded with the
    posterior heights of its labelled neighbours in the list as crush reference. ``None`` (or
    an empty mask) is a level without a label: it is skipped and breaks the adjacency.
    ``kwargs`` go to :func:`vertebral_heights`."""
    measured = [vertebral_heights(m, volume, **kwargs) if m is not None and np.any(m) else None
                for m in masks]
    graded: list[VertebralHeights | None] = []
    for i, body in enumerate(measured):
        if body is None:
            graded.append(None)
            continue
        neighbours = [measured[j].posterior_mm for j in (i - 1, i + 1)
                      if 0 <= j < len(measured) and measured[j] is not None]
        graded.append(body.graded_against(neighbours))
    return graded


def _sub_voxel_points(points_ras: np.ndarray, volume: Volume,
                      bin_mm: float) -> tuple[np.ndarray, float]:
    """Voxel centres replaced by an s x s x s lattice of points per voxel (pitch <= bin / 2).

    Returns the points and the volume each carries.
    """
    steps = volume.ijk_to_ras()[:3, :3]
    s = max(1, int(np.ceil(2.0 * max(volume.spacing) / bin_mm)))
    if s == 1:
        return points_ras, volume.voxel_volume_mm3
    frac = (np.arange(s) + 0.5) / s - 0.5
    offsets = np.stack(np.meshgrid(frac, frac, frac, indexing="ij"), axis=-1).reshape(-1, 3)
    shifted = points_ras[:, None, :] + (offsets @ steps.T)[None, :, :]
    return shifted.reshape(-1, 3), volume.voxel_volume_mm3 / s**3


def _corner(rel: np.ndarray, heights: np.ndarray, line: np.ndarray, fitted: np.ndarray,
            outward: int, half_bins: float, y_mid: float, bin_mm: float) -> float:
    """Where the rounded rim begins, in bins from mid-depth: going outwards from the fitted
    bins, the first place the column height falls below CORNER_FRACTION of the fitted line
    (interpolated between bins, less the binning's own blur), or the band's edge if it
    never does.

    Quantitative morphometry places its height points at the endplate corners, inside the
    rounded rim; extrapolating the line to the outer edge read the TPTBox L3 anterior
    height 3 mm high over its rising front profile.
    """
    # Linear binning blurs a sharp edge over one bin either side: a step falls to
    # CORNER_FRACTION of its height this many bins inside the edge (triangle kernel).
    blur_bins = 1.0 - np.sqrt(2.0 * (1.0 - CORNER_FRACTION))
    order = np.argsort(outward * rel)
    start = int(np.flatnonzero(fitted[order])[-1])
    previous_rel, previous_gap = None, None
    for k in order[start:]:
        trend = np.polyval(line, y_mid + bin_mm * rel[k])
        gap = heights[k] - CORNER_FRACTION * trend
        if gap < 0:
            if previous_rel is None:
                crossing = rel[k]
            else:
                t = previous_gap / (previous_gap - gap)
                crossing = previous_rel + t * (rel[k] - previous_rel)
            return float(np.clip(crossing + outward * blur_bins, -half_bins, half_bins))
        previous_rel, previous_gap = rel[k], gap
    return float(outward * half_bins)


def _band_weight(x: np.ndarray, x_lo: float, x_hi: float, ramp_mm: float) -> np.ndarray:
    """Membership of the central band: 1 inside, 0 outside, linear over ``ramp_mm`` at each
    edge (centred on it), so a point on an edge counts one half whatever its rounding."""
    rise = np.clip((x - x_lo) / ramp_mm + 0.5, 0.0, 1.0)
    fall = np.clip((x_hi - x) / ramp_mm + 0.5, 0.0, 1.0)
    return rise * fall


def _linear_bins(u: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray,
                                                 np.ndarray]:
    """Cloud-in-cell: for positions ``u`` in bin units (bin k spans [k, k + 1)), the lower
    and upper neighbouring bins and their weights, which are linear in ``u``. A neighbour
    outside the n bins gets weight 0, as a hard histogram drops what falls outside it."""
    c = u - 0.5
    lower = np.floor(c)
    frac = c - lower
    lower = lower.astype(np.int64)
    upper = lower + 1
    w_lower = np.where((lower >= 0) & (lower < n), 1.0 - frac, 0.0)
    w_upper = np.where((upper >= 0) & (upper < n), frac, 0.0)
    return np.clip(lower, 0, n - 1), np.clip(upper, 0, n - 1), w_lower, w_upper


def _column_heights(x: np.ndarray, y: np.ndarray, mm3: np.ndarray, x_lo: float, x_hi: float,
                    y_min: float, y_max: float, bin_mm: float) -> tuple[
                        np.ndarray, np.ndarray]:
    """Per AP bin: the bin centre's offset from mid-depth in bins, and
    the median column height over the LR bins. Each point carries ``mm3`` of volume."""
    nx = max(1, int((x_hi - x_lo) // bin_mm))
    ny = int((y_max - y_min) // bin_mm)
    x0 = x_lo + (x_hi - x_lo - nx * bin_mm) / 2
    y0 = y_min + (y_max - y_min - ny * bin_mm) / 2
    xa, xb, wxa, wxb = _linear_bins((x - x0) / bin_mm, nx)
    ya, yb, wya, wyb = _linear_bins((y - y0) / bin_mm, ny)
    volume = np.zeros(nx * ny)
    for xi, wx in ((xa, wxa), (xb, wxb)):
        for yi, wy in ((ya, wya), (yb, wyb)):
            volume += np.bincount(xi * ny + yi, weights=mm3 * wx * wy, minlength=nx * ny)
    heights = np.median(volume.reshape(nx, ny), axis=0) / bin_mm**2
    rel = np.arange(ny) + 0.5 - ny / 2.0  # exact in floating point: no ties to round
    return rel, heights
