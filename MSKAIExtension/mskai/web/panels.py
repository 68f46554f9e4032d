"""The MSK AI panel on the right of the page: image, module choice, job progress with
Cancel, and each module's controls and measurements. Element ids (``mskai-...``) are
what the browser test and people's scripts click."""

from __future__ import annotations

from typing import Any

from mskai.click_methods import AUTO, CLASSIC, LEARNED
from mskai.web import state as names

POLICIES = [{"title": "Replace (edited: keep a backup)", "value": "replace"},
            {"title": "Fill empty voxels only", "value": "fill_empty"},
            {"title": "Skip edited segments", "value": "skip_edited"}]
KNEE_SIDES = [{"title": "from the image", "value": ""}, {"title": "left", "value": "left"},
              {"title": "right", "value": "right"}]
CLICK_MODES = (("Tumour +", "mskai-click-positive", "green", names.CLICK_POSITIVE),
               ("Background -", "mskai-click-negative", "red", names.CLICK_NEGATIVE),
               ("RECIST line", "mskai-click-line", "blue", names.CLICK_LINE),
               ("Box", "mskai-click-box", "amber", names.CLICK_BOX))
METHODS = [{"title": "Classic (region competition)", "value": CLASSIC},
           {"title": "Learned refinement", "value": LEARNED},
           {"title": "Auto (by tumour size)", "value": AUTO}]


def show(expression: str) -> str:
    """A Vue text template showing a JavaScript ``expression`` of the state."""
    return "{{ " + expression + " }}"


def build_panel(app: Any) -> None:
    """Add the right-hand drawer to ``app.ui.layout``."""
    from trame.widgets import html
    from trame.widgets import vuetify3 as v3

    with app.ui.layout, v3.VNavigationDrawer(location="right", permanent=True, width=400,
                                             id="mskai-panel"), html.Div(classes="pa-3"):
        html.Div(show(f"{names.IMAGE_NAME} || 'no image open'"), id="mskai-image-name",
                 classes="text-subtitle-1")
        with html.Div(classes="d-flex"):
            v3.VTextField(v_model=(names.OPEN_PATH,), label="Open a file or DICOM folder",
                          density="compact", hide_details=True, id="mskai-open-path")
            v3.VBtn("Open", click=lambda: app.open_path(app.server.state[names.OPEN_PATH]),
                    classes="ml-2", id="mskai-open")
        with v3.VBtnToggle(v_model=(names.MODULE,), mandatory=True, density="compact",
                           classes="my-3"):
            for module in names.MODULES:
                v3.VBtn(module, value=module, id=f"mskai-module-{module}", size="small")
        _job_bar(html, v3, app)
        for module, build in ((names.TUMOR_SEG, _tumour_panel),
                              (names.CARTILAGE_QUANT, _knee_panel),
                              (names.FRACTURE_DETECT, _fracture_panel)):
            with html.Div(v_if=(f"{names.MODULE} === '{module}'",),
                          id=f"mskai-{module.lower()}"):
                build(html, v3, app)
        html.Div("Opened from DICOM: export adds a DICOM SEG and SR", id="mskai-dicom-note",
                 v_if=(names.DICOM_SOURCE,), classes="text-caption mt-2")
        html.Div(show(names.EXPORTED), id="mskai-exported", classes="text-caption mt-2")


def _job_bar(html: Any, v3: Any, app: Any) -> None:
    with html.Div(classes="d-flex align-center"):
        v3.VProgressLinear(model_value=(names.PROGRESS,), active=(names.BUSY,), height=6,
                           color="green", classes="flex-grow-1")
        v3.VBtn("Cancel", click=app.jobs.cancel, disabled=(f"!{names.BUSY}",), size="small",
                classes="ml-2", id="mskai-cancel")
    html.Div(show(names.MESSAGE), id="mskai-message", classes="text-caption")


def _click_mode_button(v3: Any, flow: Any, label: str, element: str, color: str,
                       mode: str) -> None:
    """A toggle for what the next click in a slice view places (flat while active)."""
    v3.VBtn(label, id=element, size="small", color=color,
            variant=(f"{names.CLICK_MODE} === '{mode}' ? 'flat' : 'tonal'",),
            click=lambda: flow.set_click_mode(mode))


def _tumour_panel(html: Any, v3: Any, app: Any) -> None:
    flow = app.tumour
    html.Div("Clicks in a slice view", classes="text-overline")
    with html.Div(classes="d-flex flex-wrap ga-1"):
        for label, element, color, mode in CLICK_MODES:
            _click_mode_button(v3, flow, label, element, color, mode)
        v3.VBtn("Stop", id="mskai-click-stop", size="small", variant="tonal",
                click=lambda: flow.set_click_mode(""))
        v3.VBtn("Clear clicks", id="mskai-click-clear", size="small", variant="tonal",
                click=flow.clear_clicks)
        v3.VBtn("Start over", id="mskai-start-over", size="small", variant="tonal",
                click=flow.start_over)
    v3.VSelect(v_model=(names.METHOD,), items=("methods", METHODS), label="Method",
               density="compact", hide_details=True, classes="mt-2")
    v3.VSelect(v_model=(names.POLICY,), items=("policies", POLICIES),
               label="When a segment was edited by hand", density="compact",
               hide_details=True, classes="mt-2", id="mskai-policy")
    v3.VTextField(v_model_number=(names.MARGIN_MM,), type="number", label="Safety margin (mm)",
                  density="compact", hide_details=True, classes="mt-2", id="mskai-margin",
                  update_modelValue=flow.request_measure)
    html.Div("Edit the tumour", classes="text-overline mt-2")
    with html.Div(classes="d-flex flex-wrap ga-1"):
        v3.VBtn("Paint", id="mskai-paint", size="small", variant="tonal",
                click=lambda: _edit(app, "paint"))
        v3.VBtn("Erase", id="mskai-erase", size="small", variant="tonal",
                click=lambda: _edit(app, "erase"))
        v3.VBtn("Stop editing", id="mskai-edit-stop", size="small", variant="tonal",
                click=lambda: _edit(app, ""))
        v3.VBtn("Undo", id="mskai-undo", size="small", variant="tonal",
                click=lambda: _undo(app, undo=True))
        v3.VBtn("Redo", id="mskai-redo", size="small", variant="tonal",
                click=lambda: _undo(app, undo=False))
    html.Div("Measurements", classes="text-overline mt-2")
    with html.Div(id="mskai-measurements", classes="text-body-2"):
        with html.Div():
            html.Span("Tumour volume: ")
            html.Span(show(f"{names.TUMOUR_VOLUME_ML} === null ? '-' : "
                           f"{names.TUMOUR_VOLUME_ML}.toFixed(2)"),
                      id="mskai-tumour-volume")
            html.Span(" mL")
        with html.Div():
            html.Span("RECIST long x short: ")
            html.Span(f"{{{{ {names.RECIST_MM} || '-' }}}} mm", id="mskai-recist")
        with html.Div():
            html.Span("Distance to bone: ")
            html.Span(show(f"{names.BONE_DISTANCE_MM} === null ? '-' : "
                           f"{names.BONE_DISTANCE_MM}.toFixed(1) + ' mm'"),
                      id="mskai-bone-distance")
        html.Div(show(names.LAST_ACTIONS), id="mskai-last-actions",
                 classes="text-caption")
        html.Div(show(names.MEASURE_COUNT), id="mskai-measure-count",
                 style="display: none")
        _rows_table(html, v3, names.TUMOUR_ROWS,
                    (("Segment", "name"), ("mL", "volume_ml"),
                     ("Max diam. mm", "max_diameter_mm")))
    v3.VBtn("Export seg.nrrd + report", id="mskai-export", size="small", classes="mt-2",
            click=flow.export, disabled=(names.BUSY,))


def _knee_panel(html: Any, v3: Any, app: Any) -> None:
    html.Div("Knee MRI: bones, cartilage, thickness", classes="text-overline")
    v3.VSelect(v_model=(names.KNEE_SIDE,), items=("knee_sides", KNEE_SIDES), label="Knee side",
               density="compact", hide_details=True, classes="mb-2", id="mskai-knee-side")
    with html.Div(classes="d-flex ga-1"):
        v3.VBtn("Segment and measure", id="mskai-knee-run", size="small", click=app.knee.run,
                disabled=(names.BUSY,))
        v3.VBtn("Re-measure edits", id="mskai-knee-remeasure", size="small",
                click=app.knee.remeasure, disabled=(names.BUSY,))
    _rows_table(html, v3, names.CARTILAGE_ROWS,
                (("Segment", "name"), ("mL", "volume_ml"),
                 ("Mean thick. mm", "mean_thickness_mm"), ("Max mm", "max_thickness_mm")))
    v3.VAlert(v_if=(names.KNEE_CHECKS,), text=(names.KNEE_CHECKS,), type="warning",
              density="compact", id="mskai-knee-checks", classes="my-2 text-caption")
    html.Img(v_if=(names.THICKNESS_PNG,), src=(names.THICKNESS_PNG,), id="mskai-thickness-map",
             style="width: 100%")
    v3.VBtn("Export seg.nrrd + report", id="mskai-knee-export", size="small", classes="mt-2",
            click=app.knee.export, disabled=(names.BUSY,))


def _fracture_panel(html: Any, v3: Any, app: Any) -> None:
    flow = app.fracture
    html.Div("CT: bone, fragments, fracture candidates", classes="text-overline")
    v3.VBtn("Detect fractures", id="mskai-fracture-run", size="small", click=flow.run,
            disabled=(names.BUSY,))
    html.Div("no candidates yet", v_if=(f"!{names.CANDIDATES}.length",),
             classes="text-caption mt-2")
    with v3.VList(density="compact", id="mskai-candidates"), \
            v3.VListItem(v_for=f"c in {names.CANDIDATES}", key="c.index"):
        html.Span("{{ c.label }} score {{ c.score }} {{ c.reported ? '' : '(below)' }} "
                  f"{{{{ {names.DECISIONS}[c.index] || '' }}}}")
        v3.VBtn("Go", size="x-small", classes="ml-1", click=(flow.jump_to, "[c.index]"))
        v3.VBtn("Accept", size="x-small", classes="ml-1", color="green",
                click=(flow.decide, f"[c.index, '{'accepted'}']"))
        v3.VBtn("Reject", size="x-small", classes="ml-1", color="red",
                click=(flow.decide, f"[c.index, '{'rejected'}']"))
    v3.VBtn("Export seg.nrrd + report", id="mskai-fracture-export", size="small",
            classes="mt-2", click=flow.export, disabled=(names.BUSY,))


def _rows_table(html: Any, v3: Any, rows_name: str, columns: tuple) -> None:
    with v3.VTable(density="compact", v_if=(f"{rows_name}.length",)):
        with html.Thead(), html.Tr():
            for title, _key in columns:
                html.Th(title)
        with html.Tbody(), html.Tr(v_for=f"r in {rows_name}", key="r.id"):
            for _title, key in columns:
                html.Td(f"{{{{ r.{key} }}}}")


def _edit(app: Any, effect: str) -> None:
    """trame-slicer's paint or erase on the tumour segment ("" ends editing)."""
    from trame_slicer.segmentation import SegmentationEffectErase, SegmentationEffectPaint

    from mskai.terminology import TUMOR

    editor = app.session.editor
    if not effect:
        editor.deactivate_effect()
        return
    app.tumour.set_click_mode("")
    if editor.get_segment(TUMOR) is None:
        editor.add_empty_segment(segment_id=TUMOR, segment_name="Tumour")
    editor.set_active_segment_id(TUMOR)
    editor.set_active_effect_type(SegmentationEffectPaint if effect == "paint"
                                  else SegmentationEffectErase)


def _undo(app: Any, undo: bool) -> None:
    stack = app.session.editor.undo_stack
    if stack is None:
        return
    if undo and stack.can_undo():
        stack.undo()
    elif not undo and stack.can_redo():
        stack.redo()
