"""CartilageQuant logic against real MRML (slicer-core): phantoms of known thickness, the
real knee label map, re-measuring after a hand edit, thickness and change models, profile
plots, a swapped runner, and bad input that leaves the segmentation as it was."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parent.parent
if str(REPO / "CartilageQuant") not in sys.path:
    sys.path.insert(0, str(REPO / "CartilageQuant"))

pytest.importorskip("slicer", reason="slicer-core is not installed")

from mskai.errors import CancelledError, InputError  # noqa: E402
from mskai.volume import LPS_TO_RAS  # noqa: E402

KNEE_FILE = "SAG_3D_DESS_RIGHT_bones_cart_men_fib-label.nrrd"
KNEE_NAMES = ("femoral_cartilage=1,medial_tibial_cartilage=2,lateral_tibial_cartilage=3,"
              "patellar_cartilage=4,femur=5,tibia=6,patella=7,fibula=8")
PLATES = ("femoral_cartilage", "medial_tibial_cartilage", "lateral_tibial_cartilage",
          "patellar_cartilage")
TRUE_THICKNESS_MM = 2.0
GAP_MM = 3.0  # joint space between the cartilage surface and the "tibia" slab


# --- helpers ---------------------------------------------------------------------------------


def knee_phantom(thin_mm: float | None = None, tilt_deg: float = 0.0,
                 spacing=(0.5, 0.5, 0.5)):
    """The slab phantom (bone "femur" 1, cartilage 2, 2 mm thick, disc radius 10 mm) with a
    "tibia" slab (3) ``GAP_MM`` above the cartilage: the joint space width is 5 mm."""
    from phantoms.cartilage import slab
    from phantoms.grid import physical_points

    phantom = slab(TRUE_THICKNESS_MM, tilt_deg, 10.0, spacing=spacing,
                   thin_thickness_mm=thin_mm, thin_beyond_mm=3.0)
    height = physical_points(phantom.labels) @ phantom.frame_lps[2]
    labels = phantom.labels.array.copy()
    top = TRUE_THICKNESS_MM + GAP_MM
    labels[(height > top) & (height <= top + 4.0)] = 3
    return phantom, phantom.labels.with_array(labels)


def add_segments(node, masks: dict[str, np.ndarray], volume) -> None:
    from mskai.slicer_io.segmentation import add_segment, write_mask

    for index, (segment_id, mask) in enumerate(masks.items()):
        add_segment(node, segment_id, segment_id, (0.2 * index, 0.5, 0.5))
        write_mask(node, segment_id, mask, volume)


def phantom_nodes(mrml, names=("femur", "femoral_cartilage", "tibia"), **kwargs):
    """Volume node and a segmentation whose segments have the given ids (bone, cartilage,
    tibia order)."""
    from mskai.slicer_io import volume_to_node

    phantom, volume = knee_phantom(**kwargs)
    volume_node = volume_to_node(mrml.scene, volume, "phantom")
    segmentation = mrml.scene.AddNewNodeByClass("vtkMRMLSegmentationNode", "phantom seg")
    segmentation.CreateDefaultDisplayNodes()
    segmentation.SetReferenceImageGeometryParameterFromVolumeNode(volume_node)
    add_segments(segmentation, {name: volume.array == value
                                for name, value in zip(names, (1, 2, 3), strict=True)
                                if name}, volume)
    return phantom, volume, volume_node, segmentation


def rows_by(table, key: str) -> dict[str, dict]:
    from mskai.slicer_io import table_to_rows

    return {row[key]: row for row in table_to_rows(table)}


def snapshot(segmentation, volume) -> dict[str, int]:
    from mskai.slicer_io import segmentation_to_masks

    return {sid: int(mask.sum()) for sid, mask in
            segmentation_to_masks(segmentation, volume).items()}


def logic_for(mrml):
    from CartilageQuantLib.logic import CartilageQuantLogic

    return CartilageQuantLogic(mrml.scene)


# --- phantom of known thickness --------------------------------------------------------------


def test_phantom_plate_thickness_model_and_jsw(mrml):
    phantom, volume, volume_node, segmentation = phantom_nodes(
        mrml, names=("bone", "cartilage", "tibia"), tilt_deg=25.0, spacing=(0.45, 0.45, 0.6))
    before = snapshot(segmentation, volume)
    logic = logic_for(mrml)
    steps: list[float] = []
    node, plates, subregions = logic.run(
        volume_node, segmentation, labelNames={"femur": "bone", "femoral_cartilage": "cartilage"},
        progress=lambda f, m: steps.append(f))
    assert node is segmentation and snapshot(segmentation, volume) == before  # measured only
    assert steps[-1] == 1.0 and steps == sorted(steps)
    rows = rows_by(plates, "plate")
    assert set(rows) == {"femoral_cartilage", "joint_space_width"}
    femoral = rows["femoral_cartilage"]
    assert femoral["mean_thickness_mm"] == pytest.approx(TRUE_THICKNESS_MM, abs=0.1)
    assert femoral["volume_ml"] == pytest.approx(phantom.cartilage_volume_ml, rel=0.03)
    assert femoral["denuded_area_fraction"] == 0.0
    assert rows["joint_space_width"]["jsw_min_mm"] == pytest.approx(
        TRUE_THICKNESS_MM + GAP_MM, abs=0.45)
    assert plates.GetColumnTitle("jsw_min_mm") == "JSW min (mm)"
    regions = rows_by(subregions, "subregion")
    assert set(regions) == {"central_medial", "central_lateral"}
    for region in regions.values():
        assert region["mean_thickness_mm"] == pytest.approx(TRUE_THICKNESS_MM, abs=0.1)

    from CartilageQuantLib.models import THICKNESS_ARRAY, pointScalars

    models = logic.thicknessModels()
    assert set(models) == {"femoral_cartilage"}
    model = models["femoral_cartilage"]
    poly = model.GetPolyData()
    values = pointScalars(model, THICKNESS_ARRAY)
    assert len(values) == poly.GetNumberOfPoints() > 100
    assert poly.GetNumberOfPolys() > poly.GetNumberOfPoints()  # a triangulated surface
    assert values.mean() == pytest.approx(TRUE_THICKNESS_MM, abs=0.1)
    display = model.GetDisplayNode()
    assert display.GetActiveScalarName() == THICKNESS_ARRAY and display.GetScalarVisibility()
    assert tuple(display.GetScalarRange()) == (0.0, 4.0)
    assert display.GetColorNode().IsA("vtkMRMLProceduralColorNode")
    # the interface lies on the bone plane: every vertex within a voxel of height 0
    heights = (poly_points(poly) @ LPS_TO_RAS.T) @ phantom.frame_lps[2]
    assert np.abs(heights).max() < 0.6
    # a second call updates the same node; hiding hides it
    assert logic.thicknessModels()["femoral_cartilage"] is model
    logic.setThicknessModelsVisible(False)
    assert not display.GetVisibility()


def poly_points(poly) -> np.ndarray:
    from vtkmodules.util.numpy_support import vtk_to_numpy

    return vtk_to_numpy(poly.GetPoints().GetData()).astype(float)


def test_profile_plot_along_ml_and_ap(mrml):
    _, _, volume_node, segmentation = phantom_nodes(mrml)
    logic = logic_for(mrml)
    logic.run(volume_node, segmentation)
    for axis in ("AP", "ML"):
        chart = logic.thicknessProfilePlot("femoral_cartilage", axis, binMm=1.0)
        assert chart.IsA("vtkMRMLPlotChartNode") and chart.GetNumberOfPlotSeriesNodes() == 1
        series = chart.GetNthPlotSeriesNode(0)
        assert (series.GetXColumnName(), series.GetYColumnName()) == ("position_mm",
                                                                      "thickness_mm")
        from mskai.slicer_io import table_to_rows

        rows = table_to_rows(series.GetTableNode())
        # the disc is 20 mm across along any in-plane axis: 20 bins of 1 mm (+1 at the rim)
        assert 20 <= len(rows) <= 21
        positions = [r["position_mm"] for r in rows]
        assert positions == sorted(positions) and positions[0] >= -10.5
        inner = [r["thickness_mm"] for r in rows if abs(r["position_mm"]) < 8]
        assert np.mean(inner) == pytest.approx(TRUE_THICKNESS_MM, abs=0.1)
        assert logic.thicknessProfilePlot("femoral_cartilage", axis, chartNode=chart) is chart
    with pytest.raises(InputError, match="patellar_cartilage"):
        logic.thicknessProfilePlot("patellar_cartilage")
    with pytest.raises(InputError, match="AP or ML"):
        logic.thicknessProfilePlot("femoral_cartilage", "SI")


def test_change_model_of_two_time_points(mrml):
    from CartilageQuantLib.models import CHANGE_ARRAY, pointScalars

    logic = logic_for(mrml)
    phantom, _, volume_node, segmentation = phantom_nodes(mrml)
    logic.run(volume_node, segmentation)
    baseline = logic.thicknessSurfaces()["femoral_cartilage"]
    _, _, thin_node, thin_segmentation = phantom_nodes(mrml, thin_mm=1.0)
    logic.run(thin_node, thin_segmentation)
    followup = logic.thicknessSurfaces()["femoral_cartilage"]

    same = pointScalars(logic.changeModel(baseline, baseline), CHANGE_ARRAY)
    assert len(same) == len(baseline.thickness.points_ras)
    assert np.all(same == 0.0)

    model = logic.changeModel(baseline, followup)
    change = pointScalars(model, CHANGE_ARRAY)
    along_u = (baseline.thickness.points_ras @ LPS_TO_RAS.T) @ phantom.frame_lps[0]
    thinned, intact = along_u > 4.0, along_u < 2.0  # the thinned part starts at u = 3 mm
    assert np.nanmedian(change[thinned]) == pytest.approx(-1.0, abs=0.15)
    assert np.nanmedian(change[intact]) == pytest.approx(0.0, abs=0.05)
    assert np.nanmean(change[thinned]) < -0.8
    assert model.GetDisplayNode().GetActiveScalarName() == CHANGE_ARRAY
    assert tuple(model.GetDisplayNode().GetScalarRange()) == (-1.5, 1.5)
    with pytest.raises(InputError, match="follow-up"):
        logic.changeModel(baseline, None)


# --- the real knee ---------------------------------------------------------------------------


@pytest.fixture
def knee_nodes(mrml, test_data):
    """The real knee label map as volume, and its labels imported into a segmentation."""
    import slicer

    from mskai.image import read_image
    from mskai.slicer_io import volume_to_node

    path = test_data / "knee" / KNEE_FILE
    if not path.exists():
        pytest.skip("the pymskt knee label map is not present")
    volume = read_image(path)
    volume_node = volume_to_node(mrml.scene, volume, "knee")
    labelmap = volume_to_node(mrml.scene, volume.with_array(volume.array.astype(np.uint8)),
                              "knee labels", labelmap=True)
    segmentation = mrml.scene.AddNewNodeByClass("vtkMRMLSegmentationNode", "knee seg")
    segmentation.CreateDefaultDisplayNodes()
    assert slicer.vtkSlicerSegmentationsModuleLogic.ImportLabelmapToSegmentationNode(
        labelmap, segmentation)
    return volume, volume_node, segmentation


def test_real_knee_tables_and_remeasure_after_an_edit(mrml, knee_nodes):
    from mskai.slicer_io.segmentation import write_mask

    volume, volume_node, segmentation = knee_nodes
    logic = logic_for(mrml)
    _, plates, subregions = logic.run(volume_node, segmentation, labelNames=KNEE_NAMES)
    rows = rows_by(plates, "plate")
    assert list(rows) == [*PLATES, "joint_space_width"]
    for plate in PLATES:
        assert 1.0 <= rows[plate]["mean_thickness_mm"] <= 3.5, plate
        assert rows[plate]["thickness_method"] == "nearest"
    # the numbers of `mskai cartilage --labels` on this knee (Testing/test_cartilage_task.py)
    assert rows["femoral_cartilage"]["mean_thickness_mm"] == pytest.approx(2.15, abs=0.05)
    assert rows["femoral_cartilage"]["volume_ml"] == pytest.approx(11.85, abs=0.01)
    assert rows["joint_space_width"]["jsw_medial_mm"] == pytest.approx(4.0, abs=0.3)
    assert rows["joint_space_width"]["jsw_lateral_mm"] == pytest.approx(5.0, abs=0.3)
    regions = [(r["plate"], r["subregion"]) for r in _rows(subregions)]
    assert [n for p, n in regions if p == "femoral_cartilage"] == [
        "trochlea", "central_medial", "central_lateral", "posterior_medial",
        "posterior_lateral"]
    for plate in PLATES[1:3]:
        assert [n for p, n in regions if p == plate] == [
            "central", "anterior", "posterior", "internal", "external"]
    assert [n for p, n in regions if p == "patellar_cartilage"] == ["medial_facet",
                                                                      "lateral_facet"]
    assert all(0.5 <= r["mean_thickness_mm"] <= 4.5 for r in _rows(subregions))
    assert set(logic.thicknessModels()) == set(PLATES)
    central_before = _region(subregions, "medial_tibial_cartilage", "central")

    # Hand edit: shave the medial tibial cartilage down to the layer touching the tibia in
    # a 6 mm patch at the plate's centre (through the segmentations logic, as an editor does).
    from scipy.ndimage import binary_dilation

    sid = logic.kneeSegmentIds(segmentation, KNEE_NAMES)["medial_tibial_cartilage"]
    masks = logic.kneeMasks(volume, segmentation, {"plate": sid, "tibia": logic.kneeSegmentIds(
        segmentation, KNEE_NAMES)["tibia"]})
    plate, tibia = masks["plate"], masks["tibia"]
    points = np.argwhere(plate)
    ras = volume.index_to_ras(points[:, ::-1])
    centre = ras.mean(axis=0)
    near = np.linalg.norm((ras - centre)[:, :2], axis=1) < 3.0  # an R-A disc: tibia is ~S
    on_bone = binary_dilation(tibia)[tuple(points.T)]
    erase = near & ~on_bone
    assert erase.sum() > 50
    edited = plate.copy()
    edited[tuple(points[erase].T)] = False
    write_mask(segmentation, sid, edited, volume)

    plates2, subregions2 = logic.remeasure(volume_node, segmentation, KNEE_NAMES,
                                           platesTable=plates, subregionsTable=subregions)
    assert plates2 is plates and subregions2 is subregions
    after = rows_by(plates, "plate")
    erased_ml = int(erase.sum()) * volume.voxel_volume_mm3 / 1000.0
    assert after["medial_tibial_cartilage"]["volume_ml"] == pytest.approx(
        rows["medial_tibial_cartilage"]["volume_ml"] - erased_ml, abs=1e-9)
    assert after["femoral_cartilage"]["volume_ml"] == rows["femoral_cartilage"]["volume_ml"]
    central_after = _region(subregions, "medial_tibial_cartilage", "central")
    assert central_after["denuded_area_fraction"] > central_before["denuded_area_fraction"] + 0.05
    assert (after["medial_tibial_cartilage"]["denuded_area_fraction"]
            > rows["medial_tibial_cartilage"]["denuded_area_fraction"])


def _rows(table) -> list[dict]:
    from mskai.slicer_io import table_to_rows

    return table_to_rows(table)


def _region(table, plate: str, name: str) -> dict:
    return next(r for r in _rows(table) if r["plate"] == plate and r["subregion"] == name)


# --- runners ---------------------------------------------------------------------------------


class FakeRunner:
    """A ProcessRunner that records the job and answers with files it writes itself."""

    def __init__(self, write) -> None:
        self.write = write
        self.jobs: list[dict] = []
        self.masks: dict[str, np.ndarray] | None = None
        self._events: list[dict] = []

    def start(self, job: dict) -> None:
        from mskai.tasks.cartilage_jobs import load_masks

        self.jobs.append(job)
        args = job["args"]
        self.masks = load_masks(args["labels"]) if args["labels"] else None
        self._events = [{"event": "progress", "fraction": 0.5, "message": "fake"},
                        {"event": "done", "outputs": self.write(args)}]

    def poll(self) -> list[dict]:
        events, self._events = self._events, []
        return events

    def cancel(self) -> None:
        self._events = [{"event": "cancelled"}]

    def wait(self, timeout: float | None = None) -> bool:
        return True


def test_a_given_runner_is_used_with_the_current_masks(mrml):
    import json

    _, volume, volume_node, segmentation = phantom_nodes(mrml)

    def write(args: dict) -> dict:
        out = Path(args["out"])
        out.mkdir(parents=True)
        doc = {"segments": [{"id": "femoral_cartilage", "name": "Femoral cartilage",
                             "mean_thickness_mm": 1.234, "subregions": [
                                 {"name": "central_medial", "area_mm2": 10.0,
                                  "mean_thickness_mm": 1.5, "denuded_area_fraction": 0.0}]}],
               "joint_space_width_mm": {"min": 4.5, "medial": 4.5, "lateral": None}}
        (out / "measurements.json").write_text(json.dumps(doc))
        return {"measurements": str(out / "measurements.json")}

    runner = FakeRunner(write)
    _, plates, subregions = logic_for(mrml).run(volume_node, segmentation, runner=runner,
                                                method="surface_normal")
    assert runner.jobs[0]["task"] == "mskai.tasks.cartilage_jobs:measure_cartilage"
    assert runner.jobs[0]["args"]["method"] == "normal"
    assert set(runner.masks) == {"femur", "femoral_cartilage", "tibia"}
    assert np.array_equal(runner.masks["femoral_cartilage"], volume.array == 2)
    rows = rows_by(plates, "plate")
    assert rows["femoral_cartilage"]["mean_thickness_mm"] == 1.234
    lateral = rows["joint_space_width"]["jsw_lateral_mm"]
    assert lateral == "" or np.isnan(lateral)  # no lateral value: a blank cell
    assert rows["joint_space_width"]["jsw_min_mm"] == 4.5
    assert rows_by(subregions, "subregion")["central_medial"]["mean_thickness_mm"] == 1.5
    assert plates.GetAttribute("CartilageQuant.ThicknessMethod") == "surface_normal"


def test_segmenting_runner_fills_a_new_segmentation_by_policy(mrml):
    """Without knee segments the job segments; its segments go into the segmentation."""
    from mskai.segments import Provenance, Result, Segment
    from mskai.slicer_io import segment_status, volume_to_node
    from mskai.tasks.cartilage_jobs import write_job_outputs

    _, volume = knee_phantom()
    volume_node = volume_to_node(mrml.scene, volume, "mri")

    def write(args: dict) -> dict:
        result = Result("CartilageQuant", volume, Provenance("AI segmentation", "knee_fake",
                                                            "1", "0" * 64))
        for name, value in (("femur", 1), ("femoral_cartilage", 2), ("tibia", 3)):
            result.segments.append(Segment(name, volume.array == value, value))
        return write_job_outputs(result, {}, args["out"], with_segmentation=True)

    runner = FakeRunner(write)
    node, plates, _ = logic_for(mrml).run(volume_node, runner=runner)
    assert runner.jobs[0]["args"]["labels"] is None
    ids = set(node.GetSegmentation().GetSegmentIDs())
    assert ids == {"femur", "femoral_cartilage", "tibia"}
    assert snapshot(node, volume)["femoral_cartilage"] == int((volume.array == 2).sum())
    assert segment_status(node, "femoral_cartilage") == "ai_result"
    assert plates.GetNumberOfRows() == 0  # the fake document has no plates


def test_subprocess_runner_runs_the_job(mrml):
    from mskai.runner.subprocess_runner import SubprocessRunner

    _, _, volume_node, segmentation = phantom_nodes(mrml)
    logic = logic_for(mrml)
    logic.runnerFactory = SubprocessRunner
    _, plates, _ = logic.run(volume_node, segmentation)
    assert rows_by(plates, "plate")["femoral_cartilage"]["mean_thickness_mm"] == pytest.approx(
        TRUE_THICKNESS_MM, abs=0.1)
    assert len(logic.thicknessSurfaces()["femoral_cartilage"].faces) > 0


# --- bad input -------------------------------------------------------------------------------


@pytest.mark.parametrize(("names", "label_names", "match"), [
    (("femur", None, "tibia"), None, "no cartilage"),
    (("femur", "femoral_cartilage", "tibia"), {"femoral_cartilage": "Cartilage_2"},
     "no segment 'Cartilage_2'"),
    (("femur", "femoral_cartilage", "tibia"), "meniscus=femoral_cartilage", "not knee"),
    (("femur", "femoral_cartilage", "tibia"), "femur", "NAME=SEGMENT"),
])
def test_bad_input_leaves_the_segmentation_unchanged(mrml, names, label_names, match):
    _, volume, volume_node, segmentation = phantom_nodes(mrml, names=names)
    before = snapshot(segmentation, volume)
    tables = mrml.scene.GetNumberOfNodesByClass("vtkMRMLTableNode")
    logic = logic_for(mrml)
    with pytest.raises(InputError, match=match):
        logic.run(volume_node, segmentation, labelNames=label_names)
    with pytest.raises(InputError, match=match):
        logic.remeasure(volume_node, segmentation, label_names)
    assert snapshot(segmentation, volume) == before
    assert mrml.scene.GetNumberOfNodesByClass("vtkMRMLTableNode") == tables
    assert mrml.scene.GetNumberOfNodesByClass("vtkMRMLSegmentationNode") == 1


def test_other_bad_input_and_cancel(mrml):
    _, _, volume_node, segmentation = phantom_nodes(mrml)
    logic = logic_for(mrml)
    with pytest.raises(InputError, match="nearest_neighbour, surface_normal"):
        logic.run(volume_node, segmentation, method="mean")
    with pytest.raises(InputError, match="Select an input volume"):
        logic.run(None, segmentation)
    with pytest.raises(InputError, match="output segmentation"):
        logic.run(volume_node, volume_node)
    with pytest.raises(InputError, match="Select the segmentation"):
        logic.remeasure(volume_node, None)
    with pytest.raises(InputError, match="Measure the cartilage first"):
        logic.thicknessModels()
    with pytest.raises(CancelledError):
        logic.run(volume_node, segmentation, cancel=lambda: True)
    stalled = StalledRunner()
    presses = iter([False, False, True])  # Cancel pressed while the job runs
    with pytest.raises(CancelledError):
        logic.run(volume_node, segmentation, runner=stalled, cancel=lambda: next(presses))
    assert stalled.cancelled


class StalledRunner(FakeRunner):
    """A job that never ends by itself: only Cancel stops it."""

    def __init__(self) -> None:
        super().__init__(lambda args: {})
        self.cancelled = False

    def poll(self) -> list[dict]:
        if self.cancelled:
            return [{"event": "cancelled"}]
        return [{"event": "progress", "fraction": 0.1, "message": "working"}]

    def cancel(self) -> None:
        self.cancelled = True


# --- the module's self-test phantom and UI wiring ---------------------------------------------


def test_self_test_slab_has_its_stated_truth(mrml):
    """The synthetic slab that CartilageQuantTest (inside Slicer) runs on."""
    from CartilageQuantLib import synthetic

    labels = synthetic.slabKneeLabels()
    column = labels[:, labels.shape[1] // 2, labels.shape[2] // 2]
    assert (column == 2).sum() * synthetic.SPACING_MM == synthetic.THICKNESS_MM
    volume_node, segmentation = synthetic.addSlabKnee(mrml.scene)
    logic = logic_for(mrml)
    _, plates, _ = logic.run(volume_node, segmentation)
    rows = rows_by(plates, "plate")
    assert rows["femoral_cartilage"]["mean_thickness_mm"] == pytest.approx(
        synthetic.THICKNESS_MM, abs=0.1)
    assert rows["joint_space_width"]["jsw_min_mm"] == pytest.approx(synthetic.JOINT_SPACE_MM,
                                                                    abs=0.3)


def test_ui_binds_every_new_control_to_the_parameter_node():
    import ast
    import xml.etree.ElementTree as ET

    root = ET.parse(REPO / "CartilageQuant/Resources/UI/CartilageQuant.ui").getroot()
    widgets = {w.get("name"): w for w in root.iter("widget")}
    bound = {name: p.findtext("string") for name, w in widgets.items()
             for p in w.findall("property") if p.get("name") == "SlicerParameterName"}
    assert bound["labelNamesLineEdit"] == "labelNames"
    assert bound["autoRemeasureCheckBox"] == "autoRemeasure"
    assert bound["showThicknessModelsCheckBox"] == "showThicknessModels"
    assert bound["profileAxisComboBox"] == "profileAxis"
    assert bound["refineInsideSelector"] == "refineInsidePoints"
    assert bound["refineOutsideSelector"] == "refineOutsidePoints"
    # every bound name is a field of the parameter node
    params = ast.parse((REPO / "CartilageQuant/CartilageQuantLib/parameters.py").read_text())
    fields = {node.target.id for node in ast.walk(params)
              if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name)}
    assert set(bound.values()) <= fields, sorted(set(bound.values()) - fields)
    assert widgets["subregionsTableView"].get("class") == "qMRMLTableView"
    axis_items = [i.findtext("property/string")
                  for i in widgets["profileAxisComboBox"].iter("item")]
    assert axis_items == ["Antero-posterior", "Medio-lateral"]
    # every ui.<name> the widget uses exists in the .ui file
    tree = ast.parse((REPO / "CartilageQuant/CartilageQuant.py").read_text())
    used = {node.attr for node in ast.walk(tree) if isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Attribute) and node.value.attr == "ui"}
    assert used and used <= set(widgets), sorted(used - set(widgets))
