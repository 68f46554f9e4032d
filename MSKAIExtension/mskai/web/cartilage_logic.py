"""CartilageQuant in the web page: segment and measure the knee, show the thickness maps."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

from mskai.terminology import KNEE_SEGMENTS
from mskai.web import state as names
from mskai.web.job_slot import JobSlot
from mskai.web.remeasure import AutoRemeasure, segments_fingerprint
from mskai.web.session import Session

MODULE = names.CARTILAGE_QUANT
KNEE_TASK = "mskai.web.jobs:measure_knee"


class KneeWorkflow:
    """Runs ``mskai cartilage``'s task on the open image and shows its numbers."""

    def __init__(self, session: Session, jobs: JobSlot, state: Any) -> None:
        self.session = session
        self.jobs = jobs
        self.state = state
        self.auto = AutoRemeasure(
            lambda: segments_fingerprint(session, KNEE_SEGMENTS), self.remeasure)
        session.listeners.append(self.on_image)
        session.editor.segmentation_modified.connect(self.auto.request)

    def on_image(self) -> None:
        self.auto.disarm()
        with self.state:
            self.state[names.CARTILAGE_ROWS] = []
            self.state[names.THICKNESS_PNG] = ""
            self.state[names.KNEE_CHECKS] = ""

    def run(self) -> None:
        self.session.require_image()
        folder = self.session.job_folder("knee")
        spec = {"task": KNEE_TASK, "args": {"image": self.session.image_path,
                                             "out": str(folder / "out"),
                                             "modality": self.session.volume.modality,
                                             "knee_side": self.state[names.KNEE_SIDE]}}
        self.jobs.start(spec, self._apply, "knee segmentation and thickness")

    def remeasure(self) -> bool:
        """Measure the knee segments as they are now (after edits): ``--labels``; runs
        by itself after each edit once the knee was measured. False while busy."""
        from mskai.web.segments_io import write_segment

        self.session.require_image()
        folder = self.session.job_folder("knee")
        masks = {sid: write_segment(self.session, sid, folder / f"{sid}.nrrd")
                 for sid in KNEE_SEGMENTS}
        spec = {"task": KNEE_TASK, "args": {"image": self.session.image_path,
                                             "out": str(folder / "out"), "masks": masks,
                                             "modality": self.session.volume.modality,
                                             "knee_side": self.state[names.KNEE_SIDE]}}
        return self.jobs.start(spec, self._apply, "measuring the knee segments")

    def _apply(self, outputs: dict[str, Any]) -> None:
        from mskai.web.segments_io import apply_job_segments, read_document
        from mskai.web.tables import cartilage_rows

        if outputs.get("segmentation"):   # a segmentation run, not a re-measurement
            apply_job_segments(self.session, outputs, MODULE, self.state[names.POLICY])
        rows = cartilage_rows(read_document(outputs))
        figures = outputs.get("figures") or []
        with self.state:
            self.state[names.CARTILAGE_ROWS] = rows
            self.state[names.THICKNESS_PNG] = (data_url(figures[0][1]) if figures else "")
            self.state[names.KNEE_CHECKS] = outputs.get("checks") or ""
        self.auto.arm()

    def export(self) -> None:
        from mskai.web.export import start_export
        from mskai.web.segments_io import write_segment

        folder = self.session.job_folder("export")
        masks = {sid: write_segment(self.session, sid, folder / f"{sid}.nrrd")
                 for sid in KNEE_SEGMENTS}
        start_export(self.session, self.jobs, self.state, MODULE, masks)


def data_url(path: str) -> str:
    """A PNG file as a ``data:`` URL for an ``<img>`` of the page."""
    return "data:image/png;base64," + base64.b64encode(Path(path).read_bytes()).decode()
