"""Add (or replace) the ``bone_ct_unet`` entry of the packaged model manifest.

Usage::

    .venv/bin/python training/bone/register.py --accuracy training/bone/eval.json \
        --combine union

Computes the weights' sha256 and writes the entry with the held-out Dice of
``evaluate.py --json``; ``--combine`` (none | union | intersection) is how the task joins
the network with the HU mask, chosen by that Dice. ``output.preferred_over_hu`` is set
only when that combination beats the HU method on every held-out case; otherwise the task
keeps the HU method and the model is available on request. Other entries are kept as they are (the
manifest is re-read right before it is written).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
MODELS = REPO / "MSKAIExtension" / "mskai" / "models"
FILE = "weights/bone_ct_unet_v1.pt"


def main() -> None:
    sys.path.insert(0, str(REPO / "MSKAIExtension"))
    from mskai.models.manifest import sha256_path
    from mskai.segmentation.bone_model import ARCHITECTURE, COMBINE_MODES, INPUT, MODEL_ID

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--accuracy", type=Path, required=True)
    parser.add_argument("--combine", choices=COMBINE_MODES, default="none")
    args = parser.parse_args()
    table = json.loads(args.accuracy.read_text())
    accuracy = {"reference": "union of TotalSegmentator bone classes (model output, not "
                             "manual truth); TPTBox: its vertebra mask within 3 voxels",
                "used_as": args.combine,
                **{f"dice_{case}": {k: round(v, 3) for k, v in row.items()}
                   for case, row in table.items() if not case.startswith("TRAINING")}}
    held_out = {k: v for k, v in table.items() if not k.startswith("TRAINING")}
    column = "model" if args.combine == "none" else args.combine
    preferred = all(row[column] > row["hu"] for row in held_out.values())
    new = {"id": MODEL_ID, "version": "1", "task": "bone_seg", "modality": "CT",
           "format": "state_dict", "architecture": ARCHITECTURE, "file": FILE,
           "sha256": sha256_path(MODELS / FILE), "input": INPUT,
           "output": {"activation": "softmax", "keep_largest_component": False,
                      "combine_with_hu": args.combine, "preferred_over_hu": preferred},
           "labels": {"1": "bone"}, "licence": "Apache-2.0",
           "training_data": "TotalSegmentator example CT (3 mm) slices k < 52 and its "
                            "20-slice chest DICOM series, labels = union of "
                            "TotalSegmentator bone classes (model outputs); see "
                            "training/bone/cases.py",
           "accuracy": accuracy, "card": "cards/bone_ct_unet.md"}
    path = MODELS / "manifest.json"
    data = json.loads(path.read_text(encoding="utf-8"))
    data["models"] = [m for m in data.get("models", [])
                      if not (m.get("id") == new["id"] and m.get("version") == new["version"])]
    data["models"].append(new)
    path.write_text(json.dumps(data, indent=1) + "\n", encoding="utf-8")
    print(f"registered {new['id']} {new['version']} sha256 {new['sha256'][:12]}...")


if __name__ == "__main__":
    main()
