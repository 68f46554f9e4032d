"""The tumour job on a :class:`mskai.runner.base.ProcessRunner` (no Qt).

The image and the current tumour mask go to the job ``mskai.tasks.tumor_jobs:segment_tumor``
through :func:`MSKAILib.job_bridge.runJob`; its ``segmentation.seg.nrrd`` and
``measurements.json`` come back as a :class:`Result` on the input grid. Tests swap the
runner for a fake that writes known files.
"""

from __future__ import annotations

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

from mskai.click_methods import DEFAULT_METHOD
from mskai.errors import InputError
from mskai.interactive import Prompts
from mskai.segments import Result
from mskai.terminology import TUMOR
from mskai.volume import Volume

TASK = "mskai.tasks.tumor_jobs:segment_tumor"
WHAT = "tumour segmentation"


def tumourJob(imagePath: str, outDir: str, prompts: Prompts, marginMm: float,
              currentMaskPath: str | None, modality: str | None,
              method: str = DEFAULT_METHOD) -> dict[str, Any]:
    """The job dict (plain JSON) for one segmentation; ``method`` is ``run_tumor``'s
    (``classic``, ``learned`` or ``auto``)."""
    return {"task": TASK, "args": {
        "image": imagePath, "out": outDir,
        "positive_ras": [list(p) for p in prompts.positive_ras],
        "negative_ras": [list(p) for p in prompts.negative_ras],
        "roi_ras": list(prompts.roi_ras) if prompts.roi_ras is not None else None,
        "recist_line_ras": (list(prompts.recist_line_ras)
                            if prompts.recist_line_ras is not None else None),
        "margin_mm": float(marginMm), "current_mask": currentMaskPath, "modality": modality,
        "method": str(getattr(method, "value", method))}}  # an enum member too


def runTumourJob(runner: Any, volume: Volume, prompts: Prompts, marginMm: float,
                 currentMask: np.ndarray | None, progress: ProgressCallback | None,
                 cancel: CancelCallback | None, method: str = "classic") -> Result:
    """Run the job on ``runner`` and read its outputs (the provenance, with the model of
    the learned method, comes back in measurements.json); the temporary files are removed."""
    return runPending(runner, prepareTumourJob(volume, prompts, marginMm, currentMask, method),
                      progress, cancel)


def prepareTumourJob(volume: Volume, prompts: Prompts, marginMm: float,
                     currentMask: np.ndarray | None, method: str = "classic") -> PendingJob:
    """The job with its image (and current mask) written; ``complete(outputs)`` gives the
    :class:`Result`."""
    from mskai.image import write_image

    def build(work: Path, imagePath: str) -> dict[str, Any]:
        maskPath = None
        if currentMask is not None:
            maskPath = str(write_image(volume.with_array(currentMask.astype(np.uint8)),
                                       work / "current_mask.nrrd"))
        return tumourJob(imagePath, str(work / "out"), prompts, marginMm, maskPath,
                         volume.modality, method)

    return prepareJob(volume, build, lambda outputs: readJobOutputs(outputs, volume, marginMm),
                      WHAT)


def readJobOutputs(outputs: dict[str, Any], volume: Volume, marginMm: float) -> Result:
    """A Result on ``volume``'s grid from the job's seg.nrrd (and measurements.json)."""
    from TumorSegLib.measure_on_edit import MODULE, measureResult

    result, document = readResult(outputs, volume, MODULE, "tumour")
    if not any(s.id == TUMOR and s.mask.any() for s in result.segments):
        raise InputError("The segmentation came back without tumour voxels: click well "
                         "inside the tumour or add an ROI around it.")
    if "margin" in document:
        result.measurements["margin"] = document["margin"]
    else:
        measureResult(result, marginMm)
    if "recist_line" in document:   # the drawn line beside the result's long axis
        result.measurements["recist_line"] = document["recist_line"]
    return result
