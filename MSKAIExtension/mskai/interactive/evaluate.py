"""Evaluation of interactive segmentation with simulated clicks.

Protocol: one positive click at the most interior voxel of the expert mask (maximum of its
distance transform, in mm), then up to ``corrections`` clicks placed automatically at the
deepest point of the largest error region (see :mod:`mskai.interactive.clicks`), each one
refining the previous result through the same path a user's click takes.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from mskai.interactive.clicks import deepest_voxel, next_click
from mskai.interactive.prompts import Prompts
from mskai.volume import Volume


def dice(a: np.ndarray, b: np.ndarray) -> float:
    """Dice overlap of two boolean masks (1.0 when both are empty)."""
    a, b = a.astype(bool), b.astype(bool)
    total = int(a.sum()) + int(b.sum())
    return 1.0 if total == 0 else 2.0 * int((a & b).sum()) / total


@dataclass
class ClickStep:
    clicks: int
    positive: bool
    ras: tuple[float, float, float]
    dice: float
    seconds: float


def _ras(volume: Volume, kji: np.ndarray) -> tuple[float, float, float]:
    return tuple(float(v) for v in volume.index_to_ras(np.asarray(kji, dtype=float)[::-1]))


def run_click_protocol(volume: Volume, truth: np.ndarray, corrections: int = 2,
                       modality: str | None = None) -> list[ClickStep]:
    """Dice after the centre click and after each automatic corrective click."""
    from mskai.interactive.segment import segment_from_prompts

    truth = truth.astype(bool)
    spacing_kji = tuple(reversed(volume.spacing))
    centre = deepest_voxel(truth, spacing_kji)
    prompts = Prompts(positive_ras=[_ras(volume, centre)])
    start = time.perf_counter()
    mask = segment_from_prompts(volume, prompts, modality=modality)
    steps = [ClickStep(1, True, prompts.positive_ras[0], dice(mask, truth),
                       time.perf_counter() - start)]
    for _ in range(corrections):
        click = next_click(mask, truth, spacing_kji)
        if click is None:
            break
        ras = _ras(volume, click[0])
        prompts = prompts.with_click(ras, positive=click[1])
        start = time.perf_counter()
        mask = segment_from_prompts(volume, prompts, current_mask=mask, modality=modality)
        steps.append(ClickStep(len(steps) + 1, click[1], ras, dice(mask, truth),
                               time.perf_counter() - start))
    return steps
