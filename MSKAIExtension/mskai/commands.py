"""Handlers of the ``mskai`` sub-commands: read inputs, run a task, write the output folder.

Each handler returns the one-line summary that the command prints.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path

import numpy as np

from mskai.errors import InputError
from mskai.results.out_folder import (
    MIN_FREE_BYTES,
    OUTPUT_FILES,
    OutFolder,
    check_out,
    output_files,
)
from mskai.segments import Result
from mskai.volume import Volume

MODULE_COMMANDS = {"TumorSeg": "tumor", "CartilageQuant": "cartilage",
                   "FractureDetect": "fracture", "Radiomics": "radiomics"}
# ``mskai demo --overwrite`` runs the other commands into its own folder: they inherit it.
_INHERITED_OVERWRITE: ContextVar[bool] = ContextVar("mskai_inherited_overwrite", default=False)


def out_folder(args: argparse.Namespace, command: str,
               *inputs: tuple[str, Path | None]) -> OutFolder:
    """Check ``--out`` before any work (docs/contract.md, "Output folder").

    With ``args.dicom_out`` the input must be a DICOM series (else exit 2, before any work)
    and the folder is checked for, and :func:`finish` writes, the DICOM SEG (and SR) too.
    """
    dicom_out = bool(getattr(args, "dicom_out", False))
    if dicom_out:
        from mskai.results.dicom_seg import require_dicom_input

        require_dicom_input(getattr(args, "image", None))
    overwrite = bool(getattr(args, "overwrite", False)) or _INHERITED_OVERWRITE.get()
    needed = MIN_FREE_BYTES + sum(_size(path) for role, path in inputs if role == "image")
    return check_out(args.out, command, inputs, overwrite=overwrite, needed_bytes=needed,
                     files=output_files(command, dicom_out))


def _size(path: Path | None) -> int:
    """Bytes of an image file or of the files directly in a DICOM folder (0 if unknown)."""
    try:
        if path is None:
            return 0
        if path.is_dir():
            return sum(p.stat().st_size for p in path.iterdir() if p.is_file())
        return path.stat().st_size
    except OSError:
        return 0


def read_input_image(args: argparse.Namespace) -> Volume:
    """``IMAGE`` (and ``--series UID`` for a DICOM folder holding several series), checked."""
    from mskai.image import read_image
    from mskai.validate import validate_image

    image = read_image(args.image, series_uid=getattr(args, "series", None),
                       echo=getattr(args, "echo", None))
    validate_image(image)
    if getattr(args, "dicom_out", False):
        from mskai.results.dicom_seg import check_dicom_source

        check_dicom_source(image)  # a series without UIDs is refused before the work
    return image


def add_input_warnings(result: Result, image: Volume) -> None:
    """The reader's warnings about the input (geometry, DICOM) become the result's, first."""
    found = [str(w) for w in image.metadata.get("warnings", []) or []]
    result.warnings[:0] = [w for w in dict.fromkeys(found) if w not in result.warnings]


def load_inputs(args: argparse.Namespace) -> tuple[Volume, dict[str, np.ndarray] | None]:
    """The image and, with ``--labels``, the user's existing segmentation on its grid."""
    image = read_input_image(args)
    labels = None
    if getattr(args, "labels", None) is not None:
        from mskai.labels import parse_label_names, read_labels

        names = parse_label_names(args.label_names) if args.label_names else None
        labels = read_labels(args.labels, image, names)
    elif getattr(args, "label_names", None):
        raise InputError("--label-names was given without --labels; add --labels FILE")
    return image, labels


def finish(result: Result, out: OutFolder | Path,
           figures: list[tuple[str, bytes]] | None = None, image: Volume | None = None) -> str:
    """Write the output folder (marked as mskai's) and return the summary line.

    ``image`` is the volume as read: its reader warnings are added to the result's.
    A folder checked with ``--dicom-out`` (:func:`out_folder`) also gets ``segmentation.dcm``
    and, when the SR writer is installed, ``measurements_sr.dcm``.
    """
    from mskai.results import write_results

    if image is not None:
        add_input_warnings(result, image)
    folder = out
    if not isinstance(folder, OutFolder):
        command = MODULE_COMMANDS.get(result.module, result.module.lower())
        folder = OutFolder(Path(out), command, OUTPUT_FILES.get(command, ()))
    from mskai.results.dicom_seg import DICOM_SEG_FILE, DICOM_SR_FILE

    kept = [name for name in (DICOM_SEG_FILE, DICOM_SR_FILE)
            if name not in folder.files and name in folder.previous
            and (folder.path / name).is_file()]
    if kept:  # mskai never deletes: say that the earlier DICOM files are now out of date
        result.warnings.append(f"{' and '.join(kept)} in {folder.path} are from an earlier run "
                               "and do not show this result; add --dicom-out to rewrite them")
    folder.claim()
    write_results(result, folder.path, figures=figures or [])
    if DICOM_SEG_FILE in folder.files:
        from mskai.results.dicom_seg import write_dicom_outputs

        write_dicom_outputs(result, folder.path / DICOM_SEG_FILE, folder.path / DICOM_SR_FILE)
    folder.seal()
    for warning in result.warnings:
        sys.stderr.write(f"warning: {warning}\n")
    parts = [f"{s.id} {_volume_ml(s, result.image):.2f} mL" for s in result.segments]
    detail = ", ".join(parts) if parts else "no segments"
    return f"{result.module}: {detail}; results in {folder.path}"


def _volume_ml(segment, image: Volume) -> float:
    """The segment's volume as measured, else from its voxels (as measurements.json has it)."""
    if "volume_ml" in segment.measurements:
        return float(segment.measurements["volume_ml"])
    return float(segment.mask.sum()) * image.voxel_volume_mm3 / 1000.0


def run_tumor(args: argparse.Namespace) -> str:
    from mskai.interactive.prompts import Prompts
    from mskai.tasks.tumor import run_tumor as task

    out = out_folder(args, "tumor", ("image", args.image), ("labels", args.labels))
    image, labels = load_inputs(args)
    prompts = Prompts(positive_ras=list(args.seed_ras), negative_ras=list(args.background_ras),
                      roi_ras=args.roi_ras, recist_line_ras=args.recist_line_ras)
    if labels is None and not (prompts.positive_ras or prompts.recist_line_ras
                               or prompts.roi_ras):
        raise InputError("no tumour seed given; add --seed-ras R,A,S inside the tumour, "
                         "draw --recist-line-ras R1,A1,S1,R2,A2,S2 across it, give a box "
                         "around it with --roi-ras R1,A1,S1,R2,A2,S2, "
                         "or measure an existing mask with --labels")
    result = task(image, prompts, margin_mm=args.margin_mm, labels=labels, method=args.method)
    return finish(result, out, image=image)


def run_cartilage(args: argparse.Namespace) -> str:
    out = out_folder(args, "cartilage", ("image", args.image), ("labels", args.labels),
                     ("T2 echo series", args.t2_echoes))
    image, labels = load_inputs(args)
    from mskai.tasks.cartilage import check_failure
    from mskai.tasks.cartilage import run_cartilage as task

    result, figures = task(image, labels=labels, method=args.thickness_method,
                           knee_side=args.knee_side, refine=args.refine_ras,
                           label_names=bool(args.label_names))
    if args.t2_echoes is not None and "knee_axes" in result.measurements:
        from mskai.tasks.cartilage_t2 import add_t2

        add_t2(result, args.t2_echoes, _echo_times(args.echo_times_ms))
    summary = finish(result, out, figures, image=image)
    failure = check_failure(result)
    if failure:  # docs/contract.md: the passing structures are written, then exit 2
        raise InputError(failure)
    return summary


def _echo_times(text: str | None) -> list[float] | None:
    if text is None:
        return None
    try:
        return [float(v) for v in text.split(",")]
    except ValueError:
        raise InputError(f"--echo-times-ms {text!r} is not a list of numbers like 10,20,30") \
            from None


def run_fracture(args: argparse.Namespace) -> str:
    out = out_folder(args, "fracture", ("image", args.image), ("labels", args.labels))
    image, labels = load_inputs(args)
    from mskai.results.fracture_figures import candidate_figures
    from mskai.tasks.fracture import run_fracture as task

    seeds = None
    if getattr(args, "fragment_ras", None):
        from mskai.tasks.fracture_fragments import FragmentSeeds

        seeds = FragmentSeeds(list(args.fragment_ras))
    result = task(image, labels=labels, fragment_seeds=seeds,
                  split_touching=bool(getattr(args, "split_touching", False)))
    return finish(result, out, candidate_figures(result), image=image)


def run_radiomics(args: argparse.Namespace) -> str:
    from mskai.tasks.radiomics import run_radiomics as task

    out = out_folder(args, "radiomics", ("image", args.image), ("mask", args.mask),
                     ("parameter file", args.params))
    image = read_input_image(args)
    result = task(image, args.mask, params=args.params)
    return finish(result, out, image=image)


def run_response(args: argparse.Namespace) -> str:
    from mskai.tasks.response import run_response as task

    out = out_folder(args, "response", ("baseline folder", args.baseline_dir),
                     ("follow-up folder", args.followup_dir))
    summary = task(args.baseline_dir, args.followup_dir, args.out)
    out.seal()  # after the comparison: a refused pair of folders leaves no output folder
    return summary


def run_batch(args: argparse.Namespace) -> int:
    """``mskai batch``: prints its own summary and returns the exit code (0, 1 or 2)."""
    from mskai.cohort.batch import run_batch_command

    return run_batch_command(args)


def run_demo(args: argparse.Namespace) -> str:
    from mskai.demo import run_demo as demo

    out = out_folder(args, "demo")
    out.claim()
    with _inherit_overwrite(bool(getattr(args, "overwrite", False))):
        report = demo(args.out)
    inputs = out.path / "inputs"
    made = sorted(f"inputs/{p.name}" for p in inputs.iterdir()) if inputs.is_dir() else []
    out.seal([*out.files, *made])
    return f"demo finished; open the report: {report}"


@contextmanager
def _inherit_overwrite(overwrite: bool) -> Iterator[None]:
    token = _INHERITED_OVERWRITE.set(overwrite or _INHERITED_OVERWRITE.get())
    try:
        yield
    finally:
        _INHERITED_OVERWRITE.reset(token)
