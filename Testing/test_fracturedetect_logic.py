"""FractureDetect module logic against a real MRML scene, on phantoms with analytic truth.

The fractured long bone is oblique (20 degree grid rotation of the phantom library),
anisotropic (0.8 x 0.8 x 1.5 mm) and broken with a sideways translation of 4 mm and 12
degrees of angulation; the core reports the transverse displacement, which for a sideways
translation is the translation itself.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parent.parent
if str(REPO / "FractureDetect") not in sys.path:
    sys.path.insert(0, str(REPO / "FractureDetect"))

pytest.importorskip("slicer", reason="slicer-core is not installed")

from mskai.errors import CancelledError, InputError  # noqa: E402
from phantoms.long_bone import fractured_long_bone, intact_long_bone  # noqa: E402

AXIS = np.array([0.15, -0.1, -1.0]) / np.linalg.norm([0.15, -0.1, -1.0])
SIDEWAYS = np.cross(AXIS, [0.0, 1.0, 0.0]) / np.linalg.norm(np.cross(AXIS, [0.0, 1.0, 0.0]))
SPACING = (0.8, 0.8, 1.5)


@pytest.fixture(scope="module")
def broken():
    return fractured_long_bone(translation_mm=tuple(4.0 * SIDEWAYS), angulation_deg=12.0,
                               gap_mm=8.0, spacing=SPACING, body_radius_mm=20.0, margin_mm=15.0,
                               supersample=1)


@pytest.fixture(scope="module")
def intact():
    return intact_long_bone(spacing=SPACING, body_radius_mm=20.0, supersample=1)


def logic_for(mrml):
    from FractureDetectLib.logic import FractureDetectLogic

    return FractureDetectLogic(mrml.scene)


def add_volume(mrml, phantom, name="CT"):
    from mskai.slicer_io import volume_to_node

    return volume_to_node(mrml.scene, phantom.image, name)


def mask_of(segmentation, segment_id, phantom):
    from mskai.slicer_io import segment_mask

    return segment_mask(segmentation, segment_id, phantom.image)


def rows(table):
    from mskai.slicer_io import table_to_rows

    return table_to_rows(table)


def segment_ids(segmentation):
    return set(segmentation.GetSegmentation().GetSegmentIDs())


def remove_part(segmentation, segment_id, phantom):
    """Delete the half of a segment nearest the fracture through the segmentation logic;
    returns the number of voxels removed."""
    from mskai.slicer_io.segmentation import write_mask

    mask = mask_of(segmentation, segment_id, phantom)
    k = np.argwhere(mask)[:, 0]
    cut = mask & (np.arange(mask.shape[0])[:, None, None] < np.median(k))
    write_mask(segmentation, segment_id, mask & ~cut, phantom.image)
    return int(cut.sum())


# --- detection on the whole volume ----------------------------------------------------------


def test_run_finds_the_fracture_of_the_phantom(mrml, broken):
    truth = broken.truth.fractures[0]
    volume = add_volume(mrml, broken)
    steps = []
    segmentation, candidates, table = logic_for(mrml).run(
        volume, progress=lambda f, m: steps.append(f))
    assert {"bone", "bone_fragment_1", "bone_fragment_2"} <= segment_ids(segmentation)
    assert steps[-1] == 1.0 and steps == sorted(steps)
    assert candidates.GetNumberOfControlPoints() == 1
    label = candidates.GetNthControlPointLabel(0)
    assert label.startswith("F1 (") and 0.5 <= float(label[4:-1]) <= 1.0
    assert "bone_fragment_1 + bone_fragment_2" in candidates.GetNthControlPointDescription(0)
    position = logic_for(mrml).jumpTarget(candidates, 0)
    assert np.linalg.norm(position - truth.center_ras) <= 10.0
    (row,) = rows(table)
    assert abs(row["displacement_mm"] - truth.transverse_displacement_mm) <= 1.0
    assert abs(row["angulation_deg"] - truth.angulation_deg) <= 2.0
    assert row["decision"] == "undecided"
    fragments = {r["segment"]: r for r in rows(logic_for(mrml).fragmentsTable(segmentation))}
    voxel_ml = broken.image.voxel_volume_mm3 / 1000.0
    for n, other in ((1, 2), (2, 1)):  # fragment masks against the phantom's own labels
        mask = mask_of(segmentation, f"bone_fragment_{n}", broken)
        assert np.sum(mask & (broken.labels == n)) >= 0.99 * np.sum(broken.labels == n)
        assert np.sum(mask & (broken.labels == other)) == 0
        assert fragments[f"bone_fragment_{n}"]["volume_ml"] == pytest.approx(
            mask.sum() * voxel_ml, abs=1e-9)
    with pytest.raises(InputError, match="no fracture candidate 2"):
        logic_for(mrml).jumpTarget(candidates, 1)


def test_intact_bone_gives_no_candidates(mrml, intact):
    segmentation, candidates, table = logic_for(mrml).run(add_volume(mrml, intact))
    assert segment_ids(segmentation) == {"bone"}
    assert candidates.GetNumberOfControlPoints() == 0
    assert table.GetNumberOfRows() == 0


# --- region of interest ---------------------------------------------------------------------


def add_roi(mrml, center, axes_rows, size):
    """A rotated ROI node: columns of its object-to-world matrix are ``axes_rows``."""
    import vtk

    roi = mrml.scene.AddNewNodeByClass("vtkMRMLMarkupsROINode", "ROI")
    roi.SetSize(*size)
    matrix = vtk.vtkMatrix4x4()
    for r in range(3):
        for c in range(3):
            matrix.SetElement(r, c, float(axes_rows[c][r]))
        matrix.SetElement(r, 3, float(center[r]))
    roi.GetObjectToNodeMatrix().DeepCopy(matrix)
    roi.Modified()
    return roi


def shaft_frame():
    x = SIDEWAYS
    return np.array([x, np.cross(AXIS, x), AXIS])


def test_roi_run_gives_the_whole_volume_fragments_on_the_full_grid(mrml, broken):
    from FractureDetectLib.roi import roiFromNode

    from mskai.tasks.fracture_jobs import roi_slices

    volume = add_volume(mrml, broken)
    logic = logic_for(mrml)
    whole, whole_candidates, _ = logic.run(volume)
    roi = add_roi(mrml, broken.truth.shaft_center_ras, shaft_frame(), (70.0, 70.0, 134.0))
    box = roi_slices(broken.image, roiFromNode(roi))
    assert [s.stop - s.start for s in box] < list(broken.image.array.shape)  # a real crop
    cropped, candidates, table = logic.run(volume, roiNode=roi)
    assert cropped is not whole
    for segment_id in ("bone", "bone_fragment_1", "bone_fragment_2"):
        a, b = mask_of(whole, segment_id, broken), mask_of(cropped, segment_id, broken)
        assert a.shape == b.shape == broken.labels.shape
        assert np.array_equal(a, b)
    assert np.allclose(logic.jumpTarget(candidates, 0), logic.jumpTarget(whole_candidates, 0),
                       atol=1e-6)
    assert cropped.GetSegmentation().GetSegment("bone_fragment_2") is not None


def test_roi_limits_the_search(mrml, broken):
    """An ROI around the proximal half only: one fragment, no candidate, nothing outside."""
    volume = add_volume(mrml, broken)
    center = np.asarray(broken.truth.shaft_center_ras) - 35.0 * AXIS
    roi = add_roi(mrml, center, shaft_frame(), (60.0, 60.0, 40.0))
    segmentation, candidates, _ = logic_for(mrml).run(volume, roiNode=roi)
    assert candidates.GetNumberOfControlPoints() == 0
    bone = mask_of(segmentation, "bone", broken)
    ras = broken.image.index_to_ras(np.argwhere(bone)[:, ::-1].astype(float))
    along = (ras - center) @ AXIS
    assert bone.any() and np.all(np.abs(along) <= 20.0 + 1e-6)


# --- review, re-measurement, merge policy ---------------------------------------------------


def test_decisions_survive_a_rerun_and_reach_table_and_json(mrml, broken, tmp_path):
    volume = add_volume(mrml, broken)
    logic = logic_for(mrml)
    segmentation, candidates, table = logic.run(volume)
    logic.setCandidateDecision(candidates, 0, False)
    assert logic.candidateDecisions(candidates) == [False]
    assert rows(table)[0]["decision"] == "rejected"
    again, candidates2, table2 = logic.run(volume, segmentation)
    assert again is segmentation and candidates2 is candidates and table2 is table
    assert logic.candidateDecisions(candidates2) == [False]
    logic.setCandidateDecision(candidates2, 0, True)
    assert rows(table2)[0]["decision"] == "accepted"
    measurement = candidates2.GetMeasurement("decision").GetControlPointValues()
    assert measurement.GetValue(0) == 1.0  # a typed value, not a "true" string
    written = logic.exportResults(volume, segmentation, tmp_path)
    document = json.loads(written["measurements"].read_text())
    (fracture,) = document["fractures"]
    assert fracture["decision"] == "accepted"
    assert document["candidate_review"][0]["decision"] == "accepted"
    assert written["segmentation"].is_file()
    logic.setCandidateDecision(candidates2, 0, None)
    assert logic.candidateDecisions(candidates2) == [None]
    with pytest.raises(InputError):
        logic.setCandidateDecision(candidates2, 3, True)


def test_remeasure_after_a_hand_edit(mrml, broken):
    volume = add_volume(mrml, broken)
    logic = logic_for(mrml)
    segmentation, _, _ = logic.run(volume)
    before = {r["segment"]: r for r in rows(logic.fragmentsTable(segmentation))}
    removed = remove_part(segmentation, "bone_fragment_2", broken)
    assert removed > 100
    table = logic.remeasure(volume, segmentation)
    after = {r["segment"]: r for r in rows(table)}
    voxel_ml = broken.image.voxel_volume_mm3 / 1000.0
    assert after["bone_fragment_2"]["volume_ml"] == pytest.approx(
        before["bone_fragment_2"]["volume_ml"] - removed * voxel_ml, abs=1e-9)
    assert after["bone_fragment_1"]["volume_ml"] == pytest.approx(
        before["bone_fragment_1"]["volume_ml"], abs=1e-9)
    assert after["bone_fragment_2"]["status"] == "edited_by_hand"
    assert after["bone_fragment_1"]["status"] == "ai_result"


def test_skip_edited_keeps_a_hand_edited_fragment(mrml, broken):
    volume = add_volume(mrml, broken)
    logic = logic_for(mrml)
    segmentation, _, _ = logic.run(volume)
    removed = remove_part(segmentation, "bone_fragment_2", broken)
    edited = mask_of(segmentation, "bone_fragment_2", broken)
    logic.run(volume, segmentation, policy="skip_edited")
    assert np.array_equal(mask_of(segmentation, "bone_fragment_2", broken), edited)
    assert ("bone_fragment_2", "skipped", "edited by hand") in logic.lastActions
    fragments = {r["segment"]: r for r in rows(logic.fragmentsTable(segmentation))}
    assert fragments["bone_fragment_2"]["volume_ml"] == pytest.approx(
        edited.sum() * broken.image.voxel_volume_mm3 / 1000.0, abs=1e-9)
    assert removed > 0
    logic.run(volume, segmentation, policy="replace")  # replace keeps a backup copy
    assert "bone_fragment_2_manual_backup" in segment_ids(segmentation)
    assert not np.array_equal(mask_of(segmentation, "bone_fragment_2", broken), edited)


def test_a_rerun_removes_fragments_it_no_longer_finds_but_keeps_edited_ones(mrml, broken,
                                                                           intact):
    """Run on the broken bone, then on the intact one into the same segmentation: the old
    fragments go, except one edited by hand, which stays with a warning."""
    logic = logic_for(mrml)
    segmentation, _, _ = logic.run(add_volume(mrml, broken))
    remove_part(segmentation, "bone_fragment_2", broken)
    logic.run(add_volume(mrml, intact), segmentation)
    assert segment_ids(segmentation) == {"bone", "bone_fragment_2"}
    assert ("bone_fragment_1", "removed", "not found by this run") in logic.lastActions
    assert ("bone_fragment_2", "kept", "edited by hand; not found by this run") \
        in logic.lastActions
    assert any("bone_fragment_2 was edited by hand" in w for w in logic.lastWarnings)
    fragments = {r["segment"] for r in rows(logic.fragmentsTable(segmentation))}
    assert "bone_fragment_1" not in fragments


# --- runners ----------------------------------------------------------------------------------


class FakeRunner:
    """Writes the phantom's own labels as the job's result; records the job it got."""

    def __init__(self, phantom):
        self.phantom, self.jobs, self._events = phantom, [], []

    def start(self, job):
        from mskai.image import read_image
        from mskai.segments import Provenance, Result, Segment
        from mskai.tasks.fracture_jobs import write_job_outputs

        self.jobs.append(job)
        image = read_image(job["args"]["image"])
        result = Result("FractureDetect", image, Provenance(method="fake"))
        result.segments = [Segment("bone", self.phantom.labels > 0, 1),
                           Segment("bone_fragment_1", self.phantom.labels == 1, 2),
                           Segment("bone_fragment_2", self.phantom.labels == 2, 3)]
        entry = {"position_ras": list(self.phantom.truth.fracture_center_ras), "score": 0.77,
                 "bone": "bone", "fragments": ["bone_fragment_1", "bone_fragment_2"],
                 "displacement_mm": 4.0, "angulation_deg": 12.0, "gap_mm": 8.0}
        result.measurements["fractures"] = [entry]
        outputs = write_job_outputs(result, job["args"]["out"])
        self._events = [{"event": "progress", "fraction": 0.5, "message": "half"},
                        {"event": "done", "outputs": outputs}]

    def poll(self):
        events, self._events = self._events, []
        return events

    def cancel(self):
        pass

    def wait(self, timeout=None):
        return True


def test_a_swapped_runner_is_used(mrml, broken):
    from mskai.runner.base import ProcessRunner

    ProcessRunner.register(FakeRunner)
    runner = FakeRunner(broken)
    volume = add_volume(mrml, broken)
    segmentation, candidates, table = logic_for(mrml).run(volume, runner=runner)
    (job,) = runner.jobs
    assert job["task"] == "mskai.tasks.fracture_jobs:detect_fractures"
    assert job["args"]["roi"] is None and job["args"]["modality"] == "CT"
    for n in (1, 2):
        assert np.array_equal(mask_of(segmentation, f"bone_fragment_{n}", broken),
                              broken.labels == n)
    assert candidates.GetNthControlPointLabel(0) == "F1 (0.77)"
    assert rows(table)[0]["displacement_mm"] == 4.0


def test_subprocess_runner_matches_the_in_process_run(mrml, broken):
    from mskai.runner.subprocess_runner import SubprocessRunner

    volume = add_volume(mrml, broken)
    logic = logic_for(mrml)
    roi = add_roi(mrml, broken.truth.shaft_center_ras, shaft_frame(), (70.0, 70.0, 134.0))
    local, local_candidates, _ = logic.run(volume, roiNode=roi)
    remote, remote_candidates, table = logic.run(volume, roiNode=roi,
                                                 runner=lambda: SubprocessRunner(sys.executable))
    for segment_id in ("bone_fragment_1", "bone_fragment_2"):
        assert np.array_equal(mask_of(local, segment_id, broken),
                              mask_of(remote, segment_id, broken))
    assert np.allclose(logic.jumpTarget(local_candidates, 0),
                       logic.jumpTarget(remote_candidates, 0), atol=1e-6)
    assert table.GetNumberOfRows() == 1


# --- bad input and cancel -------------------------------------------------------------------


def user_segmentation(mrml, volume, phantom):
    """A segmentation the user made: one segment 'bone' painted by hand."""
    from mskai.slicer_io.segmentation import add_segment, write_mask

    node = mrml.scene.AddNewNodeByClass("vtkMRMLSegmentationNode", "mine")
    node.CreateDefaultDisplayNodes()
    node.SetReferenceImageGeometryParameterFromVolumeNode(volume)
    add_segment(node, "bone", "Bone", (1.0, 1.0, 0.8))
    write_mask(node, "bone", phantom.labels == 1, phantom.image)
    return node


def test_bad_input_changes_nothing(mrml, broken):
    mr = fractured_long_bone(translation_mm=tuple(4.0 * SIDEWAYS), angulation_deg=12.0,
                             gap_mm=8.0, spacing=(1.6, 1.6, 3.0), supersample=1, modality="MR")
    logic = logic_for(mrml)
    ct = add_volume(mrml, broken)
    mine = user_segmentation(mrml, ct, broken)
    runner = FakeRunner(broken)
    with pytest.raises(InputError, match="CT"):
        logic.run(add_volume(mrml, mr, "MR"), mine, runner=runner)
    far = add_roi(mrml, np.asarray(broken.truth.shaft_center_ras) + 500.0, np.eye(3),
                  (20.0, 20.0, 20.0))
    with pytest.raises(InputError, match="outside the image"):
        logic.run(ct, mine, roiNode=far, runner=runner)
    with pytest.raises(InputError):
        logic.run(None, mine)
    with pytest.raises(InputError, match="merge policy"):
        logic.run(ct, mine, policy="overwrite")
    assert runner.jobs == []
    assert segment_ids(mine) == {"bone"}
    assert np.array_equal(mask_of(mine, "bone", broken), broken.labels == 1)
    assert logic.candidatesNode(mine) is None


def test_cancel_leaves_the_scene_as_it_was(mrml, broken):
    volume = add_volume(mrml, broken)
    count = mrml.scene.GetNumberOfNodesByClass("vtkMRMLSegmentationNode")
    calls = []
    with pytest.raises(CancelledError):
        logic_for(mrml).run(volume, cancel=lambda: calls.append(1) or len(calls) > 3)
    assert mrml.scene.GetNumberOfNodesByClass("vtkMRMLSegmentationNode") == count


# --- vertebra panel ---------------------------------------------------------------------------


def test_vertebra_heights_of_a_segment(mrml):
    from mskai.slicer_io import volume_to_node
    from mskai.slicer_io.segmentation import add_segment, write_mask
    from phantoms.vertebra import vertebral_body

    ph = vertebral_body(18.0, 24.0, 26.0, supersample=1)
    volume = volume_to_node(mrml.scene, ph.image, "spine")
    node = mrml.scene.AddNewNodeByClass("vtkMRMLSegmentationNode", "spine seg")
    node.SetReferenceImageGeometryParameterFromVolumeNode(volume)
    add_segment(node, "L1", "L1 body", (0.9, 0.8, 0.6))
    write_mask(node, "L1", ph.mask, ph.image)
    heights = logic_for(mrml).vertebraHeights(volume, node, "L1")
    t = ph.truth
    assert heights["height_anterior_mm"] == pytest.approx(t.anterior_height_mm, abs=1.0)
    assert heights["height_middle_mm"] == pytest.approx(t.middle_height_mm, abs=1.0)
    assert heights["height_posterior_mm"] == pytest.approx(t.posterior_height_mm, abs=1.0)
    assert heights["genant_grade"] == t.genant_grade == 2
    with pytest.raises(InputError, match="no segment 'L2'"):
        logic_for(mrml).vertebraHeights(volume, node, "L2")


def test_synthetic_bone_of_the_slicer_self_test(mrml):
    """The bone FractureDetectTest builds inside Slicer: found with its 4 mm shift."""
    from FractureDetectLib.synthetic import fracturedShaft

    from mskai.slicer_io import volume_to_node
    from mskai.volume import Volume

    shaft = fracturedShaft()
    volume = volume_to_node(mrml.scene, Volume(shaft.voxels, spacing=shaft.spacing), "synth")
    logic = logic_for(mrml)
    segmentation, candidates, table = logic.run(volume)
    (row,) = rows(table)
    assert abs(row["displacement_mm"] - shaft.shiftMm) <= 1.0
    assert row["angulation_deg"] <= 2.0
    expected = Volume(shaft.voxels, spacing=shaft.spacing).index_to_ras(shaft.gapCenterIjk)
    assert np.linalg.norm(logic.jumpTarget(candidates, 0) - expected) <= 10.0
