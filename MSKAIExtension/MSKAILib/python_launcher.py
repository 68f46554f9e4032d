"""Which Python runs a module's job in a child process (no Qt, no slicer import).

Inside Slicer ``sys.executable`` can be the Slicer application itself rather than a plain
interpreter, and running that with ``-m`` would start a second Slicer. Slicer ships a
``PythonSlicer`` launcher (its Python with Slicer's environment) in ``<home>/bin``.
"""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any


def findPythonLauncher(slicerHome: str | None = None,
                       executable: str | None = None) -> str | None:
    """PythonSlicer next to the running Slicer, else on PATH, else a plain ``python*``
    ``sys.executable``; None when none is found (then the job runs in-process)."""
    suffix = ".exe" if os.name == "nt" else ""
    candidates = []
    if slicerHome:
        candidates.append(Path(slicerHome) / "bin" / f"PythonSlicer{suffix}")
    found = shutil.which("PythonSlicer")
    if found:
        candidates.append(Path(found))
    executable = executable if executable is not None else sys.executable
    if executable and Path(executable).name.lower().startswith("python"):
        candidates.append(Path(executable))
    for candidate in candidates:
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    return None


def subprocessRunnerFactory(slicerHome: str | None = None,
                            executable: str | None = None) -> Callable[[], Any] | None:
    """A factory of :class:`mskai.runner.subprocess_runner.SubprocessRunner` on
    :func:`findPythonLauncher`'s Python (a runner runs one job, so each job asks for a new
    one); None when there is no launcher, and the job then runs in this process."""
    python = findPythonLauncher(slicerHome, executable)
    if python is None:
        return None

    def factory() -> Any:
        from mskai.runner.subprocess_runner import SubprocessRunner

        return SubprocessRunner(python)

    return factory
