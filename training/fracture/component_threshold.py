"""Operating threshold of the component-candidate scorer (``fracture_score_logreg``), on
TRAINING intact CTs only.

Runs the component candidates of :func:`mskai.tasks.fracture.run_fracture` (learned bone and
scorer models, no valley or learned-surface candidates) on every intact CT of the TRAIN
patients of ``split.json`` (ts_example and 16 sarcoma CTs) and chooses the lowest threshold on
the scorer's probability that leaves at most ``MAX_FP_PER_CT`` candidates per intact CT (the
first excluded probability plus ``STEP``, rounded up to ``STEP``). No test patient is read.

Run: ``nice -n 10 .venv/bin/python training/fracture/component_threshold.py [--write]``
(about 1 minute on one core). ``--write`` puts the threshold into the scorer's manifest entry
(``output.operating_threshold``); rerun it after ``train_scorer.py``.

v1 (2026-12-06): probabilities on the 17 intact training CTs 0.964, 0.963, 0.963, 0.942,
0.925, 0.917, 0.375, ... (STS_002 twice, STS_012 four times at >= 0.9) -> 0.943, where 3 of
17 candidates remain (0.18 per intact training CT; 0.35 at the old 0.5).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
sys.path.insert(0, str(REPO / "MSKAIExtension"))
sys.path.insert(0, str(HERE))

MAX_FP_PER_CT = 0.2
STEP = 0.001
SCORER_ID = "fracture_score_logreg"


def training_probabilities() -> dict[str, list[float]]:
    """Scorer probability of every component candidate on each intact TRAINING CT."""
    import real_bones

    from mskai.tasks.fracture import run_fracture

    out: dict[str, list[float]] = {}
    for patient in real_bones.split()["train"]:
        image, _ = real_bones.load_patient(patient)
        result = run_fracture(image, learned_surface=False, valley_reducer=False)
        out[patient] = [float(c["score_terms"].get("scorer_probability", c["score"]))
                        for c in result.measurements["fracture_candidates"]]
        print(patient, [round(p, 3) for p in out[patient]], flush=True)
    return out


def choose_threshold(probabilities: dict[str, list[float]],
                     max_fp_per_ct: float = MAX_FP_PER_CT) -> float:
    """The lowest threshold (multiple of ``STEP``) with <= ``max_fp_per_ct`` per CT."""
    scores = sorted((p for ps in probabilities.values() for p in ps), reverse=True)
    allowed = int(math.floor(max_fp_per_ct * len(probabilities) + 1e-9))
    if len(scores) <= allowed:
        return 0.5
    return round(math.ceil((scores[allowed] + 1e-9) / STEP) * STEP, 6)


def write_threshold(threshold: float, model_id: str = SCORER_ID,
                    version: str | None = None) -> None:
    """Targeted edit of a manifest entry (``output.operating_threshold``): every version of
    ``model_id``, or only ``version``."""
    manifest = REPO / "MSKAIExtension" / "mskai" / "models" / "manifest.json"
    data = json.loads(manifest.read_text(encoding="utf-8"))
    for entry in data["models"]:
        if entry["id"] == model_id and version in (None, entry["version"]):
            entry.setdefault("output", {})["operating_threshold"] = round(threshold, 4)
    manifest.write_text(json.dumps(data, indent=1) + "\n", encoding="utf-8")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write", action="store_true",
                        help="write the threshold into the manifest entry")
    args = parser.parse_args()
    probabilities = training_probabilities()
    threshold = choose_threshold(probabilities)
    fp = sum(p >= threshold for ps in probabilities.values() for p in ps) / len(probabilities)
    print(f"operating threshold {threshold:.3f}: {fp:.2f} candidates per intact training CT "
          f"({len(probabilities)} CTs)")
    if args.write:
        write_threshold(threshold)


if __name__ == "__main__":
    main()
