"""Which synthetic cases exist (seed plan) and a cache of them as compressed ``.npz``.

Seeds: training case ``i`` of sequence ``s`` has seed ``1000 * s + i``; held-out cases use
``HELDOUT_BASE + 1000 * s + i``; the CI test uses :data:`TEST_SEED`. The three ranges never
overlap, so held-out deformations, contrasts and noise are never seen in training.
"""

from __future__ import annotations

import hashlib
import sys
import time
from pathlib import Path

import numpy as np

from mskai.phantoms.knee_anatomy import REFERENCE_NAME
from mskai.phantoms.knee_mr import TEST_SEED  # noqa: F401  (part of the seed plan)

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
DEFAULT_CACHE = Path("/tmp/knee_synth_v1")  # v1: tibial cartilages merged
HELDOUT_BASE = 50000
REFERENCE = REPO / "Testing" / "Data" / "knee" / REFERENCE_NAME  # the real label map


def setup_paths() -> None:
    """Make ``mskai`` and the sibling training scripts importable (scripts and tests)."""
    for path in (REPO / "MSKAIExtension", HERE):
        if str(path) not in sys.path:
            sys.path.insert(0, str(path))


def training_seeds(per_sequence: int) -> list[tuple[str, int]]:
    from mskai.phantoms.knee_mr import SEQUENCES

    return [(seq, 1000 * s + i) for s, seq in enumerate(SEQUENCES) for i in range(per_sequence)]


def heldout_seeds(per_sequence: int) -> list[tuple[str, int]]:
    from mskai.phantoms.knee_mr import SEQUENCES

    return [(seq, HELDOUT_BASE + 1000 * s + i) for s, seq in enumerate(SEQUENCES)
            for i in range(per_sequence)]


def load_anatomy(cache: Path):
    """The tissue model, cached per reference file content (it takes ~10-20 s to build)."""
    from mskai.phantoms.knee_anatomy import Anatomy, build_anatomy

    digest = hashlib.sha256(REFERENCE.read_bytes()).hexdigest()[:12]
    path = cache / f"anatomy_{digest}.npz"
    if path.is_file():
        data = np.load(path)
        return Anatomy(data["codes"], float(data["spacing"]), tuple(data["origin"]),
                       tuple(data["direction"]), int(data["lr_axis"]))
    anatomy = build_anatomy(REFERENCE)
    cache.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(path, codes=anatomy.codes, spacing=anatomy.spacing,
                        origin=anatomy.origin, direction=anatomy.direction,
                        lr_axis=anatomy.lr_axis)
    return anatomy


def ensure_cases(cache: Path, seeds: list[tuple[str, int]], log=print) -> list[Path]:
    """Synthesize the cases not yet in ``cache``; their paths in ``seeds`` order."""
    from mskai.phantoms.knee_mr import save_case, synthesize

    anatomy = None
    paths = []
    for sequence, seed in seeds:
        path = cache / f"{sequence}_{seed:05d}.npz"
        if not path.is_file():
            anatomy = anatomy or load_anatomy(cache)
            start = time.time()
            save_case(synthesize(anatomy, seed, sequence), cache)
            log(f"synthesized {path.name} in {time.time() - start:.1f} s")
        paths.append(path)
    return paths


def load_case(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """(image float32 [X, Y, Z], labels uint8 [X, Y, Z]) of a cached case."""
    data = np.load(path)
    return data["image"].astype(np.float32), data["labels"]
