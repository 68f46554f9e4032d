"""Ship the ``tumor_refine_unet`` network: export it as ONNX and write its manifest entry.

Usage::

    .venv/bin/python training/tumor/register.py --weights /tmp/tumor_v6/final.pt \
        --cv training/tumor/cv_results.json --regression /tmp/regression.json

``training/tumor/regression.py --out /tmp/regression.json`` measures the weights the
manifest names, so run it after a first ``register.py`` without ``--regression``, then
register again with it.

``--weights`` is the state dict ``train.py --fold -1`` wrote. It is exported as ONNX (opset
17, any crop size) and run by onnxruntime, so loading the model needs neither torch nor
MONAI: ``import torch`` alone takes 1.2-2.2 s in a new process. The export is refused
unless onnxruntime's logits match the eager network's within ``ONNX_TOLERANCE`` on random
inputs of two crop sizes. (v6 shipped as TorchScript first; the ONNX file holds the same
weights, extracted from it with ``dict(torch.jit.load(path).state_dict())``.) Computes the
file's sha256 and writes the entry; other models' entries are kept as they
are (the manifest is re-read right before it is written). Older entries of the same id are
dropped: v1 (4 input channels) and v2 (a 3 x 2 x 2 mm working grid) do not match the
inference code (4 x 3 x 3 mm grid since v3); v3 (the same network, less training) is
replaced by v5, v5 by v6.
``--cv`` is the JSON that ``summarize.py --json`` writes (the cross-validation);
``--regression``, optional, the one-click Dice of the shipped weights on STS_001-003.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
MODELS = REPO / "MSKAIExtension" / "mskai" / "models"
VERSION = "6"
FILE = f"weights/tumor_click_unet_v{VERSION}.onnx"
ONNX_OPSET = 17
ONNX_TOLERANCE = 1e-3   # logits; float32 kernels of torch and onnxruntime differ by ~1e-4


def entry(sha256: str, accuracy: dict) -> dict:
    from mskai.interactive.learned import (
        ARCHITECTURE,
        BASE_SHAPE,
        CT_CLIP,
        CT_SCALE,
        CT_WINDOW,
        GRID_SPACING,
        IN_CHANNELS,
    )

    return {
        "id": "tumor_refine_unet", "version": VERSION, "task": "tumor_refine", "modality": "CT/MR",
        "format": "onnx", "architecture": ARCHITECTURE, "file": FILE, "sha256": sha256,
        "input": {"spacing_mm": list(reversed(GRID_SPACING)), "orientation": "LPS",
                  "intensity": {"type": "none",
                                "note": "channel 1: relative to the median within 6 mm of "
                                        f"the first positive click; CT clipped to "
                                        f"{list(CT_CLIP)} HU and divided by {CT_SCALE}; MR "
                                        "divided by a tenth of the crop's 1-99 percentile "
                                        "range; clipped to +-5. channel 2: CT "
                                        f"(clip({list(CT_WINDOW)}) - 50) / 125; MR crop "
                                        "percentiles 1 -> -2, 99 -> +2. channel 3: +1 CT, "
                                        "-1 MR"},
                  "channels": IN_CHANNELS, "patch_size": list(reversed(BASE_SHAPE)),
                  "overlap": 0.0,
                  "channel_names": ["image_relative", "image_absolute", "modality_flag",
                                    "positive_clicks", "negative_clicks", "current_mask"]},
        "output": {"activation": "sigmoid", "keep_largest_component": False},
        "labels": {"1": "tumor"}, "licence": "Apache-2.0",
        "training_data": "real soft-tissue sarcomas: IBSI STS validation set (TCIA "
                         "Soft-tissue-Sarcoma, CC BY 3.0), patients STS_001-003 and "
                         "STS_007-039 (36 patients; 24 CT, 34 T1 MR volumes with expert "
                         "masks); STS_004-006 and STS_040-051 never used",
        "accuracy": accuracy, "card": f"cards/tumor_refine_unet_v{VERSION}.md",
    }


def export_onnx(weights: Path, out: Path) -> None:
    """The state dict ``weights`` in the network of ``ARCHITECTURE``, exported to ``out`` as
    ONNX with free batch and crop sizes; refused unless onnxruntime reproduces the eager
    network's logits (``ONNX_TOLERANCE``) on a base-sized and a larger, uneven crop."""
    import numpy as np
    import torch

    from mskai.interactive.learned import ARCHITECTURE, BASE_SHAPE, IN_CHANNELS
    from mskai.models.loaders import OnnxModel, build_network

    network = build_network(ARCHITECTURE)
    network.load_state_dict(torch.load(weights, weights_only=True))
    network.eval()
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(1, IN_CHANNELS, *BASE_SHAPE, generator=generator)
    axes = {0: "batch", 2: "k", 3: "j", 4: "i"}
    torch.onnx.export(network, (x,), str(out), dynamo=False, opset_version=ONNX_OPSET,
                      input_names=["clicks_and_image"], output_names=["logits"],
                      dynamic_axes={"clicks_and_image": axes, "logits": axes})
    onnx_model = OnnxModel(out)
    for shape in (BASE_SHAPE, (48, 72, 64)):
        x = torch.randn(1, IN_CHANNELS, *shape, generator=generator)
        with torch.inference_mode():
            eager = network(x).numpy()
        error = float(np.abs(onnx_model.numpy(x.numpy()) - eager).max())
        if error > ONNX_TOLERANCE:
            out.unlink()
            raise SystemExit(f"onnxruntime differs from the eager network by {error:.2g} on "
                             f"a {shape} crop; not exported")


def main() -> None:
    sys.path.insert(0, str(REPO / "MSKAIExtension"))
    from mskai.models.manifest import sha256_path

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weights", type=Path, required=True,
                        help="the state dict of the all-patient model (train.py --fold -1)")
    parser.add_argument("--cv", type=Path, required=True)
    parser.add_argument("--regression", type=Path, default=None)
    args = parser.parse_args()
    summary = json.loads(args.cv.read_text())["summary"]
    accuracy: dict = {"protocol": "patient-level 5-fold cross-validation (training/tumor/"
                                  "folds.json) on the 36 STS patients; first click at the "
                                  "most interior voxel, later clicks at the centre of the "
                                  "largest error region; Dice on the original grid; "
                                  "fold models, not the shipped all-patient model"}
    for method in ("learned", "auto", "classic"):
        for modality, folds in summary.get(method, {}).items():
            s = folds["all"]
            for c in ("1", "3", "5"):
                key = f"{'' if method == 'learned' else method + '_'}{modality}_dice_{c}_click"
                accuracy[key + "_mean"] = s[c]["dice_mean"]
                accuracy[key + "_worst"] = s[c]["dice_worst"]
    if args.regression is not None:
        accuracy["training_cases_one_click_dice"] = json.loads(args.regression.read_text())
    export_onnx(args.weights, MODELS / FILE)
    new = entry(sha256_path(MODELS / FILE), accuracy)
    path = MODELS / "manifest.json"
    data = json.loads(path.read_text(encoding="utf-8"))
    models = [m for m in data.get("models", []) if m.get("id") != new["id"]]
    data["models"] = [*models, new]
    path.write_text(json.dumps(data, indent=1) + "\n", encoding="utf-8")
    print(f"registered {new['id']} {new['version']} sha256 {new['sha256'][:12]}...")


if __name__ == "__main__":
    main()
