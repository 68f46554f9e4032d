"""The ``mskai`` command (docs/contract.md): one line of summary, exit 0 / 2 bad input / 1 internal.

Each sub-command reads its inputs, runs a task from :mod:`mskai.tasks`, and writes the
output folder with :func:`mskai.results.write_results`. Heavy imports happen inside the
handlers so ``mskai --help`` stays instant.
"""

from __future__ import annotations

import argparse
import logging
import sys
import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from mskai import __version__
from mskai.cli_args import labelled_ras_point, positive_mm, ras_box, ras_line, ras_point
from mskai.click_methods import DEFAULT_METHOD, METHODS
from mskai.errors import CancelledError, InputError, ModelError

EXIT_OK, EXIT_INTERNAL, EXIT_BAD_INPUT = 0, 1, 2


class _Parser(argparse.ArgumentParser):
    """argparse with the contract's behaviour: usage errors are one line and exit 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        sys.stderr.write(f"{self.prog}: error: {message} (see '{self.prog} --help')\n")
        raise SystemExit(EXIT_BAD_INPUT)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="mskai", description="MSK AI: musculoskeletal image analysis.")
    parser.add_argument("--version", action="version", version=f"mskai {__version__}")
    parser.add_argument("--debug", action="store_true",
                        help="print the full traceback of internal errors")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    _add_tumor(sub)
    cartilage = _add_measure_command(sub, "cartilage",
                                     "knee MRI: bone and cartilage, thickness, JSW")
    cartilage.add_argument("--thickness-method", choices=("nearest", "normal"),
                           default="nearest", help="cartilage thickness method")
    cartilage.add_argument("--knee-side", choices=("left", "right"), default=None,
                           help="needed only when the tibial plates are not split")
    cartilage.add_argument("--t2-echoes", type=Path, default=None,
                           help="multi-echo series (DICOM folder or 4D file) for T2 per plate")
    cartilage.add_argument("--echo-times-ms", default=None,
                           help="echo times for a 4D file, e.g. 10,20,30,40")
    cartilage.add_argument("--refine-ras", type=labelled_ras_point, action="append",
                           default=[], metavar="LABEL=R,A,S",
                           help="seeded refinement: a point inside a structure the model got "
                                "wrong, e.g. femoral_cartilage=12,-30,40 (repeatable)")
    cartilage.add_argument("--echo", type=positive_int, default=None,
                           help="which echo of a multi-echo series IMAGE to measure on "
                                "(1 = first, the default for a multi-echo series)")
    fracture = _add_measure_command(sub, "fracture", "CT: bone, fracture candidates, fragments")
    split = fracture.add_mutually_exclusive_group()
    split.add_argument("--fragment-ras", type=ras_point, action="append", default=[],
                       help="click inside a bone fragment, R,A,S mm, once per fragment "
                            "(repeatable): splits the bone through the fracture into "
                            "bone_fragment_1, 2, ... in click order, also where they touch")
    split.add_argument("--split-touching", action="store_true",
                       help="also split fragments that touch: the bone is split at each "
                            "reported fracture line that has no fragments yet (one seed "
                            "either side of it); those fractures then name their fragments, "
                            "with displacement and angulation measured on them. The list of "
                            "fractures is the same as without it")
    _add_radiomics(sub)
    _add_response(sub)
    _add_batch(sub)
    demo = sub.add_parser("demo", help="run all modules on the bundled sample data")
    demo.add_argument("--out", type=Path, default=Path("demo-output"))
    _add_overwrite(demo)
    from mskai.models.commands import add_models_parser

    add_models_parser(sub)
    from mskai.web.serve import add_serve_parser

    add_serve_parser(sub)
    return parser


def _add_labels_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--labels", type=Path,
                   help="existing segmentation (label map or .seg.nrrd): measure it, skip AI")
    p.add_argument("--label-names", default=None,
                   help="canonical ids to label values, e.g. femur=1,femoral_cartilage=2")
    p.add_argument("--out", type=Path, required=True, help=OUT_HELP)
    _add_overwrite(p)


OUT_HELP = ("output folder: new, empty, or an earlier result of the same command "
            "(created if missing)")


def _add_overwrite(p: argparse.ArgumentParser) -> None:
    p.add_argument("--overwrite", action="store_true",
                   help="write into a folder that holds other files, replacing mskai's own "
                        "result files there (other files are kept, nothing is deleted)")


def _add_dicom_out(p: argparse.ArgumentParser) -> None:
    p.add_argument("--dicom-out", dest="dicom_out", action="store_true",
                   help="also write segmentation.dcm (DICOM SEG) and, when available, "
                        "measurements_sr.dcm (DICOM SR); IMAGE must be a DICOM series")


def _add_series(p: argparse.ArgumentParser) -> None:
    p.add_argument("--series", metavar="UID", default=None,
                   help="SeriesInstanceUID to read when the DICOM folder holds several series")


def _add_tumor(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("tumor", help="interactive tumour segmentation, RECIST, margins")
    p.add_argument("image", type=Path)
    _add_series(p)
    p.add_argument("--seed-ras", type=ras_point, action="append", default=[],
                   help="click inside the tumour, R,A,S mm (repeatable)")
    p.add_argument("--background-ras", type=ras_point, action="append", default=[],
                   help="click outside the tumour, R,A,S mm (repeatable)")
    p.add_argument("--roi-ras", type=ras_box, default=None,
                   help="box around the tumour: two opposite corners R1,A1,S1,R2,A2,S2 (mm)")
    p.add_argument("--recist-line-ras", type=ras_line, default=None,
                   help="RECIST line across the tumour's longest axis on one slice: its end "
                        "points R1,A1,S1,R2,A2,S2 (mm); becomes seeds, background clicks and "
                        "a box, and its length is checked against the result")
    p.add_argument("--margin-mm", type=positive_mm, default=10.0, help="safety margin (mm)")
    p.add_argument("--method", choices=METHODS, default=DEFAULT_METHOD,
                   help="click segmentation: auto (default: the network's first mask when "
                        "the classic one-click tumour is 100 mL or more, or with --roi-ras "
                        "when the box's inscribed ellipsoid is 250 mL or more; else classic; "
                        "classic refinement after), classic, or learned (the refinement "
                        "network, from the first click)")
    _add_labels_options(p)
    _add_dicom_out(p)


def _add_measure_command(sub: argparse._SubParsersAction, name: str,
                         text: str) -> argparse.ArgumentParser:
    p = sub.add_parser(name, help=text)
    p.add_argument("image", type=Path)
    _add_series(p)
    _add_labels_options(p)
    _add_dicom_out(p)
    return p


def _add_radiomics(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("radiomics", help="pyradiomics features of a masked region")
    p.add_argument("image", type=Path)
    p.add_argument("mask", type=Path)
    _add_series(p)
    p.add_argument("--params", type=Path, default=None, help="pyradiomics parameter file")
    p.add_argument("--out", type=Path, required=True, help=OUT_HELP)
    _add_overwrite(p)
    _add_dicom_out(p)


def _add_response(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("response", help="RECIST 1.1 and volumetric response of two time points")
    p.add_argument("baseline_dir", type=Path)
    p.add_argument("followup_dir", type=Path)
    p.add_argument("--out", type=Path, required=True, help=OUT_HELP)
    _add_overwrite(p)


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of at least 1")
    return value


def _add_batch(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("batch", help="run a cohort (CSV, one row per case) on Dask",
                       description="Run one mskai command per row of COHORT.csv (columns "
                                   "case,task,image and the task's options with _ for -) on "
                                   "Dask; each case's results go to DIR/<case>/.")
    p.add_argument("cohort", type=Path, metavar="COHORT.csv")
    p.add_argument("--out", type=Path, required=True,
                   help="batch folder: one result folder per case plus the cohort tables")
    where = p.add_mutually_exclusive_group()
    where.add_argument("--workers", type=positive_int, default=None,
                       help="worker processes of the local Dask cluster (default: CPUs, "
                            "fewer when memory is short)")
    where.add_argument("--scheduler", metavar="ADDRESS", default=None,
                       help="run on an existing Dask cluster, e.g. tcp://host:8786")
    p.add_argument("--force", action="store_true",
                   help="recompute cases whose results are complete for the same inputs")
    _add_overwrite(p)


def _handler(command: str) -> Callable[[argparse.Namespace], str]:
    from mskai import commands

    return getattr(commands, f"run_{command}")


POINT_OPTIONS = ("--seed-ras", "--background-ras", "--roi-ras", "--recist-line-ras")


def join_negative_points(argv: Sequence[str]) -> list[str]:
    """``--seed-ras -12,5,30`` -> ``--seed-ras=-12,5,30``.

    argparse takes a value starting with '-' for an option unless it is a plain negative
    number, and RAS points often start with a minus sign.
    """
    out: list[str] = []
    tokens = list(argv)
    for index, token in enumerate(tokens):
        previous = tokens[index - 1] if index else ""
        if previous in POINT_OPTIONS and token.startswith("-") and token[1:2].isdigit():
            out[-1] = f"{previous}={token}"
        else:
            out.append(token)
    return out


@contextmanager
def quiet_libraries(debug: bool) -> Iterator[None]:
    """No library logger (pykwalify, pyradiomics, ...) or Python warning reaches stderr,
    unless ``--debug``: the command's stderr is its own one-line messages only. The previous
    logging state is restored afterwards (``main`` also runs in-process, e.g. ``mskai demo``).
    """
    if debug:
        yield
        return
    previous = logging.root.manager.disable
    logging.disable(logging.CRITICAL)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        logging.disable(previous)


def main(argv: Sequence[str] | None = None) -> int:
    argv = join_negative_points(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    with quiet_libraries(args.debug):
        return _run(args)


def _run(args: argparse.Namespace) -> int:
    try:
        if args.command == "models":
            from mskai.models.commands import run_models_command

            return run_models_command(args)
        if args.command == "batch":
            from mskai.commands import run_batch

            return run_batch(args)
        if args.command == "serve":
            from mskai.web.serve import run_serve

            return run_serve(args)
        print(_handler(args.command)(args))
        return EXIT_OK
    except (InputError, ModelError) as exc:
        sys.stderr.write(f"mskai {args.command}: {exc}\n")
        return EXIT_BAD_INPUT
    except CancelledError:
        sys.stderr.write(f"mskai {args.command}: cancelled\n")
        return EXIT_INTERNAL
    except KeyboardInterrupt:
        sys.stderr.write(f"mskai {args.command}: interrupted\n")
        return EXIT_INTERNAL
    except Exception as exc:  # the contract: one line, exit 1, traceback only on request
        if args.debug:
            raise
        sys.stderr.write(f"mskai {args.command}: internal error: {type(exc).__name__}: {exc} "
                         "(re-run with --debug for the traceback and report it)\n")
        return EXIT_INTERNAL


if __name__ == "__main__":
    raise SystemExit(main())
