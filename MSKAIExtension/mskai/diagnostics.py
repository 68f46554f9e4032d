"""What is installed and where: versions, device and paths, for bug reports and the
diagnostics panel in Slicer.

Optional packages are looked up lazily, one at a time; a missing or broken package is
reported as text (``"not installed"``) and never raises.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import importlib.util
import os
import platform
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import mskai
from mskai.config import Settings, load_settings, settings_path

NOT_INSTALLED = "not installed"

#: import name -> distribution name, for the packages MSK AI uses.
PACKAGES: dict[str, str] = {
    "torch": "torch",
    "monai": "monai",
    "SimpleITK": "SimpleITK",
    "numpy": "numpy",
    "scipy": "scipy",
    "skimage": "scikit-image",
    "nibabel": "nibabel",
    "pydicom": "pydicom",
    "highdicom": "highdicom",
    "radiomics": "pyradiomics",
    "onnxruntime": "onnxruntime",
}


def package_version(module: str, distribution: str | None = None) -> str:
    """Version of an importable package, ``"not installed"``, or why it cannot be imported."""
    try:
        if importlib.util.find_spec(module) is None:
            return NOT_INSTALLED
    except (ImportError, ValueError):
        return NOT_INSTALLED
    try:
        return importlib.metadata.version(distribution or PACKAGES.get(module, module))
    except importlib.metadata.PackageNotFoundError:
        pass  # e.g. SimpleITK built into Slicer has no pip metadata: ask the module itself
    try:
        imported = importlib.import_module(module)
    except Exception as exc:  # a broken install must not break the diagnostics
        return f"not importable ({type(exc).__name__}: {exc})"
    return str(getattr(imported, "__version__", "unknown version"))


def slicer_version() -> str:
    """The running Slicer's version; outside Slicer says so (``slicer`` is never imported)."""
    slicer = sys.modules.get("slicer")
    app = getattr(slicer, "app", None)
    if app is not None:
        return str(app.applicationVersion)
    core = package_version("slicer", "slicer-core")
    return "not running in Slicer" + ("" if core == NOT_INSTALLED else f" (slicer-core {core})")


def device_info(requested: str) -> dict[str, Any]:
    """Requested and resolved device; imports torch only when it is installed."""
    info: dict[str, Any] = {"requested": requested, "resolved": "cpu",
                            "cuda_available": False, "cuda_device": None}
    if package_version("torch") == NOT_INSTALLED:
        info["note"] = "torch not installed: AI models cannot run"
        return info
    try:
        import torch

        available = bool(torch.cuda.is_available())
        info["cuda_available"] = available
        if available:
            info["cuda_device"] = torch.cuda.get_device_name(0)
    except Exception as exc:  # a broken CUDA set-up is exactly what diagnostics must show
        info["note"] = f"torch failed to query CUDA: {exc}"
        available = False
    if requested == "cuda" or (requested == "auto" and available):
        info["resolved"] = "cuda"
    if requested == "cuda" and not available:
        info["note"] = "cuda requested but not available: runs will fail or fall back to cpu"
    return info


def collect_diagnostics(settings: Settings | None = None,
                        packages: Iterable[str] | None = None,
                        include_device: bool = True) -> dict[str, Any]:
    """Versions, device and paths as a JSON-ready dict.

    ``packages`` are import names (default: :data:`PACKAGES`).
    """
    settings = load_settings() if settings is None else settings
    names = list(PACKAGES) if packages is None else list(packages)
    versions: dict[str, str] = {
        "mskai": mskai.__version__,
        "Slicer": slicer_version(),
        "python": platform.python_version(),
    }
    versions.update({name: package_version(name) for name in names})
    result: dict[str, Any] = {
        "versions": versions,
        "platform": platform.platform(),
        "paths": {
            "settings_file": str(settings_path()),
            "model_dir": str(settings.model_dir),
            "model_dir_exists": settings.model_dir.is_dir(),
            "mskai_package": str(Path(mskai.__file__).resolve().parent),
            "python_executable": sys.executable,
        },
    }
    result["device"] = (device_info(settings.device) if include_device
                        else {"requested": settings.device})
    return result


def format_diagnostics(info: dict[str, Any]) -> str:
    """Plain text, one ``key: value`` per line, to paste into a bug report."""
    lines: list[str] = []
    for section, value in info.items():
        if isinstance(value, dict):
            lines.append(f"[{section}]")
            lines.extend(f"  {key}: {item}" for key, item in value.items())
        else:
            lines.append(f"{section}: {value}")
    return "\n".join(lines)


def verify_models_command(settings: Settings | None = None) -> tuple[list[str], dict[str, str]]:
    """Command line and extra environment that run ``mskai models verify`` in a subprocess.

    The Slicer diagnostics panel runs it without blocking the GUI; the command is part of
    the public contract, so this does not depend on the internals of :mod:`mskai.models`.
    """
    settings = load_settings() if settings is None else settings
    python_path = [str(Path(mskai.__file__).resolve().parent.parent)]
    if os.environ.get("PYTHONPATH"):
        python_path.append(os.environ["PYTHONPATH"])
    env = {"MSKAI_MODEL_DIR": str(settings.model_dir), "MSKAI_DEVICE": settings.device,
           "PYTHONPATH": os.pathsep.join(python_path)}
    return [sys.executable, "-m", "mskai", "models", "verify"], env
