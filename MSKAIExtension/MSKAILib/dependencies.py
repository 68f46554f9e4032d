"""Python packages the MSK AI modules need inside Slicer, installed on first use.

Nothing here runs at import time. :func:`ensure_dependencies` checks which pinned
requirements cannot be imported and, only after the user confirms, installs them.
The pure part is testable outside Slicer; :func:`ensureDependenciesInSlicer` wires it
to Slicer's confirmation dialog and ``slicer.util.pip_install``.
"""

from __future__ import annotations

import importlib.util
import re
from collections.abc import Callable, Iterable
from pathlib import Path

REQUIREMENTS_FILE = Path(__file__).resolve().parent.parent / "Resources" / "requirements.txt"

#: distribution name (lower case) -> import name, where they differ.
IMPORT_NAMES: dict[str, str] = {
    "scikit-image": "skimage",
    "pyradiomics": "radiomics",
    "simpleitk": "SimpleITK",
}

_NAME = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)")


def read_requirements(path: Path = REQUIREMENTS_FILE) -> list[str]:
    """Requirement lines of a requirements file, without comments and blank lines."""
    text = path.read_text(encoding="utf-8")
    lines = (line.split("#", 1)[0].strip() for line in text.splitlines())
    return [line for line in lines if line]


def import_name(requirement: str) -> str:
    """The module a requirement provides, e.g. ``"scikit-image>=0.24"`` -> ``"skimage"``."""
    match = _NAME.match(requirement)
    if not match:
        raise ValueError(f"Not a requirement: {requirement!r}")
    name = match.group(1)
    return IMPORT_NAMES.get(name.lower(), name.replace("-", "_"))


def missing_requirements(requirements: Iterable[str],
                         is_importable: Callable[[str], bool] | None = None) -> list[str]:
    """The requirements whose module cannot be found (the module is not imported)."""
    if is_importable is None:
        def is_importable(name: str) -> bool:
            return importlib.util.find_spec(name) is not None
    return [req for req in requirements if not is_importable(import_name(req))]


def ensure_dependencies(confirm: Callable[[str], bool],
                        install: Callable[[list[str]], None],
                        requirements: Iterable[str] | None = None,
                        is_importable: Callable[[str], bool] | None = None) -> bool:
    """Make sure every requirement is importable; return True when they all are.

    ``confirm(message)`` asks the user; ``install(requirements)`` installs them. Nothing
    is installed when the user declines.
    """
    reqs = read_requirements() if requirements is None else list(requirements)
    missing = missing_requirements(reqs, is_importable)
    if not missing:
        return True
    message = ("MSK AI needs these Python packages, which are not installed yet:\n\n"
               + "\n".join(missing)
               + "\n\nInstall them now? This can take several minutes.")
    if not confirm(message):
        return False
    install(missing)
    importlib.invalidate_caches()
    return not missing_requirements(missing, is_importable)


def ensureDependenciesInSlicer() -> bool:
    """Slicer entry point: ask with a dialog, install PyTorch through the PyTorch extension
    when it is there (it picks the right CUDA build), the rest with ``pip_install``."""
    import slicer

    def install(missing: list[str]) -> None:
        rest = [req for req in missing if import_name(req) != "torch"]
        if len(rest) != len(missing):
            try:
                import PyTorchUtils

                PyTorchUtils.PyTorchUtilsLogic().installTorch(askConfirmation=False)
            except ImportError:
                rest = missing  # no PyTorch extension: plain pip (CPU build on most systems)
        if rest:
            with slicer.util.tryWithErrorDisplay("Installing MSK AI dependencies failed.",
                                                 waitCursor=True):
                slicer.util.pip_install(rest)

    return ensure_dependencies(slicer.util.confirmOkCancelDisplay, install)
