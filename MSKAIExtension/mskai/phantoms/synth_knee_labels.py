"""Generation labels for SynthSeg-style knee training: the real label map plus made-up tissues.

The pymskt label map only holds bones, cartilages and menisci; :mod:`knee_anatomy` adds
cortex, marrow, fluid, fat, muscle and air. For contrast-agnostic training (Billot et al.,
2023) every tissue that can look different on some MR sequence needs its own *generation*
label with its own random intensity, so this module adds, per sample and at random:

- skin (the outer 1.5 mm of the body, fixed in the anatomy),
- muscle compartments (a random Voronoi split of the muscle into up to 4 bellies) with
  fascia between them,
- a second marrow tissue (red marrow islands / oedema-like blobs) and fat septa,
- ligament / tendon blobs (elongated ellipsoids) in the fat, fluid and muscle near the joint,
- vessel-like tubes.

None of these are network labels: they are all background (0) for the network.
"""

from __future__ import annotations

import numpy as np

from mskai.phantoms.knee_anatomy import CODE, CODE_TO_LABEL, CODE_TO_TISSUE, CODES, TISSUES

SKIN_MM = 1.5
EXTRA = ("skin", "muscle_2", "muscle_3", "muscle_4", "fascia", "marrow_b", "fat_b",
         "ligament", "vessel")
GEN_NAMES = tuple(name for name, _, _ in CODES) + EXTRA
GEN = {name: value for value, name in enumerate(GEN_NAMES)}
N_GEN = len(GEN_NAMES)
# Network label of every generation label (the added tissues are background).
GEN_TO_LABEL = np.concatenate([CODE_TO_LABEL, np.zeros(len(EXTRA), np.uint8)])
# Tissue group of every generation label: labels of one group may share one random mean.
_EXTRA_GROUPS = ("fat", "muscle", "muscle", "muscle", "capsule", "marrow", "fat", "meniscus",
                 "fluid")
GEN_TO_GROUP = np.concatenate([CODE_TO_TISSUE,
                               np.array([TISSUES.index(t) for t in _EXTRA_GROUPS], np.uint8)])
SOFT = np.array([CODE[n] for n in ("subcutaneous_fat", "muscle", "periarticular_fat",
                                   "fluid_near", "fluid_far")])
MARROW = np.array([v for v, (n, _, _) in enumerate(CODES) if n.endswith("_marrow")])


def add_skin(codes: np.ndarray, spacing: float) -> np.ndarray:
    """Codes as generation labels, with the body's outer ``SKIN_MM`` relabelled skin."""
    from scipy import ndimage

    out = codes.astype(np.uint8, copy=True)
    air = codes == CODE["air"]
    steps = max(1, int(round(SKIN_MM / spacing)))
    near_air = ndimage.binary_dilation(air, iterations=steps) & ~air
    out[near_air & np.isin(codes, SOFT)] = GEN["skin"]
    return out


def random_fields(shape: tuple[int, ...], spacing: float, rng: np.random.Generator) -> dict:
    """Per-sample smooth fields (on the output grid) that decide the made-up tissues."""
    grid = np.stack(np.meshgrid(*[(np.arange(n) - (n - 1) / 2) * spacing for n in shape],
                                indexing="ij"))
    extent = np.asarray(shape) * spacing
    n_muscle = int(rng.integers(1, 5))
    seeds = rng.uniform(-0.7, 0.7, (n_muscle, 3)) * extent
    metric = rng.uniform(0.5, 2.0, (n_muscle, 3))
    dist = np.stack([np.sqrt((((grid - s[:, None, None, None]) * m[:, None, None, None]) ** 2)
                             .sum(0)) for s, m in zip(seeds, metric, strict=True)])
    order = np.sort(dist, axis=0) if n_muscle > 1 else None
    fields = {"muscle_region": dist.argmin(0).astype(np.uint8),
              "fascia": (order[1] - order[0] < rng.uniform(0.5, 2.0)) if order is not None
              else np.zeros(shape, bool),
              "marrow_b": _blobs(shape, rng, rng.uniform(0.0, 0.4)),
              "fat_b": _blobs(shape, rng, rng.uniform(0.0, 0.25)),
              "ligament": _ellipsoids(grid, rng, int(rng.integers(0, 5)), (1.5, 4.0),
                                      (6.0, 25.0)),
              "vessel": _ellipsoids(grid, rng, int(rng.integers(0, 3)), (1.5, 3.5),
                                    (20.0, 60.0))}
    return fields


def elaborate(codes: np.ndarray, fields: dict) -> np.ndarray:
    """Generation labels of sampled anatomy codes (skin included) under ``fields``."""
    gen = codes.astype(np.uint8, copy=True)
    muscle = codes == CODE["muscle"]
    region = fields["muscle_region"]
    for index, name in enumerate(("muscle_2", "muscle_3", "muscle_4"), start=1):
        gen[muscle & (region == index)] = GEN[name]
    gen[muscle & fields["fascia"]] = GEN["fascia"]
    gen[np.isin(codes, MARROW) & fields["marrow_b"]] = GEN["marrow_b"]
    fat = (codes == CODE["subcutaneous_fat"]) | (codes == CODE["periarticular_fat"])
    gen[fat & fields["fat_b"]] = GEN["fat_b"]
    soft = np.isin(codes, SOFT)
    gen[soft & fields["ligament"]] = GEN["ligament"]
    gen[soft & fields["vessel"]] = GEN["vessel"]
    return gen


def _blobs(shape: tuple[int, ...], rng: np.random.Generator, fraction: float) -> np.ndarray:
    """A smooth random field thresholded to cover about ``fraction`` of the grid."""
    from mskai.phantoms.synth_knee import upsample

    if fraction <= 0.01:
        return np.zeros(shape, bool)
    control = rng.standard_normal(tuple(max(2, n // 8) for n in shape)).astype(np.float32)
    field = upsample(control, shape)
    return field > np.quantile(field, 1.0 - fraction)


def _ellipsoids(grid: np.ndarray, rng: np.random.Generator, count: int,
                radius: tuple[float, float], length: tuple[float, float]) -> np.ndarray:
    """Union of ``count`` randomly oriented elongated ellipsoids (mm radii) in the grid."""
    from scipy.spatial.transform import Rotation

    mask = np.zeros(grid.shape[1:], bool)
    extent = np.abs(grid).max(axis=(1, 2, 3))
    for _ in range(count):
        centre = rng.uniform(-0.8, 0.8, 3) * extent
        axes = np.array([rng.uniform(*radius), rng.uniform(*radius), rng.uniform(*length)])
        rot = Rotation.random(random_state=rng).as_matrix().astype(np.float32)
        local = np.einsum("ij,j...->i...", rot.T, grid - centre[:, None, None, None])
        mask |= ((local / axes[:, None, None, None]) ** 2).sum(0) <= 1.0
    return mask
