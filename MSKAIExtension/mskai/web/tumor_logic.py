"""TumorSeg in the web page: clicks -> tumour (merged with the node's merge policy) ->
margin, bone and measurements through the CLI's ``--labels`` path, re-run after every edit.

A person's edits are never lost: a click run refines the tumour as the node holds it now
(:func:`mskai.interactive.refine.merge_with_current` keeps painted voxels away from the
clicks) and :func:`mskai.slicer_io.apply_result` applies the chosen policy (``replace``
keeps a "(manual backup)" of an edited segment; ``fill_empty`` and ``skip_edited`` never
remove a voxel of it). The margin and bone are written with ``skip_edited``.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import numpy as np

from mskai.errors import InputError
from mskai.segments import Provenance, Result, Segment
from mskai.terminology import BONE, SAFETY_MARGIN, TUMOR
from mskai.web import state as names
from mskai.web.job_slot import JobSlot
from mskai.web.jobs import MEASURE_TUMOUR_TASK, TUMOUR_MASK_TASK
from mskai.web.segments_io import segment_on_image, write_segment
from mskai.web.session import Session

MODULE = names.TUMOR_SEG
MEASURE_DELAY_S = 0.2     # edits within this time are measured once
POSITIVE_COLOR = (0.2, 0.9, 0.2)
LINE_COLOR = (0.3, 0.6, 1.0)
BOX_COLOR = (1.0, 0.8, 0.2)
REPLACED_MODES = (names.CLICK_LINE, names.CLICK_BOX)   # placing one replaces the last
NEGATIVE_COLOR = (0.95, 0.2, 0.2)
DERIVED_POLICY = "skip_edited"   # margin and bone: an edited one is left alone
RECIST_KEYS = ("long", "short")
MAX_MARGIN_MM = 100.0   # as the TumorSeg module allows


def recist_name(key: str) -> str:
    return f"RECIST {key} axis"


class TumourWorkflow:
    """Clicks, merge, measuring and export of TumorSeg on the page's scene."""

    def __init__(self, session: Session, jobs: JobSlot, state: Any) -> None:
        self.session = session
        self.jobs = jobs
        self.state = state
        self.clicks: dict[str, Any] = {}
        self._measured_key: tuple | None = None
        self._measuring_key: tuple = ()
        self._rerun_clicks = False
        self._measure_wanted = False
        self._measure_timer: asyncio.TimerHandle | None = None
        self.last_document: dict[str, Any] = {}
        session.listeners.append(self.on_image)
        session.editor.segmentation_modified.connect(self.request_measure)
        session.editor.active_effect_name_changed.connect(self._on_effect_changed)

    # --- image and clicks ----------------------------------------------------------------

    def on_image(self) -> None:
        """A new image: fresh click lists, measurements cleared, edits measured on change."""
        self.clicks = {names.CLICK_POSITIVE: self._click_node("tumour clicks", POSITIVE_COLOR),
                       names.CLICK_NEGATIVE: self._click_node("background clicks",
                                                              NEGATIVE_COLOR),
                       names.CLICK_LINE: self._click_node("RECIST line prompt", LINE_COLOR,
                                                          "vtkMRMLMarkupsLineNode"),
                       names.CLICK_BOX: self._click_node("box prompt", BOX_COLOR,
                                                         "vtkMRMLMarkupsROINode")}
        self._measured_key = None
        self._show_document({})

    def _click_node(self, name: str, color: tuple[float, float, float],
                    class_name: str = "vtkMRMLMarkupsFiducialNode") -> Any:
        node = self.session.scene.AddNewNodeByClass(class_name, name)
        node.CreateDefaultDisplayNodes()
        display = node.GetDisplayNode()
        display.SetSelectedColor(*color)
        display.SetColor(*color)
        display.SetTextScale(0.0)
        node.AddObserver(node.PointPositionDefinedEvent, self._on_click)
        return node

    def set_click_mode(self, mode: str) -> None:
        """Place tumour (``positive``) or background (``negative``) clicks, a RECIST line
        (``line``: its two ends) or a box (``box``: two opposite corners), each replacing the
        previous line or box, or stop ("")."""
        markups = self.session.slicer_app.markups_logic
        if mode in self.clicks:
            self.session.editor.deactivate_effect()
            if mode in REPLACED_MODES:
                self.clicks[mode].RemoveAllControlPoints()
            markups.place_node(self.clicks[mode], persistent=mode not in REPLACED_MODES)
        else:
            markups.disable_place_mode()
        names.publish(self.state, {names.CLICK_MODE: mode if mode in self.clicks else ""})

    def _on_effect_changed(self, effect_name: str) -> None:
        """Painting and clicking share the mouse: an editor effect ends click placing."""
        if effect_name and self.state[names.CLICK_MODE]:
            self.session.slicer_app.markups_logic.disable_place_mode()
            names.publish(self.state, {names.CLICK_MODE: ""})

    def clear_clicks(self) -> None:
        for node in self.clicks.values():
            node.RemoveAllControlPoints()
        names.publish(self.state, {names.CLICK_COUNT: 0})

    def start_over(self) -> None:
        """Remove the clicks, the tumour, margin and bone segments and the RECIST lines."""
        self.jobs.cancel()
        self._rerun_clicks = self._measure_wanted = False
        self.clear_clicks()
        node = self.session.segmentation_node
        if node is not None:
            for segment_id in (TUMOR, SAFETY_MARGIN, BONE):
                if node.GetSegmentation().GetSegment(segment_id) is not None:
                    node.GetSegmentation().RemoveSegment(segment_id)
        for key in RECIST_KEYS:
            line = self.session.scene.GetFirstNodeByName(recist_name(key))
            if line is not None:
                self.session.scene.RemoveNode(line)
        self._measured_key = None
        self._show_document({})
        self.request_measure()

    def _on_click(self, caller: Any = None, *_: Any) -> None:
        line = self.clicks.get(names.CLICK_LINE)
        if caller is not None and line is not None and caller.GetID() == line.GetID() \
                and line.GetNumberOfControlPoints() < 2:
            return   # the line's first end: wait for the second
        if caller is not None and caller is self.clicks.get(names.CLICK_BOX) \
                and self.box() is None:
            return   # the box is not drawn yet
        count = sum(n.GetNumberOfControlPoints() for n in self.clicks.values())
        names.publish(self.state, {names.CLICK_COUNT: count})
        self.run_clicks()

    def points(self, mode: str) -> list[list[float]]:
        from mskai.slicer_io import markups_to_points

        node = self.clicks.get(mode)
        return [] if node is None else [list(map(float, ras)) for _, ras in
                                        markups_to_points(node)]

    def box(self) -> list[float] | None:
        """The box prompt as ``R1,A1,S1,R2,A2,S2`` (``--roi-ras``), None when not drawn."""
        from mskai.web.roi_box import roi_ras

        box = roi_ras(self.clicks.get(names.CLICK_BOX))
        return None if box is None else [float(v) for v in box]

    # --- segmenting from clicks ----------------------------------------------------------

    def run_clicks(self) -> None:
        """Segment from every click so far, refining the tumour as it is now."""
        if self.jobs.busy:
            self._rerun_clicks = True
            return
        positive = self.points(names.CLICK_POSITIVE)
        line = self.points(names.CLICK_LINE)
        line = [v for point in line for v in point] if len(line) == 2 else None
        box = self.box()
        if not (positive or line or box) or not self.session.loaded:
            return
        folder = self.session.job_folder("clicks")
        current = write_segment(self.session, TUMOR, folder / "current_tumour.nrrd")
        spec = {"task": TUMOUR_MASK_TASK, "args": {
            "image": self.session.image_path, "out": str(folder / "out"),
            "positive_ras": positive, "negative_ras": self.points(names.CLICK_NEGATIVE),
            "current_mask": current, "modality": self.session.volume.modality,
            "method": self.state[names.METHOD], "recist_line_ras": line, "roi_ras": box}}
        self.jobs.start(spec, self._apply_mask, "tumour from clicks", self._next)

    def _apply_mask(self, outputs: dict[str, Any]) -> None:
        from mskai.slicer_io import apply_result
        from mskai.web.jobs import read_mask

        volume = self.session.require_image()
        mask = read_mask(outputs["mask"])
        if mask is None:
            raise InputError("the tumour came back empty: click well inside the tumour")
        data = outputs.get("provenance") or {}
        model = data.get("model") or {}
        provenance = Provenance(method=data.get("method", "clicks"), model_id=model.get("id"),
                                model_version=model.get("version"),
                                model_sha256=model.get("sha256"))
        result = Result(MODULE, volume, provenance, [Segment(TUMOR, mask, 1)])
        applied = apply_result(self.session.scene, result, self.session.segmentation_node,
                               self.state[names.POLICY], reference_node=self.session.volume_node)
        actions = "; ".join(f"{a.segment_id} {a.action}" + (f" ({a.detail})" if a.detail else "")
                            for a in applied.actions)
        names.publish(self.state, {names.LAST_ACTIONS: actions,
                                   names.APPLY_COUNT: self.state[names.APPLY_COUNT] + 1})
        self._after_write()

    def _after_write(self) -> None:
        editor = self.session.editor
        if editor.get_segment(TUMOR) is not None:
            editor.set_active_segment_id(TUMOR)
        editor.set_surface_representation_enabled(True)
        self.request_measure()

    # --- measuring -----------------------------------------------------------------------

    def request_measure(self, *_: Any) -> None:
        """Measure what the node holds, once the edits of the next moment are in."""
        if not self.session.loaded:
            return
        names.publish(self.state, {names.MEASURE_PENDING: True})
        if self._measure_timer is not None:
            self._measure_timer.cancel()
        loop = asyncio.get_event_loop()
        self._measure_timer = loop.call_later(MEASURE_DELAY_S, self._measure_if_changed)

    def margin_mm(self) -> float | None:
        """The margin field as a number of mm, or None (and a message) when it is not
        0 to ``MAX_MARGIN_MM``."""
        try:
            value = float(self.state[names.MARGIN_MM])
        except (TypeError, ValueError):
            value = -1.0
        if not 0.0 <= value <= MAX_MARGIN_MM:
            names.publish(self.state, {names.MESSAGE: f"safety margin: give 0 to "
                                                      f"{MAX_MARGIN_MM:g} mm"})
            return None
        return value

    def _measure_key(self, margin_mm: float) -> tuple:
        from mskai.slicer_io.fingerprint import mask_fingerprint

        masks = [segment_on_image(self.session, segment_id) for segment_id in (TUMOR, BONE)]
        return (*(None if m is None else mask_fingerprint(m) for m in masks), margin_mm)

    def _measure_if_changed(self) -> None:
        self._measure_timer = None
        if self.jobs.busy:
            self._measure_wanted = True
            return
        margin_mm = self.margin_mm()
        if margin_mm is None or segment_on_image(self.session, TUMOR) is None:
            if margin_mm is not None:
                self._show_document({})
            names.publish(self.state, {names.MEASURE_PENDING: False})
            return
        key = self._measure_key(margin_mm)
        if key == self._measured_key:
            names.publish(self.state, {names.MEASURE_PENDING: False})
            return
        folder = self.session.job_folder("measure")
        spec = {"task": MEASURE_TUMOUR_TASK, "args": {
            "image": self.session.image_path, "out": str(folder / "out"),
            "tumour": write_segment(self.session, TUMOR, folder / "tumour.nrrd"),
            "bone": write_segment(self.session, BONE, folder / "bone.nrrd"),
            "margin_mm": margin_mm, "modality": self.session.volume.modality}}
        self._measuring_key = key
        self.jobs.start(spec, self._apply_measurements, "measuring", self._next)

    def _apply_measurements(self, outputs: dict[str, Any]) -> None:
        """Margin and bone into the node (never over an edited one), numbers into the page."""
        from mskai.results.segnrrd import read_seg_nrrd
        from mskai.slicer_io import apply_result

        volume = self.session.require_image()
        _grid, records = read_seg_nrrd(outputs["segmentation"])
        document = json.loads(Path(outputs["measurements"]).read_text(encoding="utf-8"))
        derived = [Segment(r.id, r.mask, r.label) for r in records
                   if r.id in (SAFETY_MARGIN, BONE) and r.mask.any()]
        if derived:
            result = Result(MODULE, volume, Provenance(method=document.get(
                "provenance", {}).get("method", "measured")), derived)
            apply_result(self.session.scene, result, self.session.segmentation_node,
                         DERIVED_POLICY, reference_node=self.session.volume_node)
        self._measured_key = self._measure_key(self._measuring_key[-1])
        self._show_document(document, outputs.get("warnings") or [])
        self._show_recist(document)

    def _next(self) -> None:
        """After a job: clicks that came in meanwhile, else a wanted measurement."""
        if self._rerun_clicks:
            self._rerun_clicks = False
            self.run_clicks()
        elif self._measure_wanted:
            self._measure_wanted = False
            self.request_measure()
        elif self._measure_timer is None:
            names.publish(self.state, {names.MEASURE_PENDING: False})

    # --- the page ------------------------------------------------------------------------

    def _show_document(self, document: dict[str, Any], warnings: list[str] = ()) -> None:
        from mskai.web.tables import tumour_rows

        self.last_document = document
        rows = tumour_rows(document)
        tumour = next((r for r in rows if r["id"] == TUMOR), None)
        margin = document.get("margin") or {}
        with self.state:
            self.state[names.TUMOUR_ROWS] = rows
            self.state[names.TUMOUR_VOLUME_ML] = tumour["volume_ml"] if tumour else None
            self.state[names.BONE_DISTANCE_MM] = margin.get("min_distance_to_bone_mm")
            self.state[names.RECIST_MM] = (f"{tumour['recist_long_axis_mm']} x "
                                           f"{tumour['recist_short_axis_mm']}" if tumour else "")
            if document:
                self.state[names.MEASURE_COUNT] = self.state[names.MEASURE_COUNT] + 1
            if warnings:
                self.state[names.MESSAGE] = "warning: " + "; ".join(warnings)

    def _show_recist(self, document: dict[str, Any]) -> None:
        """The RECIST long and short axes as line markups in the views."""
        from mskai.slicer_io import line_markup

        entry = next((s for s in document.get("segments", []) if s.get("id") == TUMOR), {})
        ends = entry.get("recist_endpoints_ras") or {}
        for key in RECIST_KEYS:
            points = ends.get(key)
            if not points or len(points) != 2 or not np.all(np.isfinite(points)):
                continue
            name = recist_name(key)
            existing = self.session.scene.GetFirstNodeByName(name)
            line_markup(self.session.scene, points[0], points[1], name, existing)

    # --- export ---------------------------------------------------------------------------

    def export(self) -> None:
        """seg.nrrd, measurements and report.html of what the node holds (``--labels``)."""
        from mskai.web.export import start_export

        margin_mm = self.margin_mm()
        if margin_mm is None:
            return
        folder = self.session.job_folder("export")
        masks = {sid: write_segment(self.session, sid, folder / f"{sid}.nrrd")
                 for sid in (TUMOR, BONE)}
        start_export(self.session, self.jobs, self.state, MODULE, masks, margin_mm=margin_mm)
