"""Runner jobs of the web viewer: a tumour mask from clicks, and measuring given masks.

Both run on :class:`mskai.runner.inprocess.InProcessRunner` (progress and Cancel through the
runner's events). The click job is :func:`mskai.tasks.tumor.segment_prompts`, the code the
``mskai tumor`` command runs; the measuring job is :func:`mskai.tasks.tumor.run_tumor` with
``labels`` (the command's ``--labels`` path), which also grows the safety margin and finds
bone. Files cross the job boundary, as in the Slicer modules; the image read is cached so a
second click reuses the prepared work grid of the first.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from mskai.click_methods import DEFAULT_METHOD, LEARNED
from mskai.runner.base import job
from mskai.volume import Volume

TUMOUR_MASK_TASK = "mskai.web.jobs:tumour_mask"
MEASURE_TUMOUR_TASK = "mskai.web.jobs:measure_tumour"
MASK_FILE = "tumour_mask.nrrd"
_CACHE_SIZE = 2
_IMAGES: OrderedDict[tuple[str, float], Volume] = OrderedDict()
_LOCK = threading.Lock()


def cached_image(path: str, modality: str | None = None) -> Volume:
    """``read_image(path)``, reused while the file is unchanged (same array object, so the
    click method's prepared grids are reused too)."""
    from mskai.image import read_image

    key = (str(path), Path(path).stat().st_mtime)
    with _LOCK:
        if key not in _IMAGES:
            _IMAGES[key] = read_image(path)
            while len(_IMAGES) > _CACHE_SIZE:
                _IMAGES.popitem(last=False)
        volume = _IMAGES[key]
    if modality:
        volume.modality = modality
    return volume


def read_mask(path: str | None) -> np.ndarray | None:
    """A mask file as booleans, None without a path or when it is empty."""
    if not path:
        return None
    from mskai.image import read_image

    mask = read_image(path).array > 0
    return mask if mask.any() else None


@job
def tumour_mask(image: str, out: str, positive_ras: Sequence[Sequence[float]],
                negative_ras: Sequence[Sequence[float]] = (),
                current_mask: str | None = None, modality: str | None = None,
                method: str = DEFAULT_METHOD, recist_line_ras: Sequence[float] | None = None,
                roi_ras: Sequence[float] | None = None, *,
                progress: Callable[[float, str], None],
                cancel: threading.Event) -> dict[str, Any]:
    """The click method's tumour mask (refining ``current_mask``, hand edits kept) from
    clicks, a RECIST line (its end points, as ``mskai tumor --recist-line-ras``) and/or a box
    (``R1,A1,S1,R2,A2,S2``, as ``--roi-ras``; a box alone is seeded at its centre)."""
    from mskai.image import write_image
    from mskai.interactive import Prompts
    from mskai.tasks.tumor import (
        _provenance,
        method_description,
        require_click_size,
        segment_prompts_used,
    )

    volume = cached_image(image, modality)
    require_click_size(volume)
    prompts = Prompts([tuple(p) for p in positive_ras], [tuple(p) for p in negative_ras],
                      tuple(roi_ras) if roi_ras is not None else None,
                      tuple(recist_line_ras) if recist_line_ras is not None else None)
    mask, used = segment_prompts_used(volume, prompts, read_mask(current_mask), progress,
                                      cancel.is_set, method)
    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    written = write_image(volume.with_array(mask.astype(np.uint8)), folder / MASK_FILE)
    provenance = _provenance(method_description(method, used), learned=used == LEARNED)
    return {"mask": str(written), "provenance": provenance.to_json()}


@job
def measure_tumour(image: str, out: str, tumour: str, bone: str | None = None,
                   margin_mm: float = 10.0, modality: str | None = None, *,
                   progress: Callable[[float, str], None],
                   cancel: threading.Event) -> dict[str, Any]:
    """``mskai tumor --labels``: margin, bone and every measurement of the given masks."""
    from mskai.errors import CancelledError, InputError
    from mskai.results.job_files import write_job_files
    from mskai.tasks.tumor import run_tumor
    from mskai.terminology import BONE, TUMOR

    volume = cached_image(image, modality)
    labels = {TUMOR: read_mask(tumour)}
    if labels[TUMOR] is None:
        raise InputError("the tumour segment is empty: click inside the tumour or paint it")
    bone_mask = read_mask(bone)
    if bone_mask is not None:
        labels[BONE] = bone_mask
    if cancel.is_set():
        raise CancelledError("measuring was cancelled")
    result = run_tumor(volume, None, margin_mm=float(margin_mm), labels=labels,
                       progress=progress)
    return write_job_files(result, out)


@job
def export_result(module: str, image: str, out: str, masks: dict[str, str | None],
                  margin_mm: float = 10.0, modality: str | None = None,
                  dicom_files: Sequence[str] | None = None, *,
                  progress: Callable[[float, str], None],
                  cancel: threading.Event) -> dict[str, Any]:
    """``mskai COMMAND IMAGE --labels ... --out OUT`` (the command of ``module``, e.g.
    TumorSeg) on the page's segments: the task measures the given masks and the CLI's
    writers fill ``out`` (seg.nrrd, measurements, report.html; with ``dicom_files``, the
    DICOM series ``image`` was read from, also ``--dicom-out``'s SEG and SR on it); returns
    ``{"summary": the command's line, "folder": out}``."""
    from mskai.commands import MODULE_COMMANDS, finish
    from mskai.errors import InputError
    from mskai.results.out_folder import check_out, output_files
    from mskai.web.state import CARTILAGE_QUANT, FRACTURE_DETECT, TUMOR_SEG

    if module not in MODULE_COMMANDS:
        raise InputError(f"cannot export {module!r} results")
    command = MODULE_COMMANDS[module]
    folder = check_out(out, command, files=output_files(command, bool(dicom_files)))
    volume = cached_image(image, modality)
    if dicom_files:
        from mskai.results.dicom_seg import check_dicom_source

        volume = volume.with_array(volume.array)   # the cached volume stays as it was read
        volume.metadata["dicom_files"] = [str(p) for p in dicom_files]
        check_dicom_source(volume)
    labels = {k: m for k, m in ((k, read_mask(p)) for k, p in masks.items()) if m is not None}
    if not labels:
        raise InputError("there are no segments to export yet")
    progress(0.1, "measuring")
    figures: list[tuple[str, bytes]] = []
    if module == TUMOR_SEG:
        from mskai.tasks.tumor import run_tumor

        result = run_tumor(volume, None, margin_mm=float(margin_mm), labels=labels)
    elif module == CARTILAGE_QUANT:
        from mskai.tasks.cartilage import run_cartilage

        result, figures = run_cartilage(volume, labels, cancel=cancel)
    elif module == FRACTURE_DETECT:
        from mskai.results.fracture_figures import candidate_figures
        from mskai.tasks.fracture import run_fracture

        result = run_fracture(volume, labels=labels, cancel=cancel.is_set)
        figures = candidate_figures(result)
    else:
        raise InputError(f"cannot export {module!r} results")
    progress(0.7, "writing the report")
    summary = finish(result, folder, figures)
    return {"summary": summary, "folder": str(out)}


@job
def measure_knee(image: str, out: str, method: str = "nearest", modality: str | None = None,
                 knee_side: str | None = None, masks: dict[str, str | None] | None = None,
                 *, progress: Callable[[float, str], None],
                 cancel: threading.Event) -> dict[str, Any]:
    """``mskai cartilage``: segment the knee (or, with ``masks``, take the page's segments:
    the ``--labels`` path) and measure it; the thickness-map pictures of the report are
    written beside the job files as ``thickness_<n>.png``; ``checks`` is the line on the
    model's structures that failed the anatomical checks (the CLI's exit 2), or ""."""
    from mskai.errors import InputError
    from mskai.results.job_files import write_job_files
    from mskai.tasks.cartilage import SURFACE_WEB, check_failure, run_cartilage

    volume = cached_image(image, modality)
    labels = None
    if masks is not None:
        labels = {k: m for k, m in ((k, read_mask(p)) for k, p in masks.items())
                  if m is not None}
        if not labels:
            raise InputError("there are no knee segments to measure; segment the knee first")
    result, figures = run_cartilage(volume, labels, method, progress=progress, cancel=cancel,
                                    knee_side=knee_side or None)
    outputs = write_job_files(result, out, with_segmentation=labels is None)
    pictures = []
    for n, (title, png) in enumerate(figures):
        path = Path(out) / f"thickness_{n}.png"
        path.write_bytes(png)
        pictures.append([title, str(path)])
    outputs["figures"] = pictures
    outputs["checks"] = check_failure(result, SURFACE_WEB) or ""   # what failed, how to fix
    return outputs


@job
def measure_fracture(image: str, out: str, masks: dict[str, str | None],
                     modality: str | None = None, *,
                     progress: Callable[[float, str], None],
                     cancel: threading.Event) -> dict[str, Any]:
    """``mskai fracture --labels``: candidates and measurements of the page's bone and
    fragment segments (after edits); no segmentation is handed back."""
    from mskai.errors import InputError
    from mskai.results.job_files import write_job_files
    from mskai.tasks.fracture import run_fracture

    volume = cached_image(image, modality)
    labels = {k: m for k, m in ((k, read_mask(p)) for k, p in masks.items()) if m is not None}
    if not labels:
        raise InputError("there are no bone segments to measure; detect fractures first")
    result = run_fracture(volume, labels=labels, progress=progress, cancel=cancel.is_set)
    return write_job_files(result, out, with_segmentation=False)
