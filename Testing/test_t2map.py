"""T2 mapping: synthetic multi-echo decays with known T2, Rician noise, and multi-echo reading.

Truth is analytic: each voxel's signal is ``S0 exp(-TE / T2)`` with the voxel's own T2, plus
Rician noise (magnitude of complex Gaussian noise) where stated. Per-voxel precision is
compared with the Cramer-Rao bound of the two-parameter fit, the smallest spread any
unbiased estimator can reach at that SNR.
"""

from __future__ import annotations

import numpy as np
import pytest

from mskai.errors import InputError
from mskai.image import write_image
from mskai.measure.t2_io import read_multi_echo
from mskai.measure.t2map import REASONS, fit_t2, t2_per_region
from mskai.volume import Volume
from phantoms.cartilage import CARTILAGE, slab
from phantoms.grid import oblique_direction, physical_points, rotation

TE = np.arange(10.0, 81.0, 10.0)  # 8 echoes, 10..80 ms
S0 = 1000.0


def _decay(t2: np.ndarray, times: np.ndarray = TE, s0: float = S0) -> np.ndarray:
    return s0 * np.exp(-times / np.asarray(t2, dtype=float)[..., None])


def _rician(signal: np.ndarray, sigma: float, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.hypot(signal + rng.normal(0, sigma, signal.shape),
                    rng.normal(0, sigma, signal.shape)).astype(np.float32)


def _echoes(signals: np.ndarray) -> Volume:
    """A [k, j, i, e] Volume from a [n, e] or [k, j, i, e] array."""
    if signals.ndim == 2:
        signals = signals.reshape(1, 50, -1, signals.shape[-1])
    return Volume(signals.astype(np.float32), spacing=(0.4, 0.4, 2.0))


def _sigma_for_snr(t2: float, snr: float) -> float:
    """Noise SD giving ``snr`` at the first echo of a decay with this T2."""
    return S0 * np.exp(-TE[0] / t2) / snr


def _crlb_t2_sd(t2: float, sigma: float, times: np.ndarray) -> float:
    """Cramer-Rao bound on the SD of T2 for (S0, 1/T2) fitted under Gaussian noise sigma."""
    e = np.exp(-times / t2)
    jac = np.stack([e, -times * S0 * e], axis=1)
    cov = sigma**2 * np.linalg.inv(jac.T @ jac)
    return float(t2**2 * np.sqrt(cov[1, 1]))


# ----- accuracy on synthetic decays -----------------------------------------------------------
def test_noise_free_decays_give_t2_exactly_and_only_inside_the_mask():
    t2_true = np.linspace(5.0, 190.0, 1000)
    echoes = _echoes(_decay(t2_true))
    mask = np.ones(echoes.array.shape[:3], bool)
    mask[0, :5] = False
    result = fit_t2(echoes, TE, mask=mask)
    fitted = result.t2_ms.array[mask]
    np.testing.assert_allclose(fitted, t2_true.reshape(mask.shape)[mask], rtol=1e-4)
    np.testing.assert_allclose(result.s0.array[mask], S0, rtol=1e-4)
    assert np.all(result.r2.array[mask] > 0.9999)
    assert np.all(np.isnan(result.t2_ms.array[~mask])) and not result.fitted[~mask].any()
    assert not result.rejected.any()
    np.testing.assert_array_equal(result.echo_times_ms, TE[1:])
    assert "first echo skipped" in result.method


def test_cartilage_and_fluid_t2_at_snr_50_match_truth_and_the_cramer_rao_bound():
    n = 20000
    t2_true = np.where(np.arange(n) < n // 2, 35.0, 150.0)
    sigma = _sigma_for_snr(35.0, 50.0)
    echoes = _echoes(_rician(_decay(t2_true), sigma))
    result = fit_t2(echoes, TE)
    truth = t2_true.reshape(echoes.array.shape[:3])
    regions = {"cartilage": truth == 35.0, "fluid": truth == 150.0}
    rows = {r["name"]: r for r in t2_per_region(result, regions)}
    for name, t2 in (("cartilage", 35.0), ("fluid", 150.0)):
        values = result.t2_ms.array[regions[name] & result.valid]
        assert abs(np.median(values) - t2) < 1.0, name          # per-voxel median error
        assert abs(rows[name]["mean_t2_ms"] - t2) < 1.0, name    # region mean
        assert abs(rows[name]["median_t2_ms"] - t2) < 1.0, name
        assert rows[name]["rejected_fraction"] < 0.005, name
        robust_sd = 1.4826 * np.median(np.abs(values - np.median(values)))
        bound = _crlb_t2_sd(t2, sigma, TE[1:])
        assert bound <= robust_sd * 1.05 and robust_sd < 1.15 * bound, name
    # the cartilage bound itself: about 1.5 ms SD, so a median |error| of about 1 ms per voxel
    assert _crlb_t2_sd(35.0, sigma, TE[1:]) == pytest.approx(1.5, abs=0.2)


def test_pure_noise_voxels_are_rejected_by_the_goodness_of_fit():
    sigma = 15.0
    noise = _echoes(_rician(np.zeros((20000, 8)), sigma, seed=3))
    result = fit_t2(noise, TE)
    reasons = result.reason[result.fitted]
    assert np.mean(reasons == 3) > 0.98  # R^2 < 0.8
    assert result.rejected.mean() > 0.99
    floor = sigma * np.sqrt(np.pi / 2)
    with_floor = fit_t2(noise, TE, noise_floor=floor)
    assert with_floor.rejected.mean() > 0.999
    assert REASONS[2] == "signal below noise" and np.any(with_floor.reason == 2)
    assert t2_per_region(result, {"all": result.fitted})[0]["rejected_fraction"] > 0.99


def test_rician_correction_removes_the_low_snr_bias():
    t2 = 35.0
    sigma = _sigma_for_snr(t2, 15.0)
    echoes = _echoes(_rician(_decay(np.full(20000, t2)), sigma, seed=5))
    plain = fit_t2(echoes, TE)
    corrected = fit_t2(echoes, TE, noise_floor=sigma * np.sqrt(np.pi / 2))
    assert np.nanmedian(plain.t2_ms.array) - t2 > 1.0  # the noise floor lengthens T2
    assert abs(np.nanmedian(corrected.t2_ms.array) - t2) < 0.5
    assert "Rician" in corrected.method


def test_skipping_the_first_echo_ignores_stimulated_echo_contamination():
    t2 = 35.0
    signals = _decay(np.full(2000, t2))
    signals[:, 0] *= 0.8  # first echo below the decay, as in multi-echo spin echo
    echoes = _echoes(_rician(signals, _sigma_for_snr(t2, 200.0), seed=7))
    skipped = fit_t2(echoes, TE)
    used = fit_t2(echoes, TE, skip_first_echo=False)
    assert abs(np.nanmedian(skipped.t2_ms.array) - t2) < 0.3
    assert np.nanmedian(used.t2_ms.array) - t2 > 2.0


def test_t2_outside_the_range_is_rejected():
    echoes = _echoes(_decay(np.repeat([0.5, 35.0, 400.0], 100)))
    result = fit_t2(echoes, TE, skip_first_echo=False)
    reason = result.reason.ravel()
    assert np.all(reason[:100] > 0) and np.all(reason[100:200] == 0)
    assert np.all(reason[200:] == 4)
    assert np.all(np.isnan(result.t2_ms.array.ravel()[200:]))
    wide = fit_t2(echoes, TE, skip_first_echo=False, t2_range_ms=(1.0, 1000.0))
    np.testing.assert_allclose(wide.t2_ms.array.ravel()[200:], 400.0, rtol=1e-3)


# ----- spatial phantom: T2 rising with depth across a cartilage slab --------------------------
def test_depth_dependent_t2_on_a_slab_phantom_gives_the_analytic_region_means():
    thickness, tilt = 3.0, 20.0
    phantom = slab(thickness_mm=thickness, tilt_deg=tilt, disc_radius_mm=8.0,
                   spacing=(0.5, 0.5, 0.8), direction=oblique_direction(15.0))
    normal = rotation((1.0, 1.0, 0.0), tilt) @ np.array([0.0, 0.0, 1.0])
    depth = physical_points(phantom.labels) @ normal  # 0 at the bone, thickness at the surface
    cartilage = phantom.labels.array == CARTILAGE
    t2_true = np.where(cartilage, 25.0 + 20.0 * np.clip(depth / thickness, 0, 1), 35.0)
    signals = _rician(_decay(t2_true), _sigma_for_snr(35.0, 50.0), seed=11)
    echoes = phantom.labels.with_array(signals)
    result = fit_t2(echoes, TE, mask=cartilage)
    assert result.fitted.sum() == cartilage.sum() > 2000
    deep = cartilage & (depth <= thickness / 2)
    regions = {"femoral_cartilage": cartilage, "deep": deep, "superficial": cartilage & ~deep}
    continuous = {"femoral_cartilage": 35.0, "deep": 30.0, "superficial": 40.0}
    for row in t2_per_region(result, regions):
        voxel_truth = t2_true[regions[row["name"]]].mean()
        assert abs(row["mean_t2_ms"] - voxel_truth) < 1.0, row
        assert abs(row["mean_t2_ms"] - continuous[row["name"]]) < 1.0, row
        assert row["n_voxels"] == regions[row["name"]].sum()
        assert row["sd_t2_ms"] > 0 and row["rejected_fraction"] == 0.0


def test_regions_without_accepted_voxels_report_nan_and_bad_regions_are_refused():
    echoes = _echoes(_decay(np.repeat([35.0, 400.0], 100)))
    result = fit_t2(echoes, TE)
    shape = echoes.array.shape[:3]
    flat = np.arange(np.prod(shape)).reshape(shape)
    rows = t2_per_region(result, {"long": flat >= 100, "half": flat >= 50,
                                  "none": np.zeros(shape, bool)})
    assert np.isnan(rows[0]["mean_t2_ms"]) and rows[0]["n_voxels"] == 0
    assert rows[0]["rejected_fraction"] == 1.0
    assert rows[1]["rejected_fraction"] == pytest.approx(100 / 150)
    assert rows[1]["mean_t2_ms"] == pytest.approx(35.0, abs=1e-3)
    assert np.isnan(rows[2]["rejected_fraction"])
    with pytest.raises(InputError, match="region 'bad' has shape"):
        t2_per_region(result, {"bad": np.ones((2, 2, 2), bool)})


# ----- bad fit input --------------------------------------------------------------------------
@pytest.mark.parametrize(("kwargs", "message"), [
    ({"echo_times_ms": TE[:7]}, "7 echo times were given for 8 echoes"),
    ({"echo_times_ms": TE[::-1]}, "do not increase strictly"),
    ({"echo_times_ms": np.r_[TE[:7], 70.0]}, "do not increase strictly"),
    ({"mask": np.ones((2, 2, 2), bool)}, "mask has shape"),
    ({"mask": np.zeros((1, 50, 2), bool)}, "mask is empty"),
    ({"min_r2": 1.5}, "min_r2"),
    ({"t2_range_ms": (50.0, 10.0)}, "T2 range"),
    ({"noise_floor": -1.0}, "noise floor"),
])
def test_bad_fit_input_is_refused_with_one_clear_sentence(kwargs, message):
    echoes = _echoes(_decay(np.full(100, 35.0)))
    args = {"echo_times_ms": TE, **kwargs}
    with pytest.raises(InputError, match=message):
        fit_t2(echoes, **args)


def test_too_few_echoes_and_3d_images_are_refused():
    three = _echoes(_decay(np.full(100, 35.0), TE[:3]))
    with pytest.raises(InputError, match="2 echoes remain after skipping the first"):
        fit_t2(three, TE[:3])
    assert np.nanmedian(fit_t2(three, TE[:3], skip_first_echo=False).t2_ms.array) == (
        pytest.approx(35.0, rel=1e-4))
    with pytest.raises(InputError, match="only 2 echo"):
        fit_t2(_echoes(_decay(np.full(100, 35.0), TE[:2])), TE[:2])
    with pytest.raises(InputError, match="give a 4D series"):
        fit_t2(Volume(np.ones((2, 3, 4), np.float32)), TE)


# ----- reading: DICOM folder ------------------------------------------------------------------
ROW, COL = np.array([1.0, 0.0, 0.0]), np.array([0.0, np.cos(0.35), -np.sin(0.35)])
NORMAL = np.cross(ROW, COL)
ORIGIN = np.array([-20.0, 10.0, 35.0])


def _pixels(echo: int, slice_index: int) -> np.ndarray:
    j, i = np.mgrid[0:4, 0:5]
    return (1000 * np.exp(-(echo + 1) * 0.3) + 100 * slice_index + 10 * j + i).astype(np.uint16)


def _write_slice(path, echo_time, pixels, position, series_uid, instance, pixel_spacing):
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, MRImageStorage, generate_uid

    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = MRImageStorage
    ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.SOPClassUID, ds.SOPInstanceUID = MRImageStorage, ds.file_meta.MediaStorageSOPInstanceUID
    ds.StudyInstanceUID, ds.SeriesInstanceUID = "1.2.3.4", series_uid
    ds.FrameOfReferenceUID = "1.2.3.5"
    ds.Modality, ds.InstanceNumber = "MR", instance
    ds.PatientID, ds.PatientName = "T2PHANTOM", "T2^Phantom"
    if echo_time is not None:
        ds.EchoTime = echo_time
    ds.ImagePositionPatient = [float(v) for v in position]
    ds.ImageOrientationPatient = [float(v) for v in (*ROW, *COL)]
    ds.PixelSpacing, ds.SliceThickness = list(pixel_spacing), 2.0
    ds.Rows, ds.Columns = pixels.shape
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 0
    ds.PixelData = pixels.tobytes()
    ds.save_as(path, enforce_file_format=True)


def _write_series(folder, echo_times=(40.0, 10.0, 30.0, 20.0), n_slices=3, skip=None,
                  no_echo_time=None, spacing_of=None):
    """Multi-echo MR series, files written in shuffled order under random-looking names."""
    folder.mkdir(exist_ok=True)
    order = sorted(echo_times)
    jobs = [(te, s) for te in echo_times for s in range(n_slices)]
    rng = np.random.default_rng(1)
    for n, index in enumerate(rng.permutation(len(jobs))):
        te, s = jobs[index]
        if (te, s) == skip:
            continue
        spacing = (0.7, 0.7) if te == spacing_of else (0.5, 0.6)
        position = ORIGIN + 2.0 * s * NORMAL
        echo_time = None if (te, s) == no_echo_time else te
        _write_slice(folder / f"IM{rng.integers(1e6):07d}_{n}.dcm", echo_time,
                     _pixels(order.index(te), s), position, "1.2.3.4.9", n + 1, spacing)
    return folder


def test_multi_echo_dicom_folder_reads_in_echo_order_with_its_geometry(tmp_path):
    echoes, times = read_multi_echo(_write_series(tmp_path / "series"))
    np.testing.assert_array_equal(times, [10.0, 20.0, 30.0, 40.0])
    assert echoes.array.shape == (3, 4, 5, 4) and echoes.array.dtype == np.float32
    for e in range(4):
        for s in range(3):
            np.testing.assert_array_equal(echoes.array[s, :, :, e], _pixels(e, s))
    np.testing.assert_allclose(echoes.spacing, (0.6, 0.5, 2.0), atol=1e-6)
    np.testing.assert_allclose(echoes.origin, ORIGIN, atol=1e-4)
    np.testing.assert_allclose(echoes.direction, np.column_stack([ROW, COL, NORMAL]), atol=1e-5)
    assert echoes.metadata["echo_times_ms"] == [10.0, 20.0, 30.0, 40.0]
    assert echoes.modality == "MR"


@pytest.mark.parametrize(("options", "message"), [
    ({"no_echo_time": (20.0, 1)}, "has no EchoTime"),
    ({"echo_times": (10.0, 20.0)}, "has 2 echo time"),
    ({"skip": (30.0, 2)}, "different numbers of slices"),
    ({"spacing_of": 30.0}, "not on the grid of the first echo"),
])
def test_bad_multi_echo_dicom_folders_are_refused(tmp_path, options, message):
    folder = _write_series(tmp_path / "series", **options)
    with pytest.raises(InputError, match=message):
        read_multi_echo(folder)


def test_dicom_folder_with_echo_times_or_non_dicom_files_only_is_refused(tmp_path):
    folder = _write_series(tmp_path / "series")
    with pytest.raises(InputError, match="leave out the echo times"):
        read_multi_echo(folder, [10, 20, 30, 40])
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "notes.txt").write_text("no images")
    with pytest.raises(InputError, match="holds no DICOM images"):
        read_multi_echo(empty)
    with pytest.raises(InputError, match="does not exist"):
        read_multi_echo(tmp_path / "missing")


# ----- reading: 3D files and 4D files ---------------------------------------------------------
def _echo_volumes(n: int = 4) -> list[Volume]:
    rng = np.random.default_rng(2)
    base = Volume(np.zeros((3, 4, 5), np.float32), spacing=(0.5, 0.6, 2.0),
                  origin=(1.0, 2.0, 3.0), direction=oblique_direction(20.0))
    return [base.with_array(rng.random((3, 4, 5)).astype(np.float32)) for _ in range(n)]


def test_list_of_3d_echo_files_reads_into_one_4d_volume(tmp_path):
    volumes = _echo_volumes()
    paths = [write_image(v, tmp_path / f"echo{e}.nrrd") for e, v in enumerate(volumes)]
    echoes, times = read_multi_echo(paths, [12.0, 24.0, 36.0, 48.0])
    np.testing.assert_array_equal(times, [12.0, 24.0, 36.0, 48.0])
    np.testing.assert_array_equal(echoes.array, np.stack([v.array for v in volumes], -1))
    assert echoes.same_geometry(volumes[0])


def test_bad_lists_of_echo_files_are_refused(tmp_path):
    volumes = _echo_volumes()
    paths = [write_image(v, tmp_path / f"echo{e}.nrrd") for e, v in enumerate(volumes)]
    with pytest.raises(InputError, match="echo times are needed"):
        read_multi_echo(paths)
    with pytest.raises(InputError, match="3 echo times were given for 4 echoes"):
        read_multi_echo(paths, [10, 20, 30])
    with pytest.raises(InputError, match="do not increase strictly"):
        read_multi_echo(paths, [10, 30, 20, 40])
    with pytest.raises(InputError, match="only 2 echo"):
        read_multi_echo(paths[:2], [10, 20])
    moved = volumes[3].with_array(volumes[3].array, spacing=(0.5, 0.6, 3.0))
    paths[3] = write_image(moved, tmp_path / "moved.nrrd")
    with pytest.raises(InputError, match="moved.nrrd is not on the grid of the first echo"):
        read_multi_echo(paths, [10, 20, 30, 40])


@pytest.mark.parametrize("suffix", [".nii.gz", ".nrrd"])
def test_4d_file_reads_with_the_given_echo_times(tmp_path, suffix):
    import SimpleITK as sitk

    array = np.random.default_rng(4).random((5, 3, 4, 6)).astype(np.float32)  # [e, k, j, i]
    image = sitk.JoinSeries([sitk.GetImageFromArray(frame) for frame in array])  # a 4D image
    image.SetSpacing((0.5, 0.6, 2.0, 1.0))
    path = tmp_path / f"multi{suffix}"
    sitk.WriteImage(image, str(path))
    echoes, times = read_multi_echo(path, [10, 20, 30, 40, 50])
    assert echoes.array.shape == (3, 4, 6, 5)
    np.testing.assert_array_equal(echoes.array, np.moveaxis(array, 0, -1))
    np.testing.assert_allclose(echoes.spacing, (0.5, 0.6, 2.0))
    with pytest.raises(InputError, match="4 echo times were given for 5 echoes"):
        read_multi_echo(path, [10, 20, 30, 40])
    with pytest.raises(InputError, match="does not state its echo times"):
        read_multi_echo(path)


def test_slicer_multivolume_nrrd_gives_its_echo_times_and_3d_files_are_refused(tmp_path):
    import SimpleITK as sitk

    array = np.random.default_rng(6).random((3, 4, 5, 4)).astype(np.float32)  # [k, j, i, e]
    image = sitk.GetImageFromArray(array, isVector=True)
    image.SetMetaData("MultiVolume.FrameIdentifyingDICOMTagName", "EchoTime")
    image.SetMetaData("MultiVolume.FrameLabels", "9,18,27,36")
    sitk.WriteImage(image, str(tmp_path / "multi.nrrd"))
    echoes, times = read_multi_echo(tmp_path / "multi.nrrd")
    np.testing.assert_array_equal(times, [9.0, 18.0, 27.0, 36.0])
    np.testing.assert_array_equal(echoes.array, array)
    single = write_image(_echo_volumes(1)[0], tmp_path / "single.nrrd")
    with pytest.raises(InputError, match="holds a single 3D volume"):
        read_multi_echo(single, [10, 20, 30])
