"""dciodvfy (Debian's dicom3tools), the DICOM validator the SEG and SR tests run.

Where it is not installed the test skips with one line saying how to install it; in CI
(``MSKAI_REQUIRE_DCIODVFY=1``, set by ``.ci/run``, which installs it) it fails instead, so
the validation can never be skipped there.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

INSTALL = "dciodvfy is not installed: apt-get install dicom3tools"


def dciodvfy_report(path: str | Path) -> str:
    """Everything dciodvfy prints about one DICOM file (``-new``: current standard only)."""
    if shutil.which("dciodvfy") is None:
        if os.environ.get("MSKAI_REQUIRE_DCIODVFY"):
            pytest.fail(f"{INSTALL} (required here: MSKAI_REQUIRE_DCIODVFY is set)")
        pytest.skip(INSTALL)
    run = subprocess.run(["dciodvfy", "-new", str(path)], capture_output=True, text=True,
                         timeout=120)
    return run.stdout + run.stderr


def dciodvfy_errors(path: str | Path) -> list[str]:
    """The lines of dciodvfy's report that are errors (warnings are allowed)."""
    return [line for line in dciodvfy_report(path).splitlines() if line.startswith("Error")]
