"""Click latencies of one tree, for timing two trees side by side (run them alternately).

Usage::

    OMP_NUM_THREADS=2 .venv/bin/python Testing/benchmarks/side_by_side_clicks.py [REPO]

``REPO`` (default: this checkout) is the tree whose ``MSKAIExtension`` is imported first, so
a ``git worktree`` of an older commit is timed with the same inputs and the same benchmark
cases (``bench_tumor.py``, ``bench_tumor_methods.py``). Prints the best of ``REPEATS`` runs
in this process, after one untimed run, for: the classic negative click, the classic first
click with a box over the whole 256x256x60 crop, the classic click alone, ``auto``'s first
click on the 113 mL lesion and the network's refinement click. ``make bench`` times each
case against a baseline of the same tree; this compares trees.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

REPEATS = 6


def _best(run, repeats: int = REPEATS) -> float:
    run()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    repo = Path(sys.argv[1] if len(sys.argv) > 1 else Path(__file__).resolve().parents[2])
    for path in (repo / "MSKAIExtension", repo / "Testing" / "benchmarks"):
        sys.path.insert(0, str(path))
    import bench_tumor
    import bench_tumor_methods as methods

    refine = bench_tumor._refine_prepared()
    crop = bench_tumor._crop_256x256x60()
    first = methods._first_click_prepared()
    learned = methods._refine_prepared()
    rows = {
        "classic negative click": lambda: bench_tumor._refine_classic(refine),
        "classic first click, crop-wide box": lambda: bench_tumor._click_ours(crop),
        "classic click alone": lambda: methods._first_click_alone_classic(first),
        "auto first click alone, 113 mL": lambda: methods._first_click_auto(first),
        "network refinement click": lambda: methods._refine_learned(learned),
    }
    print(repo)
    for name, run in rows.items():
        print(f"  {name}: {_best(run):.3f} s", flush=True)


if __name__ == "__main__":
    main()
