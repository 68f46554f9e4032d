"""Bone-leak removal after the knee model (mskai.segmentation.knee_bone_cleanup) and the
``one_piece`` anatomical check.

On a real knee T2 series ``knee_unet_v3`` glued a 10 mL blob of calf muscle onto the tibia
through contacts about 9 mm long, and the fibular head hung on through the blob. Here
an analytic tibia (plateau, tibial spine, shaft; the truth) gets a muscle-like slab joined
by a thin bridge, and a fibula-like rod joined only by overlapping a neighbouring thick
slice. The cleanup must remove both and keep the tibia (Dice against the truth), leave the
unbroken tibia and its thin spine alone, and keep a shaft cut off by a thin stretch of
the mask. The check must flag the broken tibia and pass the true one.
"""

from __future__ import annotations

import numpy as np
import pytest

from mskai.measure.knee_anatomy_checks import check_knee_anatomy
from mskai.segmentation.knee_bone_cleanup import bone_core, remove_bone_leaks
from mskai.volume import Volume

SPACING_IJK = (0.6, 0.6, 1.5)   # sagittal DESS-like: i anterior, j superior, k lateral
SHAPE_KJI = (50, 170, 150)      # 75 x 102 x 90 mm


def _grid() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Millimetre coordinates (lateral, superior, anterior) of every voxel centre."""
    k, j, i = np.indices(SHAPE_KJI, dtype=float)
    return (k * SPACING_IJK[2], j * SPACING_IJK[1], i * SPACING_IJK[0])


def _volume() -> Volume:
    """Voxel axes: i -> anterior (LPS -y), j -> superior (LPS +z), k -> left (LPS +x)."""
    direction = np.array([[0.0, 0.0, 1.0], [-1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
    return Volume(np.zeros(SHAPE_KJI, np.int16), SPACING_IJK, (0.0, 0.0, 0.0), direction,
                  modality="MR")


def _true_tibia() -> np.ndarray:
    """Plateau 60 x 45 mm (10 mm high) with a 4 mm wide spine on top, on a 26 mm shaft."""
    x, s, a = _grid()
    plateau = (((x - 37.0) / 30.0) ** 2 + ((a - 45.0) / 22.5) ** 2 <= 1) & (s >= 60) & (s < 72)
    spine = (np.abs(x - 37.0) <= 2.0) & (np.abs(a - 45.0) <= 8.0) & (s >= 72) & (s < 78)
    shaft = ((x - 37.0) ** 2 + (a - 45.0) ** 2 <= 13.0 ** 2) & (s >= 5) & (s < 60)
    return plateau | spine | shaft


def _calf_slab() -> np.ndarray:
    """A 16 x 35 x 14 mm slab of 'muscle' 6 mm behind the shaft, with a 3 mm bridge."""
    x, s, a = _grid()
    slab = (np.abs(x - 37.0) <= 8.0) & (s >= 20) & (s < 55) & (a >= 12.0) & (a < 26.0)
    bridge = (np.abs(x - 37.0) <= 1.5) & (np.abs(s - 40.0) <= 1.5) & (a >= 25.0) & (a < 34.0)
    return slab | bridge


def _fibula_rod() -> np.ndarray:
    """A 14 mm rod beside the shaft whose top slice overlaps the plateau's edge slices."""
    x, s, a = _grid()
    rod = ((x - 62.0) ** 2 + (a - 30.0) ** 2 <= 7.0 ** 2) & (s >= 15) & (s < 61)
    return rod & ~((x < 58.0) & (s >= 55))


def _dice(a: np.ndarray, b: np.ndarray) -> float:
    return 2.0 * float(np.count_nonzero(a & b)) / float(np.count_nonzero(a) + np.count_nonzero(b))


@pytest.fixture(scope="module")
def tibia() -> np.ndarray:
    return _true_tibia()


def test_muscle_slab_on_a_thin_bridge_is_removed(tibia):
    slab = _calf_slab() & ~tibia
    broken = tibia | slab
    assert np.count_nonzero(slab) * 0.54e-3 > 5.0   # a leak of several mL
    kept = remove_bone_leaks({"tibia": broken}, _volume())["tibia"]
    assert _dice(kept, tibia) > 0.99
    assert np.count_nonzero(kept & slab) < 0.02 * np.count_nonzero(slab)
    assert not np.any(kept & ~broken)


def test_fibula_joined_across_thick_slices_is_removed(tibia):
    rod = _fibula_rod() & ~tibia
    broken = tibia | rod
    from scipy import ndimage

    assert ndimage.label(broken)[1] == 1   # one component: largest-component keeps it
    kept = remove_bone_leaks({"tibia": broken}, _volume())["tibia"]
    assert _dice(kept, tibia) > 0.99
    assert np.count_nonzero(kept & rod) < 0.05 * np.count_nonzero(rod)


def test_true_tibia_and_its_thin_spine_are_untouched(tibia):
    masks = {"tibia": tibia, "femoral_cartilage": np.zeros_like(tibia)}
    out = remove_bone_leaks(masks, _volume())
    assert np.array_equal(out["tibia"], tibia)
    assert out["femoral_cartilage"] is masks["femoral_cartilage"]


def test_a_shaft_cut_off_by_a_thin_stretch_is_kept(tibia):
    x, s, a = _grid()
    # the model lost the shaft between 30 and 34 mm but for a 3 mm strand
    gap = (s >= 30) & (s < 34) & ~((np.abs(x - 37.0) <= 1.5) & (np.abs(a - 45.0) <= 1.5))
    broken = tibia & ~gap
    shaft = np.array([0.0, -1.0, 0.0])   # [k, j, i]: j is superior
    kept = bone_core(broken, np.array(SPACING_IJK[::-1]), shaft)
    assert np.array_equal(kept, broken)
    # without the shaft direction the distal shaft is taken for a detached part
    assert np.count_nonzero(broken & ~bone_core(broken, np.array(SPACING_IJK[::-1]))) > 0


def test_one_piece_check_flags_the_slab_and_passes_the_true_tibia(tibia):
    broken = tibia | (_calf_slab() & ~tibia)
    checks = {c.check: c for c in check_knee_anatomy({"tibia": broken}, _volume())}
    assert not checks["one_piece"].passed
    assert checks["one_piece"].structure == "tibia"
    assert "labelled as bone" in checks["one_piece"].problem
    true = {c.check: c for c in check_knee_anatomy({"tibia": tibia}, _volume())}
    assert true["one_piece"].passed


def test_cartilage_task_removes_the_slab_from_model_output(tibia, monkeypatch):
    """The hook in CartilageQuant's model path (tasks.cartilage._knee_masks)."""
    from types import SimpleNamespace

    import mskai.inference.pipeline as pipeline
    import mskai.models.registry as registry
    from mskai.tasks import cartilage

    slab = _calf_slab() & ~tibia
    entry = SimpleNamespace(id="knee_test", version="0", sha256="0",
                            labels={0: "background", 2: "tibia"})
    monkeypatch.setattr(registry, "models_for_task", lambda task, modality: [entry])
    monkeypatch.setattr(pipeline, "run_segmentation", lambda *a, **k: {2: tibia | slab})
    masks, *_ = cartilage._knee_masks(_volume(), None, lambda f, m: None, None)
    assert _dice(masks["tibia"], tibia) > 0.99
    assert np.count_nonzero(masks["tibia"] & slab) < 0.02 * np.count_nonzero(slab)
