"""Inference: preprocessing round trip, sliding-window progress and cancel, device choice."""

from __future__ import annotations

import threading

import numpy as np
import pytest
import torch

from mskai.errors import CancelledError, InputError
from mskai.inference.device import choose_device
from mskai.inference.pipeline import run_segmentation
from mskai.inference.postprocess import keep_largest_components, postprocess
from mskai.inference.preprocess import normalise_intensity, preprocess
from mskai.inference.sliding import count_windows, sliding_window
from mskai.models.manifest import InputSpec, parse_entry
from mskai.volume import Volume
from phantoms.grid import make_grid, oblique_direction, physical_points


def threshold_model(x: torch.Tensor) -> torch.Tensor:
    """An "identity" network: two-class probabilities of the thresholded input."""
    p = (x > 0.5).float()
    return torch.cat([1 - p, p], dim=1)


def entry(spacing=(1.5, 1.5, 1.5), patch=(24, 24, 24), **output):
    return parse_entry({
        "id": "threshold", "version": "1", "task": "bone_seg", "modality": "MR",
        "format": "torchscript", "file": "unused.ts", "sha256": "0" * 64,
        "input": {"spacing_mm": spacing, "patch_size": patch, "overlap": 0.25,
                  "intensity": {"type": "mr_percentile", "low": 0, "high": 100}},
        "output": {"activation": "none", **output}, "labels": {"1": "bone"}}, root=".")


def ellipsoid_volume() -> Volume:
    """Oblique, anisotropic grid holding a 100-valued ellipsoid on a 0 background."""
    volume = make_grid((56, 44, 24), (0.9, 1.2, 2.6), oblique_direction(25),
                       center_lps=(5.0, -3.0, 10.0))
    p = physical_points(volume) - np.array([9.0, -6.0, 14.0])  # off-centre: flips would show
    inside = (p[..., 0] / 17) ** 2 + (p[..., 1] / 13) ** 2 + (p[..., 2] / 19) ** 2 <= 1
    return volume.with_array(np.where(inside, 100.0, 0.0).astype(np.float32))


def dice(a: np.ndarray, b: np.ndarray) -> float:
    return 2 * np.logical_and(a, b).sum() / (a.sum() + b.sum())


# ----- preprocessing ----------------------------------------------------------------------

def test_ras_orientation_flips_i_and_j_of_an_lps_image():
    array = np.arange(4 * 5 * 6, dtype=np.float32).reshape(6, 5, 4)  # [k, j, i]
    tensor, context = preprocess(Volume(array), InputSpec())
    expected = array.transpose(2, 1, 0)[::-1, ::-1, :]  # tensor axes are (i, j, k)
    np.testing.assert_array_equal(tensor[0, 0].numpy(), expected)
    np.testing.assert_allclose(np.reshape(context.grid.direction, (3, 3)),
                               np.diag([-1.0, -1.0, 1.0]))


def test_resampling_to_the_model_spacing_covers_the_whole_image():
    volume = make_grid((40, 34, 18), (0.9, 1.2, 2.6))
    tensor, context = preprocess(volume, InputSpec(spacing_mm=(1.5, 1.5, 1.5)))
    assert context.grid.spacing == (1.5, 1.5, 1.5)
    # extents 35.1, 39.6, 44.2 mm need 25, 28 and 31 samples 1.5 mm apart
    assert tuple(tensor.shape) == (1, 1, 25, 28, 31)


def test_ct_window_clips_then_scales_to_unit_range():
    hu = np.array([-2000, -1000, 500, 2000, 3000], dtype=np.float32)
    out = normalise_intensity(hu, {"type": "ct_window", "min": -1000, "max": 2000})
    np.testing.assert_allclose(out, [0, 0, 0.5, 1, 1])


def test_mr_percentiles_map_to_zero_and_one_and_clip_outliers():
    values = np.concatenate([np.linspace(0, 100, 101), [1000.0]]).astype(np.float32)
    out = normalise_intensity(values, {"type": "mr_percentile", "low": 0, "high": 50})
    assert out[0] == 0 and out[-1] == 1
    assert out[25] == pytest.approx(25 / 50.5, abs=1e-5)


def test_multichannel_models_are_refused_for_one_image():
    with pytest.raises(InputError, match="2 input channels"):
        preprocess(Volume(np.zeros((4, 4, 4))), InputSpec(channels=2))


# ----- round trip onto the original grid ------------------------------------------------

def test_labels_map_back_onto_the_exact_original_oblique_grid():
    volume = ellipsoid_volume()
    truth = volume.array > 50
    masks = run_segmentation(volume, entry(), device="cpu", model=threshold_model)
    assert list(masks) == [1]
    assert masks[1].shape == volume.array.shape
    assert dice(masks[1], truth) > 0.98


def test_postprocess_keeps_the_largest_component_when_asked():
    volume = ellipsoid_volume()
    ellipsoid = volume.array > 50
    speck = volume.array.copy()
    speck[1:3, 1:3, 1:3] = 100.0  # a small blob far from the ellipsoid
    volume = volume.with_array(speck)
    plain = run_segmentation(volume, entry(spacing=None), "cpu", model=threshold_model)[1]
    kept = run_segmentation(volume, entry(spacing=None, keep_largest_component=True), "cpu",
                            model=threshold_model)[1]
    assert plain[1:3, 1:3, 1:3].all() and not kept[1:3, 1:3, 1:3].any()
    np.testing.assert_array_equal(kept, ellipsoid)
    np.testing.assert_array_equal(plain, volume.array > 50)


def test_a_single_output_channel_is_the_foreground_probability():
    volume = Volume(np.zeros((6, 6, 6), dtype=np.float32))
    volume.array[2:4, 2:4, 2:4] = 1
    tensor, context = preprocess(volume, InputSpec())
    labels = postprocess(tensor[0], context, volume)
    np.testing.assert_array_equal(labels, volume.array.astype(np.uint16))


def test_keep_largest_components_only_touches_listed_labels():
    labels = np.zeros((1, 1, 9), dtype=np.uint16)
    labels[0, 0] = [1, 0, 1, 1, 0, 2, 0, 2, 2]
    out = keep_largest_components(labels, [1])
    np.testing.assert_array_equal(out[0, 0], [0, 0, 1, 1, 0, 2, 0, 2, 2])


# ----- sliding window ---------------------------------------------------------------------

class CountingModel:
    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, x):
        self.calls += 1
        return threshold_model(x)


def test_window_count_matches_what_monai_visits_and_progress_rises_to_one():
    tensor = torch.rand(1, 1, 37, 20, 9)
    model, fractions = CountingModel(), []
    out = sliding_window(model, tensor, (16, 16, 16), 0.25, "cpu",
                         progress=lambda f, m: fractions.append(f))
    assert out.shape == (1, 2, 37, 20, 9)
    assert model.calls == count_windows((37, 20, 9), (16, 16, 16), 0.25) == 3 * 2 * 1
    assert fractions == sorted(fractions) and fractions[0] == 0.0 and fractions[-1] == 1.0
    assert len(fractions) == model.calls + 1


def test_cancel_between_windows_raises_and_stops_the_windows():
    cancel, model = threading.Event(), CountingModel()

    def progress(fraction: float, message: str) -> None:
        if model.calls == 3:
            cancel.set()

    with pytest.raises(CancelledError):
        sliding_window(model, torch.rand(1, 1, 40, 40, 40), (16, 16, 16), 0.25, "cpu",
                       progress=progress, cancel=cancel)
    assert model.calls == 3


def test_pipeline_progress_is_monotonic_and_ends_at_one():
    fractions = []
    run_segmentation(ellipsoid_volume(), entry(), "cpu",
                     progress=lambda f, m: fractions.append(f), model=threshold_model)
    assert fractions == sorted(fractions) and fractions[-1] == 1.0


# ----- device -----------------------------------------------------------------------------

def test_auto_device_is_cpu_without_cuda_and_cpu_can_be_forced():
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert choose_device("auto").type == expected
    assert choose_device("cpu") == torch.device("cpu")


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a CUDA GPU")
def test_cuda_requested_on_a_cpu_only_machine_is_a_clear_input_error():
    with pytest.raises(InputError, match="no CUDA GPU"):
        choose_device("cuda")


def test_unknown_devices_are_input_errors():
    with pytest.raises(InputError, match="use auto, cpu or cuda"):
        choose_device("quantum")


# ----- the runner job: file in, verified model, label file out -----------------------------

class ThresholdNet(torch.nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return threshold_model(x)


def test_segment_image_job_writes_labels_on_the_input_grid(tmp_path):
    from mskai.image import read_image, write_image
    from mskai.models.manifest import sha256_path, write_manifest
    from mskai.runner.inprocess import InProcessRunner

    torch.jit.script(ThresholdNet()).save(str(tmp_path / "threshold.ts"))
    model = parse_entry({**entry().to_json(), "file": "threshold.ts",
                         "sha256": sha256_path(tmp_path / "threshold.ts")}, tmp_path)
    write_manifest(tmp_path / "manifest.json", [model])
    volume = ellipsoid_volume()
    write_image(volume, tmp_path / "image.nrrd")

    events = InProcessRunner().run({"task": "mskai.runner.jobs:segment_image", "args": {
        "image": str(tmp_path / "image.nrrd"), "model_id": "threshold", "device": "cpu",
        "out": str(tmp_path / "labels.nrrd"), "model_dir": str(tmp_path)}}, timeout=60)
    assert events[-1]["event"] == "done", events[-1]
    assert events[-1]["outputs"]["segments"] == {"1": "bone"}
    labels = read_image(tmp_path / "labels.nrrd")
    assert labels.same_geometry(volume)
    assert dice(labels.array == 1, volume.array > 50) > 0.98
