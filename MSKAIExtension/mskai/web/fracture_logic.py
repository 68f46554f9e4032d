"""FractureDetect in the web page: candidates listed by score, jump-to, accept and reject,
fragments as segments; decisions are saved beside the export."""

from __future__ import annotations

import json
from typing import Any

from mskai.terminology import BONE, BONE_FRAGMENT_PREFIX
from mskai.web import state as names
from mskai.web.job_slot import JobSlot
from mskai.web.session import Session

MODULE = names.FRACTURE_DETECT
FRACTURE_TASK = "mskai.tasks.fracture_jobs:detect_fractures"
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
        session.listeners.append(self.on_image)

    def on_image(self) -> None:
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

        apply_job_segments(self.session, outputs, MODULE, self.state[names.POLICY])
        with self.state:
            self.state[names.CANDIDATES] = candidate_rows(read_document(outputs))
            self.state[names.DECISIONS] = {}

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
        from mskai.web.segments_io import write_segment

        folder = self.session.job_folder("export")
        ids = [BONE, *(f"{BONE_FRAGMENT_PREFIX}{n}" for n in range(1, MAX_FRAGMENTS + 1))]
        masks = {sid: write_segment(self.session, sid, folder / f"{sid}.nrrd") for sid in ids}
        out = self.session.out_dir
        out.mkdir(parents=True, exist_ok=True)
        decisions = [{**row, "decision": self.state[names.DECISIONS].get(str(row["index"]))}
                     for row in self.state[names.CANDIDATES]]
        (out / DECISIONS_FILE).write_text(json.dumps(decisions, indent=1) + "\n",
                                          encoding="utf-8")
        start_export(self.session, self.jobs, self.state, MODULE, masks)
