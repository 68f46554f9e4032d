"""FractureDetect in the web page: candidates listed by score, jump-to, accept and reject,
fragments as segments; decisions are saved beside the export."""

from __future__ import annotations

import json
from typing import Any

from mskai.terminology import BONE, BONE_FRAGMENT_PREFIX
from mskai.web import state as names
from mskai.web.job_slot import JobSlot
from mskai.web.remeasure import AutoRemeasure, segments_fingerprint
from mskai.web.session import Session

MODULE = names.FRACTURE_DETECT
FRACTURE_TASK = "mskai.tasks.fracture_jobs:detect_fractures"
REMEASURE_TASK = "mskai.web.jobs:measure_fracture"
ACCEPTED, REJECTED = "accepted", "rejected"
DECISIONS_FILE = "fracture_candidate_decisions.json"   # beside the result folder
MAX_FRAGMENTS = 32


def candidate_rows(document: dict[str, Any]) -> list[dict[str, Any]]:
    """Every candidate (reported fractures and those below the threshold), best first."""
    reported = {tuple(f["position_ras"]) for f in document.get("fractures", [])}
    pool = document.get("fracture_candidates") or document.get("fractures", [])
    rows = []
    for entry in sorted(pool, key=lambda c: -float(c.get("score", 0.0))):
        position = [round(float(v), 1) for v in entry["position_ras"]]
        rows.append({"index": len(rows), "label": f"C{len(rows) + 1}",
                     "score": round(float(entry.get("score", 0.0)), 2),
                     "bone": entry.get("bone", ""), "position_ras": position,
                     "reported": tuple(entry["position_ras"]) in reported,
                     "fragments": entry.get("fragments", [])})
    return rows


class FractureWorkflow:
    """Runs ``mskai fracture``'s job on the open image; candidates are reviewed by hand."""

    def __init__(self, session: Session, jobs: JobSlot, state: Any) -> None:
        self.session = session
        self.jobs = jobs
        self.state = state
        self.auto = AutoRemeasure(lambda: segments_fingerprint(session, segment_ids()),
                                  self.remeasure)
        session.listeners.append(self.on_image)
        session.editor.segmentation_modified.connect(self.auto.request)

    def on_image(self) -> None:
        self.auto.disarm()
        with self.state:
            self.state[names.CANDIDATES] = []
            self.state[names.DECISIONS] = {}

    def run(self) -> None:
        self.session.require_image()
        folder = self.session.job_folder("detect")
        spec = {"task": FRACTURE_TASK, "args": {"image": self.session.image_path,
                                                 "out": str(folder / "out"),
                                                 "modality": self.session.volume.modality}}
        self.jobs.start(spec, self._apply, "fracture detection")

    def _apply(self, outputs: dict[str, Any]) -> None:
        from mskai.web.segments_io import apply_job_segments, read_document

        if outputs.get("segmentation"):   # a detection run, not a re-measurement
            apply_job_segments(self.session, outputs, MODULE, self.state[names.POLICY])
        with self.state:
            self.state[names.CANDIDATES] = candidate_rows(read_document(outputs))
            self.state[names.DECISIONS] = {}
        self.auto.arm()

    def remeasure(self) -> bool:
        """Candidates and measurements of the bone and fragments as they are now (after
        edits): ``mskai fracture --labels``; runs by itself after each edit once detection
        ran. False while busy."""
        self.session.require_image()
        folder = self.session.job_folder("fracture_edit")
        spec = {"task": REMEASURE_TASK, "args": {
            "image": self.session.image_path, "out": str(folder / "out"),
            "masks": self._write_masks(folder), "modality": self.session.volume.modality}}
        return self.jobs.start(spec, self._apply, "measuring the edited bone")

    def _write_masks(self, folder: Any) -> dict[str, str | None]:
        from mskai.web.segments_io import write_segment

        return {sid: write_segment(self.session, sid, folder / f"{sid}.nrrd")
                for sid in segment_ids()}

    def jump_to(self, index: int) -> None:
        """Centre every slice view on the candidate."""
        from slicer import vtkMRMLSliceNode

        row = self.state[names.CANDIDATES][int(index)]
        r, a, s = row["position_ras"]
        vtkMRMLSliceNode.JumpAllSlices(self.session.scene, r, a, s,
                                       vtkMRMLSliceNode.CenteredJumpSlice)

    def decide(self, index: int, decision: str) -> None:
        decisions = dict(self.state[names.DECISIONS])
        decisions[str(int(index))] = decision
        self.state[names.DECISIONS] = decisions

    def export(self) -> None:
        from mskai.web.export import start_export

        masks = self._write_masks(self.session.job_folder("export"))
        out = self.session.out_dir
        out.mkdir(parents=True, exist_ok=True)
        decisions = [{**row, "decision": self.state[names.DECISIONS].get(str(row["index"]))}
                     for row in self.state[names.CANDIDATES]]
        (out / DECISIONS_FILE).write_text(json.dumps(decisions, indent=1) + "\n",
                                          encoding="utf-8")
        start_export(self.session, self.jobs, self.state, MODULE, masks)


def segment_ids() -> list[str]:
    """The segments FractureDetect measures: bone and its numbered fragments."""
    return [BONE, *(f"{BONE_FRAGMENT_PREFIX}{n}" for n in range(1, MAX_FRAGMENTS + 1))]
