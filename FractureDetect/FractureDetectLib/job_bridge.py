"""Fracture detection on a :class:`mskai.runner.base.ProcessRunner` (no Qt).

The image goes to the job ``mskai.tasks.fracture_jobs:detect_fractures`` through
:func:`MSKAILib.job_bridge.runJob`; its ``segmentation.seg.nrrd`` and ``measurements.json``
come back as a :class:`Result` on the input grid. Tests swap the runner for a fake one.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from MSKAILib.job_bridge import (
    CancelCallback,
    PendingJob,
    ProgressCallback,
    prepareJob,
    readResult,
    runPending,
)

from mskai.segments import Result
from mskai.volume import Volume

TASK = "mskai.tasks.fracture_jobs:detect_fractures"
MODULE = "FractureDetect"
WHAT = "fracture detection"


def fractureJob(imagePath: str, outDir: str, roi: dict[str, Any] | None, minScore: float,
                splitTouching: bool, modality: str | None) -> dict[str, Any]:
    """The job dict (plain JSON) for one detection."""
    return {"task": TASK, "args": {"image": imagePath, "out": outDir, "roi": roi,
                                   "min_score": float(minScore),
                                   "split_touching": bool(splitTouching),
                                   "modality": modality}}


def runFractureJob(runner: Any, volume: Volume, roi: dict[str, Any] | None, minScore: float,
                   splitTouching: bool, progress: ProgressCallback | None,
                   cancel: CancelCallback | None) -> Result:
    """Run the job on ``runner`` and read its outputs; the temporary files are removed."""
    return runPending(runner, prepareFractureJob(volume, roi, minScore, splitTouching),
                      progress, cancel)


def prepareFractureJob(volume: Volume, roi: dict[str, Any] | None, minScore: float,
                       splitTouching: bool) -> PendingJob:
    """The job with its image written; ``complete(outputs)`` gives the :class:`Result`."""

    def build(work: Path, imagePath: str) -> dict[str, Any]:
        return fractureJob(imagePath, str(work / "out"), roi, minScore, splitTouching,
                           volume.modality)

    return prepareJob(volume, build, lambda outputs: readJobOutputs(outputs, volume), WHAT)


def readJobOutputs(outputs: dict[str, Any], volume: Volume) -> Result:
    """A Result on ``volume``'s grid from the job's seg.nrrd and measurements.json."""
    result, document = readResult(outputs, volume, MODULE, "fracture")
    for key in ("fractures", "fracture_candidates"):
        result.measurements[key] = list(document.get(key) or [])
    return result
