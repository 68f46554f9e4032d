"""The default fracture pipeline's first run in a new process: wall and CPU time, peak memory.

Usage (run each tree alternately, one process per run)::

    .venv/bin/python Testing/benchmarks/first_run_fracture.py [REPO]

``REPO`` (default: this checkout) is the tree whose ``MSKAIExtension`` is imported first, so
a ``git worktree`` of an older commit can be timed side by side with the same input: the
bone-full CT of ``bench_fracture.py`` (ts_example resampled to 512x512x300). Prints wall
and CPU seconds of ``run_fracture``, the process's peak resident memory and whether torch
was imported. ``make bench`` times the warm pipeline (best of 3); this is the first call,
imports and model reads included.
"""

from __future__ import annotations

import resource
import sys
import time
from pathlib import Path


def main() -> None:
    repo = Path(sys.argv[1] if len(sys.argv) > 1 else Path(__file__).resolve().parents[2])
    for path in (repo / "MSKAIExtension", repo / "Testing" / "benchmarks", repo / "Testing"):
        sys.path.insert(0, str(path))
    from bench_fracture import _bone_full_ct

    volume = _bone_full_ct()
    cpu, wall = time.process_time(), time.perf_counter()
    from mskai.tasks.fracture import run_fracture

    run_fracture(volume)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    print(f"{repo}: wall {wall:.1f} s, cpu {cpu:.1f} s, peak {peak_mb:.0f} MB, "
          f"torch imported: {'torch' in sys.modules}")


if __name__ == "__main__":
    main()
