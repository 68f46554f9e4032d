"""``mskai models list | verify | import BUNDLE``: the argparse parser and its handlers.

``cli.py`` calls :func:`add_models_parser` while building its parser and
:func:`run_models_command` for ``args.command == "models"``. Exit codes follow the
contract: 0 ok, 2 bad input or a model that fails verification.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from mskai.models.manifest import ModelEntry
from mskai.models.registry import all_models, check, import_model

EXIT_OK, EXIT_BAD_INPUT = 0, 2


def add_models_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add ``models`` with its ``list``, ``verify`` and ``import`` sub-commands."""
    models = subparsers.add_parser("models", help="list, verify or import AI models")
    models.add_argument("--model-dir", type=Path, default=None,
                        help="user model folder (default: $MSKAI_MODEL_DIR or ~/.mskai/models)")
    actions = models.add_subparsers(dest="models_command", required=True)
    actions.add_parser("list", help="installed models and whether their sha256 matches")
    actions.add_parser("verify", help="check every model file against its sha256 (exit 2 "
                                      "on any mismatch)")
    imp = actions.add_parser("import", help="copy a MONAI bundle or .ts/.onnx/.pt file into "
                                            "the user model folder")
    imp.add_argument("bundle", type=Path, help="MONAI bundle folder or a .ts/.onnx/.pt file")
    imp.add_argument("--sidecar", type=Path, default=None,
                     help="JSON describing the model (default: <file>.json)")
    imp.add_argument("--id", dest="model_id", default=None, help="model id to register")
    imp.add_argument("--task", default=None, help="e.g. tumor_refine, knee_seg, bone_seg")
    imp.add_argument("--modality", default=None, help="CT or MR")
    return models


def run_models_command(args: argparse.Namespace) -> int:
    """Run the chosen ``models`` action; ModelError/InputError propagate to the CLI."""
    handlers = {"list": _list, "verify": _verify, "import": _import}
    return handlers[args.models_command](args)


def _list(args: argparse.Namespace) -> int:
    entries = all_models(args.model_dir)
    if not entries:
        print("no models installed (import one with 'mskai models import BUNDLE')")
        return EXIT_OK
    print(format_table(entries, [check(e) is None for e in entries]))
    return EXIT_OK


def format_table(entries: list[ModelEntry], ok: list[bool]) -> str:
    """A plain-text table: id, version, task, modality, sha256 ok."""
    rows = [("id", "version", "task", "modality", "sha256")]
    rows += [(e.id, e.version, e.task, e.modality, "ok" if good else "MISMATCH")
             for e, good in zip(entries, ok, strict=True)]
    widths = [max(len(r[c]) for r in rows) for c in range(len(rows[0]))]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=True))
                     .rstrip() for r in rows)


def _verify(args: argparse.Namespace) -> int:
    entries = all_models(args.model_dir)
    problems = [(e, reason) for e in entries if (reason := check(e)) is not None]
    for _, reason in problems:
        sys.stderr.write(f"mskai models verify: {reason}\n")
    print(f"{len(entries) - len(problems)} of {len(entries)} models verified")
    return EXIT_BAD_INPUT if problems else EXIT_OK


def _import(args: argparse.Namespace) -> int:
    entry = import_model(args.bundle, args.model_dir, sidecar=args.sidecar,
                         id=args.model_id, task=args.task, modality=args.modality)
    print(f"imported {entry.id} {entry.version} ({entry.format}, {entry.task}, "
          f"{entry.modality}) sha256 {entry.sha256[:12]}... into {entry.root}")
    return EXIT_OK
