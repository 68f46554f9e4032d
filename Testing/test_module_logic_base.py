"""The shared module-logic base (parameter node, input checks, tables, cancel) on real MRML,
and the first-use dependency installer of the MSKAI hidden module."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parent.parent
for _module in ("FractureDetect", "CartilageQuant", "TumorSeg"):
    if str(REPO / _module) not in sys.path:
        sys.path.insert(0, str(REPO / _module))

pytest.importorskip("slicer", reason="slicer-core is not installed")

from mskai.errors import CancelledError, InputError  # noqa: E402


@pytest.fixture
def scene():
    from slicer import vtkMRMLScene

    scene = vtkMRMLScene()
    yield scene
    scene.Clear(1)


def add_volume(scene, shape=(8, 12, 10), spacing=(0.8, 0.8, 2.0), name="synthetic"):
    """A scalar volume with an oblique IJK-to-RAS matrix, from a (k, j, i) array."""
    import vtk
    from slicer import util

    node = scene.AddNewNodeByClass("vtkMRMLScalarVolumeNode", name)
    node.SetSpacing(*spacing)
    node.SetOrigin(10.0, -20.0, 5.0)
    angle = np.deg2rad(20)
    directions = vtk.vtkMatrix4x4()
    for r, row in enumerate([[np.cos(angle), -np.sin(angle), 0], [np.sin(angle), np.cos(angle), 0],
                             [0, 0, 1]]):
        for c, value in enumerate(row):
            directions.SetElement(r, c, value)
    node.SetIJKToRASDirectionMatrix(directions)
    util.updateVolumeFromArray(node, np.zeros(shape, dtype=np.int16))
    return node


def ras_of_ijk(volume, ijk):
    import vtk

    matrix = vtk.vtkMatrix4x4()
    volume.GetIJKToRASMatrix(matrix)
    return matrix.MultiplyPoint((*ijk, 1.0))[:3]


# --- shared base -----------------------------------------------------------------------------


def test_parameter_node_is_a_tagged_singleton(scene):
    from FractureDetectLib.logic import FractureDetectLogic
    from TumorSegLib.logic import TumorSegLogic

    node = FractureDetectLogic(scene).getParameterNode()
    assert node.IsA("vtkMRMLScriptedModuleNode")
    assert node.GetSingletonTag() == "FractureDetect"
    assert node.GetAttribute("ModuleName") == "FractureDetect"
    assert FractureDetectLogic(scene).getParameterNode() is node
    assert TumorSegLogic(scene).getParameterNode() is not node


def test_logic_needs_a_scene_outside_slicer():
    from CartilageQuantLib.logic import CartilageQuantLogic

    with pytest.raises(RuntimeError, match="scene"):
        CartilageQuantLogic().getParameterNode()


@pytest.mark.parametrize("bad", ["none", "label", "empty", "flat", "model"])
def test_volume_validation(scene, bad):
    from FractureDetectLib.logic import FractureDetectLogic

    node = {
        "none": lambda: None,
        "label": lambda: scene.AddNewNodeByClass("vtkMRMLLabelMapVolumeNode", "labels"),
        "empty": lambda: scene.AddNewNodeByClass("vtkMRMLScalarVolumeNode", "empty"),
        "flat": lambda: add_volume(scene, shape=(1, 12, 10)),
        "model": lambda: scene.AddNewNodeByClass("vtkMRMLModelNode", "model"),
    }[bad]()
    with pytest.raises(InputError):
        FractureDetectLogic(scene).run(node)


def test_merge_policy_choices():
    from MSKAILib.module_logic import MergePolicy, MSKAIModuleLogic

    assert [p.label() for p in MergePolicy] == ["Replace", "Fill empty only",
                                                "Skip edited segments"]
    assert MSKAIModuleLogic.mergePolicy("fill_empty") is MergePolicy.FILL_EMPTY
    with pytest.raises(InputError, match="replace, fill_empty, skip_edited"):
        MSKAIModuleLogic.mergePolicy("overwrite")


def test_results_table(scene):
    from CartilageQuantLib.logic import CartilageQuantLogic

    logic = CartilageQuantLogic(scene)
    volume = add_volume(scene)
    table = logic.fillTable(logic.describe(volume, "surface_normal"))
    assert table.GetNumberOfRows() == 5
    rows = {table.GetCellText(r, 0): table.GetCellText(r, 1) for r in range(5)}
    assert rows["size"] == "10x12x8" and rows["thickness_method"] == "surface_normal"
    assert logic.fillTable({"a": 1}, table) is table and table.GetNumberOfRows() == 1


# --- the three logics ------------------------------------------------------------------------


def test_fracture_roi_and_wrong_output_type(scene):
    from FractureDetectLib.logic import FractureDetectLogic

    logic = FractureDetectLogic(scene)
    volume = add_volume(scene)
    roi = scene.AddNewNodeByClass("vtkMRMLMarkupsROINode", "box")
    assert logic.describe(volume, roi)["roi"] == "box"
    with pytest.raises(InputError, match="region of interest"):
        logic.run(volume, roiNode=scene.AddNewNodeByClass("vtkMRMLMarkupsFiducialNode"))
    with pytest.raises(InputError, match="output segmentation"):
        logic.run(volume, segmentationNode=add_volume(scene, name="not a segmentation"))


def test_cancel_stops_the_run(scene):
    from CartilageQuantLib.logic import CartilageQuantLogic

    with pytest.raises(CancelledError):
        CartilageQuantLogic(scene).run(add_volume(scene), cancel=lambda: True)


def test_tumor_margin_and_prompt_types(scene):
    from TumorSegLib.logic import TumorSegLogic

    logic = TumorSegLogic(scene)
    volume = add_volume(scene)
    clicks = scene.AddNewNodeByClass("vtkMRMLMarkupsFiducialNode")
    clicks.AddControlPoint(*ras_of_ijk(volume, (5, 6, 4)))
    with pytest.raises(InputError, match="margin"):
        logic.run(volume, clicks, marginMm=-1)
    with pytest.raises(InputError, match="background clicks"):
        logic.run(volume, clicks, negativePromptsNode=scene.AddNewNodeByClass(
            "vtkMRMLMarkupsLineNode"))
    negatives = scene.AddNewNodeByClass("vtkMRMLMarkupsFiducialNode")
    negatives.AddControlPoint(0, 0, 0)
    assert logic.describe(volume, clicks, negatives, 5.0)["negative_clicks"] == 1


# --- dependencies ----------------------------------------------------------------------------


def test_requirements_file_and_import_names():
    from MSKAILib.dependencies import import_name, read_requirements

    reqs = read_requirements()
    assert any(r.startswith("monai") for r in reqs) and any(r.startswith("torch") for r in reqs)
    assert all("#" not in r for r in reqs)
    assert import_name("scikit-image>=0.24") == "skimage"
    assert import_name("highdicom==0.28.*") == "highdicom"
    assert import_name("pyradiomics==3.0.1") == "radiomics"


def test_slicer_installs_what_the_shipped_models_need():
    """Every format in the manifest loads in Slicer: ONNX needs onnxruntime (the TumorSeg
    click network), state dicts and TorchScript need torch (and MONAI for state dicts)."""
    from MSKAILib.dependencies import import_name, read_requirements

    from mskai.models.manifest import PARAMETER_FORMAT, load_manifest

    needs = {"onnx": {"onnxruntime"}, "torchscript": {"torch"}, "state_dict": {"torch", "monai"},
             PARAMETER_FORMAT: set()}
    installed = {import_name(r) for r in read_requirements()}
    for entry in load_manifest():
        assert needs[entry.format] <= installed, (entry.id, entry.format)


def test_ensure_dependencies_asks_before_installing():
    from MSKAILib.dependencies import ensure_dependencies

    installed = {"numpy"}
    asked: list[str] = []
    calls: list[list[str]] = []

    def confirm(message: str) -> bool:
        asked.append(message)
        return False

    def install(reqs: list[str]) -> None:
        calls.append(reqs)
        installed.update(r.split(">")[0].split("=")[0] for r in reqs)

    reqs = ["numpy>=2", "monai==1.6.1", "scikit-image>=0.24"]
    check = installed.__contains__
    assert ensure_dependencies(confirm, install, reqs, check) is False
    assert calls == [] and "monai==1.6.1" in asked[0] and "numpy" not in asked[0]

    assert ensure_dependencies(lambda m: True, install, reqs, check) is False  # skimage != name
    assert calls == [["monai==1.6.1", "scikit-image>=0.24"]]
    installed.add("skimage")
    assert ensure_dependencies(confirm, install, reqs, check) is True
    assert len(asked) == 1  # nothing missing: no question


# --- the Python that runs module jobs -------------------------------------------------------


def test_python_launcher_prefers_pythonslicer(tmp_path, monkeypatch):
    import os

    from MSKAILib.python_launcher import findPythonLauncher

    launcher = tmp_path / "bin" / ("PythonSlicer.exe" if os.name == "nt" else "PythonSlicer")
    launcher.parent.mkdir()
    launcher.write_text("#!/bin/sh\n")
    launcher.chmod(0o755)
    slicer_app = tmp_path / "Slicer"
    slicer_app.write_text("")
    assert findPythonLauncher(str(tmp_path), executable=str(slicer_app)) == str(launcher)
    monkeypatch.setenv("PATH", "")
    # The Slicer application itself is never used as the job's Python.
    assert findPythonLauncher(None, executable=str(slicer_app)) is None
    assert findPythonLauncher(None, executable=sys.executable) == sys.executable


def test_subprocess_runner_factory_makes_a_new_runner_per_job(monkeypatch):
    from MSKAILib.python_launcher import subprocessRunnerFactory

    from mskai.runner.subprocess_runner import SubprocessRunner

    factory = subprocessRunnerFactory(None, executable=sys.executable)
    first, second = factory(), factory()
    assert isinstance(first, SubprocessRunner) and first is not second
    monkeypatch.setenv("PATH", "")
    assert subprocessRunnerFactory(None, executable="/nowhere/Slicer") is None
