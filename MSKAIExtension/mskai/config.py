"""User settings shared by the Slicer modules and the ``mskai`` command.

Stored as JSON in ``~/.mskai/settings.json``; the environment variables ``MSKAI_DEVICE``
and ``MSKAI_MODEL_DIR`` override the file, so a cluster job can change them without
touching anyone's settings.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mskai.errors import InputError

DEVICES: tuple[str, ...] = ("auto", "cpu", "cuda")
ENV_DEVICE = "MSKAI_DEVICE"
ENV_MODEL_DIR = "MSKAI_MODEL_DIR"


def settings_home() -> Path:
    """The per-user folder ``~/.mskai``."""
    return Path.home() / ".mskai"


def settings_path() -> Path:
    """The settings file, ``~/.mskai/settings.json``."""
    return settings_home() / "settings.json"


def default_model_dir() -> Path:
    """Where models live unless the user picks another folder: ``~/.mskai/models``."""
    return settings_home() / "models"


def validate_device(device: str) -> str:
    """Return ``device`` normalised to lower case, or raise :class:`InputError`."""
    value = str(device).strip().lower()
    if value not in DEVICES:
        raise InputError(
            f"Unknown device {device!r}: use one of {', '.join(DEVICES)} "
            f"(in {settings_path()} or the {ENV_DEVICE} environment variable)."
        )
    return value


@dataclass(frozen=True)
class Settings:
    """Device for inference and the folder that holds model files."""

    device: str = "auto"
    model_dir: Path = field(default_factory=default_model_dir)

    def __post_init__(self) -> None:
        object.__setattr__(self, "device", validate_device(self.device))
        object.__setattr__(self, "model_dir", Path(self.model_dir).expanduser())

    def to_json(self) -> dict[str, str]:
        return {"device": self.device, "model_dir": str(self.model_dir)}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Settings:
        """Build from a JSON object; unknown keys are ignored so newer files still load."""
        if not isinstance(data, Mapping):
            raise InputError("The MSK AI settings file must hold a JSON object.")
        kwargs: dict[str, Any] = {}
        if data.get("device") is not None:
            kwargs["device"] = data["device"]
        if data.get("model_dir"):
            kwargs["model_dir"] = Path(str(data["model_dir"]))
        return cls(**kwargs)


def apply_env(settings: Settings, env: Mapping[str, str] | None = None) -> Settings:
    """Return ``settings`` with ``MSKAI_DEVICE`` / ``MSKAI_MODEL_DIR`` applied when set."""
    env = os.environ if env is None else env
    device = env.get(ENV_DEVICE) or settings.device
    model_dir = env.get(ENV_MODEL_DIR) or settings.model_dir
    return Settings(device=device, model_dir=Path(model_dir))


def load_settings(path: Path | None = None, *, use_env: bool = True,
                  env: Mapping[str, str] | None = None) -> Settings:
    """Read the settings file (defaults when it does not exist), then the env overrides.

    ``use_env=False`` gives what the file says, for editors that write it back.
    """
    path = settings_path() if path is None else Path(path)
    settings = Settings()
    if path.is_file():
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise InputError(f"Cannot read MSK AI settings {path}: {exc}. "
                             "Fix or delete the file to return to the defaults.") from exc
        settings = Settings.from_json(data)
    return apply_env(settings, env) if use_env else settings


def save_settings(settings: Settings, path: Path | None = None) -> Path:
    """Write ``settings`` as JSON (atomically: a half-written file never replaces a good one)."""
    path = settings_path() if path is None else Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(settings.to_json(), indent=2) + "\n", encoding="utf-8")
    tmp.replace(path)
    return path
