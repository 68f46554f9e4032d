"""A bone (phantom or real CT) broken along a rough surface, with the fragments touching.

The fracture surface through ``center_ras`` with unit normal ``n`` is rough: the signed
function ``f(x) = n . (x - c) - h(x)``, with ``h`` a sum of three plane waves of amplitude
``roughness_mm`` (random directions and phases within the plane, wavelengths 6-14 mm),
parts proximal (``f <= 0``) from distal (``f > 0``). The distal part moves rigidly,
``T(y) = c + Q (y - c) + t`` (rotation by ``angulation_deg`` about an axis through ``c``),
so with a small ``t`` the fragments still touch or interlock: where they overlap the bone
is impacted (the denser of the two), where they part soft tissue fills in.

A fracture line of ``line_mm`` (soft tissue, ``line_hu``) lies along both surfaces with its
partial volume in each voxel (the share of the voxel's extent along ``n`` that the slab
covers), then the image gets a PSF blur (``blur_mm``) and Gaussian noise (``noise_sd``), so
the line respects the grid's resolution: a 0.5 mm line at 1 mm voxels is a faint valley.
``line_mm = 0`` with no motion leaves no trace (a truly invisible fracture).

Truth: fragment labels at voxel centres (1 proximal, 2 distal; overlap is proximal), and the
transverse displacement and angulation as :mod:`mskai.fracture.alignment` defines them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from mskai.volume import Volume

SOFT_HU = 40.0


@dataclass(frozen=True)
class TouchingTruth:
    labels: np.ndarray  # 0 background, 1 proximal, 2 distal
    center_ras: np.ndarray
    displacement_mm: float  # |t| across the distal axis
    angulation_deg: float


def _unit(v) -> np.ndarray:
    v = np.asarray(v, dtype=float)
    return v / np.linalg.norm(v)


def _rotation(axis: np.ndarray, deg: float) -> np.ndarray:
    a = _unit(axis)
    k = np.array([[0, -a[2], a[1]], [a[2], 0, -a[0]], [-a[1], a[0], 0]])
    t = np.radians(deg)
    return np.eye(3) + np.sin(t) * k + (1 - np.cos(t)) * (k @ k)


def _plane_frame(n: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    h = np.array([1.0, 0.0, 0.0]) if abs(n[0]) < 0.9 else np.array([0.0, 1.0, 0.0])
    e1 = _unit(h - (h @ n) * n)
    return e1, np.cross(n, e1)


def rough_surface(center: np.ndarray, n: np.ndarray, roughness_mm: float, seed: int):
    """``f(points)``: signed distance (to first order) from the rough surface."""
    rng = np.random.default_rng(seed)
    e1, e2 = _plane_frame(n)
    angles = rng.uniform(0, np.pi, 3)
    waves = 2 * np.pi / rng.uniform(6.0, 14.0, 3)
    phases = rng.uniform(0, 2 * np.pi, 3)

    amp = roughness_mm / np.sqrt(3.0)

    def f(points: np.ndarray) -> np.ndarray:
        d = points - center
        p1, p2 = d @ e1, d @ e2
        h, g1, g2 = 0.0, 0.0, 0.0
        for a, k, ph in zip(angles, waves, phases, strict=True):
            arg = k * (np.cos(a) * p1 + np.sin(a) * p2) + ph
            h = h + np.cos(arg)
            g1 = g1 - k * np.cos(a) * np.sin(arg)
            g2 = g2 - k * np.sin(a) * np.sin(arg)
        # divided by |grad f|: a distance to the surface to first order, so the line keeps
        # its width where the surface is steep
        return (d @ n - amp * h) / np.sqrt(1.0 + amp**2 * (g1**2 + g2**2))

    return f


def break_bone(image: Volume, bone: np.ndarray, center_ras, normal_ras, *,
               roughness_mm: float = 2.0, translation_ras=(0.0, 0.0, 0.0),
               angulation_deg: float = 0.0, angulation_axis_ras=(1.0, 0.0, 0.0),
               line_mm: float = 0.6, line_hu: float = SOFT_HU, blur_mm: float = 0.4,
               noise_sd: float = 20.0, seed: int = 0) -> tuple[Volume, TouchingTruth]:
    """The broken image and its truth (see module doc). ``bone`` is the intact bone mask."""
    c = np.asarray(center_ras, dtype=float)
    n = _unit(normal_ras)
    axis = _unit(np.asarray(angulation_axis_ras, float) - (np.asarray(angulation_axis_ras,
                                                                      float) @ n) * n)
    q = _rotation(axis, angulation_deg)
    t = np.asarray(translation_ras, dtype=float)
    f = rough_surface(c, n, roughness_mm, seed)
    shape = image.array.shape[:3]
    kji = np.indices(shape).reshape(3, -1).T
    x = image.index_to_ras(kji[:, ::-1].astype(float)).reshape(-1, 3)
    y = (x - c - t) @ q + c  # T^-1(x)
    y_kji = image.ras_to_index(y).reshape(-1, 3)[:, ::-1].T
    hu = np.asarray(image.array, dtype=np.float32)
    moved_hu = ndimage.map_coordinates(hu, y_kji, order=1, mode="nearest")
    moved_bone = ndimage.map_coordinates(bone.astype(np.uint8), y_kji, order=0,
                                         mode="constant") > 0
    fx, fy = f(x), f(y)
    prox_hu = np.where(fx <= 0, hu.ravel(), -np.inf)
    dist_hu = np.where(fy > 0, moved_hu, -np.inf)
    out = np.maximum(prox_hu, dist_hu)
    out[~np.isfinite(out)] = SOFT_HU
    prox = bone.ravel() & (fx <= 0)
    dist = moved_bone & (fy > 0) & ~prox
    voxel = float(np.mean(image.spacing))
    for d, side in ((fx, prox), (fy, dist)):
        share = _slab_share(d, line_mm, voxel)
        out = np.where(side, out * (1 - share) + line_hu * share, out)
    out = out.reshape(shape)
    if blur_mm > 0:
        out = ndimage.gaussian_filter(out, blur_mm / np.asarray(tuple(reversed(image.spacing))))
    rng = np.random.default_rng(seed + 1)
    out = out + rng.normal(0.0, noise_sd, shape) if noise_sd > 0 else out
    labels = np.where(prox, 1, np.where(dist, 2, 0)).astype(np.uint8).reshape(shape)
    d2 = q @ n
    transverse = float(np.linalg.norm(t - (t @ d2) * d2))
    truth = TouchingTruth(labels, c, transverse, float(angulation_deg))
    return image.with_array(out.astype(np.float32)), truth


def _slab_share(d: np.ndarray, width_mm: float, voxel_mm: float) -> np.ndarray:
    """Share of a voxel's extent [d - v/2, d + v/2] covered by the slab |d| < width / 2."""
    lo = np.maximum(d - voxel_mm / 2, -width_mm / 2)
    hi = np.minimum(d + voxel_mm / 2, width_mm / 2)
    return np.clip(hi - lo, 0.0, None) / voxel_mm


def dice(a: np.ndarray, b: np.ndarray) -> float:
    a, b = np.asarray(a, bool), np.asarray(b, bool)
    return float(2.0 * np.count_nonzero(a & b) / max(np.count_nonzero(a) + np.count_nonzero(b),
                                                     1))


def matched_dice(truth: np.ndarray, found: np.ndarray) -> list[float]:
    """Dice of each truth fragment (1..n) with the found label that overlaps it most
    (distinct found labels; a missing one scores 0)."""
    out, used = [], set()
    for lab in range(1, int(truth.max()) + 1):
        t = truth == lab
        votes = np.bincount(found[t], minlength=int(found.max()) + 1)
        votes[0] = 0
        for u in used:
            votes[u] = 0
        best = int(votes.argmax())
        if votes[best] == 0:
            out.append(0.0)
            continue
        used.add(best)
        out.append(dice(t, found == best))
    return out
