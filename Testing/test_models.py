"""Model manifest, sha256 verification, safe loaders, and ``mskai models`` commands."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from mskai.cli import main as cli_main
from mskai.errors import ModelError
from mskai.models import loaders
from mskai.models.loaders import load_model
from mskai.models.manifest import (
    PACKAGED_MANIFEST,
    SCHEMA,
    load_manifest,
    parse_entry,
    read_manifest,
    sha256_path,
    verify,
    write_manifest,
)
from mskai.models.registry import user_model_dir

ARCH = {"type": "monai.UNet",
        "kwargs": {"spatial_dims": 3, "in_channels": 1, "out_channels": 2,
                   "channels": [4, 8], "strides": [2], "num_res_units": 1}}
INPUT = {"spacing_mm": None, "intensity": {"type": "none"}, "patch_size": [16, 16, 16]}


def tiny_network():
    from mskai.models.loaders import build_network

    torch.manual_seed(0)
    return build_network(ARCH).eval()


def entry_for(path: Path, fmt: str, **extra):
    data = {"id": f"tiny_{fmt}", "version": "1.0.0", "task": "bone_seg", "modality": "CT",
            "format": fmt, "file": path.name, "sha256": sha256_path(path), "input": INPUT,
            "labels": {"1": "bone"}, **extra}
    if fmt == "state_dict":
        data.setdefault("architecture", ARCH)
    return parse_entry(data, path.parent)


def make_bundle(folder: Path, network, network_def: dict | None = None) -> Path:
    (folder / "configs").mkdir(parents=True)
    (folder / "models").mkdir()
    meta = {"name": "tiny bone", "version": "0.2.0", "license": "Apache-2.0",
            "network_data_format": {
                "inputs": {"image": {"num_channels": 1, "spatial_shape": [16, 16, 16]}},
                "outputs": {"pred": {"num_channels": 2,
                                     "channel_def": {"0": "background", "1": "Bone"}}}}}
    (folder / "configs" / "metadata.json").write_text(json.dumps(meta))
    net_def = network_def or {"_target_": "UNet", **ARCH["kwargs"]}
    (folder / "configs" / "inference.json").write_text(json.dumps({"network_def": net_def}))
    torch.save(network.state_dict(), folder / "models" / "model.pt")
    return folder


@pytest.fixture(scope="module")
def network():
    return tiny_network()


@pytest.fixture(scope="module")
def x():
    torch.manual_seed(1)
    return torch.randn(1, 1, 16, 16, 16)


class _Evil:
    """Unpickling this runs code: it creates the file named in ``marker``."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self):
        return (exec, (f"open({self.marker!r}, 'w').close()",))


# ----- manifest ---------------------------------------------------------------------------

def test_packaged_manifest_is_valid_and_every_entry_verifies():
    data = json.loads(PACKAGED_MANIFEST.read_text())
    assert data["schema"] == SCHEMA
    for entry in load_manifest():
        verify(entry)


def test_user_manifest_adds_to_the_packaged_one(tmp_path, network):
    torch.save(network.state_dict(), tmp_path / "w.pt")
    user = entry_for(tmp_path / "w.pt", "state_dict")
    write_manifest(tmp_path / "manifest.json", [user])
    entries = load_manifest(user_dir=tmp_path)
    assert [e.id for e in entries] == [e.id for e in load_manifest()] + ["tiny_state_dict"]
    reread = read_manifest(tmp_path / "manifest.json")[0]
    assert reread == user and reread.path == (tmp_path / "w.pt").resolve()


@pytest.mark.parametrize("change, words", [
    ({"format": "pickle"}, "format"),
    ({"sha256": ""}, "lacks sha256"),
    ({"architecture": None}, "needs an 'architecture'"),
    ({"input": {"intensity": {"type": "ct_window", "min": 100, "max": -100}}}, "min' < 'max"),
])
def test_bad_manifest_entries_are_refused_with_the_reason(tmp_path, change, words):
    data = {"id": "m", "version": "1", "task": "bone_seg", "modality": "CT",
            "format": "state_dict", "file": "m.pt", "sha256": "0" * 64, "architecture": ARCH}
    data.update(change)
    with pytest.raises(ModelError, match=words):
        parse_entry(data, tmp_path)


def test_folder_sha256_changes_when_any_file_in_it_changes(tmp_path, network):
    bundle = make_bundle(tmp_path / "b", network)
    before = sha256_path(bundle)
    (bundle / "configs" / "extra.json").write_text("{}")
    assert sha256_path(bundle) != before


def test_user_model_dir_argument_beats_environment_beats_home(tmp_path, monkeypatch):
    monkeypatch.delenv("MSKAI_MODEL_DIR", raising=False)
    assert user_model_dir() == Path.home() / ".mskai" / "models"
    monkeypatch.setenv("MSKAI_MODEL_DIR", str(tmp_path / "env"))
    assert user_model_dir() == tmp_path / "env"
    assert user_model_dir(tmp_path / "arg") == tmp_path / "arg"


# ----- verification before loading ------------------------------------------------------

def test_sha256_mismatch_is_refused_before_any_deserialiser_runs(tmp_path, network,
                                                                 monkeypatch):
    torch.save(network.state_dict(), tmp_path / "w.pt")
    entry = entry_for(tmp_path / "w.pt", "state_dict")
    with (tmp_path / "w.pt").open("ab") as handle:
        handle.write(b"tampered")
    calls = []
    monkeypatch.setattr(torch, "load", lambda *a, **k: calls.append("torch.load"))
    monkeypatch.setattr(torch.jit, "load", lambda *a, **k: calls.append("jit.load"))
    with pytest.raises(ModelError, match="sha256"):
        load_model(entry)
    assert calls == []


def test_missing_model_file_is_a_model_error(tmp_path, network):
    torch.save(network.state_dict(), tmp_path / "w.pt")
    entry = entry_for(tmp_path / "w.pt", "state_dict")
    (tmp_path / "w.pt").unlink()
    with pytest.raises(ModelError, match="missing"):
        load_model(entry)


def test_pickled_objects_are_never_unpickled_even_with_a_valid_sha256(tmp_path):
    marker = tmp_path / "code_ran"
    torch.save({"weight": _Evil(marker)}, tmp_path / "evil.pt")
    with pytest.raises(ModelError, match="pickled Python objects"):
        load_model(entry_for(tmp_path / "evil.pt", "state_dict"))
    assert not marker.exists()


def test_a_whole_pickled_module_is_refused(tmp_path, network):
    torch.save(network, tmp_path / "full.pt")
    with pytest.raises(ModelError, match="pickled Python objects"):
        load_model(entry_for(tmp_path / "full.pt", "state_dict"))


# ----- the four formats give the same network ---------------------------------------------

def test_all_formats_load_to_the_same_function(tmp_path, network, x):
    expected = network(x)
    torch.save(network.state_dict(), tmp_path / "w.pt")
    torch.jit.trace(network, x).save(str(tmp_path / "m.ts"))
    torch.onnx.export(network, x, str(tmp_path / "m.onnx"), dynamo=False,
                      input_names=["image"], output_names=["pred"])
    bundle = make_bundle(tmp_path / "bundle", network)
    entries = [entry_for(tmp_path / "w.pt", "state_dict"),
               entry_for(tmp_path / "m.ts", "torchscript"),
               entry_for(tmp_path / "m.onnx", "onnx"),
               entry_for(bundle, "monai_bundle")]
    for entry in entries:
        model = load_model(entry, "cpu")
        with torch.no_grad():
            out = model(x)
        assert isinstance(out, torch.Tensor) and out.shape == (1, 2, 16, 16, 16)
        torch.testing.assert_close(out, expected, atol=1e-5, rtol=1e-4, msg=entry.format)


def test_an_onnx_model_given_the_wrong_channels_says_so_in_one_line(tmp_path, network, x):
    """A user's ONNX model built for other inputs fails with the shapes, not a traceback."""
    torch.onnx.export(network, x, str(tmp_path / "m.onnx"), dynamo=False,
                      input_names=["image"], output_names=["pred"])
    model = load_model(entry_for(tmp_path / "m.onnx", "onnx"))
    assert model.numpy(x.numpy()).shape == (1, 2, 16, 16, 16)   # numpy in, numpy out
    with pytest.raises(ModelError, match=r"input of shape \[1, 6, 16, 16, 16\] "
                                         r"\(it expects \[1, 1, 16, 16, 16\]"):
        model.numpy(np.zeros((1, 6, 16, 16, 16), np.float32))


def test_bundle_without_network_def_uses_its_torchscript(tmp_path, network, x):
    folder = tmp_path / "ts_bundle"
    (folder / "configs").mkdir(parents=True)
    (folder / "models").mkdir()
    torch.jit.trace(network, x).save(str(folder / "models" / "model.ts"))
    out = load_model(entry_for(folder, "monai_bundle"))(x)
    torch.testing.assert_close(out, network(x), atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("network_def, words", [
    ({"_target_": "UNet", "spatial_dims": "$__import__('os').getpid()"}, "execute code"),
    ({"_target_": "run"}, "not a class of monai.networks"),
    ({"_target_": "builtins.eval"}, "not a class of monai.networks"),
    ({"_target_": "UNet", "_mode_": "debug"}, "_mode_"),
    ({"_target_": "UNet", "spatial_dims": "@##elsewhere"}, "not an id of the config"),
])
def test_bundle_configs_that_could_run_code_are_refused(tmp_path, network, network_def,
                                                        words):
    bundle = make_bundle(tmp_path / "b", network, network_def)
    with pytest.raises(ModelError, match=words):
        load_model(entry_for(bundle, "monai_bundle"))


def test_bundle_references_are_checked_too(tmp_path, network):
    bundle = make_bundle(tmp_path / "b", network,
                         {"_target_": "UNet", "spatial_dims": "@dims", **{
                             k: v for k, v in ARCH["kwargs"].items() if k != "spatial_dims"}})
    config = bundle / "configs" / "inference.json"
    data = json.loads(config.read_text())
    data["dims"] = "$exec('x = 1') or 3"
    config.write_text(json.dumps(data))
    with pytest.raises(ModelError, match="execute code"):
        load_model(entry_for(bundle, "monai_bundle"))


def test_architecture_must_be_a_monai_network(tmp_path):
    with pytest.raises(ModelError, match="monai.networks.nets"):
        loaders.build_network({"type": "os.system", "kwargs": {}})


# ----- mskai models list | verify | import ------------------------------------------------

def models_cli(model_dir: Path, *args: str) -> int:
    return cli_main(["models", "--model-dir", str(model_dir), *map(str, args)])


def test_import_list_and_verify_a_torchscript_model(tmp_path, network, x, capsys):
    source = tmp_path / "src" / "knee.ts"
    source.parent.mkdir()
    torch.jit.trace(network, x).save(str(source))
    Path(str(source) + ".json").write_text(json.dumps(
        {"labels": {"1": "femur"}, "input": INPUT, "licence": "CC-BY-4.0"}))
    store = tmp_path / "store"
    assert models_cli(store, "import", source, "--task", "knee_seg", "--modality", "MR") == 0
    entry = read_manifest(store / "manifest.json")[0]
    assert (entry.id, entry.format, entry.task, entry.labels) == \
        ("knee", "torchscript", "knee_seg", {1: "femur"})
    assert entry.sha256 == sha256_path(source)
    torch.testing.assert_close(load_model(entry)(x), network(x), atol=1e-5, rtol=1e-4)

    capsys.readouterr()
    assert models_cli(store, "list") == 0
    row = [line for line in capsys.readouterr().out.splitlines() if line.split()[0] == "knee"]
    assert row and row[0].split() == ["knee", "1.0.0", "knee_seg", "MR", "ok"]

    assert models_cli(store, "verify") == 0
    with entry.path.open("ab") as handle:
        handle.write(b"x")
    assert models_cli(store, "verify") == 2
    assert "knee" in capsys.readouterr().err
    models_cli(store, "list")
    assert "MISMATCH" in capsys.readouterr().out


def test_import_a_monai_bundle_reads_its_metadata(tmp_path, network, x):
    bundle = make_bundle(tmp_path / "tiny_bundle", network)
    store = tmp_path / "store"
    assert models_cli(store, "import", bundle, "--task", "bone_seg", "--modality", "CT") == 0
    entry = read_manifest(store / "manifest.json")[0]
    assert (entry.id, entry.version, entry.format, entry.labels, entry.licence) == \
        ("tiny_bone", "0.2.0", "monai_bundle", {1: "bone"}, "Apache-2.0")
    torch.testing.assert_close(load_model(entry)(x), network(x), atol=1e-5, rtol=1e-4)


def test_import_refuses_a_pickled_full_model_and_copies_nothing(tmp_path, network, capsys):
    torch.save(network, tmp_path / "full.pt")
    Path(str(tmp_path / "full.pt") + ".json").write_text(json.dumps({"architecture": ARCH}))
    store = tmp_path / "store"
    assert models_cli(store, "import", tmp_path / "full.pt", "--task", "bone_seg",
                      "--modality", "CT") == 2
    assert "pickled" in capsys.readouterr().err
    assert not store.exists()


def test_import_needs_task_and_modality(tmp_path, network, x, capsys):
    torch.jit.trace(network, x).save(str(tmp_path / "m.ts"))
    assert models_cli(tmp_path / "store", "import", tmp_path / "m.ts") == 2
    assert "--task --modality" in capsys.readouterr().err


def test_the_same_model_cannot_be_imported_twice(tmp_path, network, x, capsys):
    torch.jit.trace(network, x).save(str(tmp_path / "m.ts"))
    args = ("import", tmp_path / "m.ts", "--task", "bone_seg", "--modality", "CT")
    assert models_cli(tmp_path / "store", *args) == 0
    assert models_cli(tmp_path / "store", *args) == 2
    assert "already imported" in capsys.readouterr().err
    shutil.rmtree(tmp_path / "store")
