"""False fractures on intact real CTs with and without the automatic fragment split.

``python Testing/benchmarks/split_touching_intact.py`` runs :func:`run_fracture` on every
intact CT of the fracture benchmark (the test patients of ``training/fracture/real_bones.py``
and the training CT ts_example, as in ``froc_real_fracture.py``), once as by default and once
with ``split_touching``, and prints per CT the fractures reported (score at least
``tasks.fracture.MIN_SCORE``) and the seconds each run took. Every CT is intact, so every
reported fracture is a false one. Writes ``results_split_touching_intact.md``.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]


def rows() -> list[str]:
    """One Markdown row per intact CT."""
    import real_bones

    from mskai.tasks.fracture import run_fracture

    out = []
    for patient in [*real_bones.split()["test"], "ts_example"]:
        image, _ = real_bones.load_patient(patient)
        cells = [patient, "x".join(str(n) for n in image.array.shape[::-1])]
        for split in (False, True):
            start = time.perf_counter()
            result = run_fracture(image, split_touching=split)
            cells += [str(len(result.measurements["fractures"])),
                      f"{time.perf_counter() - start:.1f}"]
        out.append("| " + " | ".join(cells) + " |")
        print(out[-1], flush=True)
    return out


def main() -> None:
    sys.path[:0] = [str(REPO / "MSKAIExtension"), str(REPO / "training" / "fracture")]
    lines = ["| intact CT | voxels (i x j x k) | fractures, default | s | fractures, "
             "split_touching | s |", "|---|---|---|---|---|---|", *rows()]
    table = "\n".join(lines)
    (HERE / "results_split_touching_intact.md").write_text(table + "\n", encoding="utf-8")
    print("\n" + table)


if __name__ == "__main__":
    main()
