"""The model manifest (schema ``mskai.models/1``): what each model is and how to feed it.

A manifest is a JSON file ``{"schema": "mskai.models/1", "models": [entry, ...]}``; each
entry's ``file`` is relative to the manifest's folder. An entry looks like::

    {"id": "knee_unet", "version": "1.0.0", "task": "knee_seg", "modality": "MR",
     "format": "state_dict",          # or "torchscript" | "onnx" | "monai_bundle" | "npz"
     "architecture": {"type": "monai.UNet", "kwargs": {...}},   # state_dict only
     "file": "weights/knee_unet.pt", "sha256": "<64 hex>",
     "input": {"spacing_mm": [0.5, 0.5, 0.7], "orientation": "RAS",
               "intensity": {"type": "mr_percentile", "low": 1, "high": 99},
               "channels": 1, "patch_size": [96, 96, 64], "overlap": 0.25},
     "output": {"activation": "softmax", "keep_largest_component": true},
     "labels": {"1": "femur", "2": "femoral_cartilage"},
     "licence": "Apache-2.0", "training_data": "...", "accuracy": {"dice_femur": 0.97},
     "card": "cards/knee_unet.md"}

A ``monai_bundle`` entry's ``file`` is the bundle folder; its sha256 covers every file in it
(see :func:`sha256_path`). An ``npz`` entry holds the parameters of a model that is no
network (a logistic regression: named float arrays), read by numpy without pickle and
without torch.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mskai.errors import ModelError
from mskai.resources import sha256_file

SCHEMA = "mskai.models/1"
PARAMETER_FORMAT = "npz"   # named arrays of a model that is no network (loaders.read_arrays)
FORMATS = ("state_dict", "torchscript", "onnx", "monai_bundle", PARAMETER_FORMAT)
INTENSITY_TYPES = ("ct_window", "mr_percentile", "zscore", "none")
ACTIVATIONS = ("softmax", "sigmoid", "none")
PACKAGED_MANIFEST = Path(__file__).resolve().parent / "manifest.json"


@dataclass(frozen=True)
class InputSpec:
    """How an image is prepared for the network (see :mod:`mskai.inference.preprocess`)."""

    spacing_mm: tuple[float, float, float] | None = None
    orientation: str = "RAS"
    intensity: dict[str, Any] = field(default_factory=lambda: {"type": "none"})
    channels: int = 1
    patch_size: tuple[int, int, int] = (96, 96, 96)
    overlap: float = 0.25

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> InputSpec:
        spacing = data.get("spacing_mm")
        spec = cls(
            spacing_mm=None if spacing is None else tuple(float(s) for s in spacing),
            orientation=str(data.get("orientation", "RAS")).upper(),
            intensity=dict(data.get("intensity", {"type": "none"})),
            channels=int(data.get("channels", 1)),
            patch_size=tuple(int(p) for p in data.get("patch_size", (96, 96, 96))),
            overlap=float(data.get("overlap", 0.25)),
        )
        spec.check()
        return spec

    def check(self) -> None:
        if self.spacing_mm is not None and (len(self.spacing_mm) != 3
                                            or min(self.spacing_mm) <= 0):
            raise ModelError(f"input spacing_mm {self.spacing_mm} must be three positive "
                             "numbers; fix the model's manifest entry.")
        if len(self.patch_size) != 3 or min(self.patch_size) < 1:
            raise ModelError(f"input patch_size {self.patch_size} must be three positive "
                             "integers; fix the model's manifest entry.")
        if not 0 <= self.overlap < 1:
            raise ModelError(f"input overlap {self.overlap} must be in [0, 1); fix the "
                             "model's manifest entry.")
        kind = self.intensity.get("type")
        if kind not in INTENSITY_TYPES:
            raise ModelError(f"intensity type {kind!r} is not one of {INTENSITY_TYPES}; fix "
                             "the model's manifest entry.")
        if kind == "ct_window" and not (isinstance(self.intensity.get("min"), int | float)
                                        and isinstance(self.intensity.get("max"), int | float)
                                        and self.intensity["min"] < self.intensity["max"]):
            raise ModelError("a ct_window intensity needs numbers 'min' < 'max' (HU); fix the "
                             "model's manifest entry.")
        if len(self.orientation) != 3:
            raise ModelError(f"orientation {self.orientation!r} must be a 3-letter code "
                             "such as 'RAS'; fix the model's manifest entry.")

    def to_json(self) -> dict[str, Any]:
        return {"spacing_mm": None if self.spacing_mm is None else list(self.spacing_mm),
                "orientation": self.orientation, "intensity": dict(self.intensity),
                "channels": self.channels, "patch_size": list(self.patch_size),
                "overlap": self.overlap}


@dataclass(frozen=True)
class ModelEntry:
    """One model of a manifest; ``root`` is the folder its ``file`` is relative to."""

    id: str
    version: str
    task: str
    modality: str
    format: str
    file: str
    sha256: str
    root: Path
    input: InputSpec = field(default_factory=InputSpec)
    labels: dict[int, str] = field(default_factory=dict)
    architecture: dict[str, Any] | None = None
    output: dict[str, Any] = field(default_factory=dict)
    licence: str = ""
    training_data: str = ""
    accuracy: dict[str, Any] = field(default_factory=dict)
    card: str | None = None

    @property
    def path(self) -> Path:
        return (self.root / self.file).resolve()

    @property
    def card_path(self) -> Path | None:
        return None if self.card is None else (self.root / self.card).resolve()

    @property
    def activation(self) -> str:
        return str(self.output.get("activation", "softmax"))

    def to_json(self) -> dict[str, Any]:
        """The manifest entry (``root`` is implied by where the manifest lives)."""
        data: dict[str, Any] = {
            "id": self.id, "version": self.version, "task": self.task,
            "modality": self.modality, "format": self.format, "file": self.file,
            "sha256": self.sha256, "input": self.input.to_json(),
            "output": dict(self.output),
            "labels": {str(k): v for k, v in sorted(self.labels.items())},
            "licence": self.licence, "training_data": self.training_data,
            "accuracy": dict(self.accuracy), "card": self.card,
        }
        if self.architecture is not None:
            data["architecture"] = self.architecture
        return data


REQUIRED = ("id", "version", "task", "modality", "format", "file", "sha256")
# field -> (accepted types, what to write in the manifest); checked before anything is built
FIELD_TYPES: dict[str, tuple[tuple[type, ...], str]] = {
    **dict.fromkeys(REQUIRED, ((str,), "a text")),
    "input": ((dict,), "an object"), "output": ((dict,), "an object"),
    "labels": ((dict,), "an object mapping label values to segment ids"),
    "architecture": ((dict, type(None)), "an object {'type': ..., 'kwargs': {...}}"),
    "licence": ((str,), "a text"), "training_data": ((str,), "a text"),
    "accuracy": ((dict,), "an object"), "card": ((str, type(None)), "a text or null"),
}
INPUT_TYPES: dict[str, tuple[tuple[type, ...], str]] = {
    "spacing_mm": ((list, type(None)), "a list of three numbers or null"),
    "orientation": ((str,), "a text such as 'RAS'"),
    "intensity": ((dict,), "an object with a 'type'"),
    "channels": ((int,), "a positive integer"),
    "patch_size": ((list,), "a list of three integers"),
    "overlap": ((int, float), "a number in [0, 1)"),
}
SHA256 = re.compile(r"^[0-9a-fA-F]{64}$")


def check_entry_types(data: Any, where: str) -> None:
    """ModelError naming ``where`` and the first field whose JSON type is wrong."""
    if not isinstance(data, dict):
        raise ModelError(f"a model entry in {where} is {_json_kind(data)}, not a JSON object; "
                         "fix the manifest.")
    name = data.get("id", "?")
    for key, (types, expected) in FIELD_TYPES.items():
        if key in data and not _is(data[key], types):
            raise ModelError(f"model {name!r} in {where}: field {key!r} is "
                             f"{_json_kind(data[key])}, but must be {expected}; fix the "
                             "manifest.")
    sha = data.get("sha256")
    if isinstance(sha, str) and sha and not SHA256.match(sha):
        raise ModelError(f"model {name!r} in {where}: field 'sha256' is not 64 hexadecimal "
                         "digits; fix the manifest.")
    spec = data.get("input") or {}
    for key, (types, expected) in INPUT_TYPES.items():
        if key in spec and not _is(spec[key], types):
            raise ModelError(f"model {name!r} in {where}: field 'input.{key}' is "
                             f"{_json_kind(spec[key])}, but must be {expected}; fix the "
                             "manifest.")
    for key in ("spacing_mm", "patch_size"):
        values = spec.get(key)
        if isinstance(values, list) and not all(_is(v, (int, float)) for v in values):
            raise ModelError(f"model {name!r} in {where}: field 'input.{key}' must hold only "
                             "numbers; fix the manifest.")
    for value, segment in (data.get("labels") or {}).items():
        if not (isinstance(value, int) or str(value).isdigit()) or not isinstance(segment, str):
            raise ModelError(f"model {name!r} in {where}: field 'labels' must map integer "
                             "label values to segment ids (text); fix the manifest.")


def _is(value: Any, types: tuple[type, ...]) -> bool:
    """JSON type check: true/false is not a number."""
    return isinstance(value, types) and not (isinstance(value, bool) and bool not in types)


def _json_kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"{str(value).lower()} (a boolean)"
    if isinstance(value, int | float):
        return f"{value!r} (a number)"
    if isinstance(value, str):
        return "a text"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


def parse_entry(data: dict[str, Any], root: Path) -> ModelEntry:
    """A :class:`ModelEntry` from its JSON form; ModelError names the first problem."""
    if not isinstance(data, dict):
        raise ModelError(f"a model entry in {root} is not a JSON object; fix the manifest.")
    missing = [key for key in REQUIRED if not data.get(key)]
    if missing:
        raise ModelError(f"model entry {data.get('id', '?')!r} in {root} lacks "
                         f"{', '.join(missing)}; fix the manifest.")
    if data["format"] not in FORMATS:
        raise ModelError(f"model {data['id']!r} has format {data['format']!r}, not one of "
                         f"{FORMATS}; fix the manifest.")
    if data["format"] == "state_dict" and not isinstance(data.get("architecture"), dict):
        raise ModelError(f"state_dict model {data['id']!r} needs an 'architecture' "
                         "({'type': 'monai.UNet', 'kwargs': {...}}); add it to the manifest.")
    output = dict(data.get("output", {}))
    if output.get("activation", "softmax") not in ACTIVATIONS:
        raise ModelError(f"model {data['id']!r} output activation must be one of "
                         f"{ACTIVATIONS}; fix the manifest.")
    try:
        labels = {int(k): str(v) for k, v in dict(data.get("labels", {})).items()}
    except (TypeError, ValueError) as exc:
        raise ModelError(f"model {data['id']!r} labels must map integer values to segment "
                         "ids; fix the manifest.") from exc
    return ModelEntry(
        id=str(data["id"]), version=str(data["version"]), task=str(data["task"]),
        modality=str(data["modality"]), format=str(data["format"]), file=str(data["file"]),
        sha256=str(data["sha256"]).lower(), root=Path(root),
        input=InputSpec.from_dict(dict(data.get("input", {}))), labels=labels,
        architecture=data.get("architecture"), output=output,
        licence=str(data.get("licence", "")), training_data=str(data.get("training_data", "")),
        accuracy=dict(data.get("accuracy", {})), card=data.get("card"),
    )


def read_manifest(path: str | Path) -> list[ModelEntry]:
    """The entries of one manifest file; a missing user manifest is simply empty."""
    path = Path(path)
    if not path.is_file():
        return []
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise ModelError(f"model manifest {path} is not readable JSON ({exc}); fix or "
                         "remove it.") from exc
    if not isinstance(data, dict) or data.get("schema") != SCHEMA:
        raise ModelError(f"model manifest {path} is not schema {SCHEMA!r}; fix or remove it.")
    models = data.get("models", [])
    if not isinstance(models, list):
        raise ModelError(f"model manifest {path}: field 'models' is {_json_kind(models)}, but "
                         "must be a list of model entries; fix or remove it.")
    entries = []
    for item in models:
        check_entry_types(item, str(path))
        try:
            entries.append(parse_entry(item, path.parent))
        except (TypeError, ValueError, AttributeError) as exc:
            raise ModelError(f"model {item.get('id', '?')!r} in {path} has a value of the "
                             f"wrong type ({first_line(exc)}); fix the manifest.") from None
    return entries


def load_manifest(path: str | Path | None = None,
                  user_dir: str | Path | None = None) -> list[ModelEntry]:
    """Entries of ``path`` (default: the packaged manifest) plus ``user_dir/manifest.json``."""
    entries = read_manifest(PACKAGED_MANIFEST if path is None else path)
    if user_dir is not None:
        entries += read_manifest(Path(user_dir) / "manifest.json")
    return entries


def write_manifest(path: str | Path, entries: list[ModelEntry]) -> None:
    """Write entries as a ``mskai.models/1`` manifest (``file`` stays relative)."""
    data = {"schema": SCHEMA, "models": [e.to_json() for e in entries]}
    path = Path(path)
    partial = path.with_name(f".{path.name}.partial")
    partial.write_text(json.dumps(data, indent=1) + "\n", encoding="utf-8")
    partial.replace(path)  # atomic: a reader sees the old manifest or the new one


def sha256_path(path: str | Path) -> str:
    """sha256 of a file; for a folder, of the sorted ``"<relative path> <file sha256>"`` lines.

    The folder form makes a MONAI bundle's hash cover every file in it, so adding,
    removing or changing any config or weight file is detected.
    """
    path = Path(path)
    if path.is_file():
        return sha256_file(path)
    lines = [f"{p.relative_to(path).as_posix()} {sha256_file(p)}\n"
             for p in sorted(path.rglob("*")) if p.is_file()]
    return hashlib.sha256("".join(lines).encode("utf-8")).hexdigest()


def verify(entry: ModelEntry) -> None:
    """Raise ModelError unless the model's file exists and matches its manifest sha256."""
    path = entry.path
    if not path.exists():
        raise ModelError(f"model {entry.id} {entry.version}: file {path} is missing; "
                         "reinstall or re-import the model.")
    if entry.format == "monai_bundle" and not path.is_dir():
        raise ModelError(f"model {entry.id} {entry.version}: {path} is not a MONAI bundle "
                         "folder; re-import the bundle.")
    actual = sha256_path(path)
    if actual != entry.sha256:
        raise ModelError(f"model {entry.id} {entry.version}: sha256 of {path} is {actual}, "
                         f"not {entry.sha256} as in the manifest; the file was altered or "
                         "replaced, reinstall or re-import it.")


def first_line(exc: BaseException) -> str:
    """The first non-empty line of an exception's text: messages stay one line."""
    for line in str(exc).splitlines():
        if line.strip():
            return line.strip()
    return type(exc).__name__
