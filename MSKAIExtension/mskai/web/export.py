"""Export of a module's segments through the CLI's writers (a job, with progress)."""

from __future__ import annotations

from typing import Any

from mskai.web import state as names
from mskai.web.job_slot import JobSlot
from mskai.web.session import Session

EXPORT_TASK = "mskai.web.jobs:export_result"


def start_export(session: Session, jobs: JobSlot, state: Any, module: str,
                 masks: dict[str, str | None], margin_mm: float = 10.0) -> bool:
    """Write ``<out>/<command>/`` like ``mskai COMMAND --labels`` (the command of
    ``module``, e.g. TumorSeg), with ``--dicom-out``'s DICOM SEG and SR when the image was
    opened from a DICOM series; False while busy."""
    from mskai.commands import MODULE_COMMANDS

    session.require_image()
    out = session.out_dir / MODULE_COMMANDS[module]
    spec = {"task": EXPORT_TASK, "args": {
        "module": module, "image": session.image_path, "out": str(out), "masks": masks,
        "margin_mm": margin_mm, "modality": session.volume.modality,
        "dicom_files": list(session.dicom_files) or None}}

    def done(outputs: dict[str, Any]) -> None:
        state[names.EXPORTED] = outputs.get("summary", "")

    return jobs.start(spec, done, "export")
