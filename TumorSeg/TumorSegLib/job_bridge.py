"""Running the tumour task through a :class:`mskai.runner.base.ProcessRunner` (no Qt).

The image and the current tumour mask go to a temporary folder as NRRD, the job
``mskai.tasks.tumor_jobs:segment_tumor`` runs (in a child process inside Slicer, so the
GUI keeps drawing and Cancel works), and its ``segmentation.seg.nrrd`` and
``measurements.json`` come back as a :class:`Result` on the input grid. Tests swap the
runner for a fake that writes known files.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from mskai.errors import CancelledError, InputError
from mskai.interactive import Prompts
from mskai.segments import STATUS_AI, Provenance, Result, Segment
from mskai.volume import Volume

TASK = "mskai.tasks.tumor_jobs:segment_tumor"
POLL_S = 0.05
ProgressCallback = Callable[[float, str], None]
CancelCallback = Callable[[], bool]


def tumourJob(imagePath: str, outDir: str, prompts: Prompts, marginMm: float,
              currentMaskPath: str | None, modality: str | None) -> dict[str, Any]:
    """The job dict (plain JSON) for one segmentation."""
    return {"task": TASK, "args": {
        "image": imagePath, "out": outDir,
        "positive_ras": [list(p) for p in prompts.positive_ras],
        "negative_ras": [list(p) for p in prompts.negative_ras],
        "roi_ras": list(prompts.roi_ras) if prompts.roi_ras is not None else None,
        "margin_mm": float(marginMm), "current_mask": currentMaskPath, "modality": modality}}


def runTumourJob(runner: Any, volume: Volume, prompts: Prompts, marginMm: float,
                 currentMask: np.ndarray | None, progress: ProgressCallback | None,
                 cancel: CancelCallback | None) -> Result:
    """Run the job on ``runner`` and read its outputs; the temporary files are removed."""
    from mskai.image import write_image

    work = Path(tempfile.mkdtemp(prefix="mskai-tumorseg-"))
    try:
        imagePath = write_image(volume, work / "image.nrrd")
        maskPath = None
        if currentMask is not None:
            maskPath = str(write_image(volume.with_array(currentMask.astype(np.uint8)),
                                       work / "current_mask.nrrd"))
        job = tumourJob(str(imagePath), str(work / "out"), prompts, marginMm, maskPath,
                        volume.modality)
        outputs = driveRunner(runner, job, progress, cancel)
        return readJobOutputs(outputs, volume, marginMm)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def driveRunner(runner: Any, job: dict[str, Any], progress: ProgressCallback | None,
                cancel: CancelCallback | None) -> dict[str, Any]:
    """Start ``job``, relay progress, honour Cancel; returns the job's outputs.

    ``progress`` is called on every poll, even without news, because inside Slicer it is
    what processes GUI events (see ``MSKAILib.widget_helpers.ProgressRunner``).
    """
    runner.start(job)
    fraction, message = 0.0, "starting"
    while True:
        for event in runner.poll():
            kind = event.get("event")
            if kind == "progress":
                fraction, message = float(event.get("fraction", 0.0)), event.get("message", "")
            elif kind == "done":
                return event.get("outputs") or {}
            elif kind == "cancelled":
                raise CancelledError("Cancelled: tumour segmentation")
            elif kind == "error":
                text = event.get("message", "the job failed")
                if event.get("kind") == "input":
                    raise InputError(text)
                raise RuntimeError(f"Tumour segmentation failed: {text}")
        if cancel is not None and cancel():
            runner.cancel()
            runner.wait(5.0)
            raise CancelledError("Cancelled: tumour segmentation")
        if progress is not None:
            progress(fraction, message)
        runner.wait(POLL_S)


def readJobOutputs(outputs: dict[str, Any], volume: Volume, marginMm: float) -> Result:
    """A Result on ``volume``'s grid from the job's seg.nrrd (and measurements.json)."""
    from mskai.results.segnrrd import read_seg_nrrd
    from TumorSegLib.measure_on_edit import MODULE, measureResult

    path = outputs.get("segmentation")
    if not path or not Path(path).is_file():
        raise RuntimeError("The tumour job finished without writing its segmentation.")
    grid, records = read_seg_nrrd(path)
    if not grid.same_geometry(volume):
        raise RuntimeError("The tumour job wrote a segmentation on another grid than the "
                           "input volume.")
    document = _document(outputs.get("measurements"))
    provenance = _provenance(document)
    result = Result(MODULE, volume, provenance, warnings=list(outputs.get("warnings") or []))
    entries = {e.get("id"): e for e in document.get("segments", []) if isinstance(e, dict)}
    for record in records:
        segment = Segment(record.id, record.mask, record.label, name=record.name or None,
                          status=record.tags.get("MSKAI.Status", STATUS_AI))
        entry = entries.get(record.id, {})
        segment.measurements = {k: v for k, v in entry.items()
                                if k not in ("id", "name", "label")}
        result.segments.append(segment)
    if not any(s.id == "tumor" and s.mask.any() for s in result.segments):
        raise InputError("The segmentation came back without tumour voxels: click well "
                         "inside the tumour or add an ROI around it.")
    if "margin" in document:
        result.measurements["margin"] = document["margin"]
    else:
        measureResult(result, marginMm)
    return result


def _document(path: str | None) -> dict[str, Any]:
    if not path or not Path(path).is_file():
        return {}
    return json.loads(Path(path).read_text(encoding="utf-8"))


def _provenance(document: dict[str, Any]) -> Provenance:
    data = document.get("provenance") or {}
    model = data.get("model") or {}
    provenance = Provenance(method=data.get("method") or "tumour job",
                            model_id=model.get("id"), model_version=model.get("version"),
                            model_sha256=model.get("sha256"))
    if data.get("mskai_version"):
        provenance.mskai_version = data["mskai_version"]
    return provenance
