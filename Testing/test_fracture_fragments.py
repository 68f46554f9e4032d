"""Fragments that touch: automatic and click-driven split along the fracture surface.

Truth: a long-bone phantom (0.7 x 0.7 x 1.0 mm, oblique grid, 20 HU noise) broken along a
rough surface with the fragments in contact (:mod:`phantoms.touching_fracture`): displaced
and angulated (impaction where they overlap), or a hairline with no motion; and the
analytic planar fracture whose 1.2 mm gap partial volume bridges (:mod:`phantoms.long_bone`).
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from cli_runner import run_cli

from mskai.errors import InputError
from mskai.fracture.fragment_split import seeds_from_ras, split_bone, split_from_seeds
from mskai.fracture.split_alignment import split_alignment
from mskai.segmentation.bone_ct import segment_bone_ct
from phantoms.long_bone import fractured_long_bone, intact_long_bone
from phantoms.touching_fracture import break_bone, matched_dice

SPACING = (0.7, 0.7, 1.0)
CLICK_MM = 25.0  # clicks on the shaft axis, this far on each side of the fracture


@pytest.fixture(scope="module")
def intact():
    return intact_long_bone(spacing=SPACING, body_radius_mm=30.0, length_mm=100.0, seed=1,
                            noise_sd=20.0, supersample=2)


def _broken(intact, **kw):
    u = np.asarray(intact.truth.shaft_axis_ras)
    c = np.asarray(intact.truth.shaft_center_ras)
    image, truth = break_bone(intact.image, intact.labels > 0, c, u + np.array([0.3, 0.0, 0.0]),
                              seed=3, **kw)
    return image, truth, [c - CLICK_MM * u, c + CLICK_MM * u]


@pytest.fixture(scope="module")
def touching(intact):
    """Rough surface, 1.9 mm transverse displacement, 4 degrees: the fragments interlock."""
    return _broken(intact, roughness_mm=2.0, translation_ras=(1.5, 1.2, 0.2),
                   angulation_deg=4.0, line_mm=0.6)


@pytest.fixture(scope="module")
def hairline(intact):
    """No motion; a 0.4 mm line, fainter than one voxel."""
    return _broken(intact, roughness_mm=1.0, line_mm=0.4)


@pytest.fixture(scope="module")
def bridged():
    """Planar oblique fracture, 1.2 mm gap bridged by partial volume, 10 degrees."""
    ph = fractured_long_bone(spacing=SPACING, gap_mm=1.2, translation_mm=(2.5, 1.5, 0.0),
                             angulation_deg=10.0, noise_sd=20.0, body_radius_mm=30.0,
                             fracture_plane_normal=(0.4, -0.1, -1.0), seed=2,
                             length_mm=100.0, fracture_position_mm=50.0,
                             blur_sigma_mm=0.4, supersample=2)
    f = ph.truth.fractures[0]
    u, c = np.asarray(f.proximal_axis_ras), np.asarray(f.center_ras)
    return ph, [c - CLICK_MM * u, c + CLICK_MM * u]


def _clicked(image, bone, clicks):
    return split_from_seeds(image, bone, [p[None] for p in seeds_from_ras(image, bone, clicks)])


@pytest.mark.parametrize("case", ["touching", "hairline"])
def test_automatic_split_follows_the_fracture_surface(case, request):
    image, truth, _ = request.getfixturevalue(case)
    found = split_bone(image, truth.labels > 0)
    assert found.max() == 2
    assert min(matched_dice(truth.labels, found)) >= 0.90


@pytest.mark.parametrize("case", ["touching", "hairline"])
def test_one_click_per_fragment(case, request):
    image, truth, clicks = request.getfixturevalue(case)
    found = _clicked(image, truth.labels > 0, clicks)
    assert min(matched_dice(truth.labels, found)) >= 0.95


def test_split_on_the_hu_bone_mask_is_bounded_by_the_bone_mask(touching):
    """End to end, the fragments are as good as the HU bone mask lets them be."""
    image, truth, clicks = touching
    bone = segment_bone_ct(image)
    ceiling = matched_dice((truth.labels > 0).astype(np.uint8), bone.astype(np.int32))[0]
    for found in (split_bone(image, bone), _clicked(image, bone, clicks)):
        assert min(matched_dice(truth.labels, found)) >= ceiling - 0.02


def test_bridged_gap_is_split_and_measured(bridged):
    ph, clicks = bridged
    bone = segment_bone_ct(ph.image)
    assert bone.any() and int(split_bone(ph.image, bone).max()) == 2
    found = _clicked(ph.image, bone, clicks)
    al = split_alignment(found, ph.image, 1, 2)
    f = ph.truth.fractures[0]
    assert abs(al.displacement_mm - f.transverse_displacement_mm) <= 1.0
    assert abs(al.angulation_deg - f.angulation_deg) <= 2.0


def test_displacement_and_angulation_of_touching_fragments(touching):
    image, truth, clicks = touching
    al = split_alignment(_clicked(image, truth.labels > 0, clicks), image, 1, 2)
    assert abs(al.displacement_mm - truth.displacement_mm) <= 1.0
    assert abs(al.angulation_deg - truth.angulation_deg) <= 2.0


def test_intact_bone_is_not_split(intact):
    assert split_bone(intact.image, segment_bone_ct(intact.image)).max() == 1


def test_clicks_outside_bone_or_image_are_refused(touching):
    image, truth, clicks = touching
    bone = truth.labels > 0
    with pytest.raises(InputError, match="outside the bone"):
        seeds_from_ras(image, bone, [clicks[0], clicks[0] + 25.0 * np.array([1.0, 0, 0])])
    with pytest.raises(InputError, match="outside the image"):
        seeds_from_ras(image, bone, [clicks[0], (900.0, 0.0, 0.0)])


def _ras(p) -> str:
    return ",".join(f"{v:.2f}" for v in p)


def test_cli_fragment_clicks_end_to_end(capsys, tmp_path, touching):
    from mskai.image import write_image
    from mskai.labels import read_labels

    image, truth, clicks = touching
    path = tmp_path / "touching.nrrd"
    write_image(image, path)
    out = tmp_path / "out"
    args = ["fracture", str(path), "--out", str(out)]
    code, _, err = run_cli(capsys, *args, "--fragment-ras", _ras(clicks[0]),
                           "--fragment-ras", _ras(clicks[1]))
    assert code == 0, err
    doc = json.loads((out / "measurements.json").read_text())
    (fracture,) = doc["fractures"]
    assert fracture["fragments"] == ["bone_fragment_1", "bone_fragment_2"]
    assert abs(fracture["displacement_mm"] - truth.displacement_mm) <= 1.0
    assert abs(fracture["angulation_deg"] - truth.angulation_deg) <= 2.0
    segments = read_labels(out / "segmentation.seg.nrrd", image)
    found = np.zeros(truth.labels.shape, dtype=np.int32)
    for n in (1, 2):
        found[segments[f"bone_fragment_{n}"]] = n
    assert min(matched_dice(truth.labels, found)) >= 0.85  # HU bone mask, see above

    outside = _ras(clicks[0] + 25.0 * np.array([1.0, 0.0, 0.0]))
    code, _, err = run_cli(capsys, *args, "--overwrite", "--fragment-ras", _ras(clicks[0]),
                           "--fragment-ras", outside)
    assert code == 2 and len(err.strip().splitlines()) == 1 and "outside the bone" in err
