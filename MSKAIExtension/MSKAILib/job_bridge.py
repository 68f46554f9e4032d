"""Running a module's job through a :class:`mskai.runner.base.ProcessRunner` (no Qt).

Every module does the same three things: write the input image (and whatever else the job
reads) to a temporary folder, run the job (in a child process inside Slicer, so the GUI
keeps drawing and Cancel works) and read the files it wrote back onto the input grid. The
modules' ``job_bridge`` files only build their job dict and interpret their outputs.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from mskai.errors import CancelledError, InputError
from mskai.segments import STATUS_AI, Provenance, Result, Segment
from mskai.volume import Volume

POLL_S = 0.05
ProgressCallback = Callable[[float, str], None]
CancelCallback = Callable[[], bool]
#: ``(work folder, written image path) -> job dict``
JobBuilder = Callable[[Path, str], dict[str, Any]]


def runJob(runner: Any, volume: Volume, buildJob: JobBuilder,
           readOutputs: Callable[[dict[str, Any]], Any], what: str,
           progress: ProgressCallback | None = None,
           cancel: CancelCallback | None = None) -> Any:
    """Write ``volume``, run ``buildJob``'s job on ``runner`` and return
    ``readOutputs(outputs)``; the temporary files are removed afterwards.

    ``what`` names the job in messages ("tumour segmentation").
    """
    from mskai.image import write_image

    work = Path(tempfile.mkdtemp(prefix="mskai-job-"))
    try:
        imagePath = write_image(volume, work / "image.nrrd")
        job = buildJob(work, str(imagePath))
        return readOutputs(driveRunner(runner, job, progress, cancel, what))
    finally:
        shutil.rmtree(work, ignore_errors=True)


def driveRunner(runner: Any, job: dict[str, Any], progress: ProgressCallback | None,
                cancel: CancelCallback | None, what: str = "the job") -> dict[str, Any]:
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
                raise CancelledError(f"Cancelled: {what}")
            elif kind == "error":
                text = event.get("message", "the job failed")
                if event.get("kind") == "input":
                    raise InputError(text[:1].upper() + text[1:])
                raise RuntimeError(f"{what[:1].upper() + what[1:]} failed: {text}")
        if cancel is not None and cancel():
            runner.cancel()
            runner.wait(5.0)
            raise CancelledError(f"Cancelled: {what}")
        if progress is not None:
            progress(fraction, message)
        runner.wait(POLL_S)


def readDocument(path: str | None) -> dict[str, Any]:
    """The job's ``measurements.json`` (empty when it wrote none)."""
    if not path or not Path(path).is_file():
        return {}
    return json.loads(Path(path).read_text(encoding="utf-8"))


def provenanceFrom(document: Mapping[str, Any], method: str) -> Provenance:
    """The provenance block of a measurements document; ``method`` when it names none."""
    data = document.get("provenance") or {}
    model = data.get("model") or {}
    provenance = Provenance(method=data.get("method") or method, model_id=model.get("id"),
                            model_version=model.get("version"),
                            model_sha256=model.get("sha256"))
    if data.get("mskai_version"):
        provenance.mskai_version = data["mskai_version"]
    return provenance


def readResult(outputs: Mapping[str, Any], volume: Volume, module: str,
               what: str) -> tuple[Result, dict[str, Any]]:
    """(the job's ``segmentation.seg.nrrd`` as a Result on ``volume``'s grid, with each
    segment's entry of ``measurements.json`` as its measurements; that document)."""
    from mskai.results.segnrrd import read_seg_nrrd

    path = outputs.get("segmentation")
    if not path or not Path(path).is_file():
        raise RuntimeError(f"The {what} job finished without writing its segmentation.")
    grid, records = read_seg_nrrd(path)
    if not grid.same_geometry(volume):
        raise RuntimeError(f"The {what} job wrote a segmentation on another grid than the "
                           "input volume.")
    document = readDocument(outputs.get("measurements"))
    result = Result(module, volume, provenanceFrom(document, f"{what} job"),
                    warnings=list(outputs.get("warnings") or []))
    entries = {e.get("id"): e for e in document.get("segments", []) if isinstance(e, dict)}
    for record in records:
        segment = Segment(record.id, record.mask, record.label, name=record.name or None,
                          status=record.tags.get("MSKAI.Status", STATUS_AI))
        segment.measurements = {k: v for k, v in entries.get(record.id, {}).items()
                                if k not in ("id", "name", "label")}
        result.segments.append(segment)
    return result, document
