"""Handlers of the ``mskai`` sub-commands: read inputs, run a task, write the output folder.

Each handler returns the one-line summary that the command prints.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from mskai.errors import InputError
from mskai.segments import Result
from mskai.volume import Volume


def load_inputs(args: argparse.Namespace) -> tuple[Volume, dict[str, np.ndarray] | None]:
    """The image and, with ``--labels``, the user's existing segmentation on its grid."""
    from mskai.image import read_image
    from mskai.validate import validate_image

    image = read_image(args.image)
    validate_image(image)
    labels = None
    if getattr(args, "labels", None) is not None:
        from mskai.labels import parse_label_names, read_labels

        names = parse_label_names(args.label_names) if args.label_names else None
        labels = read_labels(args.labels, image, names)
    elif getattr(args, "label_names", None):
        raise InputError("--label-names was given without --labels; add --labels FILE")
    return image, labels


def finish(result: Result, out: Path, figures: list[tuple[str, bytes]] | None = None) -> str:
    """Write the output folder and return the summary line."""
    from mskai.results import write_results

    write_results(result, out, figures=figures or [])
    for warning in result.warnings:
        sys.stderr.write(f"warning: {warning}\n")
    parts = [f"{s.id} {s.measurements.get('volume_ml', float('nan')):.2f} mL"
             for s in result.segments]
    detail = ", ".join(parts) if parts else "no segments"
    return f"{result.module}: {detail}; results in {out}"


def run_tumor(args: argparse.Namespace) -> str:
    from mskai.interactive.prompts import Prompts
    from mskai.tasks.tumor import run_tumor as task

    image, labels = load_inputs(args)
    prompts = Prompts(positive_ras=list(args.seed_ras), negative_ras=list(args.background_ras),
                      roi_ras=args.roi_ras)
    if labels is None and not prompts.positive_ras:
        raise InputError("no tumour seed given; add --seed-ras R,A,S inside the tumour "
                         "or measure an existing mask with --labels")
    result = task(image, prompts, margin_mm=args.margin_mm, labels=labels, method=args.method)
    return finish(result, args.out)


def run_cartilage(args: argparse.Namespace) -> str:
    image, labels = load_inputs(args)
    from mskai.tasks.cartilage import run_cartilage as task

    result, figures = task(image, labels=labels, method=args.thickness_method,
                           knee_side=args.knee_side)
    if args.t2_echoes is not None:
        from mskai.tasks.cartilage_t2 import add_t2

        add_t2(result, args.t2_echoes, _echo_times(args.echo_times_ms))
    return finish(result, args.out, figures)


def _echo_times(text: str | None) -> list[float] | None:
    if text is None:
        return None
    try:
        return [float(v) for v in text.split(",")]
    except ValueError:
        raise InputError(f"--echo-times-ms {text!r} is not a list of numbers like 10,20,30") \
            from None


def run_fracture(args: argparse.Namespace) -> str:
    image, labels = load_inputs(args)
    from mskai.fracture.figures import candidate_figures
    from mskai.tasks.fracture import run_fracture as task

    result = task(image, labels=labels)
    return finish(result, args.out, candidate_figures(result))


def run_radiomics(args: argparse.Namespace) -> str:
    from mskai.image import read_image
    from mskai.tasks.radiomics import run_radiomics as task
    from mskai.validate import validate_image

    image = read_image(args.image)
    validate_image(image)
    result = task(image, args.mask, params=args.params)
    return finish(result, args.out)


def run_response(args: argparse.Namespace) -> str:
    from mskai.tasks.response import run_response as task

    return task(args.baseline_dir, args.followup_dir, args.out)


def run_demo(args: argparse.Namespace) -> str:
    from mskai.demo import run_demo as demo

    report = demo(args.out)
    return f"demo finished; open the report: {report}"
