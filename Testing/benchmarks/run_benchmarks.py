"""``make bench``: each benchmark next to a baseline, each run in its own process.

Every case times our implementation and a baseline doing the same job on the same input
(best of ``--repeats``), and reports the ratio and each process's peak memory. Results are
printed as a Markdown table and written to ``Testing/benchmarks/results.md``; the README
quotes them. Timings are wall-clock on this machine; compare ratios, not absolute values.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
SUITES = ("bench_tumor", "bench_tumor_methods", "bench_cartilage", "bench_fracture",
          "bench_batch", "bench_web")


def _setup_paths() -> None:
    for path in (REPO / "MSKAIExtension", REPO / "Testing", HERE):
        if str(path) not in sys.path:
            sys.path.insert(0, str(path))


def run_one(suite: str, name: str, which: str, repeats: int) -> dict:
    """Run one side of one case in this process; returns seconds and peak memory.

    Every temporary file or folder the case makes lands in one scratch folder that is
    removed afterwards, so benchmarks leave nothing behind in /tmp."""
    with tempfile.TemporaryDirectory(prefix="mskai-bench-") as scratch:
        tempfile.tempdir = scratch
        try:
            return _time_case(suite, name, which, repeats)
        finally:
            tempfile.tempdir = None


def _time_case(suite: str, name: str, which: str, repeats: int) -> dict:
    _setup_paths()
    from bench_case import Measured

    case = next(c for c in importlib.import_module(suite).CASES if c.name == name)
    prepared = case.prepare()
    fn = case.ours if which == "ours" else case.baseline
    if case.warm_up:
        fn(prepared)  # warm-up: imports, caches of the library itself
    times = []
    for _ in range(min(repeats, case.max_repeats or repeats)):
        start = time.perf_counter()
        value = fn(prepared)
        elapsed = time.perf_counter() - start
        times.append(float(value) if isinstance(value, Measured) else elapsed)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"seconds": min(times), "peak_mb": peak_mb}


def _spawn(suite: str, name: str, which: str, repeats: int) -> dict:
    cmd = [sys.executable, __file__, "--one", f"{suite}:{name}:{which}", "--repeats",
           str(repeats)]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        return {"error": proc.stderr.strip().splitlines()[-1] if proc.stderr else "failed"}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--one", help=argparse.SUPPRESS)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--suite", choices=SUITES, action="append")
    parser.add_argument("--case", help="only the cases whose name holds this text")
    args = parser.parse_args()
    if args.one:
        suite, rest = args.one.split(":", 1)   # a case name may hold a colon
        name, which = rest.rsplit(":", 1)
        print(json.dumps(run_one(suite, name, which, args.repeats)))
        return
    _setup_paths()
    load_before = os.getloadavg()
    lines = ["| case | ours (s) | baseline | baseline (s) | ratio | peak MB ours / baseline |",
             "|---|---|---|---|---|---|"]
    for suite in args.suite or SUITES:
        for case in importlib.import_module(suite).CASES:
            if args.case and args.case not in case.name:
                continue
            ours = _spawn(suite, case.name, "ours", args.repeats)
            base = _spawn(suite, case.name, "baseline", args.repeats)
            lines.append(_row(case, ours, base))
            print(lines[-1], flush=True)
    lines.append("\n" + load_line(load_before, os.getloadavg()))
    table = "\n".join(lines)
    if not args.suite and not args.case:  # a partial run does not overwrite the full table
        (HERE / "results.md").write_text(table + "\n", encoding="utf-8")
    print("\n" + table)


def load_line(before: tuple[float, ...], after: tuple[float, ...]) -> str:
    """The machine's load average (1, 5, 15 min) before and after the run: timings on a
    shared machine are only comparable at similar load."""
    return ("Load average (1 / 5 / 15 min) before: " + " / ".join(f"{v:.2f}" for v in before)
            + "; after: " + " / ".join(f"{v:.2f}" for v in after))


def _row(case, ours: dict, base: dict) -> str:
    if "error" in ours or "error" in base:
        return f"| {case.name} | {ours.get('error', '')} | {case.baseline_name} | " \
               f"{base.get('error', '')} | - | - |"
    ratio = base["seconds"] / ours["seconds"] if ours["seconds"] > 0 else float("inf")
    return (f"| {case.name} | {ours['seconds']:.2f} | {case.baseline_name} | "
            f"{base['seconds']:.2f} | {ratio:.2g}x | {ours['peak_mb']:.0f} / "
            f"{base['peak_mb']:.0f} |")


if __name__ == "__main__":
    main()
