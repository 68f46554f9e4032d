"""Synthetic soft-tissue tumours on the learned model's working grid, for training only.

Each sample is a limb cross-section extended along the slice axis: air outside, skin and
subcutaneous fat, muscle with fat septa, sometimes a long bone (cortex and marrow), and a
tumour in the muscle. The tumour is a deformed, sometimes lobulated ellipsoid (a level set
perturbed by smooth random noise) with heterogeneous texture (smooth variation, sometimes a
necrotic core or bright haemorrhage), and a random contrast to muscle that includes none
at all (as on the STS cases, where muscle and tumour overlap in HU and on T1).

Intensities follow CT (HU) or T1 MR as in the IBSI STS set (normalised so fat is near
1000). The image is blurred like a slice profile (partial volume) and noise is added.
Everything is drawn directly on the working grid (see :mod:`learned`'s ``GRID_SPACING``),
vectorised with numpy/scipy: about 50 ms per sample.

Only training uses this module (``train.py``); CI never depends on it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

SHAPE = (48, 80, 80)               # k, j, i on the working grid
SPACING = (3.0, 2.0, 2.0)          # mm, same order


def _smooth_noise(rng: np.random.Generator, shape: tuple[int, ...], sigma_mm: float,
                  spacing=SPACING) -> np.ndarray:
    """Unit-SD smooth random field: noise on a coarse grid, blurred and zoomed."""
    from scipy import ndimage

    step = max(1, int(sigma_mm / max(spacing) / 1.5))
    coarse = [max(4, -(-n // step) + 2) for n in shape]
    field = ndimage.gaussian_filter(rng.standard_normal(coarse).astype(np.float32),
                                    [sigma_mm / (s * step) for s in spacing])
    field = ndimage.zoom(field, [n / c for n, c in zip(shape, coarse, strict=True)], order=1)
    field = field[: shape[0], : shape[1], : shape[2]]
    return (field - field.mean()) / max(float(field.std()), 1e-6)


def _coords(shape=SHAPE, spacing=SPACING) -> list[np.ndarray]:
    """mm coordinates (k, j, i) relative to the grid centre, broadcastable."""
    return [((np.arange(n) - (n - 1) / 2) * s).reshape([-1 if a == d else 1 for a in range(3)])
            for d, (n, s) in enumerate(zip(shape, spacing, strict=True))]


def _random_rotation(rng: np.random.Generator) -> np.ndarray:
    q, r = np.linalg.qr(rng.standard_normal((3, 3)))
    q *= np.sign(np.diag(r))
    return q if np.linalg.det(q) > 0 else -q


def _tumour(rng: np.random.Generator, z, y, x, limb: np.ndarray) -> np.ndarray:
    """Boolean tumour: union of 1-3 deformed ellipsoids near the centre, inside the limb."""
    level = np.full(SHAPE, np.inf, dtype=np.float32)
    size = rng.uniform(12, 50)
    for lobe in range(int(rng.integers(1, 4))):
        axes = size * rng.uniform(0.55, 1.0, 3) * (1.0 if lobe == 0 else rng.uniform(0.4, 0.8))
        axes[0] *= rng.uniform(0.8, 1.6)       # sarcomas are often long along the limb
        centre = rng.normal(0, 3, 3) if lobe == 0 else rng.normal(0, 0.5 * size, 3)
        rot = _random_rotation(rng)
        d = [z - centre[0], y - centre[1], x - centre[2]]
        u = [sum(rot[a, b] * d[a] for a in range(3)) / axes[b] for b in range(3)]
        r = np.sqrt(u[0] ** 2 + u[1] ** 2 + u[2] ** 2)
        level = np.minimum(level, r)
    wobble = rng.uniform(0.05, 0.3) * _smooth_noise(rng, SHAPE, rng.uniform(6, 15))
    return (level + wobble < 1.0) & limb


def _anatomy(rng: np.random.Generator, z, y, x) -> dict[str, np.ndarray]:
    """Masks of limb, subcutaneous fat, fat septa, cortex, marrow (tumour comes later)."""
    ry, rx = rng.uniform(55, 110, 2)
    cy, cx = rng.normal(0, 20, 2)
    tilt = rng.normal(0, 0.15, 2)
    yy, xx = y - cy - tilt[0] * z, x - cx - tilt[1] * z
    rad = np.sqrt((yy / ry) ** 2 + (xx / rx) ** 2)
    limb = np.broadcast_to(rad < 1.0, SHAPE)
    fat_mm = rng.uniform(4, 25)
    subcut = limb & (rad > 1.0 - fat_mm / min(ry, rx))
    septa = (np.abs(_smooth_noise(rng, SHAPE, rng.uniform(10, 25))) < rng.uniform(0.03, 0.12))
    septa &= limb
    cortex = np.zeros(SHAPE, dtype=bool)
    marrow = np.zeros(SHAPE, dtype=bool)
    if rng.random() < 0.7:
        angle = rng.uniform(0, 2 * np.pi)
        dist = rng.uniform(15, 60)
        by, bx = dist * np.sin(angle), dist * np.cos(angle)
        br = rng.uniform(8, 18)
        rb = np.sqrt((y - by - tilt[0] * z) ** 2 + (x - bx - tilt[1] * z) ** 2)
        rb = np.broadcast_to(rb, SHAPE)
        cortex = rb < br
        marrow = rb < br - rng.uniform(2.5, 6)
        cortex &= ~marrow
    return {"limb": limb, "subcut": subcut, "septa": septa, "cortex": cortex, "marrow": marrow}


def _tissue_values(rng: np.random.Generator, modality: str) -> dict[str, float]:
    if modality == "CT":
        muscle = rng.uniform(30, 60)
        return {"air": -1000.0, "fat": rng.uniform(-120, -80), "muscle": muscle,
                "tumour": muscle + rng.choice([rng.uniform(-25, 10), rng.uniform(-15, 60)]),
                "necrosis": rng.uniform(0, 25), "bleed": rng.uniform(50, 90),
                "cortex": rng.uniform(900, 1500), "marrow": rng.uniform(-80, 200),
                "texture": rng.uniform(3, 25), "noise": rng.uniform(6, 25)}
    muscle = rng.uniform(230, 380)
    return {"air": rng.uniform(0, 20), "fat": rng.uniform(850, 1050), "muscle": muscle,
            "tumour": muscle * rng.choice([rng.uniform(0.85, 1.1), rng.uniform(0.9, 1.6)]),
            "necrosis": muscle * rng.uniform(0.5, 0.9), "bleed": rng.uniform(600, 950),
            "cortex": rng.uniform(10, 80), "marrow": rng.uniform(750, 1000),
            "texture": muscle * rng.uniform(0.03, 0.2), "noise": rng.uniform(10, 40)}


def synth_case(seed: int, modality: str | None = None) -> tuple[np.ndarray, np.ndarray, str]:
    """``(image float32, tumour mask bool, modality)`` on the working grid."""
    from scipy import ndimage

    rng = np.random.default_rng(seed)
    modality = modality or ("CT" if rng.random() < 0.5 else "MR")
    z, y, x = _coords()
    anat = _anatomy(rng, z, y, x)
    soft = anat["limb"] & ~anat["cortex"] & ~anat["marrow"] & ~anat["subcut"]
    tumour = _tumour(rng, z, y, x, soft)
    if tumour.sum() < 50:
        tumour = _tumour(rng, z, y, x, anat["limb"])
    v = _tissue_values(rng, modality)
    image = np.full(SHAPE, v["air"], dtype=np.float32)
    image[anat["limb"]] = v["muscle"]
    image[anat["septa"] | anat["subcut"]] = v["fat"]
    image[anat["marrow"]] = v["marrow"]
    image[anat["cortex"]] = v["cortex"]
    image += anat["limb"] * (0.3 * v["texture"] * _smooth_noise(rng, SHAPE, 8))
    tum = v["tumour"] + v["texture"] * _smooth_noise(rng, SHAPE, rng.uniform(3, 10))
    if rng.random() < 0.4:     # necrotic core
        inner = ndimage.distance_transform_edt(tumour, sampling=SPACING)
        core = inner > rng.uniform(0.4, 0.8) * inner.max()
        tum = np.where(core, v["necrosis"], tum)
    if rng.random() < 0.2:     # haemorrhage / enhancing patches
        tum = np.where(_smooth_noise(rng, SHAPE, 6) > 1.5, v["bleed"], tum)
    if rng.random() < 0.3:     # a fat capsule around part of the tumour (CT/MR fat plane)
        ring = ndimage.binary_dilation(tumour, iterations=1) & ~tumour & anat["limb"]
        ring &= _smooth_noise(rng, SHAPE, 15) > 0
        image[ring] = v["fat"]
    image[tumour] = tum[tumour]
    blur = [rng.uniform(0.3, 0.6), rng.uniform(0.2, 0.5), rng.uniform(0.2, 0.5)]
    image = ndimage.gaussian_filter(image, blur)
    noise = ndimage.gaussian_filter(rng.standard_normal(SHAPE).astype(np.float32), 0.5)
    image += v["noise"] * 2.0 * noise
    if modality == "MR":
        image *= 1.0 + 0.08 * _smooth_noise(rng, SHAPE, 60)
        image = np.maximum(image, 0)
    return image.astype(np.float32), tumour, modality


def build_cache(path: Path, count: int, seed: int = 0) -> Path:
    """Write ``count`` samples to one .npz (images float16, masks packed bits)."""
    images, masks, mods = [], [], []
    for n in range(count):
        image, mask, modality = synth_case(seed + n)
        images.append(image.astype(np.float16))
        masks.append(np.packbits(mask))
        mods.append(modality == "CT")
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, images=np.stack(images), masks=np.stack(masks), is_ct=np.array(mods))
    return path


def load_cache(path: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    data = np.load(path)
    masks = np.unpackbits(data["masks"], axis=1)[:, : int(np.prod(SHAPE))]
    return (data["images"].astype(np.float32), masks.reshape(-1, *SHAPE).astype(bool),
            data["is_ct"])
