"""Safe model loaders: every file is sha256-verified first, and nothing untrusted is unpickled.

- ``state_dict``: the MONAI network named by the manifest's ``architecture`` is built, then
  weights are read with ``torch.load(weights_only=True)``.
- ``torchscript``: ``torch.jit.load`` (code is TorchScript, not pickled Python objects).
- ``onnx``: an onnxruntime session that takes and returns numpy arrays or torch tensors;
  loading it imports no torch (a new process loads the tumour click network in a fraction
  of the time ``import torch`` takes).
- ``monai_bundle``: ``configs/inference.json`` gives ``network_def``; only MONAI classes may
  be instantiated (no ``$`` expressions, no ``%`` macros, no foreign ``_target_``), weights
  come from ``models/model.pt`` (weights only) or ``models/model.ts``.
- ``npz``: the named arrays of a model that is no network (a logistic regression), read by
  :func:`read_arrays` with ``numpy.load(allow_pickle=False)``; torch is not imported.
"""

from __future__ import annotations

import zipfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from mskai.errors import ModelError
from mskai.models.manifest import PARAMETER_FORMAT, ModelEntry, first_line, verify

BUNDLE_CONFIGS = ("inference.json", "inference.yaml", "inference.yml")
MAX_CONFIG_BYTES = 4 << 20  # a bundle config is a few KB


def load_model(entry: ModelEntry, device: Any = "cpu") -> Callable:
    """A callable ``(N, C, X, Y, Z) tensor -> (N, K, X, Y, Z) tensor`` in eval mode.

    The sha256 check always runs before the file is opened by any deserialiser. An ``onnx``
    model also takes numpy arrays (:meth:`OnnxModel.numpy`), and loads without torch.
    """
    if entry.format == PARAMETER_FORMAT:
        raise ModelError(f"model {entry.id} holds the parameters of a model that is no "
                         "network; its own module reads them (loaders.read_arrays).")
    verify(entry)
    if entry.format == "onnx":
        return OnnxModel(entry.path, str(device))
    import torch

    device = torch.device(device)
    loaders = {"state_dict": _load_state_dict_model, "torchscript": _load_torchscript,
               "monai_bundle": _load_bundle}
    return loaders[entry.format](entry, device)


def build_network(architecture: Mapping[str, Any]):
    """A MONAI network from ``{"type": "monai.UNet", "kwargs": {...}}`` (MONAI nets only)."""
    import monai.networks.nets as nets

    kind = str(architecture.get("type", ""))
    name = kind.removeprefix("monai.networks.nets.").removeprefix("monai.")
    cls = getattr(nets, name, None) if name.isidentifier() else None
    if not kind.startswith("monai.") or cls is None or not isinstance(cls, type):
        raise ModelError(f"architecture type {kind!r} is not a network of "
                         "monai.networks.nets; use e.g. 'monai.UNet' in the manifest.")
    try:
        return cls(**dict(architecture.get("kwargs", {})))
    except (TypeError, ValueError, AssertionError) as exc:
        raise ModelError(f"cannot build {kind} from the manifest's kwargs "
                         f"({first_line(exc)}); fix the architecture entry.") from None


def read_state_dict(path: Path, device: Any = "cpu") -> dict[str, Any]:
    """Tensors of a weights file, refusing anything that needs real unpickling."""
    import pickle

    import torch

    if is_torchscript(path):
        raise ModelError(f"{path} is a TorchScript archive, not a state dict; declare its "
                         "format as 'torchscript'.")
    try:
        data = torch.load(path, map_location=device, weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, ValueError, TypeError,
            AttributeError, KeyError, IndexError, OSError) as exc:
        raise ModelError(f"{path} holds pickled Python objects (or is not a weights file) "
                         "and cannot be loaded safely; save model.state_dict() or export "
                         "TorchScript/ONNX instead.") from exc
    return _unwrap_state_dict(data, path)


def read_arrays(entry: ModelEntry) -> dict[str, Any]:
    """The named arrays of an ``npz`` entry, after the sha256 check; never unpickled, and
    torch is not imported (a CT run with no network then starts without it)."""
    import numpy as np

    if entry.format != PARAMETER_FORMAT:
        raise ModelError(f"model {entry.id} has format {entry.format!r}; its parameters must "
                         f"be saved as {PARAMETER_FORMAT!r} (numpy.savez), fix the manifest.")
    verify(entry)
    try:
        with np.load(entry.path, allow_pickle=False) as data:
            return {name: np.array(data[name]) for name in data.files}
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as exc:
        raise ModelError(f"{entry.path} is not a numpy .npz of plain arrays "
                         f"({first_line(exc)}); save the parameters with numpy.savez.") from None


def _unwrap_state_dict(data: Any, path: Path) -> dict[str, Any]:
    """Accept a plain state dict or one nested under ``state_dict``/``model``/``network``."""
    import torch

    if isinstance(data, Mapping):
        if data and all(isinstance(v, torch.Tensor) for v in data.values()):
            return dict(data)
        for key in ("state_dict", "model", "network"):
            if isinstance(data.get(key), Mapping):
                return _unwrap_state_dict(data[key], path)
    raise ModelError(f"{path} does not contain a state dict of tensors; save "
                     "model.state_dict() instead.")


def is_torchscript(path: Path) -> bool:
    """True for a TorchScript archive (a zip holding ``constants.pkl`` and ``code/``)."""
    if not Path(path).is_file() or not zipfile.is_zipfile(path):
        return False
    try:
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
    except (zipfile.BadZipFile, OSError, ValueError):
        return False
    return any(n.endswith("/constants.pkl") for n in names) and any("/code/" in n
                                                                     for n in names)


def into_network(network, state: dict[str, Any], path: Path, device):
    """``network`` with the weights ``state`` loaded, in eval mode on ``device``."""
    try:
        network.load_state_dict(state)
    except (RuntimeError, ValueError, TypeError) as exc:
        raise ModelError(f"weights in {path} do not fit the declared architecture "
                         f"({first_line(exc)}); fix the manifest's "
                         "architecture.") from None
    return network.to(device).eval()


_into_network = into_network


def _load_state_dict_model(entry: ModelEntry, device):
    network = build_network(entry.architecture or {})
    return _into_network(network, read_state_dict(entry.path, device), entry.path, device)


def _load_torchscript(entry: ModelEntry, device):
    return _jit_load(entry.path, device)


def jit_load(path: Path, device):
    """A TorchScript module; ModelError (one line) for anything that is not TorchScript.

    TorchScript archives hold TorchScript code and tensors, read by torch's restricted
    unpickler; a plain ``torch.save`` pickle is refused here, never unpickled.
    """
    import warnings

    import torch

    if not is_torchscript(path):
        raise ModelError(f"{path} is not a TorchScript archive (no code/ and constants.pkl "
                         "inside); re-export it with torch.jit.save.")
    try:
        with warnings.catch_warnings():  # torch 2.13 marks jit.load deprecated; it still works
            warnings.simplefilter("ignore", DeprecationWarning)
            return torch.jit.load(str(path), map_location=device).eval()
    except Exception as exc:  # torch raises RuntimeError, ValueError, KeyError, ...
        raise ModelError(f"{path} is not a valid TorchScript file ({first_line(exc)}); "
                         "re-export it with torch.jit.save.") from None


_jit_load = jit_load


def check_onnx(path: Path) -> None:
    """ModelError (one line) unless ``path`` parses as ONNX and passes onnx.checker.

    External tensor data is not followed (a model file must not read other files).
    """
    try:
        import onnx
    except ImportError:  # onnxruntime alone: a session parses and checks the graph too
        OnnxModel(Path(path))
        return
    try:
        model = onnx.load(str(path), load_external_data=False)
        onnx.checker.check_model(model)
    except Exception as exc:  # protobuf DecodeError, onnx ValidationError, ...
        raise ModelError(f"{path} is not a valid ONNX model ({first_line(exc)}); re-export "
                         "it with torch.onnx.export.") from None
    if not model.graph.input or not model.graph.output:
        raise ModelError(f"{path} is an ONNX model without graph inputs or outputs; "
                         "re-export it with torch.onnx.export.")


class OnnxModel:
    """An onnxruntime session that behaves like a torch module (tensor in, tensor out) and
    also runs on numpy arrays (:meth:`numpy`) without importing torch.

    ``device``: ``"cpu"``, or ``"cuda"``/``"cuda:N"`` (or a ``torch.device``), which uses
    onnxruntime's CUDA provider where it is installed. Idle worker threads sleep instead of
    spinning, so they leave the core to the pipeline's second thread
    (:mod:`mskai.background`).
    """

    def __init__(self, path: Path, device: Any = "cpu") -> None:
        import onnxruntime as ort

        providers = ["CPUExecutionProvider"]
        if (str(device).startswith("cuda")
                and "CUDAExecutionProvider" in ort.get_available_providers()):
            providers.insert(0, "CUDAExecutionProvider")
        options = ort.SessionOptions()
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        try:
            self.session = ort.InferenceSession(str(path), options, providers=providers)
        except Exception as exc:  # onnxruntime raises its own untyped errors
            raise ModelError(f"{path} is not a valid ONNX model ({first_line(exc)}); "
                             "re-export it.") from None
        self.path = Path(path)
        self.input_name = self.session.get_inputs()[0].name

    def numpy(self, x):
        """The first output for the float32 array ``x`` (N, C, ...); ModelError (one line)
        when the model cannot take it, e.g. a user's model built for other channels."""
        import numpy as np

        batch = np.ascontiguousarray(x, dtype=np.float32)
        try:
            return self.session.run(None, {self.input_name: batch})[0]
        except Exception as exc:  # onnxruntime raises its own untyped errors
            expected = list(self.session.get_inputs()[0].shape)
            raise ModelError(f"the ONNX model {self.path.name} cannot run on an input of "
                             f"shape {list(batch.shape)} (it expects {expected}: "
                             f"{first_line(exc)}); use a model exported for this task's "
                             "inputs.") from None

    def __call__(self, x):
        import torch

        out = self.numpy(x.detach().to("cpu", torch.float32).numpy())
        return torch.from_numpy(out).to(x.device)

    def eval(self) -> OnnxModel:
        return self


def _load_bundle(entry: ModelEntry, device):
    return load_bundle_folder(entry.path, device)


def load_bundle_folder(folder: Path, device: Any = "cpu"):
    """The network of a MONAI bundle folder (call only after its sha256 was verified)."""
    import torch

    device = torch.device(device)
    weights, script = folder / "models" / "model.pt", folder / "models" / "model.ts"
    config = next((folder / "configs" / n for n in BUNDLE_CONFIGS
                   if (folder / "configs" / n).is_file()), None)
    if weights.is_file() and config is not None:
        network = bundle_network(config)
        return _into_network(network, read_state_dict(weights, device), weights, device)
    if script.is_file():
        return _jit_load(script, device)
    raise ModelError(f"MONAI bundle {folder} has neither configs/inference.json with "
                     "models/model.pt nor models/model.ts; check the bundle layout.")


def bundle_network(config_path: Path):
    """Instantiate ``network_def`` of a bundle config after checking it is plain MONAI."""
    from monai.bundle import ConfigParser

    check_config_file(config_path)
    parser = ConfigParser()
    try:
        parser.read_config(str(config_path))
    except Exception as exc:  # json/yaml errors of the config file
        raise ModelError(f"{config_path} cannot be read ({first_line(exc)}); fix the bundle "
                         "config.") from None
    if "network_def" not in parser:
        raise ModelError(f"{config_path} has no 'network_def'; the bundle cannot be built "
                         "without it (or ship models/model.ts).")
    check_safe_config(parser.get("network_def"), parser, str(config_path))
    try:
        return parser.get_parsed_content("network_def")
    except Exception as exc:  # MONAI wraps errors of the instantiated class
        raise ModelError(f"network_def in {config_path} cannot be built ({first_line(exc)}); "
                         "fix the bundle config.") from None


def check_config_file(config_path: Path) -> None:
    """Refuse an oversized bundle config, and YAML anchors/aliases before MONAI expands them.

    Nested YAML aliases ("billion laughs") expand a few hundred bytes into gigabytes.
    """
    size = config_path.stat().st_size
    if size > MAX_CONFIG_BYTES:
        raise ModelError(f"{config_path} is {size:,} bytes, more than the "
                         f"{MAX_CONFIG_BYTES // 2**20} MiB a bundle config needs; fix the "
                         "bundle.")
    if config_path.suffix.lower() not in (".yaml", ".yml"):
        return
    import yaml

    try:
        for event in yaml.parse(config_path.read_text(encoding="utf-8"),
                                Loader=yaml.SafeLoader):
            if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None):
                raise ModelError(f"{config_path} uses YAML anchors or aliases (&name / "
                                 "*name), which are not allowed in a bundle config; write "
                                 "the values out or use MONAI '@id' references.")
    except yaml.YAMLError as exc:
        raise ModelError(f"{config_path} is not valid YAML ({first_line(exc)}); fix the "
                         "bundle config.") from None
    except UnicodeDecodeError:
        raise ModelError(f"{config_path} is not UTF-8 text; fix the bundle config.") from None


def check_safe_config(node: Any, parser, where: str, seen: set[str] | None = None) -> None:
    """Refuse config that would run code: ``$`` expressions, ``%`` macros, non-MONAI targets.

    ``@id`` references are followed and checked the same way.
    """
    seen = set() if seen is None else seen
    if isinstance(node, Mapping):
        for key, value in node.items():
            if key == "_target_":
                _check_target(value, where)
            elif key == "_mode_" and value != "default":
                raise ModelError(f"'_mode_: {value}' in {where} is not allowed; only plain "
                                 "instantiation of MONAI classes is.")
            check_safe_config(value, parser, where, seen)
    elif isinstance(node, list | tuple):
        for value in node:
            check_safe_config(value, parser, where, seen)
    elif isinstance(node, str):
        if node.startswith(("$", "%")):
            raise ModelError(f"network_def in {where} uses the expression {node[:40]!r}, "
                             "which would execute code; export the network as TorchScript "
                             "(models/model.ts) instead.")
        if node.startswith("@"):
            ref = node[1:]
            if ref not in parser:  # e.g. relative ids: resolved later, so unchecked here
                raise ModelError(f"network_def in {where} refers to {node!r}, which is not "
                                 "an id of the config; use plain values or absolute ids.")
            if ref not in seen:
                seen.add(ref)
                check_safe_config(parser.get(ref), parser, where, seen)


def _check_target(target: Any, where: str) -> None:
    """Only classes from ``monai.networks`` may be named by ``_target_``."""
    if not _is_network_class(target):
        raise ModelError(f"_target_ {target!r} in {where} is not a class of monai.networks; "
                         "only MONAI networks may be instantiated from a bundle.")


def _is_network_class(target: Any) -> bool:
    import importlib

    from monai.bundle.config_item import ComponentLocator

    if not isinstance(target, str) or not target.replace(".", "").replace("_", "").isalnum():
        return False
    if "." in target:
        module_name, _, name = target.rpartition(".")
    else:
        found = ComponentLocator().get_component_module_name(target)
        if not isinstance(found, str):  # unknown, or ambiguous between modules
            return False
        module_name, name = found, target
    if not module_name.startswith("monai.networks."):
        return False
    return isinstance(getattr(importlib.import_module(module_name), name, None), type)
