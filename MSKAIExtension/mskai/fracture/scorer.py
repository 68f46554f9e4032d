"""Learned CADx score of fracture candidates (manifest task ``fracture_score``).

A logistic regression over candidate features replaces the hand-set product of
:mod:`mskai.fracture.candidates` when its manifest entry verifies. It is trained by
``training/fracture/train_scorer.py`` on candidates of simulated fractures of real bone
(``mskai/phantoms/simulated_fracture.py``) against candidates of intact bone; the card
``models/cards/fracture_score_logreg.md`` gives the simulation, the split and the FROC.

The parameters are four float64 arrays (``mean``, ``scale``, ``weight``, ``bias``) in an
``npz`` file, read with ``numpy.load(allow_pickle=False)`` after the sha256 check (no torch:
the default CT pipeline runs no network); the feature order is :data:`FEATURES` and is also
stored in the entry's ``architecture.kwargs``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from mskai.volume import Volume

TASK = "fracture_score"
MODEL_ID = "fracture_score_logreg"
FEATURES = ("gap", "alignment", "facing", "elongation", "end_faces", "heuristic_score",
            "gap_mm", "log_small_ml", "log_large_ml", "gap_hu", "displacement_mm",
            "angulation_deg")
ARCHITECTURE: dict[str, Any] = {"type": "mskai.logistic_regression",
                                "kwargs": {"features": list(FEATURES)}}


def candidate_features(candidate, fragments: np.ndarray, grid: Volume,
                       image: Volume) -> np.ndarray:
    """Feature vector (order :data:`FEATURES`) of one candidate.

    ``fragments`` is the label map the candidate was found on (on ``grid``, possibly a
    stride of ``image``); ``gap_hu`` is the mean HU of ``image`` within 3 mm of the
    candidate position (a real gap holds soft tissue, an intact neck bone).
    """
    terms = candidate.terms
    volumes = [float(np.count_nonzero(fragments == lab)) * grid.voxel_volume_mm3 / 1000.0
               for lab in candidate.labels]
    al = candidate.alignment
    return np.array([
        terms.get("gap", 0.0), terms.get("alignment", 0.0), terms.get("facing", 0.0),
        terms.get("elongation", 0.0), terms.get("end_faces", 0.0),
        float(np.prod(list(terms.values()))) if terms else 0.0,
        float(candidate.gap_width_mm),
        float(np.log10(max(min(volumes), 1e-3))), float(np.log10(max(max(volumes), 1e-3))),
        mean_hu_near(image, candidate.position_ras, 3.0),
        float(al.displacement_mm) if al is not None else 0.0,
        float(al.angulation_deg) if al is not None else 90.0,
    ], dtype=np.float64)


def mean_hu_near(image: Volume, ras: np.ndarray, radius_mm: float) -> float:
    """Mean image value within ``radius_mm`` of a RAS point (nearest voxel if none)."""
    ijk = image.ras_to_index(np.asarray(ras, dtype=float))
    half = np.ceil(radius_mm / np.asarray(image.spacing)).astype(int)
    size = np.asarray(image.array.shape[:3][::-1])
    lo = np.clip(np.floor(ijk).astype(int) - half, 0, size - 1)
    hi = np.clip(np.ceil(ijk).astype(int) + half + 1, 1, size)
    block = np.asarray(image.array[lo[2]:hi[2], lo[1]:hi[1], lo[0]:hi[0]], dtype=np.float64)
    if block.size == 0:
        return 0.0
    k, j, i = np.meshgrid(*[np.arange(a, b) for a, b in zip(lo[::-1], hi[::-1], strict=True)],
                          indexing="ij")
    offsets = (np.stack([i, j, k], axis=-1) - ijk) * np.asarray(image.spacing)
    inside = np.linalg.norm(offsets, axis=-1) <= radius_mm
    return float(block[inside].mean()) if inside.any() else float(block.mean())


class LogisticScorer:
    """``probability = sigmoid(weight . (x - mean) / scale + bias)``."""

    def __init__(self, params: dict[str, Any]) -> None:
        self.mean = np.asarray(params["mean"], dtype=np.float64)
        self.scale = np.asarray(params["scale"], dtype=np.float64)
        self.weight = np.asarray(params["weight"], dtype=np.float64)
        self.bias = float(np.asarray(params["bias"], dtype=np.float64).reshape(-1)[0])

    def __call__(self, features: np.ndarray) -> np.ndarray:
        z = ((np.atleast_2d(features) - self.mean) / self.scale) @ self.weight + self.bias
        return 1.0 / (1.0 + np.exp(-np.clip(z, -50, 50)))


def fit_logistic(x: np.ndarray, y: np.ndarray, l2: float = 1e-2, steps: int = 3000,
                 lr: float = 0.5, positive_weight: float | None = None) -> dict[str, np.ndarray]:
    """Parameters of an L2-regularised logistic regression (full-batch gradient descent)."""
    mean = x.mean(axis=0)
    scale = np.maximum(x.std(axis=0), 1e-6)
    z = (x - mean) / scale
    w = np.zeros(x.shape[1])
    b = 0.0
    pw = positive_weight if positive_weight is not None else 1.0
    sample_w = np.where(y > 0, pw, 1.0)
    sample_w = sample_w / sample_w.sum()
    for _ in range(steps):
        p = 1.0 / (1.0 + np.exp(-np.clip(z @ w + b, -50, 50)))
        g = (p - y) * sample_w
        w -= lr * (z.T @ g + l2 * w)
        b -= lr * g.sum()
    return {"mean": mean, "scale": scale, "weight": w, "bias": np.array([b])}


def recentred(probability: float, threshold: float) -> float:
    """``sigmoid(logit(p) - logit(threshold))``: monotone in p, 0.5 at the threshold."""
    eps = 1e-12
    p = min(max(probability, eps), 1 - eps)
    t = min(max(threshold, eps), 1 - eps)
    z = np.log(p / (1 - p)) - np.log(t / (1 - t))
    return float(1.0 / (1.0 + np.exp(-np.clip(z, -50, 50))))


def operating_threshold(entry: Any) -> float:
    """The entry's ``output.operating_threshold`` (a probability chosen on training patients
    only), 0.5 if absent: the probability that :func:`recentred` maps to score 0.5."""
    return float((entry.output or {}).get("operating_threshold", 0.5))


def scorer_entry(user_dir: str | None = None):
    """The first verified ``fracture_score`` CT entry, or None (then the heuristic is kept)."""
    from mskai.errors import ModelError
    from mskai.models.registry import check, models_for_task

    try:
        entries = models_for_task(TASK, "CT", user_dir)
    except ModelError:
        return None
    return next((e for e in entries if check(e) is None), None)


def load_scorer(entry) -> LogisticScorer:
    """Verify the entry's sha256, then read its tensors without unpickling objects."""
    return load_logistic(entry, FEATURES, "fracture scorer")


def load_logistic(entry, features: tuple[str, ...], what: str) -> LogisticScorer:
    """A logistic-regression entry (this scorer or the valley reducer): sha256 verified, its
    feature order checked against ``features``, arrays read without pickle or torch."""
    from mskai.errors import ModelError
    from mskai.models.loaders import read_arrays

    names = list((entry.architecture or {}).get("kwargs", {}).get("features", []))
    if names != list(features):
        raise ModelError(f"{what} {entry.id} expects features {names}, this version "
                         f"computes {list(features)}; retrain or update mskai.")
    return LogisticScorer(read_arrays(entry))


def save_logistic(params: dict[str, np.ndarray], path) -> None:
    """Write a logistic regression's parameters as the manifest's ``npz`` format."""
    np.savez(path, **{name: np.asarray(value, dtype=np.float64)
                      for name, value in params.items()})
