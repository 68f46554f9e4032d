"""Eckstein subregions against analytic plates, a voxel slab phantom and the real knee."""

from __future__ import annotations

import functools

import numpy as np
import pytest

from mskai.errors import InputError
from mskai.measure.knee_axes import KneeAxes, knee_axes
from mskai.measure.subregions import subregion_labels, subregions
from mskai.measure.thickness import ThicknessMap, cartilage_thickness
from mskai.volume import LPS_TO_RAS
from phantoms.cartilage import circular_segment_area, slab
from phantoms.grid import oblique_direction

OBLIQUE = oblique_direction()
STEP = 0.1  # mm, grid of the synthetic plates


def _axes(superior, medial, anterior, plateau=(-10.0, 10.0)) -> KneeAxes:
    return KneeAxes(np.asarray(superior, float), np.asarray(medial, float),
                    np.asarray(anterior, float), np.zeros(3), plateau)


FLAT = _axes((0, 0, 1), (-1, 0, 0), (0, 1, 0))  # a right knee in RAS


def _plate(inside, thickness, half_extent: float) -> ThicknessMap:
    """Points on a STEP grid in the RAS axial plane where ``inside(x, y)``; x = R, y = A."""
    g = np.arange(-half_extent, half_extent + STEP / 2, STEP)
    x, y = (a.ravel() for a in np.meshgrid(g, g))
    keep = inside(x, y)
    pts = np.stack([x[keep], y[keep], np.zeros(keep.sum())], axis=1)
    normals = np.tile([0.0, 0.0, 1.0], (len(pts), 1))
    values = thickness(pts[:, 0], pts[:, 1])
    area = np.full(len(pts), STEP**2)
    return ThicknessMap(pts, normals, values, area, "synthetic", 0.0, float(area.sum()))


def _by_name(rows: list[dict]) -> dict[str, dict]:
    return {row["name"]: row for row in rows}


# ----- tibial plates: analytic ------------------------------------------------------------
@pytest.mark.parametrize(("a", "b"), [(10.0, 10.0), (14.0, 8.0)])
def test_central_ellipse_and_four_sectors_hold_a_fifth_each(a, b):
    # an ellipse maps affinely onto a circle: the central ellipse and every sector between
    # the diagonals hold exactly 20 % of the area
    plate = _plate(lambda x, y: (x / a) ** 2 + (y / b) ** 2 <= 1, lambda x, y: 2.0 + 0 * x, a)
    rows = _by_name(subregions(plate, "medial_tibial_cartilage", FLAT))
    assert list(rows) == ["central", "anterior", "posterior", "internal", "external"]
    total = np.pi * a * b
    for row in rows.values():
        assert row["area_mm2"] == pytest.approx(0.2 * total, rel=0.02)
        assert row["mean_thickness_mm"] == pytest.approx(2.0)
        assert row["denuded_area_fraction"] == 0.0


def test_internal_faces_the_tibial_spine_on_either_plate():
    plate = _plate(lambda x, y: x**2 + y**2 <= 100, lambda x, y: 2.0 + 0 * x, 10)
    far_right = plate.points_ras[:, 0] > 8  # +R: lateral in a right knee
    medial = subregion_labels(plate, "medial_tibial_cartilage", FLAT)
    lateral = subregion_labels(plate, "lateral_tibial_cartilage", FLAT)
    whole = subregion_labels(plate, "tibial_cartilage", FLAT)
    # the medial plate's spine side is lateral (+R), the lateral plate's is medial (-R)
    assert set(medial[far_right]) == {"internal"}
    assert set(lateral[far_right]) == {"external"}
    assert set(whole[far_right]) == {"lateral"}


def test_subregion_thickness_follows_a_thickness_gradient():
    # t = 2 + 0.1 y (y anterior): the anterior sector is thicker than the posterior one by
    # 0.2 * the mean |y| of a sector, the central and the ML sectors are at 2 mm on average
    plate = _plate(lambda x, y: x**2 + y**2 <= 100, lambda x, y: 2.0 + 0.1 * y, 10)
    rows = _by_name(subregions(plate, "lateral_tibial_cartilage", FLAT))
    # mean y over the anterior sector (r from sqrt(0.2) R to R, |angle| <= 45 deg from A)
    r0, r1 = np.sqrt(0.2) * 10, 10.0
    mean_y = (2 / 3) * (r1**3 - r0**3) / (r1**2 - r0**2) * np.sin(np.pi / 4) / (np.pi / 4)
    assert rows["anterior"]["mean_thickness_mm"] == pytest.approx(2 + 0.1 * mean_y, abs=0.01)
    assert rows["posterior"]["mean_thickness_mm"] == pytest.approx(2 - 0.1 * mean_y, abs=0.01)
    for name in ("central", "internal", "external"):
        assert rows[name]["mean_thickness_mm"] == pytest.approx(2.0, abs=0.01)


def test_denuded_segment_counts_in_the_anterior_sector_only():
    # cartilage 0.2 mm thick beyond the chord y = 7.5 of a 10 mm disc: that segment lies in
    # the anterior sector (|x| <= 6.6 < y there) and outside the central ellipse (r <= 4.5)
    radius, chord = 10.0, 7.5
    plate = _plate(lambda x, y: x**2 + y**2 <= radius**2,
                   lambda x, y: np.where(y > chord, 0.2, 2.0), radius)
    rows = _by_name(subregions(plate, "medial_tibial_cartilage", FLAT, threshold_mm=0.5))
    truth = circular_segment_area(radius, chord) / (0.2 * np.pi * radius**2)
    assert truth == pytest.approx(0.3607, abs=1e-3)
    assert rows["anterior"]["denuded_area_fraction"] == pytest.approx(truth, abs=0.01)
    for name in ("central", "posterior", "internal", "external"):
        assert rows[name]["denuded_area_fraction"] == 0.0


def test_unknown_plate_is_refused():
    plate = _plate(lambda x, y: x**2 + y**2 <= 4, lambda x, y: 2.0 + 0 * x, 2)
    with pytest.raises(InputError, match="not a cartilage plate"):
        subregions(plate, "meniscus", FLAT)


# ----- femoral condyle: analytic ----------------------------------------------------------
def test_femoral_regions_on_a_condyle_cylinder():
    # a cylinder of radius 20 mm about the ML (R) axis, its surface from 120 degrees
    # posterior to 120 degrees anterior of inferior; the plateau spans A = -10..10 mm, so
    # the trochlea starts at 30 degrees anterior and the posterior condyle at 30 degrees
    # posterior: central 60 of 240 degrees, trochlea 90, posterior 90
    radius, n_theta, n_x = 20.0, 2400, 200
    theta = np.radians(np.linspace(-120, 120, n_theta, endpoint=False) + 240 / n_theta / 2)
    x = np.linspace(-20, 20, n_x, endpoint=False) + 0.1
    tt, xx = (a.ravel() for a in np.meshgrid(theta, x))
    normals = np.stack([0 * tt, np.sin(tt), -np.cos(tt)], axis=1)
    pts = np.stack([xx, radius * normals[:, 1], radius * normals[:, 2]], axis=1)
    area = np.full(len(pts), 1.0)
    condyle = ThicknessMap(pts, normals, np.full(len(pts), 2.5), area, "synthetic", 0, 0)
    rows = _by_name(subregions(condyle, "femoral_cartilage", FLAT))
    share = {name: row["area_mm2"] / area.sum() for name, row in rows.items()}
    assert share["trochlea"] == pytest.approx(90 / 240, abs=0.01)
    for side in ("medial", "lateral"):  # x < 0 is medial (-R) in this right knee
        assert share[f"central_{side}"] == pytest.approx(30 / 240, abs=0.01)
        assert share[f"posterior_{side}"] == pytest.approx(45 / 240, abs=0.01)
    labels = subregion_labels(condyle, "femoral_cartilage", FLAT)
    assert set(labels[(pts[:, 0] < 0) & (np.abs(tt) < 0.4)]) == {"central_medial"}


# ----- voxel phantom ----------------------------------------------------------------------
@functools.cache
def _slab_map(thin: float | None, method: str = "nearest"):
    ph = slab(2.0, 0, 14, (0.3, 0.3, 0.5), OBLIQUE, thin_thickness_mm=thin, thin_beyond_mm=10.5)
    u, v, n = (LPS_TO_RAS @ axis for axis in ph.frame_lps)
    axes = _axes(n, v, u)  # anterior = u, the thinned segment is anterior
    return ph, axes, cartilage_thickness(ph.cartilage, ph.bone, ph.labels, method)


def test_slab_phantom_subregions_match_the_disc():
    ph, axes, tmap = _slab_map(None)
    rows = _by_name(subregions(tmap, "medial_tibial_cartilage", axes))
    total = sum(row["area_mm2"] for row in rows.values())
    assert total == pytest.approx(ph.interface_area_mm2, rel=0.03)
    for name, row in rows.items():
        assert row["area_mm2"] / total == pytest.approx(0.2, abs=0.01), name
        assert row["mean_thickness_mm"] == pytest.approx(2.0, abs=0.1), name


def _thinned_rows(method: str) -> tuple[dict, float]:
    """Subregions of a 2 mm slab (R 14) thinned to 0.6 mm beyond the chord at 10.5 mm."""
    _, axes, tmap = _slab_map(0.6, method)
    rows = _by_name(subregions(tmap, "medial_tibial_cartilage", axes, threshold_mm=1.0))
    print(method, {n: round(r["denuded_area_fraction"], 3) for n, r in rows.items()})
    for name in ("central", "posterior", "internal", "external"):
        assert rows[name]["denuded_area_fraction"] < 0.01, name
        assert rows[name]["mean_thickness_mm"] == pytest.approx(2.0, abs=0.1), name
    return rows, 0.2 * np.pi * 14**2


def test_slab_phantom_thinned_segment_along_the_normal():
    # the segment beyond the chord lies in the anterior sector only: its share of the sector
    rows, sector = _thinned_rows("normal")
    truth = circular_segment_area(14, 10.5) / sector
    assert rows["anterior"]["denuded_area_fraction"] == pytest.approx(truth, abs=0.03)
    assert rows["anterior"]["mean_thickness_mm"] == pytest.approx(2 - 1.4 * truth, abs=0.05)


def test_slab_phantom_thinned_segment_nearest_neighbour():
    # nearest-neighbour thickness is below 1 mm also on the thick side within
    # sqrt(1 - 0.6^2) = 0.8 mm of the step (the thin surface is nearer than the thick one)
    rows, sector = _thinned_rows("nearest")
    low = circular_segment_area(14, 10.5) / sector
    high = circular_segment_area(14, 10.5 - 0.8) / sector
    assert low - 0.02 <= rows["anterior"]["denuded_area_fraction"] <= high + 0.02


# ----- the real knee ----------------------------------------------------------------------
KNEE_NAMES = {"femoral_cartilage": 1, "medial_tibial_cartilage": 2,
              "lateral_tibial_cartilage": 3, "patellar_cartilage": 4, "femur": 5, "tibia": 6,
              "patella": 7, "fibula": 8}
EXPECTED = {
    "femoral_cartilage": {"trochlea", "central_medial", "central_lateral", "posterior_medial",
                          "posterior_lateral"},
    "medial_tibial_cartilage": {"central", "anterior", "posterior", "internal", "external"},
    "lateral_tibial_cartilage": {"central", "anterior", "posterior", "internal", "external"},
    "patellar_cartilage": {"medial_facet", "lateral_facet"},
}
BONE = {"femoral_cartilage": "femur", "medial_tibial_cartilage": "tibia",
        "lateral_tibial_cartilage": "tibia", "patellar_cartilage": "patella"}


@pytest.fixture(scope="module")
def knee(test_data):
    from mskai.image import read_image

    path = test_data / "knee" / "SAG_3D_DESS_RIGHT_bones_cart_men_fib-label.nrrd"
    if not path.exists():
        pytest.skip("the pymskt knee label map is not present")
    volume = read_image(path)
    return volume, {name: volume.array == value for name, value in KNEE_NAMES.items()}


def test_real_knee_axes_are_anatomical(knee):
    volume, labels = knee
    axes = knee_axes(labels, volume)
    # a right knee, scanned in a near-standard position: medial -R, anterior +A, superior +S
    assert axes.medial[0] < -0.9 and axes.anterior[1] > 0.9 and axes.superior[2] > 0.9
    assert axes.sources["medial"] == "tibial plates"
    without_plates = {n: m for n, m in labels.items() if "tibial" not in n}
    from_fibula = knee_axes(without_plates, volume)
    assert from_fibula.sources["medial"] == "fibula"
    assert from_fibula.medial @ axes.medial > 0.95


@pytest.mark.parametrize("plate", list(EXPECTED))
def test_real_knee_subregions(knee, plate):
    volume, labels = knee
    axes = knee_axes(labels, volume)
    tmap = cartilage_thickness(labels[plate], labels[BONE[plate]], volume, "nearest")
    rows = _by_name(subregions(tmap, plate, axes))
    print(plate, {n: (round(r["area_mm2"]), round(r["mean_thickness_mm"], 2))
                  for n, r in rows.items()})
    assert set(rows) == EXPECTED[plate]
    assert sum(r["area_mm2"] for r in rows.values()) == pytest.approx(tmap.interface_area_mm2)
    for row in rows.values():
        assert row["area_mm2"] > 0.05 * tmap.interface_area_mm2
        assert 1.0 <= row["mean_thickness_mm"] <= 4.0
        assert 0.0 <= row["denuded_area_fraction"] < 0.05
    if plate.endswith("tibial_cartilage"):  # the central plateau is thicker than the rim
        assert rows["central"]["mean_thickness_mm"] > max(
            rows[name]["mean_thickness_mm"] for name in ("anterior", "posterior", "external"))
