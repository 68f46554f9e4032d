"""HU-valley fracture candidates on an analytic long bone with a hairline fracture line.

Truth: a hollow cylinder of cortex (1200 HU, 4 mm thick) around marrow (100 HU) in soft
tissue (40 HU), 1 mm voxels, noise 20 HU. A 1 mm wide plane of soft tissue crosses the whole
cortex at z = 20 mm without any displacement. The candidate must lie within 5 mm of that
plane; the intact bone gives no candidate at all. A thin line scores about 0.5, below the
operating score (0.85) that the anatomy of real intact CTs reaches: the Gaussian sheet
averaging halves a 1-voxel line, while wide anatomical valleys keep their full depth.
"""

from __future__ import annotations

import numpy as np

from mskai.fracture.valley_candidates import OPERATING_SCORE, valley_candidates
from mskai.volume import Volume

SHAPE = (40, 40, 40)  # k (z), j, i
LINE_Z = 20


def _bone(hairline: bool) -> Volume:
    k, j, i = np.indices(SHAPE, dtype=float)
    r = np.hypot(j - 19.5, i - 19.5)
    hu = np.full(SHAPE, 40.0)
    hu[r <= 12] = 1200.0
    hu[r <= 8] = 100.0
    if hairline:
        hu[(k == LINE_Z) & (r <= 12)] = 40.0
    hu += np.random.default_rng(0).normal(0.0, 20.0, SHAPE)
    return Volume(hu.astype(np.float32), modality="CT")


def _cortex(volume: Volume) -> np.ndarray:
    r = np.hypot(*np.indices(SHAPE[1:], dtype=float) - 19.5)
    return np.broadcast_to(r <= 12, SHAPE).copy()


def test_hairline_across_cortex_is_found() -> None:
    volume = _bone(hairline=True)
    found = valley_candidates(volume, _cortex(volume))
    assert found, "no valley candidate on a hairline fracture"
    best = found[0]
    assert 0.4 <= best.score < OPERATING_SCORE
    assert best.terms["valley_extent_mm"] >= 20.0  # runs across the whole bone
    assert all(abs(c.position_ras[2] - LINE_Z) <= 5.0 for c in found)


def test_intact_bone_gives_no_candidate() -> None:
    volume = _bone(hairline=False)
    assert valley_candidates(volume, _cortex(volume)) == []


def test_empty_bone_gives_no_candidates() -> None:
    volume = _bone(hairline=False)
    assert valley_candidates(volume, np.zeros(SHAPE, dtype=bool)) == []
