"""Realistic simulated fractures of REAL bone: rough surfaces, contact, impaction, hairlines.

A bone mask of a real CT is cut along one or two rough surfaces (:mod:`.rough_surface`: a
tilted plane plus a 1/f height field of 0.5-2.5 mm RMS) into fragments; each fragment moves
rigidly, ``x -> c + R (x - c) + t``, and the CT is re-rendered. Kinds (:data:`KINDS`):

- ``touching``: fragments in contact, rotation 1-4 degrees, 0.3-1 mm shift along the
  surface, 0-0.5 mm apart; the fracture line is 0.3-1 mm of soft tissue;
- ``impacted``: the distal piece is driven 1.5-4 mm into the proximal one; where they
  overlap the density is the larger of both plus 150-350 HU (compressed trabeculae);
- ``hairline``: no displacement, a 0.3-1 mm soft-tissue line only;
- ``step_off``: a cortical step of 1-5 mm along the surface, fragments in contact;
- ``comminuted``: two rough surfaces 8-16 mm apart (three fragments), each piece moved
  0.5-2 mm and 1-5 degrees;
- ``gap``: the clean-gap kind of :mod:`.simulated_fracture` on a rough surface (2-6 mm apart,
  2-6 mm shift, 3-12 degrees).

Rendering respects the scanner: voxels near a fracture surface are sampled on a sub-grid of
at most ``SUB_MM`` (0.5 mm; at most ``MAX_SUB`` per axis); each sub-sample takes the CT
value of the fragment it falls in (nearest source voxel, which keeps the scan's noise
texture), the fill value for line or vacated bone, or the larger of two overlapping
fragments plus the impaction excess; the voxel is their mean (partial volume). Filled
fractions get Gaussian noise with the scan's own noise SD (:func:`mskai.noise.noise_sd`) scaled by
the filled fraction.

The truth is the fracture-surface mask (voxels holding fragment and line, overlap or two
fragments, near a surface), the fragment label map (1 = the unmoved piece and the rest of
the bone) and the surface centres.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from mskai.noise import noise_sd
from mskai.volume import Volume

from .grid import rotation
from .rough_surface import RoughSurface, random_surface
from .simulated_fracture import _perpendicular_unit, _points

TOUCHING, IMPACTED, HAIRLINE, STEP_OFF, COMMINUTED, GAP = (
    "touching", "impacted", "hairline", "step_off", "comminuted", "gap")
KINDS = (TOUCHING, IMPACTED, HAIRLINE, STEP_OFF, COMMINUTED, GAP)
SUB_MM = 0.5
MAX_SUB = 6
FILL_HU = 45.0
OUTSIDE, FILL, OVERLAP = 0, -1, -2


@dataclass
class Motion:
    """Rigid motion about ``center``: ``x -> center + R (x - center) + t``."""

    center: np.ndarray
    rotation: np.ndarray = field(default_factory=lambda: np.eye(3))
    translation: np.ndarray = field(default_factory=lambda: np.zeros(3))

    def inverse(self, points: np.ndarray) -> np.ndarray:
        return (points - self.center - self.translation) @ self.rotation + self.center


@dataclass
class RealFracture:
    image: Volume
    surface: np.ndarray  # bool: voxels the fracture surface passes through (truth)
    fragments: np.ndarray  # int16 labels, 0 = not bone, 1 = unmoved piece + rest of the bone
    kind: str
    centers_ras: list[np.ndarray]
    motions: list[Motion]  # of fragments 2, 3, ...
    line_mm: float


@dataclass
class _Spec:
    rms_mm: tuple[float, float] = (0.5, 2.5)
    line_mm: tuple[float, float] = (0.3, 1.0)
    angle_deg: tuple[float, float] = (1.0, 4.0)
    along_mm: tuple[float, float] = (0.3, 1.0)
    normal_mm: tuple[float, float] = (0.0, 0.5)
    impaction_hu: tuple[float, float] = (0.0, 0.0)
    surfaces: int = 1


SPECS = {
    TOUCHING: _Spec(),
    IMPACTED: _Spec(line_mm=(0.0, 0.0), angle_deg=(0.0, 3.0), along_mm=(0.0, 1.0),
                    normal_mm=(-4.0, -1.5), impaction_hu=(150.0, 350.0)),
    HAIRLINE: _Spec(angle_deg=(0.0, 0.0), along_mm=(0.0, 0.0), normal_mm=(0.0, 0.0)),
    STEP_OFF: _Spec(angle_deg=(0.0, 2.0), along_mm=(1.0, 5.0), normal_mm=(0.0, 0.5)),
    COMMINUTED: _Spec(angle_deg=(1.0, 5.0), along_mm=(0.5, 2.0), normal_mm=(-0.5, 1.0),
                      impaction_hu=(100.0, 250.0), surfaces=2),
    GAP: _Spec(line_mm=(0.0, 0.0), angle_deg=(3.0, 12.0), along_mm=(2.0, 6.0),
               normal_mm=(2.0, 6.0)),
}


def simulate_real_fracture(image: Volume, bone: np.ndarray, kind: str, seed: int = 0,
                           cut_radius_mm: float = 35.0, max_tilt_deg: float = 20.0,
                           position: tuple[float, float] = (0.3, 0.7),
                           tries: int = 20) -> RealFracture:
    """A copy of ``image`` with ``bone`` (boolean mask of one bone) broken (module doc).

    Raises ValueError for an unknown kind or when no draw within ``tries`` detaches a piece.
    """
    if kind not in SPECS:
        raise ValueError(f"unknown fracture kind {kind!r}; choose one of {', '.join(KINDS)}")
    spec = SPECS[kind]
    rng = np.random.default_rng(seed)
    pts = _points(bone, image)
    if len(pts) < 50:
        raise ValueError("the bone mask is too small to fracture")
    for _ in range(tries):
        surfaces = _draw_surfaces(pts, rng, spec, cut_radius_mm, max_tilt_deg, position)
        frag = split_by_surfaces(bone, image, surfaces)
        if frag is None:
            continue
        motions = [_draw_motion(s, rng, spec) for s in surfaces]
        line = float(rng.uniform(*spec.line_mm))
        excess = float(rng.uniform(*spec.impaction_hu))
        out, surface, labels = render(image, bone, frag, surfaces, motions, line, excess, rng)
        if not surface.any():
            continue
        return RealFracture(out, surface, labels, kind, [s.center for s in surfaces],
                            motions, line)
    raise ValueError("no rough cut detached a piece of the bone; give a longer bone")


def _draw_surfaces(pts: np.ndarray, rng: np.random.Generator, spec: _Spec, radius: float,
                   max_tilt: float, position: tuple[float, float]) -> list[RoughSurface]:
    """Rough surfaces across the bone's local axis at a random place along its length."""
    centroid = pts.mean(axis=0)
    main = np.linalg.eigh(np.cov((pts - centroid).T))[1][:, -1]
    s = (pts - centroid) @ main
    s0 = np.quantile(s, rng.uniform(*position))
    near = pts[np.abs(s - s0) <= 3.0]
    c = near[np.argmin(np.linalg.norm(near - near.mean(axis=0), axis=1))]
    local = pts[np.linalg.norm(pts - c, axis=1) <= 25.0]
    axis = np.linalg.eigh(np.cov((local - local.mean(axis=0)).T))[1][:, -1]
    if np.count_nonzero((pts - c) @ axis > 0) > len(pts) / 2:
        axis = -axis  # the smaller side moves
    offsets = [0.0] if spec.surfaces == 1 else list(
        np.cumsum([0.0] + [rng.uniform(8.0, 16.0)] * (spec.surfaces - 1)))
    out = []
    for off in offsets:
        n = rotation(tuple(_perpendicular_unit(axis, rng)), float(rng.uniform(0, max_tilt))) @ axis
        centre = c + off * axis
        disc = pts[(np.abs((pts - centre) @ n) <= 1.5)
                   & (np.linalg.norm(pts - centre, axis=1) <= radius)]
        if len(disc):
            centre = disc.mean(axis=0)
        out.append(random_surface(centre, n, rng, float(rng.uniform(*spec.rms_mm)), radius))
    return out


def _draw_motion(surface: RoughSurface, rng: np.random.Generator, spec: _Spec) -> Motion:
    n = surface.normal
    r = rotation(tuple(_perpendicular_unit(n, rng)), float(rng.uniform(*spec.angle_deg)))
    t = _perpendicular_unit(n, rng) * rng.uniform(*spec.along_mm) + n * rng.uniform(
        *spec.normal_mm)
    return Motion(surface.center, r, t)


def region_code(points: np.ndarray, surfaces: list[RoughSurface]) -> np.ndarray:
    """How many surfaces a point lies above (within their radius): 0 = the unmoved side."""
    code = np.zeros(len(points), dtype=np.int16)
    for s in surfaces:
        code += ((s.height(points) > 0) & s.within(points)).astype(np.int16)
    return code


def split_by_surfaces(bone: np.ndarray, image: Volume,
                      surfaces: list[RoughSurface]) -> np.ndarray | None:
    """Fragment labels (1 = unmoved side and the rest of the bone, 2.. beyond each surface).

    None when a surface does not detach the piece beyond it (the bone is still joined
    around the cut disc).
    """
    from scipy import ndimage

    kji = np.argwhere(bone)
    pts = image.index_to_ras(kji[:, ::-1].astype(float)).reshape(-1, 3)
    inside = np.stack([s.within(pts) for s in surfaces])
    keep = inside.any(axis=0)  # only points near a cut can change side
    kji, pts, inside = kji[keep], pts[keep], inside[:, keep]
    layer_mm = 0.6 * float(np.linalg.norm(image.spacing))  # no 26-neighbours across it
    heights = np.stack([np.where(w, s.height(pts), np.inf) for s, w in zip(
        surfaces, inside, strict=True)])
    layer = np.any((np.abs(heights) <= layer_mm) & inside, axis=0)
    cut = bone.copy()
    cut[tuple(kji[layer].T)] = False
    comps, _ = ndimage.label(cut, structure=np.ones((3, 3, 3)))
    comp_of = comps[tuple(kji.T)]
    code = np.sum((heights > 0) & inside, axis=0).astype(np.int16)
    near = np.any((np.abs(heights) <= layer_mm + 3.0) & inside, axis=0) & ~layer
    chosen = []
    for r in range(len(surfaces) + 1):
        vals = comp_of[near & (code == r)]
        vals = vals[vals > 0]
        if vals.size == 0:
            return None
        chosen.append(int(np.bincount(vals).argmax()))
    if len(set(chosen)) < len(chosen):
        return None
    labels = np.zeros(bone.shape, dtype=np.int16)
    labels[bone] = 1
    for r, comp in enumerate(chosen[1:], start=1):
        labels[comps == comp] = r + 1
    at_layer = tuple(kji[layer].T)
    labels[at_layer] = code[layer] + 1
    return labels


@dataclass
class _Scene:
    image: Volume
    src: np.ndarray  # flat
    bone: np.ndarray  # flat
    frag: np.ndarray  # flat
    surfaces: list[RoughSurface]
    frames: list[Motion]  # one per fragment label 1.. (identity first)
    line_mm: float
    excess_hu: float

    def sample(self, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """CT value and class (fragment label, ``FILL``, ``OVERLAP``, ``OUTSIDE``) of points."""
        n = len(points)
        claims = np.zeros(n, dtype=np.int16)
        first = np.zeros(n, dtype=np.int16)
        best = np.full(n, -np.inf, dtype=np.float32)
        any_line = np.zeros(n, dtype=bool)
        for label, motion in enumerate(self.frames, start=1):
            x = motion.inverse(points)
            idx, ok = self._index(x)
            mine = ok & self.bone[idx]
            fr = np.where(mine, self.frag[idx], 0).astype(np.int16)
            self._refine(x, mine, fr)
            mine &= fr == label
            line = mine & self._on_line(x)
            any_line |= line
            mine &= ~line
            hu = np.full(n, -np.inf, dtype=np.float32)
            hu[mine] = self.src[idx[mine]]
            first[mine & (claims == 0)] = label
            claims += mine.astype(np.int16)
            best = np.maximum(best, hu)
        idx, ok = self._index(points)
        values = np.full(n, FILL_HU, dtype=np.float32)
        cls = np.full(n, FILL, dtype=np.int16)
        values[ok] = self.src[idx[ok]]
        was_bone = ok & self.bone[idx]
        cls[ok & ~was_bone] = OUTSIDE
        empty = claims == 0
        refill = empty & (any_line | was_bone)
        values[refill] = FILL_HU
        cls[refill] = FILL
        one = claims == 1
        values[one], cls[one] = best[one], first[one]
        many = claims >= 2
        values[many], cls[many] = best[many] + self.excess_hu, OVERLAP
        return values, cls

    def _index(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Flat index of the nearest voxel (clipped to the grid) and whether it is inside."""
        ijk = np.rint(self.image.ras_to_index(x)).astype(np.int64).reshape(-1, 3)
        shape = np.asarray(self.image.array.shape[:3][::-1])
        ok = np.all((ijk >= 0) & (ijk < shape), axis=1)
        ijk = np.clip(ijk, 0, shape - 1)
        flat = np.ravel_multi_index((ijk[:, 2], ijk[:, 1], ijk[:, 0]),
                                    self.image.array.shape[:3])
        return flat, ok

    def _refine(self, x: np.ndarray, mine: np.ndarray, fr: np.ndarray) -> None:
        """Near a surface the fragment comes from the analytic surfaces, not the voxel."""
        close = mine & (fr <= len(self.surfaces) + 1)
        near = np.zeros(len(x), dtype=bool)
        for s in self.surfaces:
            near |= (np.abs(s.height(x)) <= max(self.image.spacing)) & s.within(x)
        close &= near
        fr[close] = region_code(x[close], self.surfaces) + 1

    def _on_line(self, x: np.ndarray) -> np.ndarray:
        if self.line_mm <= 0:
            return np.zeros(len(x), dtype=bool)
        out = np.zeros(len(x), dtype=bool)
        for s in self.surfaces:
            out |= (np.abs(s.height(x)) < self.line_mm / 2) & s.within(x)
        return out

    def near_surface(self, points: np.ndarray, reach_mm: float) -> np.ndarray:
        out = np.zeros(len(points), dtype=bool)
        for motion in self.frames:
            x = motion.inverse(points)
            for s in self.surfaces:
                out |= (np.abs(s.height(x)) <= reach_mm) & s.within(x)
        return out


def render(image: Volume, bone: np.ndarray, frag: np.ndarray, surfaces: list[RoughSurface],
           motions: list[Motion], line_mm: float, excess_hu: float,
           rng: np.random.Generator) -> tuple[Volume, np.ndarray, np.ndarray]:
    """The fractured CT, the fracture-surface truth and the fragment labels (module doc)."""
    from mskai.crop import padded_bbox

    src = np.asarray(image.array, dtype=np.float32)
    scene = _Scene(image, src.ravel(), bone.ravel(), frag.ravel(), surfaces,
                   [Motion(surfaces[0].center), *motions], line_mm, excess_hu)
    shift = max(float(np.linalg.norm(m.translation)) + 60 * np.arccos(np.clip(
        (np.trace(m.rotation) - 1) / 2, -1, 1)) for m in motions)
    box = padded_bbox(frag >= 2, image, pad_mm=shift + 2 * max(image.spacing) + 5.0)
    kji = _active_voxels(image, bone, frag, box, motions)
    centres = image.index_to_ras(kji[:, ::-1].astype(float)).reshape(-1, 3)
    values, cls = scene.sample(centres)
    labels_flat = np.where(cls > 0, cls, np.where(cls == OVERLAP, 1, 0)).astype(np.int16)
    surface_flat = np.zeros(len(kji), dtype=bool)
    fill_frac = (cls == FILL).astype(np.float32)
    reach = 0.5 * float(np.linalg.norm(image.spacing)) + line_mm / 2 + 0.5
    near = np.flatnonzero(scene.near_surface(centres, reach))
    sub = _sub_offsets(image.spacing)
    for chunk in np.array_split(near, max(1, len(near) * len(sub) // 400_000 + 1)):
        pts = (kji[chunk, ::-1][:, None, :] + sub[None]).reshape(-1, 3)
        v, c = scene.sample(image.index_to_ras(pts).reshape(-1, 3))
        v, c = v.reshape(len(chunk), -1), c.reshape(len(chunk), -1)
        values[chunk] = v.mean(axis=1)
        fill_frac[chunk] = (c == FILL).mean(axis=1)
        labels_flat[chunk] = _majority_label(c)
        surface_flat[chunk] = _mixed(c)
    sd = noise_sd(image)
    values += rng.normal(0.0, sd, len(values)).astype(np.float32) * fill_frac
    at = tuple(kji.T)
    out = src.copy()
    out[at] = values
    labels = np.zeros(bone.shape, dtype=np.int16)
    labels[bone] = 1
    labels[at] = labels_flat
    surface = np.zeros(bone.shape, dtype=bool)
    surface[at] = surface_flat
    dtype = image.array.dtype if np.issubdtype(image.array.dtype, np.floating) else np.float32
    return image.with_array(out.astype(dtype)), surface, labels


def _active_voxels(image: Volume, bone: np.ndarray, frag: np.ndarray,
                   box: tuple[slice, ...], motions: list[Motion]) -> np.ndarray:
    """(k, j, i) of the voxels of ``box`` that can change: bone, and where fragments land."""
    from scipy import ndimage

    sub = np.zeros(bone[box].shape, dtype=bool)
    offset = np.array([s.start for s in box])
    for label, motion in enumerate(motions, start=2):
        kji = np.argwhere(frag[box] == label) + offset
        ras = image.index_to_ras(kji[:, ::-1].astype(float)).reshape(-1, 3)
        moved = motion.center + (ras - motion.center) @ motion.rotation.T + motion.translation
        ijk = np.rint(image.ras_to_index(moved)).astype(np.int64).reshape(-1, 3)
        local = ijk[:, ::-1] - offset
        ok = np.all((local >= 0) & (local < np.asarray(sub.shape)), axis=1)
        sub[tuple(local[ok].T)] = True
    sub = ndimage.binary_dilation(sub, iterations=2) | bone[box]
    return np.argwhere(sub) + offset


def _sub_offsets(spacing: tuple[float, ...]) -> np.ndarray:
    """Sub-voxel offsets (i, j, k index units) of at most ``SUB_MM`` per axis."""
    axes = []
    for s in spacing:
        m = int(min(MAX_SUB, max(1, np.ceil(s / SUB_MM))))
        axes.append((np.arange(m) + 0.5) / m - 0.5)
    grid = np.meshgrid(*axes, indexing="ij")
    return np.stack([g.ravel() for g in grid], axis=1)


def _majority_label(cls: np.ndarray) -> np.ndarray:
    """Per voxel (row): the most frequent fragment if bone fills half of it, else 0."""
    bone_part = (cls > 0) | (cls == OVERLAP)
    top = int(max(cls.max(), 1))
    counts = np.stack([(cls == f).sum(axis=1) for f in range(1, top + 1)], axis=1)
    label = counts.argmax(axis=1) + 1
    return np.where(bone_part.mean(axis=1) >= 0.5, label, 0).astype(np.int16)


def _mixed(cls: np.ndarray) -> np.ndarray:
    """Voxels holding bone and fracture (line, overlap, or two fragments)."""
    frag = cls > 0
    has_bone = frag.any(axis=1) | (cls == OVERLAP).any(axis=1)
    lo = np.where(frag, cls, 10_000).min(axis=1)
    hi = np.where(frag, cls, -1).max(axis=1)
    fracture = (cls == FILL).any(axis=1) | (cls == OVERLAP).any(axis=1) | (frag.any(axis=1)
                                                                         & (lo != hi))
    return has_bone & fracture
