"""Fracture candidates: pairs of bone fragments whose ends face each other across a gap.

Every pair of fragments closer than ``max_gap_mm`` is found from one distance transform
of the background: a voxel lies on the boundary between fragments ``a`` and ``b`` where its
nearest bone voxel belongs to ``a`` and its neighbour's to ``b``; the gap width there is
the sum of both distances plus the step. Two fragments can meet at more than one place
(the pelvis meets a broken femur at the hip joint and again at the fracture, when the
distal piece touches it), so the boundary points of a pair are split into connected
sites (see :func:`gap_sites`), and each site is a candidate of its own. A site's centre is the mean
of its points within ``max(spacing)`` of its narrowest width.

Score (0..1), a documented heuristic: the product of five terms, each 0..1, so any one
clearly failing vetoes the candidate:

- ``gap``: 1 up to ``full_gap_mm`` (8 mm), falling linearly to 0 at ``max_gap_mm`` (20 mm);
  the width is measured between voxel centres, so at 3 mm voxels it reads up to ~6 mm wide;
- ``alignment``: angle between the local fragment axes, 1 up to 20 degrees, 0 at 60 degrees;
- ``facing`` (each fragment): the local axis points at the gap, i.e. the gap sits at an end
  of a rod and not beside it: 1 for |cos| >= 0.9, 0 for |cos| <= 0.5;
- ``elongation`` (each fragment): the bone near the gap is rod-like (PCA sd ratio), 1 from
  1.6, 0 at 1.1 (vertebral bodies, joint surfaces and plates are not);
- ``end_faces``: similar cross-sections on both sides (bone voxels within
  ``face_depth_mm`` of the gap centre plane), the square root of the smaller over the larger.

Local axes use the voxels within ``reach_mm`` of the gap centre (see :mod:`alignment`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from mskai.fracture.alignment import Alignment, fragment_alignment
from mskai.terminology import BONE
from mskai.volume import Volume

SITE_LINK_VOXELS = 1.5
MAX_SITES_PER_PAIR = 4
SOURCE_SURFACE = -1  # Candidate.source of learned-surface candidates (no fragment map)
SOURCE_VALLEY = -2  # Candidate.source of HU-valley candidates (no fragment map)
SOURCE_SLICE_DIP = -3  # Candidate.source of slice-dip candidates (no fragment map)
# what measurements.json and the candidate table say about where a candidate comes from
SOURCE_NAME_COMPONENTS = "components"  # a pair of fragments across a gap (source >= 0)
SOURCE_NAME_VALLEY = "valley"
SOURCE_NAME_SLICE_DIP = "slice_dip"
SOURCE_NAME_SURFACE = "learned_surface"
# manifest output key: a learned candidate model beat the component candidates held out
PREFERRED_FLAG = "preferred_over_components"


@dataclass
class Candidate:
    """One suspected fracture between two labelled fragments."""

    labels: tuple[int, int]
    position_ras: np.ndarray
    gap_width_mm: float
    score: float
    terms: dict[str, float]
    alignment: Alignment | None
    bone: str = BONE
    fragments: list[str] = field(default_factory=list)
    source: int = 0  # which fragment label map ``labels`` refer to (tasks/fracture.py)
    # principal axes (RAS unit rows, longest spread first) of a detected line region
    axes_ras: np.ndarray | None = None
    fragment_map: int | None = None  # a detector's candidate split later: its labels' map

    @property
    def label_map(self) -> int | None:
        """The fragment label map ``labels`` refer to: ``source`` for a pair of fragments,
        ``fragment_map`` for a line region split afterwards, else None."""
        return self.source if self.source >= 0 else self.fragment_map

    @property
    def source_name(self) -> str:
        """:data:`SOURCE_NAME_COMPONENTS`, :data:`SOURCE_NAME_VALLEY`,
        :data:`SOURCE_NAME_SLICE_DIP` or :data:`SOURCE_NAME_SURFACE`: the detector that found
        the candidate."""
        names = {SOURCE_VALLEY: SOURCE_NAME_VALLEY, SOURCE_SLICE_DIP: SOURCE_NAME_SLICE_DIP,
                 SOURCE_SURFACE: SOURCE_NAME_SURFACE}
        return names.get(self.source, SOURCE_NAME_COMPONENTS)

    def as_contract(self) -> dict[str, Any]:
        """The ``fractures`` entry of measurements.json (CONTRACT.md) plus explanations."""
        al = self.alignment
        return {
            "position_ras": [float(v) for v in self.position_ras],
            "score": float(self.score),
            "bone": self.bone,
            "fragments": list(self.fragments),
            "displacement_mm": float(al.displacement_mm) if al else float("nan"),
            "angulation_deg": float(al.angulation_deg) if al else float("nan"),
            "gap_mm": float(self.gap_width_mm),
            "source": self.source_name,
            "score_terms": {k: float(v) for k, v in self.terms.items()},
        }


def _ramp(x: float, zero: float, one: float) -> float:
    """0 at ``zero``, 1 at ``one``, linear between, clipped (works for either order)."""
    return float(np.clip((x - zero) / (one - zero), 0.0, 1.0))


def gap_boundaries(labels: np.ndarray, volume: Volume,
                   max_gap_mm: float) -> dict[tuple[int, int], tuple[np.ndarray, np.ndarray]]:
    """Per label pair (a < b): boundary points (k, j, i, continuous) and gap widths (mm)."""
    from scipy import ndimage

    spacing_kji = np.asarray(tuple(reversed(volume.spacing)))
    dist, idx = ndimage.distance_transform_edt(labels == 0, sampling=spacing_kji,
                                               return_indices=True)
    nearest = labels[tuple(idx)]
    del idx
    found: dict[tuple[int, int], list[tuple[np.ndarray, np.ndarray]]] = {}
    for axis in range(3):
        lo = [slice(None)] * 3
        hi = [slice(None)] * 3
        lo[axis], hi[axis] = slice(None, -1), slice(1, None)
        a, b = nearest[tuple(lo)], nearest[tuple(hi)]
        width = dist[tuple(lo)] + dist[tuple(hi)] + spacing_kji[axis]
        hit = (a != b) & (a > 0) & (b > 0) & (width <= max_gap_mm)
        pts = np.argwhere(hit).astype(float)
        pts[:, axis] += 0.5
        pa, pb, w = a[hit], b[hit], width[hit]
        for key in set(zip(np.minimum(pa, pb).tolist(), np.maximum(pa, pb).tolist(),
                           strict=True)):
            sel = (np.minimum(pa, pb) == key[0]) & (np.maximum(pa, pb) == key[1])
            found.setdefault(key, []).append((pts[sel], w[sel]))
    return {k: (np.vstack([p for p, _ in v]), np.concatenate([w for _, w in v]))
            for k, v in found.items()}


def gap_sites(points_kji: np.ndarray, widths: np.ndarray, volume: Volume,
              link_voxels: float = SITE_LINK_VOXELS,
              max_sites: int = MAX_SITES_PER_PAIR) -> list[tuple[np.ndarray, np.ndarray]]:
    """The boundary points of one fragment pair split into separate sites, narrowest first.

    Points closer than ``link_voxels`` voxel diagonals belong to the same site, so two
    places where the fragments meet are separate sites when the fragments are farther
    than ``max_gap_mm`` apart somewhere between them. At most ``max_sites`` are kept.
    """
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components
    from scipy.spatial import cKDTree

    spacing_kji = np.asarray(tuple(reversed(volume.spacing)))
    xyz = points_kji * spacing_kji
    links = cKDTree(xyz).query_pairs(link_voxels * float(np.linalg.norm(spacing_kji)),
                                     output_type="ndarray")
    graph = coo_matrix((np.ones(len(links)), (links[:, 0], links[:, 1])),
                       shape=(len(xyz), len(xyz)))
    n, site = connected_components(graph, directed=False)
    sites = [(points_kji[site == s], widths[site == s]) for s in range(n)]
    return sorted(sites, key=lambda pw: float(pw[1].min()))[:max_sites]


def gap_center(points_kji: np.ndarray, widths: np.ndarray, volume: Volume) -> tuple[
        np.ndarray, float]:
    """RAS centre of the narrowest part of a gap, and its width."""
    narrow = float(widths.min())
    sel = widths <= narrow + max(volume.spacing)
    centre_kji = points_kji[sel].mean(axis=0)
    return volume.index_to_ras(centre_kji[::-1]), narrow


def _face_area(points_ras: np.ndarray, center: np.ndarray, normal: np.ndarray,
               depth_mm: float, voxel_mm3: float) -> float:
    """Bone volume within ``depth_mm`` of the plane through the gap centre, per mm depth."""
    s = np.abs((points_ras - center) @ normal)
    r = np.linalg.norm(points_ras - center, axis=1)
    return float(np.count_nonzero((s <= depth_mm) & (r <= 4 * depth_mm + 20.0))) * voxel_mm3


def score_pair(prox_ras: np.ndarray, dist_ras: np.ndarray, center: np.ndarray, gap_mm: float,
               voxel_mm3: float, max_gap_mm: float = 20.0, full_gap_mm: float = 8.0,
               reach_mm: float = 40.0, face_depth_mm: float = 6.0) -> tuple[
                   float, dict[str, float], Alignment | None]:
    """Score terms of one fragment pair (see module docstring) and its alignment."""
    try:
        al = fragment_alignment(prox_ras, dist_ras, center, reach_mm=reach_mm)
    except ValueError:
        return 0.0, {}, None
    u, v = al.proximal_axis, al.distal_axis
    to_gap_u = center - u.centroid_ras
    to_gap_v = center - v.centroid_ras
    facing_u = abs(u.direction_ras @ to_gap_u) / max(np.linalg.norm(to_gap_u), 1e-6)
    facing_v = abs(v.direction_ras @ to_gap_v) / max(np.linalg.norm(to_gap_v), 1e-6)
    normal = u.direction_ras + v.direction_ras
    normal /= max(np.linalg.norm(normal), 1e-6)
    area_u = _face_area(prox_ras, center, normal, face_depth_mm + gap_mm / 2, voxel_mm3)
    area_v = _face_area(dist_ras, center, normal, face_depth_mm + gap_mm / 2, voxel_mm3)
    terms = {
        "gap": _ramp(gap_mm, max_gap_mm, full_gap_mm),
        "alignment": _ramp(al.angulation_deg, 60.0, 20.0),
        "facing": _ramp(min(facing_u, facing_v), 0.5, 0.9),
        "elongation": _ramp(min(u.elongation, v.elongation), 1.1, 1.6),
        "end_faces": float(np.sqrt(min(area_u, area_v) / max(area_u, area_v, 1e-6))),
    }
    return float(np.prod(list(terms.values()))), terms, al


def find_candidates(labels: np.ndarray, volume: Volume, max_gap_mm: float = 20.0,
                    reach_mm: float = 40.0, min_score: float = 0.0) -> list[Candidate]:
    """Candidates between labelled fragments (0 background), best score first."""
    pairs = gap_boundaries(labels, volume, max_gap_mm)
    out = []
    for (a, b), (all_points, all_widths) in pairs.items():
        for pts, widths in gap_sites(all_points, all_widths, volume):
            center, width = gap_center(pts, widths, volume)
            box = _box_around(center, volume, reach_mm + 2 * max(volume.spacing),
                              labels.shape)
            offset = np.array([s.start for s in box])
            sub = labels[box]
            pa = voxel_points_ras_offset(sub == a, volume, offset)
            pb = voxel_points_ras_offset(sub == b, volume, offset)
            score, terms, al = score_pair(pa, pb, center, width, volume.voxel_volume_mm3,
                                          max_gap_mm=max_gap_mm, reach_mm=reach_mm)
            if score >= min_score:
                position = candidate_position(center, volume.index_to_ras(
                    pts[:, ::-1]).reshape(-1, 3), max(volume.spacing), al)
                out.append(Candidate((a, b), position, width, score, terms, al))
    return sorted(out, key=lambda c: -c.score)


def candidate_position(gap_center_ras: np.ndarray, site_ras: np.ndarray, voxel_mm: float,
                       alignment: Alignment | None) -> np.ndarray:
    """Where to report a candidate: between the fragment ends, if that lies in the gap.

    The midpoint between the fragment ends along their axes is the better estimate on rod-
    like fragments (the narrowest point of a wedge-shaped gap lies on the rim). When a
    fragment is part of a larger bone complex (a rib piece joined to the spine at 3 mm) its
    axis is meaningless and that midpoint can lie centimetres away; it is then not on the
    gap's boundary surface (``site_ras``, within two voxels), and the narrowest point of the
    gap is reported instead.
    """
    if alignment is None:
        return gap_center_ras
    centre = alignment.fracture_center_ras
    if np.min(np.linalg.norm(site_ras - centre, axis=1)) > 2.0 * voxel_mm:
        return gap_center_ras
    return centre


def voxel_points_ras_offset(mask: np.ndarray, volume: Volume, offset_kji: np.ndarray) -> np.ndarray:
    """RAS positions of a sub-array's voxels whose (k, j, i) start is ``offset_kji``."""
    kji = np.argwhere(mask) + offset_kji
    return volume.index_to_ras(kji[:, ::-1].astype(float)).reshape(-1, 3)


def _box_around(center_ras: np.ndarray, volume: Volume, radius_mm: float,
                shape: tuple[int, ...]) -> tuple[slice, slice, slice]:
    """(k, j, i) slices of the grid box holding a ball of ``radius_mm`` around a point."""
    ijk = volume.ras_to_index(center_ras)
    half = radius_mm / np.asarray(volume.spacing)
    size_ijk = np.asarray(shape[:3][::-1])
    lo = np.clip(np.floor(ijk - half).astype(int), 0, size_ijk)
    hi = np.clip(np.ceil(ijk + half).astype(int) + 1, 0, size_ijk)
    return tuple(slice(int(a), int(max(b, a))) for a, b in zip(lo[::-1], hi[::-1], strict=True))
