"""Add (or update) the ``tumor_refine_unet`` entry of the packaged model manifest.

Usage::

    .venv/bin/python training/tumor/register.py --accuracy /tmp/tumor_train/eval.json

Computes the weights' sha256 and writes the entry; other models' entries are kept as they
are (the manifest is re-read right before it is written). ``--accuracy`` is the JSON that
``evaluate.py --json`` writes; its learned Dice after 3 clicks goes into the entry.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
MODELS = REPO / "MSKAIExtension" / "mskai" / "models"
FILE = "weights/tumor_refine_unet_v1.pt"


def entry(sha256: str, accuracy: dict) -> dict:
    sys.path.insert(0, str(HERE))
    from train import ARCHITECTURE

    from mskai.interactive.learned import BASE_SHAPE, CT_CLIP, CT_SCALE, GRID_SPACING

    return {
        "id": "tumor_refine_unet", "version": "1", "task": "tumor_refine", "modality": "CT/MR",
        "format": "state_dict", "architecture": ARCHITECTURE, "file": FILE, "sha256": sha256,
        "input": {"spacing_mm": list(reversed(GRID_SPACING)), "orientation": "LPS",
                  "intensity": {"type": "none",
                                "note": "relative to the median within 6 mm of the first "
                                        f"positive click; CT clipped to {list(CT_CLIP)} HU "
                                        f"and divided by {CT_SCALE}; MR divided by a tenth "
                                        "of the crop's 1-99 percentile range; clipped to +-5"},
                  "channels": 4, "patch_size": list(reversed(BASE_SHAPE)), "overlap": 0.0,
                  "channel_names": ["image", "positive_clicks", "negative_clicks",
                                    "current_mask"]},
        "output": {"activation": "sigmoid", "keep_largest_component": False},
        "labels": {"1": "tumor"}, "licence": "Apache-2.0",
        "training_data": "synthetic soft-tissue tumours only (training/tumor/synthesize.py, "
                         "1000 samples, CT and T1 MR contrasts); no real images",
        "accuracy": accuracy, "card": "cards/tumor_refine_unet_v1.md",
    }


def main() -> None:
    sys.path.insert(0, str(REPO / "MSKAIExtension"))
    from mskai.models.manifest import sha256_path

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--accuracy", type=Path, required=True)
    args = parser.parse_args()
    table = json.loads(args.accuracy.read_text())
    accuracy = {"protocol": "STS_001-003 (IBSI), CT and T1 MR, never trained on; Dice after "
                            "1 centre click + 2 automatic corrective clicks; default mode "
                            "(classic first guess, network corrections)",
                **{f"dice_3_clicks_{k}": v[-1] for k, v in table["learned"].items()}}
    if "learned_network" in table:
        accuracy["network_first_guess_dice_3_clicks"] = {k: v[-1] for k, v in
                                                         table["learned_network"].items()}
    if "classic" in table:
        accuracy["classic_method_dice_3_clicks"] = {k: v[-1] for k, v in
                                                    table["classic"].items()}
    new = entry(sha256_path(MODELS / FILE), accuracy)
    path = MODELS / "manifest.json"
    data = json.loads(path.read_text(encoding="utf-8"))
    models = [m for m in data.get("models", [])
              if not (m.get("id") == new["id"] and m.get("version") == new["version"])]
    data["models"] = [*models, new]
    path.write_text(json.dumps(data, indent=1) + "\n", encoding="utf-8")
    print(f"registered {new['id']} {new['version']} sha256 {new['sha256'][:12]}...")


if __name__ == "__main__":
    main()
