"""Names of the web page's state (shared by the server, the panels and the browser test)."""

from __future__ import annotations

from mskai.click_methods import DEFAULT_METHOD

# one long job at a time (job_slot.JobSlot)
BUSY = "mskai_busy"
PROGRESS = "mskai_progress"
MESSAGE = "mskai_message"
# which module panel is open: one of MODULES
MODULE = "mskai_module"
TUMOR_SEG, CARTILAGE_QUANT, FRACTURE_DETECT = "TumorSeg", "CartilageQuant", "FractureDetect"
MODULES = (TUMOR_SEG, CARTILAGE_QUANT, FRACTURE_DETECT)
# slice views: {layout name: {"orientation", "xy_to_ras": 16 numbers, "size": [w, h]}}
VIEWS = "mskai_views"
IMAGE_NAME = "mskai_image_name"
OPEN_PATH = "mskai_open_path"
EXPORTED = "mskai_exported"
DICOM_SOURCE = "mskai_dicom_source"      # the image came from DICOM: export adds SEG + SR
# TumorSeg
CLICK_MODE = "mskai_click_mode"          # "" or one of the CLICK_... modes below
MARGIN_MM = "mskai_margin_mm"
POLICY = "mskai_policy"
METHOD = "mskai_method"
TUMOUR_ROWS = "mskai_tumour_rows"        # one dict per measured segment
TUMOUR_VOLUME_ML = "mskai_tumour_volume_ml"
BONE_DISTANCE_MM = "mskai_bone_distance_mm"
RECIST_MM = "mskai_recist_mm"            # "long x short"
MEASURE_COUNT = "mskai_measure_count"    # increases with every finished measurement
MEASURE_PENDING = "mskai_measure_pending"  # an edit or run is waiting to be measured
CLICK_COUNT = "mskai_click_count"        # clicks placed
APPLY_COUNT = "mskai_apply_count"        # click results written into the segmentation
LAST_ACTIONS = "mskai_last_actions"      # what the merge policy did, one line
# CartilageQuant
CARTILAGE_ROWS = "mskai_cartilage_rows"
KNEE_SIDE = "mskai_knee_side"            # "", "left" or "right" (needed for unsplit plates)
THICKNESS_PNG = "mskai_thickness_png"    # data: URL of the thickness-map picture
KNEE_CHECKS = "mskai_knee_checks"        # the failed anatomical checks in one line, or ""
# FractureDetect
CANDIDATES = "mskai_candidates"          # [{"index", "label", "score", "position_ras", ...}]
DECISIONS = "mskai_decisions"            # {index: "accepted" | "rejected"}

CLICK_POSITIVE, CLICK_NEGATIVE = "positive", "negative"
CLICK_LINE = "line"                      # a RECIST line across the tumour (two clicks)
CLICK_BOX = "box"                        # a box (markups ROI) around the tumour


def initial_state() -> dict:
    """Every name above with its value before an image is open."""
    return {BUSY: False, PROGRESS: 0.0, MESSAGE: "", MODULE: TUMOR_SEG, VIEWS: {},
            IMAGE_NAME: "", OPEN_PATH: "", EXPORTED: "", DICOM_SOURCE: False, CLICK_MODE: "",
            MARGIN_MM: 10.0,
            POLICY: "replace", METHOD: DEFAULT_METHOD, TUMOUR_ROWS: [], TUMOUR_VOLUME_ML: None,
            BONE_DISTANCE_MM: None, RECIST_MM: "", MEASURE_COUNT: 0, MEASURE_PENDING: False,
            CLICK_COUNT: 0, APPLY_COUNT: 0,
            LAST_ACTIONS: "", CARTILAGE_ROWS: [], KNEE_SIDE: "", THICKNESS_PNG: "", KNEE_CHECKS: "",
            CANDIDATES: [],
            DECISIONS: {}}


def publish(state, values: dict) -> None:
    """Set ``values`` and send them to the page now (also from timers and VTK observers,
    where trame does not flush by itself)."""
    with state:
        state.update(values)
