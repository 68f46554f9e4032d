"""FractureDetect core: fragments, displacement/angulation, candidates, run_fracture."""

from __future__ import annotations

import numpy as np
import pytest

from mskai.errors import InputError
from mskai.tasks.fracture import run_fracture
from mskai.volume import Volume
from phantoms.long_bone import fractured_long_bone, intact_long_bone

AXIS = np.array([0.15, -0.1, -1.0]) / np.linalg.norm([0.15, -0.1, -1.0])


def transverse(magnitude: float, angle_deg: float) -> tuple[float, float, float]:
    """A translation of ``magnitude`` perpendicular to the shaft axis."""
    e1 = np.cross(AXIS, [0.0, 1.0, 0.0])
    e1 /= np.linalg.norm(e1)
    e2 = np.cross(AXIS, e1)
    a = np.radians(angle_deg)
    return tuple(float(v) for v in magnitude * (np.cos(a) * e1 + np.sin(a) * e2))


CASES = [  # (translation mm, direction deg, angulation deg, gap mm, spacing)
    (2.0, 0.0, 5.0, 4.0, (0.7, 0.7, 1.25)),
    (4.0, 60.0, 10.0, 4.0, (0.6, 0.9, 1.5)),
    (6.0, 135.0, 15.0, 5.0, (0.7, 0.7, 1.25)),
    (8.0, 200.0, 20.0, 6.0, (1.0, 0.8, 0.6)),
    (10.0, 300.0, 30.0, 8.0, (0.7, 0.7, 1.25)),
]


@pytest.mark.parametrize(("shift", "towards", "angle", "gap", "spacing"), CASES)
def test_displacement_and_angulation_on_given_fragments(shift, towards, angle, gap, spacing):
    ph = fractured_long_bone(translation_mm=transverse(shift, towards), angulation_deg=angle,
                             gap_mm=gap, spacing=spacing, angulation_axis_ras=(0.3, 1.0, 0.2),
                             supersample=1)
    truth = ph.truth.fractures[0]
    labels = {"bone_fragment_1": ph.labels == 1, "bone_fragment_2": ph.labels == 2}
    result = run_fracture(ph.image, labels=labels)
    (fracture,) = result.measurements["fractures"]
    assert abs(fracture["displacement_mm"] - truth.transverse_displacement_mm) <= 1.0
    assert abs(fracture["angulation_deg"] - truth.angulation_deg) <= 2.0
    assert np.linalg.norm(np.subtract(fracture["position_ras"], truth.center_ras)) <= 2.0
    assert fracture["fragments"] == ["bone_fragment_1", "bone_fragment_2"]
    assert {s.id for s in result.segments} == {"bone", "bone_fragment_1", "bone_fragment_2"}
    assert result.segment("bone_fragment_2").measurements["volume_ml"] == pytest.approx(
        ph.truth.fragment_volumes_ml[2], rel=0.05)


def test_segmented_ct_phantom_finds_the_fracture():
    """At 1 mm smoothing and 110 HU the 6 mm gap is bridged on its narrow side (10 degree
    wedge); the stricter fragment mask (150/250 HU) keeps the fragments apart, so the
    fracture is found, with or without ``split_touching`` (which splits touching fragments
    only at reported fractures without fragments). Measured: position 0.1 mm,
    5.05 vs 4.98 mm, 10.4 vs 10 degrees (before the fragment mask: 5.0 mm, neck split only).
    """
    ph = fractured_long_bone(translation_mm=transverse(5.0, 30.0), angulation_deg=10.0,
                             gap_mm=6.0, body_radius_mm=30.0, noise_sd=15.0, supersample=2)
    truth = ph.truth.fractures[0]
    for split in (False, True):
        (fracture,) = run_fracture(ph.image, split_touching=split).measurements["fractures"]
        assert fracture["score"] >= 0.5
        assert np.linalg.norm(np.subtract(fracture["position_ras"], truth.center_ras)) <= 3.0
        assert abs(fracture["displacement_mm"] - truth.transverse_displacement_mm) <= 1.0
        assert abs(fracture["angulation_deg"] - truth.angulation_deg) <= 2.0


@pytest.mark.parametrize(("pixel_mm", "warned"), [(0.9, False), (1.33, False), (1.5, True)])
def test_pixels_too_coarse_for_the_line_detector_are_said(pixel_mm, warned):
    """The HU-valley detector reads its lines one in-plane voxel inside the bone and keeps
    those reaching the outer 2 mm rim: over 1.33 mm in-plane no line can reach it, so an
    empty list would not mean "no touching fracture". The result says so."""
    k, j, i = np.mgrid[:24, :40, :40]
    rod = (j - 20) ** 2 + (i - 20) ** 2 <= 36
    array = np.where((j > 4) & (j < 35) & (i > 4) & (i < 35), 40.0, -1000.0)
    image = Volume(np.where(rod, 900.0, array).astype(np.float32),
                   spacing=(pixel_mm, pixel_mm, 1.0), modality="CT")
    result = run_fracture(image)
    said = [w for w in result.warnings if "fracture-line detector" in w]
    assert bool(said) == warned
    assert not warned or f"{pixel_mm:.2f} mm" in said[0]
    labelled = run_fracture(image, labels={"bone": rod})
    assert not any("fracture-line detector" in w for w in labelled.warnings)  # not used


def test_intact_long_bone_gives_no_fracture():
    ph = intact_long_bone(body_radius_mm=30.0, noise_sd=15.0, supersample=2)
    result = run_fracture(ph.image)
    assert result.measurements["fractures"] == []
    assert [s.id for s in result.segments] == ["bone"]


def test_bad_inputs():
    mr = Volume(np.random.default_rng(0).uniform(0, 500, (10, 10, 10)), modality="MR")
    with pytest.raises(InputError, match="CT"):
        run_fracture(mr)
    no_bone = np.full((10, 10, 10), -1000.0)
    with pytest.raises(InputError, match="no bone"):
        run_fracture(Volume(no_bone, modality="CT"))
    with pytest.raises(InputError, match="bone_fragment"):
        run_fracture(Volume(no_bone), labels={"tumor": no_bone > 0})


def test_simulated_rib_fracture_on_real_ct(shared_data):
    """A cut rib of the real 3 mm CT is found within 10 mm; the intact scan has none."""
    from mskai.image import read_image
    from phantoms.simulated_fracture import simulate_fracture

    folder = shared_data / "ts_example"
    image = read_image(folder / "example_ct.nii.gz")
    seg = read_image(folder / "example_seg_fast_force_split.nii.gz").array
    assert run_fracture(image).measurements["fractures"] == []
    sim = simulate_fracture(image, seg == 114, seed=114, gap_mm=(5.0, 9.0))
    candidates = run_fracture(sim.image).measurements["fracture_candidates"]
    distances = [np.linalg.norm(np.subtract(c["position_ras"], sim.center_ras))
                 for c in candidates]
    assert min(distances) <= 10.0
    best = candidates[int(np.argmin(distances))]
    assert best["score"] >= 0.5


def test_fragments_meeting_at_two_places_give_two_candidates():
    """Two pieces meet across the fracture gap of a bar and again 80 mm away, where an arm
    of one comes close to a leg of the other (as a rib piece meets the spine at 3 mm):
    each place is a candidate of its own, not just the narrower one."""
    from mskai.fracture.candidates import find_candidates

    labels = np.zeros((20, 80, 140), dtype=np.int32)
    labels[5:15, 5:15, 10:60] = 1  # left piece of the bar
    labels[5:15, 15:70, 10:20] = 1  # its arm, up ...
    labels[5:15, 60:70, 10:110] = 1  # ... and across
    labels[5:15, 5:15, 64:130] = 2  # right piece of the bar: 4 mm gap at i = 60..63
    labels[5:15, 15:58, 120:130] = 2  # its leg, 10 mm from the end of the arm
    image = Volume(labels.astype(np.float32), spacing=(1.0, 1.0, 1.0))
    candidates = find_candidates(labels, image)
    assert [c.labels for c in candidates] == [(1, 2), (1, 2)]
    columns = sorted(float(image.ras_to_index(c.position_ras)[0]) for c in candidates)
    assert 59.0 <= columns[0] <= 64.0  # the bar's gap
    assert 108.0 <= columns[1] <= 121.0  # the arm meeting the leg


def test_one_wedge_gap_is_one_site():
    """Boundary points of one wedge-shaped gap (width 2-8 mm across a 30 mm bone) stay one
    site however wide the bone."""
    from mskai.fracture.candidates import gap_sites

    j, i = np.mgrid[:30, :30]
    points = np.column_stack([np.full(j.size, 10.0), j.ravel(), i.ravel()]).astype(float)
    widths = 2.0 + 6.0 * i.ravel() / 29.0
    image = Volume(np.zeros((20, 30, 30), np.float32), spacing=(1.0, 1.0, 1.0))
    (site,) = gap_sites(points, widths, image)
    assert len(site[0]) == len(points)
