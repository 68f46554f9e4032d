"""Where models live: the packaged manifest plus a user model folder, and importing into it.

The user folder is ``~/.mskai/models`` unless the ``MSKAI_MODEL_DIR`` environment variable
or a function argument says otherwise. It holds its own ``manifest.json`` (same schema).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import Any

from mskai.errors import InputError, ModelError
from mskai.models.manifest import (
    ModelEntry,
    check_entry_types,
    first_line,
    load_manifest,
    parse_entry,
    read_manifest,
    sha256_path,
    verify,
    write_manifest,
)

ENV_VAR = "MSKAI_MODEL_DIR"
SINGLE_FILE_FORMATS = {".ts": "torchscript", ".onnx": "onnx", ".pt": "state_dict",
                       ".pth": "state_dict"}
_SAFE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
MAX_JSON_BYTES = 1 << 20  # a sidecar or bundle metadata file is a few KB


def user_model_dir(override: str | Path | None = None) -> Path:
    """The user model folder: argument, else $MSKAI_MODEL_DIR, else ~/.mskai/models."""
    if override is not None:
        return Path(override).expanduser()
    if os.environ.get(ENV_VAR):
        return Path(os.environ[ENV_VAR]).expanduser()
    return Path.home() / ".mskai" / "models"


def all_models(user_dir: str | Path | None = None) -> list[ModelEntry]:
    """Packaged models followed by the user's imported ones."""
    return load_manifest(None, user_model_dir(user_dir))


def find_model(model_id: str, version: str | None = None,
               user_dir: str | Path | None = None) -> ModelEntry:
    """The entry with this id (and version; else the last listed); InputError if unknown."""
    matches = [e for e in all_models(user_dir)
               if e.id == model_id and (version is None or e.version == version)]
    if not matches:
        raise InputError(f"no model {model_id!r}{'' if version is None else ' ' + version} "
                         "is installed; see 'mskai models list' or import one.")
    return matches[-1]


def models_for_task(task: str, modality: str | None = None,
                    user_dir: str | Path | None = None) -> list[ModelEntry]:
    """Models for a task (and modality, compared case-insensitively)."""
    return [e for e in all_models(user_dir) if e.task == task
            and (modality is None or e.modality.upper() == modality.upper())]


def latest_verified(task: str, modality: str, user_dir: str | Path | None = None,
                    required_flag: str | None = None) -> ModelEntry | None:
    """The last entry for ``task`` and ``modality`` whose weights verify, or None (also
    when the manifests cannot be read); with ``required_flag`` only one whose
    ``output[required_flag]`` is true."""
    try:
        entries = models_for_task(task, modality, user_dir)
    except ModelError:
        return None
    ok = [e for e in entries if check(e) is None
          and (required_flag is None or bool(e.output.get(required_flag)))]
    return ok[-1] if ok else None


def check(entry: ModelEntry) -> str | None:
    """None when the model verifies, else the reason it does not."""
    try:
        verify(entry)
    except ModelError as exc:
        return str(exc)
    return None


def import_model(source: str | Path, user_dir: str | Path | None = None,
                 sidecar: str | Path | None = None, **overrides: Any) -> ModelEntry:
    """Copy a MONAI bundle folder or a .ts/.onnx/.pt file into the user folder and register it.

    Model facts come from the JSON ``sidecar`` (default ``<source>.json``, or for a bundle
    ``configs/metadata.json`` as far as it goes), then from ``overrides`` (id, task, ...).

    The source is copied under a temporary name in the user folder, and the copy is what
    is checked: its sha256 must equal a ``sha256`` the sidecar gives, and it must load as
    its format on the CPU (ONNX parses and passes onnx.checker, TorchScript loads with
    torch.jit.load, a state dict or bundle weights load with ``weights_only=True``, a
    bundle's ``network_def`` holds no ``$`` expression and only MONAI networks). Only then
    is it renamed into place and the manifest rewritten; on any failure nothing is left.
    """
    source = Path(source).expanduser().resolve()
    if not source.exists():
        raise InputError(f"{source} does not exist; give a MONAI bundle folder or a "
                         ".ts/.onnx/.pt model file.")
    facts = _facts(source, sidecar)
    facts.update({k: v for k, v in overrides.items() if v is not None})
    _check_facts(source, facts)
    folder = user_model_dir(user_dir)
    existing = read_manifest(folder / "manifest.json")
    if any(e.id == facts["id"] and e.version == facts["version"] for e in existing):
        raise InputError(f"model {facts['id']} {facts['version']} is already imported; give "
                         "it another --id or version.")
    target = folder / f"{facts['id']}-{facts['version']}"
    if target.exists():
        raise InputError(f"{target} already exists; remove it or choose another --id.")
    created = [p for p in (folder, *folder.parents) if not p.exists()]
    folder.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".importing-{facts['id']}-", dir=folder))
    try:
        entry = _copy_check_and_register(source, staging, target, facts, folder)
        write_manifest(folder / "manifest.json", [*existing, entry])
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        if target.exists():  # it did not exist before: this import renamed it into place
            shutil.rmtree(target, ignore_errors=True)
        for path in created:  # deepest first: remove the folders this import made
            try:
                path.rmdir()
            except OSError:
                break
        raise
    return entry


def _copy_check_and_register(source: Path, staging: Path, target: Path,
                             facts: dict[str, Any], folder: Path) -> ModelEntry:
    name = "bundle" if source.is_dir() else source.name
    copied = staging / name
    if source.is_dir():
        shutil.copytree(source, copied, symlinks=False)
    else:
        shutil.copy2(source, copied)
    digest = sha256_path(copied)
    claimed = facts.get("sha256")
    if claimed and str(claimed).lower() != digest:
        raise ModelError(f"{source.name} does not match its sha256: the sidecar says "
                         f"{str(claimed)[:16]}..., the file is {digest[:16]}...; the file "
                         "is damaged or not the one described, get it again.")
    _check_loads(copied, facts)  # the copy, so what was checked is what gets registered
    entry = parse_entry(dict(facts, file=(target / name).relative_to(folder).as_posix(),
                             sha256=digest), folder)
    staging.rename(target)
    return entry


def _facts(source: Path, sidecar: str | Path | None) -> dict[str, Any]:
    """What is known about the model before flags: bundle metadata, then the sidecar."""
    facts: dict[str, Any] = {}
    if source.is_dir():
        facts.update(bundle_facts(source))
        facts["format"] = "monai_bundle"
    else:
        facts["format"] = SINGLE_FILE_FORMATS.get(source.suffix.lower())
        facts["id"] = source.stem
    side = Path(sidecar) if sidecar else Path(str(source) + ".json")
    if sidecar and not side.is_file():
        raise InputError(f"sidecar {side} does not exist; give the JSON file describing "
                         "the model.")
    if side.is_file():
        data = _read_json(side, "sidecar")
        if not isinstance(data, dict):
            raise InputError(f"sidecar {side} must hold a JSON object describing the model; "
                             "fix it.")
        facts.update(data)
    facts.setdefault("version", "1.0.0")
    return facts


def _read_json(path: Path, what: str) -> Any:
    """A small JSON file (sidecar, bundle metadata); InputError in one line otherwise."""
    try:
        if path.stat().st_size > MAX_JSON_BYTES:
            raise InputError(f"{what} {path} is larger than {MAX_JSON_BYTES // 2**20} MiB; "
                             "give the JSON file that describes the model.")
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise InputError(f"{what} {path} is not valid JSON ({first_line(exc)}); fix it.") \
            from None


def bundle_facts(folder: Path) -> dict[str, Any]:
    """id, version, labels, channels and patch size from a bundle's configs/metadata.json."""
    meta_path = folder / "configs" / "metadata.json"
    if not meta_path.is_file():
        raise InputError(f"{folder} is not a MONAI bundle (no configs/metadata.json); give "
                         "a bundle folder or a single model file.")
    meta = _read_json(meta_path, "bundle metadata")
    try:
        return _metadata_facts(meta, folder)
    except (AttributeError, TypeError, ValueError) as exc:
        raise InputError(f"{meta_path} does not have the MONAI metadata layout "
                         f"({first_line(exc)}); fix the bundle or pass a sidecar.") from None


def _metadata_facts(meta: dict[str, Any], folder: Path) -> dict[str, Any]:
    facts: dict[str, Any] = {"id": meta.get("name", folder.name).replace(" ", "_"),
                             "version": str(meta.get("version", "1.0.0")),
                             "licence": str(meta.get("license", meta.get("licence", ""))),
                             "training_data": str(meta.get("data_source", ""))}
    fmt = meta.get("network_data_format", {})
    image = fmt.get("inputs", {}).get("image", {})
    pred = fmt.get("outputs", {}).get("pred", {})
    spec: dict[str, Any] = {"channels": int(image.get("num_channels", 1))}
    shape = image.get("spatial_shape")
    if isinstance(shape, list) and len(shape) == 3 and all(isinstance(s, int) for s in shape):
        spec["patch_size"] = shape
    facts["input"] = spec
    channel_def = pred.get("channel_def", {})
    facts["labels"] = {int(k): _segment_id(v) for k, v in channel_def.items()
                       if str(k).isdigit() and int(k) > 0}
    return facts


def _segment_id(name: Any) -> str:
    return re.sub(r"[^a-z0-9]+", "_", str(name).lower()).strip("_") or "structure"


def _check_facts(source: Path, facts: dict[str, Any]) -> None:
    """Checks of the described facts alone (nothing is deserialised here)."""
    from mskai.models.loaders import is_torchscript

    if facts.get("format") is None:
        raise InputError(f"{source.name} is not a model this can import; give a MONAI bundle "
                         "folder or a .ts, .onnx or .pt file.")
    if not _SAFE_ID.match(str(facts.get("id", ""))) or \
            not _SAFE_ID.match(str(facts.get("version", ""))):
        raise InputError(f"model id {facts.get('id')!r} / version {facts.get('version')!r} "
                         "must be letters, digits, '.', '_' or '-'; pass --id.")
    missing = [k for k in ("task", "modality") if not facts.get(k)]
    if missing:
        raise InputError(f"the model's {' and '.join(missing)} is not known; pass "
                         f"--{' --'.join(missing)} or add it to a JSON sidecar.")
    if (facts["format"] == "monai_bundle") != source.is_dir():
        raise InputError(f"{source.name} is a {'folder' if source.is_dir() else 'file'} but "
                         f"its format is {facts['format']!r}; a MONAI bundle is a folder, "
                         "the other formats single files. Fix the sidecar's 'format'.")
    check_entry_types(facts, f"the facts of {source.name} (sidecar or bundle metadata)")
    if facts["format"] == "state_dict" and not is_torchscript(source) and \
            not isinstance(facts.get("architecture"), dict):
        raise InputError(f"{source.name} is a state dict; its JSON sidecar must give "
                         "'architecture' ({'type': 'monai.UNet', 'kwargs': {...}}).")


def _check_loads(path: Path, facts: dict[str, Any]) -> None:
    """Load the (copied) model on the CPU as its format; ModelError if it does not."""
    from mskai.models import loaders

    fmt = facts["format"]
    if fmt == "state_dict" and loaders.is_torchscript(path):
        facts["format"] = fmt = "torchscript"
    if fmt == "state_dict":
        network = loaders.build_network(facts["architecture"])
        loaders.into_network(network, loaders.read_state_dict(path), path, "cpu")
    elif fmt == "torchscript":
        loaders.jit_load(path, "cpu")
    elif fmt == "onnx":
        loaders.check_onnx(path)
    else:
        loaders.load_bundle_folder(path, "cpu")

