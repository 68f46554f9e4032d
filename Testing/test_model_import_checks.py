"""``mskai models import``: a model is verified before it is registered, or nothing is written.

At import the copy of the model must match a ``sha256`` its sidecar gives and must load on
the CPU as its format: ONNX parses and passes onnx.checker, TorchScript loads with
torch.jit.load (a plain ``torch.save`` pickle is never unpickled), a bundle's network_def
holds no ``$`` expression. A refusal is exit 2 with one line; the user model folder is left
as it was. A user manifest of the wrong structure is exit 2 naming the file and the field,
and loader messages stay one line.
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import pytest
import torch

from mskai.cli import main as cli_main
from mskai.errors import ModelError
from mskai.models.loaders import load_model
from mskai.models.manifest import SCHEMA, parse_entry, read_manifest, sha256_path

ARCH = {"type": "monai.UNet",
        "kwargs": {"spatial_dims": 3, "in_channels": 1, "out_channels": 2,
                   "channels": [4, 8], "strides": [2], "num_res_units": 1}}
IMPORT = ("--task", "bone_seg", "--modality", "CT")


@pytest.fixture(scope="module")
def network():
    from mskai.models.loaders import build_network

    torch.manual_seed(0)
    return build_network(ARCH).eval()


def models(capsys, store: Path, *args) -> tuple[int, list[str]]:
    capsys.readouterr()
    code = cli_main(["models", "--model-dir", str(store), *map(str, args)])
    return code, capsys.readouterr().err.splitlines()


def assert_refused_and_nothing_written(code, err, store: Path, *words: str) -> None:
    assert code == 2
    assert len(err) == 1, err
    for word in words:
        assert word in err[0], err[0]
    assert not store.exists(), sorted(p.name for p in store.rglob("*"))


def torchscript(network, path: Path) -> Path:
    torch.jit.trace(network, torch.zeros(1, 1, 16, 16, 16)).save(str(path))
    return path


def bundle(folder: Path, network, network_def=None, config_name="inference.json",
           config_text=None) -> Path:
    (folder / "configs").mkdir(parents=True)
    (folder / "models").mkdir()
    (folder / "configs" / "metadata.json").write_text(json.dumps(
        {"name": "tiny", "version": "1.0.0"}))
    text = config_text or json.dumps(
        {"network_def": network_def or {"_target_": "UNet", **ARCH["kwargs"]}})
    (folder / "configs" / config_name).write_text(text)
    torch.save(network.state_dict(), folder / "models" / "model.pt")
    return folder


# ----- sidecar sha256 ---------------------------------------------------------------------

def test_a_sidecar_sha256_that_does_not_match_the_file_is_refused(tmp_path, network,
                                                                    capsys):
    model = torchscript(network, tmp_path / "m.ts")
    Path(f"{model}.json").write_text(json.dumps({"sha256": "ab" * 32}))
    code, err = models(capsys, tmp_path / "store", "import", model, *IMPORT)
    assert_refused_and_nothing_written(code, err, tmp_path / "store",
                                       "m.ts does not match its sha256")


def test_a_sidecar_sha256_that_matches_is_kept(tmp_path, network, capsys):
    model = torchscript(network, tmp_path / "m.ts")
    Path(f"{model}.json").write_text(json.dumps({"sha256": sha256_path(model).upper()}))
    code, _ = models(capsys, tmp_path / "store", "import", model, *IMPORT)
    assert code == 0
    assert read_manifest(tmp_path / "store" / "manifest.json")[0].sha256 == sha256_path(model)


# ----- the file must be what its format says ---------------------------------------------

def test_a_garbage_onnx_file_is_refused(tmp_path, capsys):
    model = tmp_path / "m.onnx"
    model.write_bytes(b"this is not a protobuf \x00\xff" * 10)
    code, err = models(capsys, tmp_path / "store", "import", model, *IMPORT)
    assert_refused_and_nothing_written(code, err, tmp_path / "store", "not a valid ONNX")


def test_a_zip_pretending_to_be_torchscript_is_refused(tmp_path, capsys):
    model = tmp_path / "m.ts"
    with zipfile.ZipFile(model, "w") as archive:
        archive.writestr("archive/constants.pkl", b"junk")
        archive.writestr("archive/code/__torch__.py", b"junk")
        archive.writestr("archive/data.pkl", b"junk")
    code, err = models(capsys, tmp_path / "store", "import", model, *IMPORT)
    assert_refused_and_nothing_written(code, err, tmp_path / "store",
                                       "not a valid TorchScript")


class _Evil:
    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self):
        return (exec, (f"open({self.marker!r}, 'w').close()",))


def test_a_torch_save_pickle_named_ts_is_refused_and_never_unpickled(tmp_path, capsys):
    marker = tmp_path / "code_ran"
    model = tmp_path / "m.ts"
    torch.save({"weight": _Evil(marker)}, model)
    code, err = models(capsys, tmp_path / "store", "import", model, *IMPORT)
    assert_refused_and_nothing_written(code, err, tmp_path / "store",
                                       "not a TorchScript archive")
    assert not marker.exists()


def test_a_bundle_whose_network_def_runs_code_is_refused_at_import(tmp_path, network,
                                                                   capsys):
    marker = tmp_path / "code_ran"
    source = bundle(tmp_path / "b", network, {
        "_target_": "UNet", **ARCH["kwargs"],
        "spatial_dims": f"$open({str(marker)!r}, 'w').close() or 3"})
    code, err = models(capsys, tmp_path / "store", "import", source, *IMPORT)
    assert_refused_and_nothing_written(code, err, tmp_path / "store", "execute code")
    assert not marker.exists()


def test_a_bundle_yaml_config_with_aliases_is_refused_at_import(tmp_path, network, capsys):
    text = "dims: &d 3\nnetwork_def: {_target_: UNet, spatial_dims: *d}\n"
    source = bundle(tmp_path / "b", network, config_name="inference.yaml", config_text=text)
    code, err = models(capsys, tmp_path / "store", "import", source, *IMPORT)
    assert_refused_and_nothing_written(code, err, tmp_path / "store", "anchors or aliases")


def test_a_failed_import_leaves_an_existing_model_folder_as_it_was(tmp_path, network,
                                                                   capsys):
    store = tmp_path / "store"
    assert models(capsys, store, "import", torchscript(network, tmp_path / "good.ts"),
                  *IMPORT)[0] == 0
    before = {p.relative_to(store): p.read_bytes() for p in store.rglob("*") if p.is_file()}
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"\x00" * 100)
    assert models(capsys, store, "import", bad, *IMPORT)[0] == 2
    after = {p.relative_to(store): p.read_bytes() for p in store.rglob("*") if p.is_file()}
    assert after == before
    assert sorted(p.name for p in store.iterdir()) == ["good-1.0.0", "manifest.json"]


def test_a_sidecar_that_is_not_an_object_is_refused(tmp_path, network, capsys):
    model = torchscript(network, tmp_path / "m.ts")
    Path(f"{model}.json").write_text("[1, 2]")
    code, err = models(capsys, tmp_path / "store", "import", model, *IMPORT)
    assert_refused_and_nothing_written(code, err, tmp_path / "store", "JSON object")


def test_sidecar_fields_of_the_wrong_type_are_named(tmp_path, network, capsys):
    model = torchscript(network, tmp_path / "m.ts")
    Path(f"{model}.json").write_text(json.dumps({"labels": 5}))
    code, err = models(capsys, tmp_path / "store", "import", model, *IMPORT)
    assert_refused_and_nothing_written(code, err, tmp_path / "store", "field 'labels' is 5")


# ----- the user manifest's structure ------------------------------------------------------

@pytest.mark.parametrize("manifest, words", [
    ({"schema": SCHEMA, "models": 5}, "field 'models' is 5 (a number), but must be a list"),
    ({"schema": SCHEMA, "models": ["knee"]}, "is a text, not a JSON object"),
    ({"schema": SCHEMA, "models": [{"id": "m", "labels": 5}]}, "field 'labels' is 5"),
    ({"schema": SCHEMA, "models": [{"id": "m", "version": 1}]}, "field 'version' is 1"),
    ({"schema": SCHEMA, "models": [{"id": "m", "input": {"spacing_mm": 5}}]},
     "field 'input.spacing_mm' is 5"),
    ({"schema": SCHEMA, "models": [{"id": "m", "input": {"patch_size": ["a", 2, 3]}}]},
     "'input.patch_size' must hold only numbers"),
])
def test_a_user_manifest_of_the_wrong_structure_names_the_file_and_field(tmp_path, capsys,
                                                                         manifest, words):
    store = tmp_path / "store"
    store.mkdir()
    (store / "manifest.json").write_text(json.dumps(manifest))
    code, err = models(capsys, store, "list")
    assert code == 2
    assert len(err) == 1, err
    assert str(store / "manifest.json") in err[0] and words in err[0], err[0]


# ----- loader messages are one line -------------------------------------------------------

def test_loader_errors_are_one_line(tmp_path, network):
    fake = tmp_path / "fake.ts"
    with zipfile.ZipFile(fake, "w") as archive:
        archive.writestr("archive/constants.pkl", b"junk")
        archive.writestr("archive/code/x.py", b"junk")
    wrong = tmp_path / "wrong.pt"
    torch.save({"not.a.layer": torch.zeros(3)}, wrong)
    # MONAI's instantiation error is two lines ("Failed to instantiate ...\n set '_mode_...")
    unbuildable = tmp_path / "b"
    (unbuildable / "configs").mkdir(parents=True)
    (unbuildable / "models").mkdir()
    (unbuildable / "configs" / "inference.json").write_text(json.dumps(
        {"network_def": {"_target_": "UNet", "spatial_dims": 3}}))
    torch.save(network.state_dict(), unbuildable / "models" / "model.pt")
    for path, fmt in ((fake, "torchscript"), (wrong, "state_dict"),
                      (unbuildable, "monai_bundle")):
        entry = parse_entry({"id": "m", "version": "1", "task": "bone_seg", "modality": "CT",
                             "format": fmt, "file": path.name, "sha256": sha256_path(path),
                             "architecture": ARCH}, tmp_path)
        with pytest.raises(ModelError) as raised:
            load_model(entry)
        assert "\n" not in str(raised.value), str(raised.value)
