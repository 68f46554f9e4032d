"""Operating threshold of the learned fracture-surface candidates (``fracture_surface_unet``),
on TRAINING intact CTs only.

Runs :func:`mskai.fracture.surface_candidates.learned_candidates` (HU bone mask, as
:func:`mskai.tasks.fracture.run_fracture` by default) on every intact CT of the TRAIN
patients of ``split.json`` and chooses the lowest peak probability that leaves at most
``MAX_FP_PER_CT`` candidates per intact CT (:func:`component_threshold.choose_threshold`).
That is half of issue 13's 0.2 false positives per intact CT, as for the valley reducer,
because the pipeline pools the candidates of three detectors. No test patient is read.
These CTs' bones were seen in training (random intact patches), so the held-out FROC, not
this run, says what the threshold costs on new patients.

Run: ``nice -n 10 .venv/bin/python training/fracture/surface_threshold.py [--write]``.
``--write`` puts the threshold into the entry's ``output.operating_threshold`` (the entry
of ``train_detector.VERSION``); the task then reports ``recentred(p, threshold)``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
sys.path.insert(0, str(REPO / "MSKAIExtension"))
sys.path.insert(0, str(HERE))

MAX_FP_PER_CT = 0.1


def training_peaks() -> dict[str, list[float]]:
    """Peak probability of every learned candidate on each intact TRAINING CT."""
    from train_detector import intact_training_candidates

    from mskai.fracture.surface_net import load_surface_net

    out: dict[str, list[float]] = {}
    for patient, _, _, found in intact_training_candidates(load_surface_net()):
        out[patient] = [float(c.terms["surface_probability"]) for c in found]
        print(patient, [round(p, 3) for p in out[patient][:8]], flush=True)
    return out


def main() -> None:
    import torch
    from component_threshold import choose_threshold, write_threshold
    from train_detector import VERSION

    from mskai.fracture.surface_net import MODEL_ID

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write", action="store_true",
                        help="write the threshold into the manifest entry")
    args = parser.parse_args()
    torch.set_num_threads(1)
    peaks = training_peaks()
    threshold = choose_threshold(peaks, MAX_FP_PER_CT)
    fp = sum(p >= threshold for ps in peaks.values() for p in ps) / len(peaks)
    print(f"operating threshold {threshold:.3f}: {fp:.2f} candidates per intact training CT "
          f"({len(peaks)} CTs)")
    if args.write:
        write_threshold(threshold, MODEL_ID, VERSION)


if __name__ == "__main__":
    main()
