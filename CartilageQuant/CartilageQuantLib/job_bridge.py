"""The cartilage job on a :class:`mskai.runner.base.ProcessRunner` (no Qt).

The image and the current knee masks go to the job
``mskai.tasks.cartilage_jobs:measure_cartilage`` through :func:`MSKAILib.job_bridge.runJob`
and its files come back as a :class:`CartilageOutputs`. Tests swap the runner for a fake
that writes known files.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from MSKAILib.job_bridge import (
    CancelCallback,
    PendingJob,
    ProgressCallback,
    prepareJob,
    readResult,
    runPending,
)

from mskai.volume import Volume

TASK = "mskai.tasks.cartilage_jobs:measure_cartilage"
MODULE = "CartilageQuant"
WHAT = "cartilage measurement"

@dataclass
class CartilageOutputs:
    """What one job hands back: the measurements document, the plates' thickness surfaces
    (``mskai.tasks.cartilage_jobs.PlateSurface`` by plate id) and, after AI segmentation,
    the segments as a :class:`mskai.segments.Result` on the input grid."""

    document: dict[str, Any]
    surfaces: dict[str, Any]
    result: Any = None
    warnings: list[str] = field(default_factory=list)


def cartilageJob(imagePath: str, outDir: str, masksPath: str | None, method: str,
                 kneeSide: str | None = None) -> dict[str, Any]:
    """The job dict (plain JSON) for one run."""
    return {"task": TASK, "args": {"image": imagePath, "out": outDir, "labels": masksPath,
                                   "method": method, "knee_side": kneeSide}}


def runCartilageJob(runner: Any, volume: Volume, masks: Mapping[str, np.ndarray] | None,
                    method: str, progress: ProgressCallback | None = None,
                    cancel: CancelCallback | None = None,
                    kneeSide: str | None = None) -> CartilageOutputs:
    """Run the job on ``runner`` and read its outputs; the temporary files are removed."""
    return runPending(runner, prepareCartilageJob(volume, masks, method, kneeSide), progress,
                      cancel)


def prepareCartilageJob(volume: Volume, masks: Mapping[str, np.ndarray] | None, method: str,
                        kneeSide: str | None = None) -> PendingJob:
    """The job with its image (and masks) written; ``complete(outputs)`` gives the
    :class:`CartilageOutputs`."""
    from mskai.tasks.cartilage_jobs import save_masks

    def build(work: Path, imagePath: str) -> dict[str, Any]:
        masksPath = str(save_masks(masks, work / "masks.npz")) if masks is not None else None
        return cartilageJob(imagePath, str(work / "out"), masksPath, method, kneeSide)

    return prepareJob(volume, build, lambda outputs: readJobOutputs(outputs, volume), WHAT)


def readJobOutputs(outputs: Mapping[str, Any], volume: Volume) -> CartilageOutputs:
    """The document, the thickness surfaces and (when written) the segments."""
    from mskai.tasks.cartilage_jobs import load_surfaces

    path = outputs.get("measurements")
    if not path or not Path(path).is_file():
        raise RuntimeError("The cartilage job finished without writing its measurements.")
    document = json.loads(Path(path).read_text(encoding="utf-8"))
    maps = outputs.get("thickness_maps")
    surfaces = load_surfaces(maps) if maps and Path(maps).is_file() else {}
    result = None
    if outputs.get("segmentation"):
        result, _ = readResult(outputs, volume, MODULE, "cartilage")
    return CartilageOutputs(document, surfaces, result, list(outputs.get("warnings") or []))
