"""T2 per cartilage plate from a multi-echo series (the cartilage command's --t2-echoes)."""

import numpy as np
import pytest
import SimpleITK as sitk

from mskai.errors import InputError
from mskai.segments import Provenance, Result, Segment
from mskai.tasks.cartilage_t2 import add_t2
from mskai.volume import Volume

TIMES = [10.0, 20.0, 30.0, 40.0, 50.0, 60.0]
TRUE_T2 = {"femoral_cartilage": 32.0, "medial_tibial_cartilage": 45.0}


def _plates_result(shape=(12, 20, 24)) -> Result:
    image = Volume(np.zeros(shape, np.float32), spacing=(0.5, 0.5, 1.0))
    femoral = np.zeros(shape, bool)
    femoral[2:6, 4:16, 4:20] = True
    tibial = np.zeros(shape, bool)
    tibial[7:10, 4:16, 4:20] = True
    return Result("CartilageQuant", image, Provenance("test"), segments=[
        Segment("femoral_cartilage", femoral, 1), Segment("medial_tibial_cartilage", tibial, 2)])


def _write_echoes(result: Result, path, snr: float = 80.0) -> None:
    rng = np.random.default_rng(3)
    t2 = np.full(result.image.array.shape, 10.0)
    for seg in result.segments:
        t2[seg.mask] = TRUE_T2[seg.id]
    decay = np.stack([1000 * np.exp(-t / t2) for t in TIMES], axis=-1)
    noisy = np.abs(decay + rng.normal(0, 1000 / snr, decay.shape))
    image = sitk.GetImageFromArray(noisy.astype(np.float32), isVector=True)
    image.SetSpacing(result.image.spacing)
    sitk.WriteImage(image, str(path))


def test_t2_per_plate_matches_the_simulated_relaxation(tmp_path):
    result = _plates_result()
    _write_echoes(result, tmp_path / "echoes.nrrd")
    add_t2(result, tmp_path / "echoes.nrrd", TIMES)
    for seg in result.segments:
        assert seg.measurements["t2"]["mean_t2_ms"] == pytest.approx(TRUE_T2[seg.id], abs=1.0)
    assert result.measurements["t2_method"]["echo_times_ms"] == TIMES


def test_echoes_on_another_grid_are_refused(tmp_path):
    result = _plates_result()
    _write_echoes(_plates_result(shape=(12, 20, 25)), tmp_path / "echoes.nrrd")
    with pytest.raises(InputError, match="grid"):
        add_t2(result, tmp_path / "echoes.nrrd", TIMES)
