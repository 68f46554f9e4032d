"""One-click Dice of the shipped tumour network alone on the training cases STS_001-003.

Usage::

    .venv/bin/python training/tumor/regression.py --out /tmp/regression.json

writes ``{"dice": [...], "mean": m}`` (per case CT, then T1 MR) for
``register.py --regression``. ``Testing/test_tumor_learned.py`` asserts the same numbers
with the same functions. These are training cases: a regression check, not an accuracy
claim (the cross-validation is in the model card). The cropped copies in ``Testing/Data``
are read; one click goes at the most interior voxel of the expert mask.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[2]
DATA = REPO / "Testing" / "Data" / "sts_sarcoma"
CASES = ("STS_001", "STS_002", "STS_003")
SERIES = ("CT", "MR_T1")
NETWORK = "network"  # the shipped weights alone, not a method of segment_with_method


def training_cases(folder: Path = DATA) -> Iterator[tuple[object, np.ndarray]]:
    """(image, expert tumour mask) of each case and series, in CASES x SERIES order."""
    from mskai.image import read_image
    from mskai.labels import read_labels

    for case in CASES:
        for series in SERIES:
            volume = read_image(folder / f"{case}_{series}_image.nii.gz")
            truth = read_labels(folder / f"{case}_{series}_mask.nii.gz", volume,
                                {"tumor": 1})["tumor"]
            yield volume, truth


def one_click_dice(volume, truth: np.ndarray, method: str) -> float:
    """Dice of one click at the most interior voxel; ``NETWORK``: the shipped weights alone."""
    from mskai.interactive import Prompts, segment_with_method
    from mskai.interactive.clicks import deepest_voxel
    from mskai.interactive.evaluate import dice

    kji = deepest_voxel(truth, tuple(reversed(volume.spacing)))
    click = tuple(float(v) for v in volume.index_to_ras(np.asarray(kji, float)[::-1]))
    prompts = Prompts(positive_ras=[click])
    if method == NETWORK:
        from mskai.interactive.learned import segment_learned

        return dice(segment_learned(volume, prompts, first_guess="network"), truth)
    return dice(segment_with_method(volume, prompts, method=method), truth)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--method", default=NETWORK)
    args = parser.parse_args(argv)
    sys.path.insert(0, str(REPO / "MSKAIExtension"))
    dices = [one_click_dice(v, t, args.method) for v, t in training_cases()]
    record = {"dice": [round(d, 3) for d in dices], "mean": round(float(np.mean(dices)), 3)}
    args.out.write_text(json.dumps(record, indent=1) + "\n", encoding="utf-8")
    print(json.dumps(record))


if __name__ == "__main__":
    main()
