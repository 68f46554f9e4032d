"""Anatomical checks of a knee segmentation (mskai.measure.knee_anatomy_checks), the CLI's
honest failure on model output that fails them, and ``--refine-ras`` repairing it.

The knee phantom is the real pymskt knee label map at half its resolution
(0.73x0.73x1.4 mm)
with a DESS-like synthetic MR made from its labels (test_knee_refine.synthetic_mr). Each
test breaks the true labels in one documented way; the checks must name the broken
structure, and the untouched knee must pass every check. The CLI tests replace the knee
model by these broken labels (the model's label set: one unsplit tibial cartilage).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

from mskai.measure.knee_anatomy_checks import check_knee_anatomy, failed_structures
from mskai.volume import Volume

REPO = Path(__file__).resolve().parent.parent
if str(REPO / "CartilageQuant") not in sys.path:
    sys.path.insert(0, str(REPO / "CartilageQuant"))

KNEE_FILE = "SAG_3D_DESS_RIGHT_bones_cart_men_fib-label.nrrd"
VALUES = {"femoral_cartilage": 1, "tibial_cartilage": (2, 3), "patellar_cartilage": 4,
          "femur": 5, "tibia": 6, "patella": 7}
MODEL_LABELS = list(VALUES)
STEP = 2  # every second voxel along each axis


@pytest.fixture(scope="module")
def knee(test_data):
    """``(image, masks)``: the synthetic MR and the true masks on the coarse grid."""
    from test_knee_refine import synthetic_mr

    from mskai.image import read_image

    full = read_image(test_data / "knee" / KNEE_FILE)
    labels = np.ascontiguousarray(full.array[::STEP, ::STEP, ::STEP]).astype(np.uint8)
    geometry = Volume(labels, tuple(s * STEP for s in full.spacing), full.origin,
                      full.direction, modality="MR")
    image = geometry.with_array(synthetic_mr(labels, tuple(geometry.spacing[::-1])))
    masks = {name: np.isin(labels, np.atleast_1d(v)) for name, v in VALUES.items()}
    return image, masks


def _failures(masks, image, expected=()):
    return {(c.structure, c.check): c.problem
            for c in check_knee_anatomy(masks, image, expected) if not c.passed}


def _shift(mask: np.ndarray, image: Volume, ras_mm) -> np.ndarray:
    """The mask moved by ``ras_mm`` (whole voxels)."""
    step = np.linalg.solve(image.ijk_to_ras()[:3, :3], np.asarray(ras_mm, float))
    kji = np.rint(step[::-1]).astype(int)
    return np.roll(mask, tuple(kji), axis=(0, 1, 2))


def test_the_true_knee_passes_every_check(knee):
    image, masks = knee
    checks = check_knee_anatomy(masks, image, MODEL_LABELS)
    assert all(c.passed for c in checks), [c for c in checks if not c.passed]
    assert {c.check for c in checks} == {"size", "one_piece", "order", "touches_bone",
                                         "faces_joint"}


def test_swapped_femur_and_tibia(knee):
    image, masks = knee
    broken = dict(masks, femur=masks["tibia"], tibia=masks["femur"])
    failures = _failures(broken, image)
    assert "femur and tibia look swapped" in failures[("tibia", "order")]
    assert ("femoral_cartilage", "touches_bone") in failures


def test_patella_moved_behind_the_femur(knee):
    image, masks = knee
    broken = dict(masks, patella=_shift(masks["patella"], image, (0, -70, 0)))
    failures = _failures(broken, image)
    assert failed_structures(check_knee_anatomy(broken, image))[0] == "patella"
    assert "lies behind the femur" in failures[("patella", "order")]


def test_deleted_cartilage_is_missing_from_model_output(knee):
    image, masks = knee
    broken = {n: m for n, m in masks.items() if n != "patellar_cartilage"}
    failures = _failures(broken, image, MODEL_LABELS)
    assert failures == {("patellar_cartilage", "present"): "it was not found (no voxel)"}


def test_tibial_cartilage_moved_off_the_tibia(knee):
    image, masks = knee
    broken = dict(masks, tibial_cartilage=_shift(masks["tibial_cartilage"], image, (0, 0, 25)))
    failures = _failures(broken, image)
    assert "does not lie on the tibia" in failures[("tibial_cartilage", "touches_bone")]


def test_surrounding_tissue_labelled_as_femur(knee):
    from scipy import ndimage

    image, masks = knee
    thigh = ndimage.binary_dilation(masks["femur"], iterations=20) & ~masks["tibia"]
    failures = _failures(dict(masks, femur=thigh), image)
    assert "too large for a femur" in failures[("femur", "size")]
    assert "surrounding tissue is labelled as bone" in failures[("femur", "size")]


def test_calf_muscle_slab_bridged_onto_the_tibia(knee):
    """As knee_unet_v3 did on a real T2 knee: a muscle slab behind the tibia, joined by a
    3 mm bridge. Only ``one_piece`` fails (the tibia stays within the size limits), and
    the bone cleanup gives the true tibia back."""
    from mskai.segmentation.knee_bone_cleanup import remove_bone_leaks

    image, masks = knee
    tibia = masks["tibia"]
    kji = np.indices(tibia.shape).reshape(3, -1)
    r, a, s = image.index_to_ras(kji[::-1].T.astype(float)).T.reshape(3, *tibia.shape)
    centre = [float(c[tibia].mean()) for c in (r, a, s)]
    back = float(a[tibia].min())
    slab = ((np.abs(r - centre[0]) <= 8) & (s >= centre[2] - 35) & (s <= centre[2] - 10)
            & (a >= back - 22) & (a <= back - 8))
    bridge = ((np.abs(r - centre[0]) <= 1.5) & (np.abs(s - centre[2] + 20) <= 1.5)
              & (a >= back - 9) & (a <= centre[1]))
    others = np.any([m for n, m in masks.items() if n != "tibia"], axis=0)
    leak = (slab | bridge) & ~tibia & ~others
    assert np.count_nonzero(slab & leak) * image.voxel_volume_mm3 > 4000.0   # over 4 mL
    broken = dict(masks, tibia=tibia | leak)
    failures = _failures(broken, image, MODEL_LABELS)
    assert set(failures) == {("tibia", "one_piece")}, failures
    assert "labelled as bone" in failures[("tibia", "one_piece")]
    kept = remove_bone_leaks(broken, image)["tibia"]
    dice = 2 * np.count_nonzero(kept & tibia) / (np.count_nonzero(kept) + tibia.sum())
    assert dice > 0.99
    assert not _failures(dict(masks, tibia=kept), image, MODEL_LABELS)


def test_given_labels_messages_name_only_the_options_given():
    from test_cartilage_task import _toy_knee

    from mskai.errors import InputError
    from mskai.tasks.cartilage import run_cartilage

    volume, labels = _toy_knee(gap_voxels=3)
    with pytest.raises(InputError) as without_names:
        run_cartilage(volume, labels=labels)
    assert str(without_names.value) == ("femoral_cartilage does not touch the femur; check "
                                        "which segment of the --labels file holds which "
                                        "structure")
    with pytest.raises(InputError, match="check the label values given to --label-names"):
        run_cartilage(volume, labels=labels, label_names=True)


# ----- the CLI on model output --------------------------------------------------------------
def _fake_model(monkeypatch, masks) -> None:
    """``mskai cartilage`` without --labels gets ``masks`` as the knee model's output."""
    import mskai.tasks.cartilage as task
    from mskai.segments import STATUS_AI, Provenance

    def knee_masks(image, labels, report, cancel):
        provenance = Provenance(method="AI segmentation", model_id="knee_test_model",
                                model_version="1", model_sha256="0" * 64)
        return dict(masks), provenance, STATUS_AI, MODEL_LABELS

    monkeypatch.setattr(task, "_knee_masks", knee_masks)


@pytest.fixture(scope="module")
def image_file(knee, tmp_path_factory):
    from mskai.image import write_image

    return write_image(knee[0], tmp_path_factory.mktemp("knee") / "knee_mr.nrrd")


def test_cli_writes_the_passing_segments_and_one_message(knee, image_file, monkeypatch,
                                                         tmp_path, capsys):
    from mskai.cli import main
    from mskai.results.segnrrd import read_seg_nrrd

    image, masks = knee
    _fake_model(monkeypatch, dict(masks, patella=_shift(masks["patella"], image, (0, -70, 0))))
    code = main(["cartilage", str(image_file), "--out", str(tmp_path)])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    message = err[-1]
    assert message.startswith("mskai cartilage: the knee model's patella failed the "
                              "anatomical checks: it lies behind the femur")
    assert "--refine-ras patella=R,A,S" in message and "Segment Editor" in message
    assert "--label-names" not in " ".join(err)
    _, records = read_seg_nrrd(tmp_path / "segmentation.seg.nrrd")
    written = {r.id for r in records}
    assert "patella" not in written and "patellar_cartilage" not in written
    assert {"femur", "tibia", "femoral_cartilage"} <= written
    doc = json.loads((tmp_path / "measurements.json").read_text())
    failed = [c for c in doc["checks"] if not c["passed"]]
    assert (failed[0]["structure"], failed[0]["check"]) == ("patella", "order")
    segments = {s["id"]: s for s in doc["segments"]}
    assert segments["femoral_cartilage"]["mean_thickness_mm"] > 1.0  # still measured


def test_cli_refine_ras_restores_a_deleted_plate(knee, image_file, monkeypatch, tmp_path,
                                                 capsys):
    from mskai.cli import main
    from mskai.labels import read_labels

    image, masks = knee
    truth = masks["patellar_cartilage"]
    _fake_model(monkeypatch, {n: m for n, m in masks.items() if n != "patellar_cartilage"})
    assert main(["cartilage", str(image_file), "--out", str(tmp_path / "a")]) == 2
    assert "patellar_cartilage failed" in capsys.readouterr().err
    centre = _deepest_point(truth, image)
    code = main(["cartilage", str(image_file), "--out", str(tmp_path / "b"), "--refine-ras",
                 f"patellar_cartilage={centre[0]:.2f},{centre[1]:.2f},{centre[2]:.2f}"])
    assert code == 0, capsys.readouterr().err
    doc = json.loads((tmp_path / "b" / "measurements.json").read_text())
    plate = {s["id"]: s for s in doc["segments"]}["patellar_cartilage"]
    true_ml = float(truth.sum()) * image.voxel_volume_mm3 / 1000
    assert plate["volume_ml"] == pytest.approx(true_ml, rel=0.05)
    assert "seeded refinement" in doc["provenance"]["method"]
    fixed = read_labels(tmp_path / "b" / "segmentation.seg.nrrd", image)
    new = fixed["patellar_cartilage"]
    assert 2 * np.count_nonzero(new & truth) / (new.sum() + truth.sum()) > 0.95
    for name, mask in masks.items():  # every other structure as the model gave it
        if name != "patellar_cartilage":
            assert np.array_equal(fixed[name] & ~new, mask & ~new), name


def _deepest_point(mask: np.ndarray, image: Volume) -> np.ndarray:
    """RAS of the mask voxel farthest from its boundary (a click inside the structure)."""
    from scipy import ndimage

    depth = ndimage.distance_transform_edt(mask, sampling=image.spacing[::-1])
    kji = np.unravel_index(int(np.argmax(depth)), mask.shape)
    return image.index_to_ras(np.asarray(kji[::-1], float))


def test_cartilagequant_seeded_refinement_adds_the_missing_plate(mrml, knee):
    from CartilageQuantLib.logic import CartilageQuantLogic

    from mskai.slicer_io import points_to_markups, segmentation_to_masks, volume_to_node
    from mskai.slicer_io.segmentation import add_segment, write_mask

    image, masks = knee
    truth = masks["patellar_cartilage"]
    volume_node = volume_to_node(mrml.scene, image, "knee")
    node = mrml.scene.AddNewNodeByClass("vtkMRMLSegmentationNode", "knee seg")
    node.CreateDefaultDisplayNodes()
    node.SetReferenceImageGeometryParameterFromVolumeNode(volume_node)
    for name, mask in masks.items():
        if name != "patellar_cartilage":
            add_segment(node, name, name, (0.5, 0.5, 0.5))
            write_mask(node, name, mask, image)
    points = points_to_markups(mrml.scene, [_deepest_point(truth, image)], ["inside"], "seed")
    outcome = CartilageQuantLogic(mrml.scene).refineSegment(volume_node, node,
                                                            "patellar_cartilage", points)
    after = segmentation_to_masks(node, image)
    new = after["patellar_cartilage"]
    assert outcome.added_voxels == new.sum() and outcome.removed_voxels == 0
    assert 2 * np.count_nonzero(new & truth) / (new.sum() + truth.sum()) > 0.95
    assert node.GetSegmentation().GetSegment("patellar_cartilage").GetName() == \
        "Patellar cartilage"
