"""Preprocess the STS CT and T1 MR volumes once onto the working grid (the training cache).

Usage::

    .venv/bin/python training/tumor/cache.py [--out /tmp/tumor_v2/cache.npz]

Each of the 58 volumes (24 CT, 34 T1 MR; STS_001-003 and STS_007-039, see folds.json) is
resampled to ``GRID_SPACING`` (4 x 3 x 3 mm, slice x row x column) with the same
anti-aliased sampling the inference uses (:class:`mskai.interactive.learned.Crop`); its
expert mask likewise (linear, then > 0.5). Intensities stay raw (HU, MR units): the
normalisation happens per training sample, as at inference.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
DATA = REPO.parent / "shared" / "data" / "sts_sarcoma"
SERIES = (("CT", "CT"), ("MR", "MR_T1"))


def real_volumes(cases):
    """(case, "CT" or "MR", image Volume, expert mask) of each CT and T1 MR volume the
    patients have (not every patient has both)."""
    sys.path.insert(0, str(REPO / "MSKAIExtension"))
    from mskai.image import read_image

    for case in cases:
        for modality, series in SERIES:
            path = DATA / case / f"{series}_image.nii.gz"
            if path.is_file():
                mask = read_image(DATA / case / f"{series}_mask.nii.gz").array > 0
                yield case, modality, read_image(path), mask


def build(out: Path) -> None:
    sys.path.insert(0, str(REPO / "MSKAIExtension"))
    from mskai.interactive.learned import GRID_SPACING, Crop

    folds = json.loads((HERE / "folds.json").read_text())["folds"]
    arrays, meta = {}, []
    start = time.perf_counter()
    for case, modality, volume, mask in real_volumes(sorted(c for f in folds for c in f)):
        native = np.array(volume.spacing[::-1], float)
        shape = np.array(mask.shape)
        extent = shape * native
        crop = Crop(volume, (shape - 1) / 2, extent - np.array(GRID_SPACING))
        key = f"{case}_{modality}"
        arrays[f"{key}_image"] = crop.sample(volume.array).astype(np.float32)
        arrays[f"{key}_mask"] = (crop.sample(mask.astype(np.float32)) > 0.5).astype(np.uint8)
        meta.append({"key": key, "case": case, "modality": modality,
                     "shape": list(arrays[f"{key}_image"].shape)})
        print(key, arrays[f"{key}_image"].shape, int(arrays[f"{key}_mask"].sum()),
              f"{time.perf_counter() - start:.0f} s", flush=True)
    out.parent.mkdir(parents=True, exist_ok=True)
    np.savez(out, meta=json.dumps(meta), **arrays)


def load(path: Path) -> list[dict]:
    """``[{"case", "modality", "image", "mask"}]`` from the cache."""
    data = np.load(path)
    out = []
    for m in json.loads(str(data["meta"])):
        out.append({**m, "image": data[f"{m['key']}_image"],
                    "mask": data[f"{m['key']}_mask"].astype(bool)})
    return out


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("/tmp/tumor_v3/cache.npz"))
    build(parser.parse_args().out)
