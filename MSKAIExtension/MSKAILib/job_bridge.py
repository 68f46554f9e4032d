"""Running a module's job through a :class:`mskai.runner.base.ProcessRunner` (no Qt).

Every module does the same three things: write the input image (and whatever else the job
reads) to a temporary folder, run the job (in a child process inside Slicer, so the GUI
keeps drawing and Cancel works) and read the files it wrote back onto the input grid. The
modules' ``job_bridge`` files only build their job dict and interpret their outputs.

Two ways to run: :func:`runJob` blocks until the job ends (scripts, tests, the Slicer
self-tests); :func:`prepareJob` only writes the inputs and returns a :class:`PendingJob`,
which the widgets hand to :class:`MSKAILib.job_controller.JobController` so the GUI thread
never waits for the job.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from mskai.errors import CancelledError, InputError
from mskai.segments import STATUS_AI, TAG_STATUS, Provenance, Result, Segment
from mskai.volume import Volume

POLL_S = 0.05
TERMINAL_EVENTS = ("done", "error", "cancelled")
ProgressCallback = Callable[[float, str], None]
CancelCallback = Callable[[], bool]
#: ``(work folder, written image path) -> job dict``
JobBuilder = Callable[[Path, str], dict[str, Any]]


class PendingJob:
    """A job whose inputs are written: the job dict, the steps that turn its outputs into
    the caller's result (:meth:`then`), the share of the whole run its progress covers, and
    the temporary folder, removed by :meth:`complete` or :meth:`cleanup`."""

    def __init__(self, job: dict[str, Any], readOutputs: Callable[[dict[str, Any]], Any],
                 what: str = "the job", work: Path | None = None) -> None:
        self.job = job
        self.what = what
        self.work = work
        self.progressRange = (0.0, 1.0)
        self._steps: list[Callable[[Any], Any]] = [readOutputs]

    def then(self, step: Callable[[Any], Any]) -> PendingJob:
        """Add a step after the outputs are read (the logic writes its nodes there)."""
        self._steps.append(step)
        return self

    def scaleProgress(self, start: float, stop: float) -> PendingJob:
        """The job's 0..1 progress is ``start..stop`` of the whole run."""
        self.progressRange = (float(start), float(stop))
        return self

    def complete(self, outputs: dict[str, Any]) -> Any:
        """Run the steps on the job's outputs; the temporary files are removed afterwards."""
        try:
            value: Any = outputs
            for step in self._steps:
                value = step(value)
            return value
        finally:
            self.cleanup()

    def cleanup(self) -> None:
        if self.work is not None:
            shutil.rmtree(self.work, ignore_errors=True)
            self.work = None


def prepareJob(volume: Volume, buildJob: JobBuilder,
               readOutputs: Callable[[dict[str, Any]], Any], what: str) -> PendingJob:
    """Write ``volume`` to a new temporary folder and build the job on it (nothing runs).

    ``what`` names the job in messages ("tumour segmentation").
    """
    from mskai.image import write_image

    work = Path(tempfile.mkdtemp(prefix="mskai-job-"))
    try:
        imagePath = write_image(volume, work / "image.nrrd")
        return PendingJob(buildJob(work, str(imagePath)), readOutputs, what, work)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise


def runJob(runner: Any, volume: Volume, buildJob: JobBuilder,
           readOutputs: Callable[[dict[str, Any]], Any], what: str,
           progress: ProgressCallback | None = None,
           cancel: CancelCallback | None = None) -> Any:
    """Write ``volume``, run ``buildJob``'s job on ``runner`` (blocking) and return
    ``readOutputs(outputs)``; the temporary files are removed afterwards."""
    return runPending(runner, prepareJob(volume, buildJob, readOutputs, what), progress,
                      cancel)


def runPending(runner: Any, pending: PendingJob, progress: ProgressCallback | None = None,
               cancel: CancelCallback | None = None) -> Any:
    """Run a prepared job on ``runner`` until it ends (blocking) and complete it."""
    try:
        return pending.complete(driveRunner(runner, pending.job, progress, cancel,
                                            pending.what))
    finally:
        pending.cleanup()


def jobOutcome(event: Mapping[str, Any], what: str = "the job") -> dict[str, Any]:
    """The outputs of a ``done`` event; :class:`CancelledError` for ``cancelled``,
    :class:`InputError` for an input ``error`` and RuntimeError for any other error."""
    kind = event.get("event")
    if kind == "done":
        return dict(event.get("outputs") or {})
    if kind == "cancelled":
        raise CancelledError(f"Cancelled: {what}")
    if kind == "error":
        text = str(event.get("message", "the job failed"))
        if event.get("kind") == "input":
            raise InputError(text[:1].upper() + text[1:])
        raise RuntimeError(f"{what[:1].upper() + what[1:]} failed: {text}")
    raise ValueError(f"{kind!r} is not an event that ends a job")


def driveRunner(runner: Any, job: dict[str, Any], progress: ProgressCallback | None,
                cancel: CancelCallback | None, what: str = "the job") -> dict[str, Any]:
    """Start ``job``, relay progress, honour Cancel; returns the job's outputs.

    This blocks the calling thread until the job ends: the module widgets never call it
    (they poll through :class:`MSKAILib.job_controller.JobController`).
    """
    runner.start(job)
    fraction, message = 0.0, "starting"
    while True:
        for event in runner.poll():
            kind = event.get("event")
            if kind == "progress":
                fraction, message = float(event.get("fraction", 0.0)), event.get("message", "")
            elif kind in TERMINAL_EVENTS:
                return jobOutcome(event, what)
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
                          status=record.tags.get(TAG_STATUS, STATUS_AI))
        segment.measurements = {k: v for k, v in entries.get(record.id, {}).items()
                                if k not in ("id", "name", "label")}
        result.segments.append(segment)
    return result, document
