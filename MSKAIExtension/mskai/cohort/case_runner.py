"""One case of a cohort, run on a Dask worker through the single-case command handler.

The case's row was turned into the argument list of ``mskai <task>``; here it is parsed by
the same parser and handed to the same handler (:mod:`mskai.commands`), so
``DIR/<case>/`` holds exactly what ``mskai <task> ... --out DIR/<case>`` writes, under the
same output-folder rules. Nothing is raised: the outcome says what happened.
"""

from __future__ import annotations

import io
import time
import traceback
from contextlib import redirect_stderr
from pathlib import Path
from typing import Any

from mskai.cohort.cohort_csv import CaseSpec

DONE, SKIPPED, FAILED = "done", "skipped", "failed"
BAD_INPUT, INTERNAL = "bad input", "internal"


def run_case(spec: CaseSpec, out_dir: str, force: bool = False, overwrite: bool = False,
             debug: bool = False) -> dict[str, Any]:
    """``{"case", "task", "status", "exit_class", "message", "summary", "seconds", ...}``."""
    from mskai.cli import quiet_libraries
    from mskai.cohort import model_cache

    model_cache.install()
    start = time.perf_counter()
    outcome: dict[str, Any] = {"case": spec.case, "task": spec.task, "status": DONE,
                               "exit_class": "", "message": "", "summary": "", "warnings": []}
    with quiet_libraries(debug):
        try:
            outcome.update(_run(spec, Path(out_dir) / spec.case, force, overwrite, start))
        except Exception as exc:  # a case never stops the batch
            outcome.update(_failure(exc, debug))
    outcome["seconds"] = time.perf_counter() - start
    outcome["models"] = model_cache.stats()
    return outcome


def _run(spec: CaseSpec, folder: Path, force: bool, overwrite: bool,
         start: float) -> dict[str, Any]:
    from mskai.cli import build_parser
    from mskai.cohort.completion import is_complete, read_record, write_record
    from mskai.cohort.fingerprint import fingerprints

    inputs = fingerprints(spec.inputs)
    if not force and folder.is_dir() and is_complete(folder, spec, inputs):
        record = read_record(folder) or {}
        return {"status": SKIPPED, "summary": record.get("summary", ""),
                "warnings": record.get("warnings", [])}
    argv = [*spec.argv, "--out", str(folder), *(["--overwrite"] if overwrite else [])]
    args = build_parser().parse_args(argv)
    from mskai import commands

    captured = io.StringIO()
    with redirect_stderr(captured):
        summary = getattr(commands, f"run_{spec.task}")(args)
    warnings = [line.removeprefix("warning: ") for line in captured.getvalue().splitlines()
                if line.startswith("warning: ")]
    write_record(folder, spec, inputs, summary, time.perf_counter() - start, warnings)
    return {"status": DONE, "summary": summary, "warnings": warnings}


def _failure(exc: BaseException, debug: bool) -> dict[str, Any]:
    from mskai.errors import InputError, ModelError

    if isinstance(exc, InputError | ModelError):
        kind, message = BAD_INPUT, str(exc)
    else:
        kind, message = INTERNAL, f"internal error: {type(exc).__name__}: {exc}"
    failure = {"status": FAILED, "exit_class": kind,
               "message": " ".join(message.split()) or type(exc).__name__}
    if debug:
        failure["traceback"] = "".join(traceback.format_exception(exc))
    return failure
