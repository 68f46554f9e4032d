"""TumorSeg: tumour from clicks (or a given mask), measurements, safety margin, bone distance."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from mskai.click_methods import AUTO, CLASSIC, DEFAULT_METHOD, LEARNED
from mskai.errors import InputError
from mskai.segments import STATUS_AI, STATUS_EDITED, Provenance, Result, Segment
from mskai.terminology import BONE, SAFETY_MARGIN, TUMOR
from mskai.volume import Volume

MODULE = "TumorSeg"
BONE_SEARCH_MM = 30.0
TINY_TUMOUR_ML = 0.1
MIN_CLICK_SIZE = 5  # voxels along every axis for segmentation from clicks


def run_tumor(
    image: Volume,
    prompts=None,
    margin_mm: float = 10.0,
    labels: dict[str, np.ndarray] | None = None,
    current_mask: np.ndarray | None = None,
    progress: Callable[[float, str], None] | None = None,
    cancel=None,
    method: str = DEFAULT_METHOD,
) -> Result:
    """Segment (or take) the tumour, grow the safety margin, find bone and measure it all.

    ``method``: ``classic`` (non-learned) or ``learned`` (the ``tumor_refine_unet`` network,
    run from the first click on; its model id, version and sha256 go into the provenance).
    A box alone seeds at its centre. A RECIST line in ``prompts`` becomes seeds, background
    clicks and a box (:mod:`mskai.interactive.recist_line`); its length is reported beside
    the result's RECIST long axis in ``measurements["recist_line"]``, with a warning when
    they differ.
    """
    report = progress or (lambda fraction, message: None)
    line = getattr(prompts, "recist_line_ras", None) if labels is None else None
    if labels is None:
        require_click_size(image)
    tumor, description, ran_model = _tumor_mask(image, prompts, labels, current_mask, progress,
                                                cancel, method)
    report(0.6, "safety margin and bone")
    result = Result(MODULE, image, _provenance(description, learned=ran_model))
    _warn_if_tiny(tumor, image, result.warnings)
    bone = _bone_mask(image, tumor, margin_mm, labels, result.warnings)
    margin = _grow(tumor, image, margin_mm)
    status = STATUS_EDITED if labels is not None else STATUS_AI
    result.segments.append(Segment(TUMOR, tumor, 1, status=status))
    result.segments.append(Segment(SAFETY_MARGIN, margin, 2))
    if bone is not None and bone.any():
        result.segments.append(Segment(BONE, bone, 3))
    report(0.8, "measurements")
    measure_tumor_result(result, margin_mm, bone)
    if line is not None:
        from mskai.interactive.recist_line import compare_with_result

        long_axis = result.segment(TUMOR).measurements["recist_long_axis_mm"]
        record, warning = compare_with_result(line, long_axis)
        result.measurements["recist_line"] = record
        if warning:
            result.warnings.append(warning)
    report(1.0, "done")
    return result


def require_click_size(image: Volume) -> None:
    """Segmentation from clicks needs a tumour with tissue around it: at least
    ``MIN_CLICK_SIZE`` voxels along every axis."""
    size = list(image.size)
    if min(size) < MIN_CLICK_SIZE:
        raise InputError(f"the image has size {size} voxels; segmenting from clicks needs at "
                         f"least {MIN_CLICK_SIZE} voxels along every axis, with tissue around "
                         "the tumour; give the whole image (not a tiny crop), or measure an "
                         "existing mask with --labels")


def measure_tumor_result(result: Result, margin_mm: float, bone: np.ndarray | None) -> None:
    """Fill the contract's measurements; the same code runs after a manual edit."""
    from mskai.measure.margins import margin_summary
    from mskai.measure.recist import recist_axes
    from mskai.measure.shape import shape_measurements

    image = result.image
    for seg in result.segments:
        intensity = image.array if seg.id == TUMOR else None
        seg.measurements.update(shape_measurements(seg.mask, image, intensity=intensity))
    tumor = result.segment(TUMOR)
    axes = recist_axes(tumor.mask, image)
    tumor.measurements["recist_long_axis_mm"] = axes["long_axis_mm"]
    tumor.measurements["recist_short_axis_mm"] = axes["short_axis_mm"]
    tumor.measurements["recist_endpoints_ras"] = {
        "long": [list(map(float, p)) for p in axes["long_endpoints_ras"]],
        "short": [list(map(float, p)) for p in axes["short_endpoints_ras"]],
    }
    result.measurements["margin"] = margin_summary(tumor.mask, bone, image, margin_mm)


METHOD_DESCRIPTIONS = {
    CLASSIC: "interactive geodesic region competition from clicks",
    LEARNED: "learned click refinement (tumor_refine_unet network, from the first click)",
}


def method_description(method: str, used: str) -> str:
    """Provenance text of the method that produced the mask; ``"auto"`` names its choice,
    e.g. ``"auto (classic): interactive geodesic ..."``."""
    if method != AUTO:
        return METHOD_DESCRIPTIONS[used]
    text = f"{AUTO} ({used}): {METHOD_DESCRIPTIONS[used]}"
    if used == LEARNED:
        text += "; a large tumour (any further prompts refine it with the classic method)"
    return text


def _tumor_mask(image, prompts, labels, current_mask, progress, cancel,
                method: str) -> tuple[np.ndarray, str, bool]:
    """(mask, the method that produced it, whether the learned model ran)."""
    ran_model = False
    if labels is not None:
        if TUMOR not in labels:
            raise InputError("the given labels have no 'tumor' segment; name its label value "
                             "with --label-names tumor=N")
        mask = labels[TUMOR]
        description = "given segmentation"
    else:
        mask, used = segment_prompts_used(image, prompts, current_mask, progress, cancel,
                                          method)
        ran_model = used == LEARNED
        description = method_description(method, used)
        if prompts.recist_line_ras is not None:
            description += ("; prompts from a RECIST line (seeds on its middle, background "
                            "beyond its ends, a box from its length)")
        elif not prompts.positive_ras and prompts.roi_ras is not None:
            description += "; from a box alone (seeded at its centre)"
    if not mask.any():
        raise InputError("the tumour mask is empty; place the seed inside the tumour or "
                         "check the label value given for 'tumor'")
    return mask.astype(bool), description, ran_model


def segment_prompts(image: Volume, prompts, current_mask: np.ndarray | None = None,
                    progress=None, cancel=None, method: str = DEFAULT_METHOD) -> np.ndarray:
    """The click method's mask from clicks, a box and/or a RECIST line (the same path as
    ``mskai tumor``); ``learned`` runs the network even for the first click."""
    return segment_prompts_used(image, prompts, current_mask, progress, cancel, method)[0]


def segment_prompts_used(image: Volume, prompts, current_mask: np.ndarray | None = None,
                         progress=None, cancel=None, method: str = DEFAULT_METHOD
                         ) -> tuple[np.ndarray, str]:
    """:func:`segment_prompts`' mask and the method that produced it (``"classic"`` or
    ``"learned"``; ``"auto"`` resolves to one of them by the tumour's size)."""
    from mskai.interactive import METHODS, segment_learned
    from mskai.interactive.auto_method import segment_auto
    from mskai.interactive.prompts import Prompts
    from mskai.interactive.recist_line import expand_recist_line
    from mskai.interactive.segment import segment_from_prompts

    if method not in METHODS:
        raise InputError(f"unknown interactive method {method!r}; choose one of {METHODS}")
    drawn_box = prompts is not None and prompts.roi_ras is not None   # not a line's own box
    prompts = expand_recist_line(prompts if prompts is not None else Prompts(), image)
    prompts = prompts.with_box_centre_seed()
    used = method
    if method == LEARNED:
        mask = segment_learned(image, prompts, current_mask=current_mask,
                               modality=image.modality, first_guess="network",
                               progress=progress, cancel=cancel)
    elif method == AUTO:
        mask, used = segment_auto(image, prompts, current_mask=current_mask,
                                  modality=image.modality, progress=progress, cancel=cancel,
                                  drawn_box=drawn_box)
    else:
        mask = segment_from_prompts(image, prompts, current_mask=current_mask,
                                    modality=image.modality, progress=progress, cancel=cancel)
    box = prompts.roi_box(image)
    if box is not None:   # the network takes no box: nothing of its mask outside it
        lo, hi = box
        inside = np.zeros(mask.shape, dtype=bool)
        inside[lo[0]:hi[0], lo[1]:hi[1], lo[2]:hi[2]] = True
        mask = mask & (inside | (current_mask.astype(bool) if current_mask is not None
                                 else False))
    return mask, used


def _provenance(description: str, learned: bool) -> Provenance:
    if not learned:
        return Provenance(method=description)
    from mskai.models.registry import find_model

    entry = find_model("tumor_refine_unet")
    return Provenance(method=description, model_id=entry.id, model_version=entry.version,
                      model_sha256=entry.sha256)


def _warn_if_tiny(tumor: np.ndarray, image: Volume, warnings: list[str]) -> None:
    """A tumour under 0.1 mL (a few voxels) is usually a click on noise or a vessel."""
    volume_ml = float(tumor.sum()) * image.voxel_volume_mm3 / 1000.0
    if volume_ml < TINY_TUMOUR_ML:
        warnings.append(f"the tumour is only {volume_ml * 1000:.0f} mm³; check that the seed lies "
                        "inside the tumour, or add clicks")


def _grow(tumor: np.ndarray, image: Volume, margin_mm: float) -> np.ndarray:
    from mskai.measure.margins import grow_margin

    return grow_margin(tumor, image, margin_mm)


def _bone_mask(image: Volume, tumor: np.ndarray, margin_mm: float,
               labels: dict[str, np.ndarray] | None, warnings: list[str]) -> np.ndarray | None:
    """Bone near the tumour: the user's segment, else HU-based on CT; on MR none (warned)."""
    if labels is not None and BONE in labels:
        return labels[BONE].astype(bool)
    if image.modality != "CT":
        warnings.append("bone is not segmented automatically on MR; give a bone segment with "
                        "--labels and --label-names bone=N to get the tumour-to-bone distance")
        return None
    from mskai.segmentation.bone_ct import segment_bone_ct
    from mskai.tasks.crop import padded_bbox

    box = padded_bbox(tumor, image, margin_mm + BONE_SEARCH_MM)
    bone = np.zeros(tumor.shape, dtype=bool)
    try:
        bone[box] = segment_bone_ct(image.crop(box))
    except InputError:
        warnings.append("the image has no air below -500 HU, so its values may not be "
                        "Hounsfield units; bone was not segmented (give a bone segment "
                        "with --labels and --label-names bone=N)")
        return None
    bone &= ~tumor
    return bone
