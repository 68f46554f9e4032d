"""Per-case Dice of click-based tumour segmentation on the IBSI STS cases, and latency.

Usage: .venv/bin/python Testing/benchmarks/eval_tumor_clicks.py [--corrections 2]
Not a test: it prints a table (Dice after 1, 2, 3 clicks) and click-to-result timings.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
DATA = REPO.parent / "shared" / "data" / "sts_sarcoma"
CASES = ("STS_001", "STS_002", "STS_003")
SERIES = (("CT", "CT"), ("MR", "MR_T1"))


def load_case(case: str, series: str, modality: str):
    """(Volume, expert mask) of one case and series; the modality read must match."""
    from mskai.image import read_image

    volume = read_image(DATA / case / f"{series}_image.nii.gz")
    if volume.modality != modality:
        raise SystemExit(f"{case} {series}: read as {volume.modality}, expected {modality}")
    mask = read_image(DATA / case / f"{series}_mask.nii.gz").array > 0
    return volume, mask


def dice_table(corrections: int) -> None:
    from mskai.interactive.evaluate import run_click_protocol

    means: dict[str, list[float]] = {}
    print(f"{'case':8} {'series':6} " + " ".join(f"{n + 1}-click" for n in range(corrections + 1))
          + "  clicks(+/-)  seconds/click")
    for modality, series in SERIES:
        for case in CASES:
            volume, truth = load_case(case, series, modality)
            steps = run_click_protocol(volume, truth, corrections=corrections)
            dices = [s.dice for s in steps]
            signs = "".join("+" if s.positive else "-" for s in steps)
            times = " ".join(f"{s.seconds:.2f}" for s in steps)
            print(f"{case:8} {series:6} " + " ".join(f"{d:7.3f}" for d in dices)
                  + f"  {len(steps)} ({signs})  {times}")
            means.setdefault(series, []).append(dices[-1])
    for series, vals in means.items():
        print(f"mean final Dice {series}: {sum(vals) / len(vals):.3f}")


def latency(repeats: int = 3) -> None:
    """Click-to-result time on a synthetic 256x256x60 crop given as the ROI."""
    import numpy as np

    from mskai.interactive import Prompts, segment_from_prompts
    from mskai.volume import Volume

    rng = np.random.default_rng(0)
    k, j, i = np.mgrid[0:60, 0:256, 0:256].astype(np.float32)
    r = np.sqrt(((i - 128) * 0.98) ** 2 + ((j - 128) * 0.98) ** 2 + ((k - 30) * 3.27) ** 2)
    image = np.where(r < 30, 60.0, 30.0) + rng.normal(0, 20, r.shape)
    volume = Volume(image.astype(np.float32), spacing=(0.98, 0.98, 3.27), modality="CT")
    centre = volume.index_to_ras([128, 128, 30])
    edge = volume.index_to_ras([128 + 36, 128, 30])
    lo, hi = volume.index_to_ras([0, 0, 0]), volume.index_to_ras([255, 255, 59])
    prompts = Prompts(positive_ras=[tuple(centre)], roi_ras=(*lo, *hi))
    first = []
    for _ in range(repeats):
        start = time.perf_counter()
        mask = segment_from_prompts(volume, prompts)
        first.append(time.perf_counter() - start)
    start = time.perf_counter()
    segment_from_prompts(volume, prompts.with_click(tuple(edge), positive=False),
                         current_mask=mask)
    second = time.perf_counter() - start
    print(f"latency 256x256x60 crop: first click {min(first):.2f} s (best of {repeats}; "
          f"first call {first[0]:.2f} s), refinement click {second:.2f} s")


def main() -> None:
    sys.path.insert(0, str(REPO / "MSKAIExtension"))
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corrections", type=int, default=2)
    parser.add_argument("--no-latency", action="store_true")
    args = parser.parse_args()
    dice_table(args.corrections)
    if not args.no_latency:
        latency()


if __name__ == "__main__":
    main()
