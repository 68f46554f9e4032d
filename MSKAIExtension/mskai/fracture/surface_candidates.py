"""Fracture candidates from the learned fracture-surface probability.

A candidate is one connected region (26-neighbourhood) of voxels whose probability
(:func:`mskai.fracture.surface_net.fracture_surface_probability`) is at least
``EXTRACT_THRESHOLD``. Its score is the region's highest probability, its position the
region voxel nearest to the probability-weighted centroid (so it lies on the surface even
when the surface is curved), its size the region's volume in ml. Regions smaller than
``MIN_VOXELS`` voxels are dropped (single noisy voxels). The contract's ``fractures`` keep
those scoring at least the task's ``min_score``; the lower extraction threshold only makes
the FROC reach high false-positive rates. When the model's entry carries
``output.operating_threshold`` (a peak probability chosen on the training patients' intact
CTs, ``training/fracture/surface_threshold.py``), the score is recentred so that this
probability reads 0.5 (:func:`mskai.fracture.scorer.recentred`), as for the other candidate
models.
"""

from __future__ import annotations

import numpy as np

from mskai.fracture.candidates import SOURCE_SURFACE, Candidate
from mskai.fracture.scorer import recentred
from mskai.terminology import BONE
from mskai.volume import Volume

EXTRACT_THRESHOLD = 0.2
MIN_VOXELS = 3


def surface_candidates(prob: np.ndarray, volume: Volume,
                       threshold: float = EXTRACT_THRESHOLD,
                       min_voxels: int = MIN_VOXELS) -> list[Candidate]:
    """Candidates of a probability map on ``volume``'s grid, best first (module doc)."""
    from scipy import ndimage

    regions, n = ndimage.label(prob >= threshold, structure=np.ones((3, 3, 3)))
    if n == 0:
        return []
    index = np.arange(1, n + 1)
    sizes = ndimage.sum_labels(np.ones(prob.shape, dtype=np.float32), regions, index)
    peaks = ndimage.maximum(prob, regions, index)
    out = []
    for lab, box in enumerate(ndimage.find_objects(regions), start=1):
        if box is None or sizes[lab - 1] < min_voxels:
            continue
        here = regions[box] == lab
        kji = np.argwhere(here)
        w = prob[box][here]
        centroid = (kji * w[:, None]).sum(axis=0) / w.sum()
        on = kji[np.argmin(np.linalg.norm(kji - centroid, axis=1))] + [s.start for s in box]
        position = np.asarray(volume.index_to_ras(on[::-1].astype(float))).reshape(3)
        size_ml = float(sizes[lab - 1]) * volume.voxel_volume_mm3 / 1000.0
        out.append(Candidate((), position, float("nan"), float(peaks[lab - 1]),
                             {"surface_probability": float(peaks[lab - 1]),
                              "surface_ml": size_ml}, None, bone=BONE,
                             source=SOURCE_SURFACE))
    return sorted(out, key=lambda c: -c.score)


def learned_candidates(image: Volume, bone: np.ndarray, entry=None, net=None,
                       threshold: float = EXTRACT_THRESHOLD) -> list[Candidate]:
    """Probability of the fracture surface inside ``bone``, then its candidates, scored at
    ``entry``'s operating threshold when it has one (module docstring)."""
    import SimpleITK as sitk

    from mskai.fracture.scorer import operating_threshold
    from mskai.fracture.surface_net import fracture_surface_probability

    ct = image.to_sitk()
    mask = image.with_array(bone.astype(np.uint8)).to_sitk()
    prob = sitk.GetArrayFromImage(fracture_surface_probability(ct, mask, entry=entry, net=net))
    found = surface_candidates(prob, image, threshold)
    return at_operating_threshold(found, operating_threshold(entry)) if entry else found


def at_operating_threshold(found: list[Candidate], operating: float) -> list[Candidate]:
    """The candidates scored so that peak probability ``operating`` reads 0.5."""
    if operating != 0.5:
        for c in found:
            c.score = recentred(c.terms["surface_probability"], operating)
    return found


def merge(component: list[Candidate], learned: list[Candidate],
          radius_mm: float) -> list[Candidate]:
    """Both lists pooled, best score first, without candidates within ``radius_mm`` of a
    better one."""
    kept: list[Candidate] = []
    for c in sorted([*component, *learned], key=lambda c: -c.score):
        if all(np.linalg.norm(c.position_ras - k.position_ras) > radius_mm for k in kept):
            kept.append(c)
    return kept
