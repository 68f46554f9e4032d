"""``mskai batch COHORT.csv --out DIR``: every case of the cohort on Dask, then the tables.

Order of work: the cohort table and ``--out`` are checked completely (bad table or folder:
one line, exit 2, nothing run); the cluster starts; each case runs as one Dask task
(:func:`mskai.cohort.case_runner.run_case`) and is reported as it finishes; then
``cohort_measurements.csv``, ``failures.csv`` and ``index.html`` are written and the batch
folder's marker sealed. Exit code: 0 when every case has a result, 1 when any case failed
with an internal error, else 2 when any case had bad input.
"""

from __future__ import annotations

import argparse
import sys
import uuid
from pathlib import Path
from typing import Any

from mskai.cohort.case_runner import BAD_INPUT, FAILED, INTERNAL, SKIPPED, run_case
from mskai.cohort.cohort_csv import CaseSpec, read_cohort

BATCH_FILES = ("cohort_measurements.csv", "failures.csv", "index.html")
EXIT_OK, EXIT_INTERNAL, EXIT_BAD_INPUT = 0, 1, 2


def exit_code(outcomes: list[dict[str, Any]]) -> int:
    kinds = {o["exit_class"] for o in outcomes if o["status"] == FAILED}
    if INTERNAL in kinds:
        return EXIT_INTERNAL
    return EXIT_BAD_INPUT if BAD_INPUT in kinds else EXIT_OK


def run_batch_command(args: argparse.Namespace) -> int:
    """The ``mskai batch`` handler: prints the summary line, returns the exit code."""
    outcomes, out = run_batch(args.cohort, args.out, workers=args.workers,
                              scheduler=args.scheduler, force=args.force,
                              overwrite=args.overwrite, debug=getattr(args, "debug", False))
    failed = sum(o["status"] == FAILED for o in outcomes)
    skipped = sum(o["status"] == SKIPPED for o in outcomes)
    ok = len(outcomes) - failed
    print(f"batch: {ok} of {len(outcomes)} cases have results ({ok - skipped} run, {skipped} "
          f"already done), {failed} failed; cohort page {out / 'index.html'}")
    if failed:
        sys.stderr.write(f"mskai batch: {failed} case(s) failed; see {out / 'failures.csv'}\n")
    return exit_code(outcomes)


def run_batch(cohort: str | Path, out: str | Path, *, workers: int | None = None,
              scheduler: str | None = None, force: bool = False, overwrite: bool = False,
              debug: bool = False, stream=None) -> tuple[list[dict[str, Any]], Path]:
    """Run the cohort; returns each case's outcome (in table order) and the batch folder."""
    from mskai.cohort.cluster import dask_client
    from mskai.cohort.progress import BatchProgress
    from mskai.results.out_folder import check_out

    specs = read_cohort(cohort)
    inputs = [("cohort table", Path(cohort))]
    inputs += [(f"{column} of case {s.case}", p) for s in specs for column, p in s.inputs.items()]
    folder = check_out(out, "batch", inputs, overwrite=overwrite, files=BATCH_FILES)
    folder.claim()
    root = Path(out).resolve()
    with BatchProgress(len(specs), stream) as progress, \
            dask_client(scheduler, workers, len(specs), progress.say) as client:
        outcomes = _run_all(client, specs, root, force, overwrite, debug, progress)
    write_cohort_files(root, outcomes, Path(cohort).name)
    folder.seal()
    return outcomes, Path(out)


def _run_all(client, specs: list[CaseSpec], root: Path, force: bool, overwrite: bool,
             debug: bool, progress) -> list[dict[str, Any]]:
    from distributed import as_completed

    run = uuid.uuid4().hex[:8]
    futures = {client.submit(run_case, spec, str(root), force, overwrite, debug,
                             key=f"mskai-case-{spec.case}-{run}", pure=False): spec
               for spec in specs}
    outcomes: dict[str, dict[str, Any]] = {}
    for future in as_completed(futures):
        spec = futures[future]
        try:
            outcome = future.result()
        except Exception as exc:  # e.g. KilledWorker: the worker died
            outcome = {"case": spec.case, "task": spec.task, "status": FAILED,
                       "exit_class": INTERNAL, "summary": "", "warnings": [],
                       "message": f"internal error: {type(exc).__name__}: "
                                  f"{' '.join(str(exc).split())} (the worker running it "
                                  "stopped; out of memory?)"}
        future.release()
        outcomes[spec.case] = outcome
        progress.case_finished(outcome)
        if debug and outcome.get("traceback"):
            progress.say(outcome["traceback"].rstrip())
    return [outcomes[s.case] for s in specs]


def write_cohort_files(root: Path, outcomes: list[dict[str, Any]], cohort_name: str) -> None:
    from mskai.cohort.cohort_table import case_rows, write_failures, write_measurements
    from mskai.cohort.index_page import write_index

    rows = [row for o in outcomes if o["status"] != FAILED
            for row in case_rows(o["case"], root / o["case"])]
    write_measurements(root / "cohort_measurements.csv", rows)
    write_failures(root / "failures.csv", outcomes)
    write_index(root / "index.html", outcomes, rows, cohort_name)
