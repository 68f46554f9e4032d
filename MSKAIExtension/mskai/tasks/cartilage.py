"""CartilageQuant: knee bones and cartilage -> shape, thickness, subregions, joint space width.

With ``labels`` (canonical ids -> masks, e.g. from ``--labels``) the task only measures,
exactly as after a manual edit; without them a knee segmentation model from the model
manifest (task ``knee_seg``) segments the image first. Every cartilage plate is measured on
its bone (femoral on femur, tibial on tibia, patellar on patella) with the chosen thickness
method (default nearest-neighbour) and the other method's mean for comparison; subregions
follow :mod:`mskai.measure.subregions`, the joint space width
:mod:`mskai.measure.joint_space` with the medio-lateral split of
:mod:`mskai.measure.knee_axes`. An unsplit ``tibial_cartilage`` is split into medial and
lateral plates at the tibial spine when the knee side is known (tibial plates, fibula or
``knee_side``), and measured as one plate otherwise. The model's output is checked
anatomically first (:mod:`mskai.measure.knee_anatomy_checks`), and each measured plate's
mean thickness and volume against literature ranges after; what fails is left out and
:func:`check_failure` words it (docs/contract.md: the CLI writes what passed, then exits 2).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence

import numpy as np

from mskai.errors import CancelledError, InputError
from mskai.measure.knee_axes import KneeAxes
from mskai.segmentation.knee_bone_cleanup import remove_bone_leaks
from mskai.segments import STATUS_AI, STATUS_EDITED, Provenance, Result, Segment
from mskai.terminology import (
    FEMORAL_CARTILAGE,
    FEMUR,
    FIBULA,
    KNEE_REQUIRED_BONES,
    LATERAL_TIBIAL_CARTILAGE,
    MEDIAL_TIBIAL_CARTILAGE,
    PATELLA,
    PATELLAR_CARTILAGE,
    TIBIA,
    TIBIAL_CARTILAGE,
    TIBIAL_PLATE_PAIR,
)
from mskai.volume import Volume

MODULE = "CartilageQuant"
MODEL_TASK = "knee_seg"
SEGMENT_LABELS = {FEMUR: 1, FEMORAL_CARTILAGE: 2, TIBIA: 3, MEDIAL_TIBIAL_CARTILAGE: 4,
                  LATERAL_TIBIAL_CARTILAGE: 5, TIBIAL_CARTILAGE: 6, PATELLA: 7,
                  PATELLAR_CARTILAGE: 8, FIBULA: 9}
BONE_OF = {FEMORAL_CARTILAGE: FEMUR, MEDIAL_TIBIAL_CARTILAGE: TIBIA,
           LATERAL_TIBIAL_CARTILAGE: TIBIA, TIBIAL_CARTILAGE: TIBIA,
           PATELLAR_CARTILAGE: PATELLA}
MIN_SPLIT_SHARE = 0.15
MAX_KNEE_FRACTION = 0.9  # of the image labelled as knee structures (real knee MRI: 13 %)
NO_MODEL = ("no knee segmentation model is installed yet; measure an existing segmentation "
            "with --labels FILE --label-names femur=5,femoral_cartilage=1,...")

SURFACE_CLI, SURFACE_SLICER, SURFACE_WEB = "cli", "slicer", "web"
# How a failed structure is fixed, per surface the message is shown on (check_failure).
FIX_HINTS = {
    SURFACE_CLI: ("The structures that passed are in segmentation.seg.nrrd; correct the rest "
                  "with --refine-ras {structure}=R,A,S (a point inside it), with seeded "
                  "refinement in CartilageQuant, or in Segment Editor, then measure with "
                  "--labels"),
    SURFACE_SLICER: ("The structures that passed are in the output segmentation; correct "
                     "{structure} with seeded refinement in CartilageQuant (points inside it) "
                     "or fix it in Segment Editor, then press Re-measure now"),
    SURFACE_WEB: ("The structures that passed are shown; correct {structure} with the "
                  "page's segment editing tools (paint, erase), then press Re-measure edits"),
}

Figures = list[tuple[str, bytes]]
Progress = Callable[[float, str], None]


def run_cartilage(
    image: Volume,
    labels: dict[str, np.ndarray] | None = None,
    method: str = "nearest",
    progress: Progress | None = None,
    cancel: threading.Event | None = None,
    knee_side: str | None = None,
    refine: Sequence[tuple[str, Sequence[float]]] = (),
    label_names: bool = False,
) -> tuple[Result, Figures]:
    """Segment (or take) the knee, then measure it; returns the result and thickness maps.

    ``refine`` holds ``(structure id, RAS point)`` clicks of a seeded refinement
    (:mod:`mskai.tasks.cartilage_refine`) applied before the checks. Model output is checked
    anatomically (:mod:`mskai.measure.knee_anatomy_checks`): when a structure fails, the
    result holds only the structures that passed, measured where their bones passed too,
    and :func:`check_failure` says what failed (the CLI then exits 2 after writing it).
    Given ``labels`` are the user's truth: a failed check is a warning. ``label_names``
    says whether the user mapped label values (``--label-names``), for the messages.
    """
    from mskai.measure.knee_anatomy_checks import check_knee_anatomy, failed_structures
    from mskai.measure.knee_axes import knee_axes
    from mskai.measure.thickness import METHODS

    if method not in METHODS:
        raise InputError(f"unknown thickness method {method!r}; use one of {', '.join(METHODS)}")
    report = progress or (lambda fraction, message: None)
    masks, provenance, status, expected = _knee_masks(image, labels, report, cancel)
    warnings = [f"segment '{name}' is not a knee structure CartilageQuant measures; ignored"
                for name in masks if name not in SEGMENT_LABELS]
    masks = {name: m.astype(bool) for name, m in masks.items()
             if name in SEGMENT_LABELS and m.any()}
    if refine:
        from mskai.tasks.cartilage_refine import refine_clicks

        report(0.5, "seeded refinement")
        masks = {n: m for n, m in refine_clicks(image, masks, refine).items() if m.any()}
        provenance.method += " with seeded refinement"
        status = STATUS_EDITED
    if labels is not None:
        _check_knee(masks, label_names)
    _check_not_everything(masks, given=labels is not None, label_names=label_names)
    checks = check_knee_anatomy(masks, image, expected)
    failed = failed_structures(checks)
    if labels is not None:
        warnings += [f"{c.structure}: {c.problem}" for c in checks if not c.passed]
    else:
        masks = {n: m for n, m in masks.items() if n not in failed}
    if not all(bone in masks for bone in KNEE_REQUIRED_BONES):
        result = Result(MODULE, image, provenance, warnings=warnings)
        _add_segments(result, masks, status)
        result.measurements["checks"] = [c.to_json() for c in checks]
        for seg in result.segments:
            seg.measurements.update(_shape(seg.mask, image))
        return result, []
    axes = knee_axes(masks, image, knee_side)
    masks = split_tibial_cartilage(masks, image, axes, warnings)
    result = Result(MODULE, image, provenance, warnings=warnings + axes.warnings)
    _add_segments(result, masks, status)
    result.measurements["checks"] = [c.to_json() for c in checks]
    figures = measure_cartilage_result(result, axes, method, report, cancel, label_names)
    figures = _check_plausible(result, figures, given=labels is not None)
    report(1.0, "done")
    return result, figures


def _check_plausible(result: Result, figures: Figures, given: bool) -> Figures:
    """Check each measured plate's thickness and volume against literature ranges
    (:func:`mskai.measure.knee_anatomy_checks.check_cartilage_plausibility`).

    A model's plate that fails is dropped with its thickness map; given labels get a warning.
    """
    from mskai.measure.knee_anatomy_checks import (
        check_cartilage_plausibility,
        mask_touches_border,
    )

    checks = [check_cartilage_plausibility(seg.id, seg.measurements["volume_ml"],
                                           seg.measurements["mean_thickness_mm"],
                                           mask_touches_border(seg.mask))
              for seg in result.segments if "mean_thickness_mm" in seg.measurements]
    result.measurements["checks"] += [c.to_json() for c in checks]
    failed = {c.structure for c in checks if not c.passed}
    if given:
        result.warnings += [f"{c.structure}: {c.problem}" for c in checks if not c.passed]
        return figures
    dropped = {f"{seg.name} thickness map" for seg in result.segments if seg.id in failed}
    result.segments = [seg for seg in result.segments if seg.id not in failed]
    return [(title, png) for title, png in figures if title not in dropped]


def _shape(mask: np.ndarray, image: Volume) -> dict:
    from mskai.measure.shape import shape_measurements

    return shape_measurements(mask, image)


def _add_segments(result: Result, masks: dict[str, np.ndarray], status: str) -> None:
    for name, label in SEGMENT_LABELS.items():
        if name in masks:
            result.segments.append(Segment(name, masks[name], label, status=status))


def check_failure(result: Result, surface: str = SURFACE_CLI) -> str | None:
    """One line on the model's structures that failed the anatomical checks, or None.

    Only model output fails this way (given labels turn failed checks into warnings).
    ``surface`` (:data:`FIX_HINTS`) picks how the fix is worded: CLI options for the
    command line, the module's own tools in Slicer and in the web page.
    """
    if result.provenance.model_id is None:
        return None
    failed = [c for c in result.measurements.get("checks", []) if not c["passed"]]
    if not failed:
        return None
    first = failed[0]
    names = list(dict.fromkeys(c["structure"] for c in failed))
    more = (f"; {len(names) - 1} more structure{'s' if len(names) > 2 else ''} failed "
            f"({', '.join(names[1:])}; see 'checks' in measurements.json)"
            if len(names) > 1 else "")
    return (f"the knee model's {first['structure']} failed the anatomical checks: "
            f"{first['problem']}{more}. "
            + FIX_HINTS[surface].format(structure=first["structure"]))


def _check_cancel(cancel: threading.Event | None) -> None:
    if cancel is not None and cancel.is_set():
        raise CancelledError("cartilage measurement was cancelled")


def _knee_masks(image: Volume, labels: dict[str, np.ndarray] | None, report: Progress,
                cancel: threading.Event | None) -> tuple[dict, Provenance, str, list[str]]:
    """The user's masks, or those of the installed knee segmentation model, with the
    structures that must be present (the model's labels; none for given masks)."""
    if labels is not None:
        return dict(labels), Provenance(method="given segmentation"), STATUS_EDITED, []
    if image.modality == "CT":
        raise InputError("the knee segmentation model needs a knee MRI and this image is a CT; "
                         "give an MR image, or measure a segmentation with --labels")
    from mskai.models.registry import models_for_task

    entries = models_for_task(MODEL_TASK, "MR")
    if not entries:
        raise InputError(NO_MODEL)
    from mskai.inference.pipeline import run_segmentation
    from mskai.inference.threads import free_cpu_threads, torch_threads

    entry = entries[-1]
    with torch_threads(free_cpu_threads()):  # no oversubscribed cores on a shared machine
        by_value = run_segmentation(image, entry, progress=lambda f, m: report(0.5 * f, m),
                                    cancel=cancel)
    masks = {entry.labels[v]: m for v, m in by_value.items() if v in entry.labels}
    masks = remove_bone_leaks(masks, image)  # soft tissue glued onto a bone by the model
    provenance = Provenance(method="AI segmentation", model_id=entry.id,
                            model_version=entry.version, model_sha256=entry.sha256)
    expected = [name for value, name in entry.labels.items() if value != 0]
    return masks, provenance, STATUS_AI, expected


def _label_hint(label_names: bool) -> str:
    """How to fix a wrong structure in given labels, mentioning only options that were used."""
    if label_names:
        return "check the label values given to --label-names"
    return "check which segment of the --labels file holds which structure"


def _check_knee(masks: dict[str, np.ndarray], label_names: bool = False) -> None:
    """A knee needs its femur and tibia, some cartilage, and the bone under each plate."""
    option = "add" if not label_names else "add to --label-names"
    for bone in KNEE_REQUIRED_BONES:
        if bone not in masks:
            raise InputError(f"the labels have no {bone}, so this is not a knee segmentation "
                             f"CartilageQuant can measure; name it with --label-names {bone}=N")
    plates = [name for name in BONE_OF if name in masks]
    if not plates:
        raise InputError("the labels have no cartilage; name at least one plate with "
                         "--label-names, e.g. femoral_cartilage=1,medial_tibial_cartilage=2")
    for plate in plates:
        if BONE_OF[plate] not in masks:
            raise InputError(f"{plate} is labelled but its bone ({BONE_OF[plate]}) is not; "
                             f"{option} {BONE_OF[plate]}=N")


def _check_not_everything(masks: dict[str, np.ndarray], given: bool,
                          label_names: bool = False) -> None:
    """Refuse knee segments that fill the image: a labelled background or a failed model."""
    if not masks:
        if given:
            raise InputError("the labels hold no knee structure; " + _label_hint(label_names))
        raise InputError("the knee segmentation model found no knee structure in this image; "
                         "give a knee MRI, or measure a segmentation with --labels")
    union = np.zeros(next(iter(masks.values())).shape, dtype=bool)
    for mask in masks.values():
        union |= mask
    fraction = float(np.count_nonzero(union)) / max(union.size, 1)
    if fraction < MAX_KNEE_FRACTION:
        return
    if given:
        raise InputError(f"the knee segments cover {fraction:.0%} of the image, so the "
                         f"background is labelled too; {_label_hint(label_names)}")
    raise InputError(f"the knee segmentation model labelled {fraction:.0%} of the image as knee "
                     "structures, which is not a knee; give a knee MRI that shows the joint "
                     "with its surroundings, or measure a segmentation with --labels")


def split_tibial_cartilage(masks: dict[str, np.ndarray], image: Volume, axes: KneeAxes,
                           warnings: list[str]) -> dict[str, np.ndarray]:
    """Replace an unsplit ``tibial_cartilage`` by medial and lateral plates where possible.

    The split plane is ``axes.ml_center_ras`` (the cartilage gap at the tibial spine) normal
    to ``axes.medial``; it is kept whole when the knee side is unknown or one side holds less
    than 15 % of the voxels.
    """
    from mskai.measure.knee_axes import voxel_points_ras

    if TIBIAL_CARTILAGE not in masks or not axes.side_known or any(
            name in masks for name in TIBIAL_PLATE_PAIR):
        return masks
    whole = masks[TIBIAL_CARTILAGE]
    index = np.argwhere(whole)
    medial_side = (voxel_points_ras(whole, image) - axes.ml_center_ras) @ axes.medial > 0
    if min(medial_side.mean(), 1 - medial_side.mean()) < MIN_SPLIT_SHARE:
        warnings.append("tibial_cartilage could not be split at the tibial spine; it is "
                        "measured as one plate")
        return masks
    out = {name: m for name, m in masks.items() if name != TIBIAL_CARTILAGE}
    for name, keep in ((MEDIAL_TIBIAL_CARTILAGE, medial_side),
                       (LATERAL_TIBIAL_CARTILAGE, ~medial_side)):
        part = np.zeros_like(whole)
        part[tuple(index[keep].T)] = True
        out[name] = part
    warnings.append("tibial_cartilage was split at the tibial spine into medial and lateral "
                    f"plates (knee side from {axes.sources['medial']})")
    return out


def measure_cartilage_result(result: Result, axes: KneeAxes, method: str = "nearest",
                             progress: Progress | None = None,
                             cancel: threading.Event | None = None,
                             label_names: bool = False) -> Figures:
    """Fill the contract's measurements; the same code runs after a manual edit.

    A plate whose bone is not in the result (it failed the checks) keeps its shape only.
    """
    from mskai.measure.joint_space import MedialLateralSplit, joint_space_width
    from mskai.measure.shape import shape_measurements
    from mskai.measure.thickness_map_figure import thickness_map_png

    report = progress or (lambda fraction, message: None)
    image = result.image
    for seg in result.segments:
        _check_cancel(cancel)
        seg.measurements.update(shape_measurements(seg.mask, image))
    report(0.6, "cartilage thickness")
    figures: Figures = []
    present = {seg.id for seg in result.segments}
    for seg in result.segments:
        if seg.id not in BONE_OF or BONE_OF[seg.id] not in present:
            continue
        _check_cancel(cancel)
        bone = result.segment(BONE_OF[seg.id]).mask
        measurements, thickness_map = plate_measurements(seg.mask, bone, image, seg.id, axes,
                                                         method, label_names)
        seg.measurements.update(measurements)
        figures.append((f"{seg.name} thickness map",
                        thickness_map_png(thickness_map, seg.id, axes)))
    report(0.9, "joint space width")
    split = MedialLateralSplit(axes.ml_center_ras, axes.medial)
    result.measurements["joint_space_width_mm"] = joint_space_width(
        result.segment(FEMUR).mask, result.segment(TIBIA).mask, image, split)
    result.measurements["thickness_method"] = method
    result.measurements["knee_axes"] = axes.to_json()
    return figures


def _touches(cartilage: np.ndarray, bone: np.ndarray) -> bool:
    from scipy.ndimage import binary_dilation

    from mskai.measure.cartilage_surfaces import bounding_box

    box = bounding_box(cartilage, cartilage.shape, margin=1)
    return bool((binary_dilation(cartilage[box]) & bone[box]).any())


def plate_measurements(cartilage: np.ndarray, bone: np.ndarray, image: Volume, plate_id: str,
                       axes: KneeAxes, method: str = "nearest", label_names: bool = False):
    """The plate's contract keys, interface area and subregions, and its thickness map."""
    from mskai.measure.subregions import subregions
    from mskai.measure.thickness import (
        METHODS,
        cartilage_thickness_maps,
        denuded_area_fraction,
    )

    if not _touches(cartilage, bone):
        raise InputError(f"{plate_id} does not touch the {BONE_OF[plate_id]}; "
                         f"{_label_hint(label_names)}")
    maps = cartilage_thickness_maps(cartilage, bone, image, METHODS)
    summary = maps[method].summary()
    out = {key: summary[key] for key in ("mean_thickness_mm", "median_thickness_mm",
                                         "sd_thickness_mm", "max_thickness_mm",
                                         "thickness_method")}
    for m, thickness_map in maps.items():
        out[f"mean_thickness_{m}_mm"] = thickness_map.summary()["mean_thickness_mm"]
    out["area_mm2"] = maps[method].interface_area_mm2
    out["thickness_points"] = summary["n_points"]
    out["denuded_area_fraction"] = denuded_area_fraction(maps[method])
    out["subregions"] = subregions(maps[method], plate_id, axes)
    return out, maps[method]
