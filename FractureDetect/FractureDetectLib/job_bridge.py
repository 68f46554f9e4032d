"""Running fracture detection through a :class:`mskai.runner.base.ProcessRunner` (no Qt).

The image goes to a temporary NRRD, the job ``mskai.tasks.fracture_jobs:detect_fractures``
runs (in a child process inside Slicer, so the GUI keeps drawing and Cancel works), and its
``segmentation.seg.nrrd`` and ``measurements.json`` come back as a :class:`Result` on the
input grid. Tests swap the runner for a fake one.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from mskai.errors import CancelledError, InputError
from mskai.segments import STATUS_AI, Provenance, Result, Segment
from mskai.volume import Volume

TASK = "mskai.tasks.fracture_jobs:detect_fractures"
MODULE = "FractureDetect"
POLL_S = 0.05
ProgressCallback = Callable[[float, str], None]
CancelCallback = Callable[[], bool]


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
    from mskai.image import write_image

    work = Path(tempfile.mkdtemp(prefix="mskai-fracturedetect-"))
    try:
        imagePath = write_image(volume, work / "image.nrrd")
        job = fractureJob(str(imagePath), str(work / "out"), roi, minScore, splitTouching,
                          volume.modality)
        return readJobOutputs(driveRunner(runner, job, progress, cancel), volume)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def driveRunner(runner: Any, job: dict[str, Any], progress: ProgressCallback | None,
                cancel: CancelCallback | None) -> dict[str, Any]:
    """Start ``job``, relay progress, honour Cancel; returns the job's outputs.

    ``progress`` is called on every poll, even without news: inside Slicer it is what
    processes GUI events (``MSKAILib.widget_helpers.ProgressRunner``).
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
                raise CancelledError("Cancelled: fracture detection")
            elif kind == "error":
                text = event.get("message", "the job failed")
                if event.get("kind") == "input":
                    raise InputError(text)
                raise RuntimeError(f"Fracture detection failed: {text}")
        if cancel is not None and cancel():
            runner.cancel()
            runner.wait(5.0)
            raise CancelledError("Cancelled: fracture detection")
        if progress is not None:
            progress(fraction, message)
        runner.wait(POLL_S)


def readJobOutputs(outputs: dict[str, Any], volume: Volume) -> Result:
    """A Result on ``volume``'s grid from the job's seg.nrrd and measurements.json."""
    from mskai.results.segnrrd import read_seg_nrrd

    path = outputs.get("segmentation")
    if not path or not Path(path).is_file():
        raise RuntimeError("The fracture job finished without writing its segmentation.")
    grid, records = read_seg_nrrd(path)
    if not grid.same_geometry(volume):
        raise RuntimeError("The fracture job wrote a segmentation on another grid than the "
                           "input volume.")
    document = _document(outputs.get("measurements"))
    provenance = Provenance(method=(document.get("provenance") or {}).get("method")
                            or "fracture job")
    result = Result(MODULE, volume, provenance, warnings=list(outputs.get("warnings") or []))
    measured = {e.get("id"): e for e in document.get("segments", []) if isinstance(e, dict)}
    for record in records:
        segment = Segment(record.id, record.mask, record.label, name=record.name or None,
                          status=record.tags.get("MSKAI.Status", STATUS_AI))
        segment.measurements = {k: v for k, v in measured.get(record.id, {}).items()
                                if k not in ("id", "name", "label")}
        result.segments.append(segment)
    for key in ("fractures", "fracture_candidates"):
        result.measurements[key] = list(document.get(key) or [])
    return result


def _document(path: str | None) -> dict[str, Any]:
    if not path or not Path(path).is_file():
        return {}
    return json.loads(Path(path).read_text(encoding="utf-8"))
