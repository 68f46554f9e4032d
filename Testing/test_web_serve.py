"""``mskai serve`` without a browser: bad input is one line and exit 2, the token rules,
and the web jobs give the same tumour and numbers as ``mskai tumor`` (its ``--labels``
path)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from cli_runner import run_cli

STS = Path(__file__).resolve().parent / "Data" / "sts_sarcoma"
CT = STS / "STS_002_CT_image.nii.gz"
CT_MASK = STS / "STS_002_CT_mask.nii.gz"


def test_missing_image_is_one_line_and_exit_2(capsys, tmp_path):
    code, out, err = run_cli(capsys, "serve", tmp_path / "missing.nii.gz", "--port", "0")
    assert code == 2 and out == ""
    assert len(err.strip().splitlines()) == 1 and "missing.nii.gz" in err


@pytest.mark.parametrize("argv", [("--token", "short"), ("--port", "70000"),
                                  ("--token", "has spaces in it but long enough")])
def test_bad_options_exit_2(capsys, argv):
    code, _out, err = run_cli(capsys, "serve", *argv)
    assert code == 2 and len(err.strip().splitlines()) == 1


def test_token_and_url():
    from mskai.web.auth import is_loopback, new_token, page_url
    from mskai.web.serve import check_token

    token = check_token(None)
    assert len(token) >= 32 and token != new_token()
    assert check_token("a" * 20) == "a" * 20
    assert is_loopback("127.0.0.1") and is_loopback("localhost") and is_loopback("::1")
    assert not is_loopback("0.0.0.0") and not is_loopback("192.168.1.4")
    assert page_url("0.0.0.0", 8080, "abc") == "http://127.0.0.1:8080/?secret=abc"
    assert page_url("::1", 81, "t") == "http://[::1]:81/?secret=t"


def _run_job(task: str, **args) -> dict:
    from mskai.runner.inprocess import InProcessRunner

    events = InProcessRunner().run({"task": task, "args": args}, timeout=120)
    assert events[-1]["event"] == "done", events[-1]
    return events[-1]["outputs"]


def test_web_jobs_match_the_command(tmp_path):
    """The click job's mask is ``segment_prompts``' (the command's), and the measuring job's
    numbers are ``run_tumor(labels=...)``'s, on STS_002's expert mask."""
    from mskai.click_methods import CLASSIC, DEFAULT_METHOD
    from mskai.image import read_image, write_image
    from mskai.interactive import Prompts
    from mskai.interactive.clicks import deepest_voxel
    from mskai.tasks.tumor import run_tumor, segment_prompts

    image = read_image(CT)
    truth = read_image(CT_MASK).array > 0
    seed = image.index_to_ras(deepest_voxel(truth, tuple(reversed(image.spacing)))[::-1])
    outputs = _run_job("mskai.web.jobs:tumour_mask", image=str(CT), out=str(tmp_path / "c"),
                       positive_ras=[list(seed)])
    mask = read_image(outputs["mask"]).array > 0
    assert np.array_equal(mask, segment_prompts(image, Prompts([tuple(seed)])))
    # the default method gates this 53 mL tumour to the classic method, and says so
    assert outputs["provenance"]["method"].startswith(f"{DEFAULT_METHOD} ({CLASSIC}): interactive")

    # a RECIST line prompt (the page's "RECIST line"): the command's --recist-line-ras path
    k, j, _ = np.argwhere(truth).mean(0).round().astype(int)
    columns = np.where(truth[k, j])[0]
    line = [*image.index_to_ras([columns.min() + 1, j, k]),
            *image.index_to_ras([columns.max() - 1, j, k])]
    outputs = _run_job("mskai.web.jobs:tumour_mask", image=str(CT), out=str(tmp_path / "l"),
                       positive_ras=[], recist_line_ras=[float(v) for v in line])
    mask = read_image(outputs["mask"]).array > 0
    assert np.array_equal(mask, segment_prompts(image, Prompts(recist_line_ras=tuple(line))))

    tumour = write_image(image.with_array(truth.astype(np.uint8)), tmp_path / "t.nrrd")
    outputs = _run_job("mskai.web.jobs:measure_tumour", image=str(CT),
                       out=str(tmp_path / "m"), tumour=str(tumour), margin_mm=10.0)
    document = json.loads(Path(outputs["measurements"]).read_text())
    expected = run_tumor(image, None, margin_mm=10.0, labels={"tumor": truth})
    got = {s["id"]: s for s in document["segments"]}
    assert got["tumor"]["volume_ml"] == pytest.approx(
        float(truth.sum()) * image.voxel_volume_mm3 / 1000.0, rel=1e-6)
    for segment in expected.segments:
        assert got[segment.id]["volume_ml"] == pytest.approx(
            segment.measurements["volume_ml"], rel=1e-6)
    assert document["margin"] == pytest.approx(expected.measurements["margin"])


def test_measuring_an_empty_tumour_is_an_input_error(tmp_path):
    from mskai.image import read_image, write_image
    from mskai.runner.inprocess import InProcessRunner

    image = read_image(CT)
    empty = write_image(image.with_array(np.zeros(image.array.shape, np.uint8)),
                        tmp_path / "e.nrrd")
    events = InProcessRunner().run({"task": "mskai.web.jobs:measure_tumour", "args": {
        "image": str(CT), "out": str(tmp_path / "m"), "tumour": str(empty)}}, timeout=60)
    assert events[-1]["event"] == "error" and events[-1]["kind"] == "input"
    assert "empty" in events[-1]["message"]


def test_knee_remeasure_job_is_the_labels_path(tmp_path):
    """Re-measuring the page's knee segments gives ``run_cartilage(labels=...)``'s numbers
    (the real pymskt knee segmentation, as ``mskai demo`` measures it)."""
    from mskai.demo import KNEE_LABELS
    from mskai.image import read_image, write_image
    from mskai.labels import read_labels
    from mskai.tasks.cartilage import run_cartilage
    from mskai.terminology import FEMORAL_CARTILAGE, FEMUR, TIBIA

    path = Path(__file__).resolve().parent / "Data" / "knee" / \
        "SAG_3D_DESS_RIGHT_bones_cart_men_fib-label.nrrd"
    image = read_image(path)
    kept = (FEMUR, TIBIA, FEMORAL_CARTILAGE)   # one plate, cropped: the test stays short
    full = {k: m for k, m in read_labels(path, image, KNEE_LABELS).items() if k in kept}
    found = np.argwhere(full[FEMORAL_CARTILAGE])
    box = tuple(slice(max(lo - 8, 0), hi + 9) for lo, hi in zip(found.min(0), found.max(0),
                                                                strict=True))
    image = image.crop(box)
    labels = {k: m[box] for k, m in full.items()}
    path = write_image(image, tmp_path / "knee.nrrd")
    masks = {sid: str(write_image(image.with_array(mask.astype(np.uint8)),
                                  tmp_path / f"{sid}.nrrd")) for sid, mask in labels.items()}
    outputs = _run_job("mskai.web.jobs:measure_knee", image=str(path), out=str(tmp_path / "o"),
                       masks=masks)
    assert outputs["segmentation"] is None and outputs["figures"]
    got = {s["id"]: s for s in json.loads(Path(outputs["measurements"]).read_text())["segments"]}
    expected, _ = run_cartilage(image, labels=labels)
    want = expected.segment(FEMORAL_CARTILAGE).measurements["mean_thickness_mm"]
    assert got[FEMORAL_CARTILAGE]["mean_thickness_mm"] == pytest.approx(want, rel=1e-6)


def test_box_prompt_is_the_roi_ras_path(tmp_path):
    """The page's box (a markups ROI drawn in a slice view) becomes ``--roi-ras``: the job's
    mask is ``segment_prompts``' for that box, alone and with a click, and lies inside it."""
    from slicer import vtkMRMLMarkupsROINode, vtkMRMLScene

    from mskai.image import read_image
    from mskai.interactive import Prompts
    from mskai.tasks.tumor import segment_prompts
    from mskai.web.roi_box import roi_ras

    image = read_image(CT)
    truth = read_image(CT_MASK).array > 0
    found = np.argwhere(truth)
    corners = [image.index_to_ras(kji[::-1]) for kji in (found.min(0) - 2, found.max(0) + 2)]
    low, high = np.minimum(*corners), np.maximum(*corners)
    scene, node = vtkMRMLScene(), vtkMRMLMarkupsROINode()
    scene.AddNode(node)
    assert roi_ras(node) is None   # not drawn yet
    node.SetCenter(*((low + high) / 2))
    node.SetSize(*(high - low))
    box = roi_ras(node)
    assert np.allclose(box, [*low, *high], atol=1e-4)

    outputs = _run_job("mskai.web.jobs:tumour_mask", image=str(CT), out=str(tmp_path / "b"),
                       positive_ras=[], roi_ras=list(box))
    mask = read_image(outputs["mask"]).array > 0
    assert np.array_equal(mask, segment_prompts(image, Prompts(roi_ras=box)))
    lo, hi = Prompts(roi_ras=box).roi_box(image)
    outside = np.ones(mask.shape, bool)
    outside[lo[0]:hi[0], lo[1]:hi[1], lo[2]:hi[2]] = False
    assert mask.any() and not (mask & outside).any()
    dice = 2 * (mask & truth).sum() / (mask.sum() + truth.sum())
    assert dice > 0.7, dice

    # a box drawn in an axial view has no depth: it reaches as far as it is wide
    node.SetSize(float(high[0] - low[0]), float(high[1] - low[1]), 0.0)
    flat = roi_ras(node)
    assert flat[5] - flat[2] == pytest.approx(max(high[:2] - low[:2]), rel=1e-4)


def _dicom_session_image(folder: Path):
    """The 5-slice DICOM series as the page holds it: read by mskai, shown as a volume node
    and written back for the jobs (``Session.on_volume_loaded``)."""
    from dicom_samples import read_series
    from slicer import vtkMRMLScene

    from mskai.image import write_image
    from mskai.slicer_io import node_to_volume, volume_to_node

    series = read_series()
    node = volume_to_node(vtkMRMLScene(), series, "series")
    return series, write_image(node_to_volume(node), folder / "image.nrrd")


def test_export_from_dicom_adds_seg_and_sr(tmp_path):
    """Opened from a DICOM folder, the page's export writes ``--dicom-out``'s SEG and SR on
    that series: the SEG holds exactly the exported tumour's voxels and references the
    series; an image file gives no DICOM files."""
    import warnings

    import pydicom
    from dicom_samples import SERIES, ball

    from mskai.image import write_image

    series, image_path = _dicom_session_image(tmp_path)
    tumour = ball(series, (80, 70, 2), 6.0)
    mask = write_image(series.with_array(tumour.astype(np.uint8)), tmp_path / "tumor.nrrd")
    files = [str(p) for p in series.metadata["dicom_files"]]
    outputs = _run_job("mskai.web.jobs:export_result", module="TumorSeg",
                       image=str(image_path), out=str(tmp_path / "out"),
                       masks={"tumor": str(mask)}, dicom_files=files)
    folder = Path(outputs["folder"])
    assert (folder / "report.html").is_file()
    seg = pydicom.dcmread(folder / "segmentation.dcm")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        source = pydicom.dcmread(sorted(SERIES.iterdir())[0], stop_before_pixels=True)
    assert seg.Modality == "SEG"
    assert seg.ReferencedSeriesSequence[0].SeriesInstanceUID == source.SeriesInstanceUID
    labels = [s.TrackingID for s in seg.SegmentSequence]
    tumour_number = labels.index("tumor") + 1
    frames = seg.pixel_array.reshape(int(seg.NumberOfFrames), seg.Rows, seg.Columns)
    numbers = [int(f.SegmentIdentificationSequence[0].ReferencedSegmentNumber)
               for f in seg.PerFrameFunctionalGroupsSequence]
    voxels = sum(int((frame > 0).sum()) for frame, n in zip(frames, numbers, strict=True)
                 if n == tumour_number)
    assert voxels == int(tumour.sum())
    sr = pydicom.dcmread(folder / "measurements_sr.dcm")
    assert sr.Modality == "SR" and sr.StudyInstanceUID == source.StudyInstanceUID

    plain = _run_job("mskai.web.jobs:export_result", module="TumorSeg", image=str(image_path),
                     out=str(tmp_path / "plain"), masks={"tumor": str(mask)})
    assert not (Path(plain["folder"]) / "segmentation.dcm").exists()


def test_fracture_remeasure_job_is_the_labels_path(tmp_path):
    """After an edit the page re-measures its bone and fragments with ``mskai fracture
    --labels``: the same candidates as ``run_fracture(labels=...)``, the best at the
    phantom's fracture."""
    from mskai.image import write_image
    from mskai.phantoms.long_bone import fractured_long_bone
    from mskai.tasks.fracture import run_fracture
    from mskai.terminology import BONE

    phantom = fractured_long_bone(length_mm=50.0, fracture_position_mm=25.0,
                                  translation_mm=(4.0, 2.0, 0.0), angulation_deg=12.0,
                                  gap_mm=6.0, body_radius_mm=20.0, noise_sd=15.0)
    image, bone = phantom.image, phantom.labels > 0
    path = write_image(image, tmp_path / "bone.nrrd")
    masks = {BONE: str(write_image(image.with_array(bone.astype(np.uint8)),
                                   tmp_path / "bone_mask.nrrd")), "bone_fragment_1": None}
    outputs = _run_job("mskai.web.jobs:measure_fracture", image=str(path),
                       out=str(tmp_path / "o"), masks=masks)
    assert outputs["segmentation"] is None
    document = json.loads(Path(outputs["measurements"]).read_text())
    expected = run_fracture(image, labels={BONE: bone})
    got = np.array([f["position_ras"] for f in document["fractures"]])
    want = np.array([f["position_ras"] for f in expected.measurements["fractures"]])
    assert got.shape == want.shape and np.allclose(got, want, atol=1e-6)
    best = got[0]
    assert np.linalg.norm(best - phantom.truth.fractures[0].center_ras) < 10.0


def test_edits_re_measure_once_after_a_run():
    """Knee and fracture panels: nothing before a run; after it, an edit that changes the
    segments re-measures once (edits in a burst are measured once), an edit that changes
    nothing (or the run's own write) does not, a busy slot is retried."""
    import asyncio

    from mskai.web.remeasure import AutoRemeasure

    segments = {"key": 1}
    started: list[int] = []
    busy = {"on": False}

    def start() -> bool:
        if busy["on"]:
            return False
        started.append(segments["key"])
        return True

    async def scenario() -> None:
        auto = AutoRemeasure(lambda: segments["key"], start, delay_s=0.01)
        auto.request()
        await asyncio.sleep(0.05)
        assert started == []            # not run yet: edits are not measured
        auto.arm()
        auto.request()
        await asyncio.sleep(0.05)
        assert started == []            # nothing changed since the run
        segments["key"] = 2
        for _ in range(3):
            auto.request()
        await asyncio.sleep(0.05)
        assert started == [2]           # three edits, one measurement
        segments["key"] = 3
        busy["on"] = True
        auto.request()
        await asyncio.sleep(0.05)
        assert started == [2]
        busy["on"] = False
        await asyncio.sleep(0.05)
        assert started == [2, 3]        # retried once the slot was free
        auto.disarm()
        segments["key"] = 4
        auto.request()
        await asyncio.sleep(0.05)
        assert started == [2, 3]

    asyncio.run(scenario())
