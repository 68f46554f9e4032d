"""Lesion, long-bone and vertebra phantoms match their analytic truth.

Every generator runs on an oblique grid with anisotropic voxels; masks are "voxel centre
inside", so voxel counts and hull diameters agree with the truth up to discretisation.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage
from scipy.spatial import ConvexHull, cKDTree

from phantoms.grid import make_grid, oblique_direction
from phantoms.intensity import (
    CT_HU,
    Tissue,
    blur_mm,
    fit_grid,
    rician_noise,
    tissue_fractions,
    voxel_centres_ras,
)
from phantoms.lesion import (
    THOMSEN_MAX_REL_ERROR,
    axial_section_diameters,
    ellipsoid_lesion,
    ellipsoid_surface_area_mm2,
    thomsen_surface_area_mm2,
)
from phantoms.long_bone import fractured_long_bone, intact_long_bone
from phantoms.vertebra import genant_grade, vertebral_body

OBLIQUE = oblique_direction(25.0)


def _mask_points_ras(volume, mask: np.ndarray) -> np.ndarray:
    return voxel_centres_ras(volume)[mask]


def _max_diameter(points: np.ndarray) -> float:
    hull = points[ConvexHull(points).vertices]
    d = np.linalg.norm(hull[:, None] - hull[None], axis=-1)
    return float(d.max())


def _voxel_diagonal(spacing) -> float:
    return float(np.linalg.norm(spacing))


def _angle_deg(u: np.ndarray, v: np.ndarray) -> float:
    c = abs(float(np.dot(u, v))) / (np.linalg.norm(u) * np.linalg.norm(v))
    return float(np.degrees(np.arccos(min(c, 1.0))))


def _axis_pca(points: np.ndarray, keep: float = 0.6) -> tuple[np.ndarray, np.ndarray]:
    """(centroid, unit axis) of an elongated point set: PCA, then PCA again on the middle
    ``keep`` fraction of its length so that slanted or displaced ends do not tilt it."""
    m = points.mean(axis=0)
    axis = np.linalg.eigh(np.cov((points - m).T))[1][:, -1]
    s = (points - m) @ axis
    lo, hi = s.min(), s.max()
    cut = (hi - lo) * (1 - keep) / 2
    core = points[(s > lo + cut) & (s < hi - cut)]
    m = core.mean(axis=0)
    axis = np.linalg.eigh(np.cov((core - m).T))[1][:, -1]
    return m, axis


# ----- lesion --------------------------------------------------------------------------------
LESION_SPACING = (0.8, 0.8, 2.5)


@pytest.fixture(scope="module")
def lesion():
    return ellipsoid_lesion(
        semi_axes_mm=(20.0, 14.0, 10.0), rotation_deg=((0.3, 0.5, 1.0), 35.0),
        center_ras=(12.0, -25.0, 40.0), spacing=LESION_SPACING, direction=OBLIQUE,
        with_bone=True, bone_distance_mm=6.0, seed=3,
    )


def test_lesion_mask_volume_and_centroid_match_truth(lesion):
    vol = lesion.mask.sum() * lesion.image.voxel_volume_mm3 / 1000
    assert vol == pytest.approx(lesion.truth.volume_ml, rel=0.02)
    centroid = _mask_points_ras(lesion.image, lesion.mask).mean(axis=0)
    assert np.linalg.norm(centroid - lesion.truth.centroid_ras) < 0.5
    assert lesion.truth.volume_ml == pytest.approx(4 / 3 * np.pi * 20 * 14 * 10 / 1000)


def test_lesion_max_diameter_from_hull_is_within_a_voxel_diagonal(lesion):
    d = _max_diameter(_mask_points_ras(lesion.image, lesion.mask))
    assert lesion.truth.max_diameter_mm == 40.0
    assert 40.0 - _voxel_diagonal(LESION_SPACING) <= d <= 40.0 + 1e-9


def test_lesion_partial_volume_integrates_to_the_analytic_volume():
    p = ellipsoid_lesion(spacing=LESION_SPACING, direction=OBLIQUE, noise_sd=0.0)
    bg, lesion_hu = CT_HU[Tissue.SOFT_TISSUE], CT_HU[Tissue.LESION]
    fraction = (p.image.array - bg) / (lesion_hu - bg)
    vol = fraction.sum() * p.image.voxel_volume_mm3 / 1000
    assert vol == pytest.approx(p.truth.volume_ml, rel=0.005)
    assert p.image.modality == "CT"


def test_lesion_ct_contrast(lesion):
    img = lesion.image.array
    core = ndimage.binary_erosion(lesion.mask, iterations=2)
    far = ~ndimage.binary_dilation(lesion.labels > 0, iterations=3)
    assert 60 <= img[core].mean() <= 90
    assert img[far].mean() == pytest.approx(40.0, abs=3)
    cortex_side = ndimage.binary_erosion(lesion.bone_mask, iterations=1)
    assert img[cortex_side].max() > 700


def test_lesion_bone_distance_is_exact_and_seen_in_voxels(lesion):
    t = lesion.truth
    n = np.asarray(t.bone_normal_ras)
    # Dense sampling of the surface: the support function is reached to 1e-3 mm.
    th, ph = np.meshgrid(np.linspace(0, np.pi, 600), np.linspace(0, 2 * np.pi, 1200))
    unit = np.stack([np.sin(th) * np.cos(ph), np.sin(th) * np.sin(ph), np.cos(th)], -1)
    surface = (unit.reshape(-1, 3) * t.semi_axes_mm) @ t.axes_ras.T + t.centroid_ras
    bone_pts = _mask_points_ras(lesion.image, lesion.bone_mask)
    plane = ((bone_pts - t.centroid_ras) @ n).min()  # nearest bone voxel centre's offset
    reach = ((surface - t.centroid_ras) @ n).max()
    assert t.min_distance_to_bone_mm == 6.0
    spacing_along_n = np.abs(lesion.image.direction.T @ (n * [-1, -1, 1])) @ LESION_SPACING
    assert plane - reach == pytest.approx(6.0, abs=spacing_along_n)
    lesion_pts = _mask_points_ras(lesion.image, lesion.mask)
    voxel_gap = cKDTree(bone_pts).query(lesion_pts)[0].min()
    assert voxel_gap == pytest.approx(6.0, abs=_voxel_diagonal(LESION_SPACING))


def test_recist_equals_2a_2b_when_a_b_lie_in_the_axial_plane():
    rot = ellipsoid_lesion(rotation_deg=((0, 0, 1), 30.0), spacing=(2, 2, 4)).truth
    assert rot.recist_long_mm == pytest.approx(40.0)
    assert rot.recist_short_mm == pytest.approx(28.0)


def test_recist_of_a_rotated_lesion_matches_dense_sampling_of_axial_sections(lesion):
    t = lesion.truth
    for offset in (0.0, 4.0):
        r, a = np.meshgrid(np.linspace(-25, 25, 1001), np.linspace(-25, 25, 1001))
        pts = np.stack([r.ravel(), a.ravel(), np.full(r.size, offset)], -1) + t.centroid_ras
        inside = pts[t.contains_ras(pts)][:, :2]
        long_mm, short_mm = t.axial_diameters_at(offset)
        assert _max_diameter(inside) == pytest.approx(long_mm, abs=0.1)
        # Short axis: the extent perpendicular to the long axis, in the same slice.
        hull = inside[ConvexHull(inside).vertices]
        pairs = hull[:, None] - hull[None]
        k = np.unravel_index(np.argmax(np.linalg.norm(pairs, axis=-1)), pairs.shape[:2])
        long_dir = pairs[k] / np.linalg.norm(pairs[k])
        width = np.ptp(inside @ np.array([-long_dir[1], long_dir[0]]))
        assert width == pytest.approx(short_mm, abs=0.1)
    assert t.axial_diameters_at(0.0) == (t.recist_long_mm, t.recist_short_mm)
    assert axial_section_diameters(t.quadratic_form, 100.0) == (0.0, 0.0)


def test_surface_area_exact_and_thomsen():
    assert ellipsoid_surface_area_mm2(7, 7, 7) == pytest.approx(4 * np.pi * 49)
    a, b = 20.0, 10.0  # prolate spheroid: 2 pi b^2 (1 + a/(b e) asin e)
    e = np.sqrt(1 - b * b / (a * a))
    prolate = 2 * np.pi * b * b * (1 + a / (b * e) * np.arcsin(e))
    assert ellipsoid_surface_area_mm2(a, b, b) == pytest.approx(prolate, rel=1e-10)
    assert ellipsoid_surface_area_mm2(b, a, b) == pytest.approx(prolate, rel=1e-10)
    for axes in [(20, 14, 10), (30, 5, 4), (10, 10, 2), (15, 3, 3)]:
        exact = ellipsoid_surface_area_mm2(*axes)
        assert abs(thomsen_surface_area_mm2(*axes) / exact - 1) <= THOMSEN_MAX_REL_ERROR


def test_lesion_on_a_given_grid_size_is_centred_on_the_lesion():
    p = ellipsoid_lesion(size_ijk=(60, 50, 20), spacing=(1.0, 1.2, 3.0), direction=OBLIQUE)
    assert p.image.size == (60, 50, 20)
    centre_ijk = p.image.ras_to_index(p.truth.centroid_ras)
    assert np.allclose(centre_ijk, [29.5, 24.5, 9.5])


def test_lesion_is_deterministic_per_seed_and_mr_works():
    kw = {"spacing": (1.5, 1.5, 3.0), "direction": OBLIQUE, "modality": "MR"}
    a, b = ellipsoid_lesion(seed=5, **kw), ellipsoid_lesion(seed=5, **kw)
    c = ellipsoid_lesion(seed=6, **kw)
    assert np.array_equal(a.image.array, b.image.array)
    assert np.array_equal(a.mask, c.mask)
    assert not np.array_equal(a.image.array, c.image.array)
    assert a.image.modality == "MR"
    assert a.image.array[a.mask].mean() > 2 * a.image.array[~a.mask].mean()


# ----- long bone -----------------------------------------------------------------------------
BONE_SPACING = (0.7, 0.7, 1.25)


@pytest.fixture(scope="module")
def fracture():
    return fractured_long_bone(spacing=BONE_SPACING, direction=OBLIQUE, seed=1, noise_sd=0.0)


def test_fragment_volumes_match_cut_cylinders(fracture):
    voxel_ml = fracture.image.voxel_volume_mm3 / 1000
    assert set(np.unique(fracture.labels)) == {0, 1, 2}
    for label in (1, 2):
        vol = (fracture.labels == label).sum() * voxel_ml
        assert vol == pytest.approx(fracture.truth.fragment_volumes_ml[label], rel=0.02)
    whole = np.pi * 12**2 * (120 - 4) / 1000  # gap 4 mm removed from the 120 mm shaft
    assert sum(fracture.truth.fragment_volumes_ml.values()) == pytest.approx(whole)


def test_fracture_centre_lies_in_the_gap(fracture):
    img, t = fracture.image, fracture.truth
    ijk = img.ras_to_index(t.fracture_center_ras)
    assert img.contains_index(ijk, tol=0.0)
    k, j, i = np.round(ijk[::-1]).astype(int)
    assert fracture.labels[k, j, i] == 0
    assert img.array[k, j, i] == pytest.approx(CT_HU[Tissue.SOFT_TISSUE], abs=1.0)
    bone_pts = _mask_points_ras(img, fracture.labels > 0)
    nearest = cKDTree(bone_pts).query(np.asarray(t.fracture_center_ras))[0]
    assert nearest >= t.fractures[0].gap_mm / 2 - _voxel_diagonal(BONE_SPACING) / 2


def test_pca_axes_recover_angulation_and_displacement(fracture):
    img, t = fracture.image, fracture.truth
    f = t.fractures[0]
    m1, a1 = _axis_pca(_mask_points_ras(img, fracture.labels == 1))
    m2, a2 = _axis_pca(_mask_points_ras(img, fracture.labels == 2))
    assert _angle_deg(a1, np.asarray(f.proximal_axis_ras)) < 0.5
    assert _angle_deg(a2, np.asarray(f.distal_axis_ras)) < 0.5
    assert _angle_deg(a1, a2) == pytest.approx(t.angulation_deg, abs=2.0)
    assert t.angulation_deg == pytest.approx(10.0)
    c = np.asarray(t.fracture_center_ras)
    # c lies on the proximal axis; it moved with the distal fragment by t: its distance to
    # the distal axis is the transverse part of t.
    assert np.linalg.norm(np.cross(c - m1, a1)) < 0.5
    assert np.linalg.norm(np.cross(c - m2, a2)) == pytest.approx(
        f.transverse_displacement_mm, abs=1.0)
    # Full displacement: the moved fracture centre sits (L - s_c) before the distal far end.
    a2 = a2 if a2 @ np.asarray(f.distal_axis_ras) > 0 else -a2
    pts2 = _mask_points_ras(img, fracture.labels == 2)
    far_end = m2 + ((pts2 - m2) @ a2).max() * a2
    moved_centre = far_end - (t.length_mm - 60.0) * a2
    assert np.linalg.norm(moved_centre - c) == pytest.approx(t.displacement_mm, abs=1.0)
    assert np.linalg.norm(moved_centre - c - np.asarray(f.translation_ras)) < 1.0
    assert t.displacement_mm == pytest.approx(np.linalg.norm((3.0, -2.0, 0.5)))


def test_fracture_ct_intensities(fracture):
    img = fracture.image.array
    bone = fracture.labels > 0
    deep = ndimage.binary_erosion(bone, iterations=2)
    assert img[deep].max() == pytest.approx(1200.0, abs=1.0)
    assert np.isclose(img[deep], 250.0, atol=1.0).sum() > 1000
    far = ~ndimage.binary_dilation(bone, iterations=3)
    assert np.allclose(img[far], 40.0, atol=1e-3)


def test_oblique_fracture_plane_and_overlap_refusal():
    p = fractured_long_bone(fracture_plane_normal=(0.4, 0.0, -1.0), spacing=(1.0, 1.0, 1.5),
                            direction=OBLIQUE, angulation_deg=5.0, gap_mm=5.0)
    voxel_ml = p.image.voxel_volume_mm3 / 1000
    for label in (1, 2):
        vol = (p.labels == label).sum() * voxel_ml
        assert vol == pytest.approx(p.truth.fragment_volumes_ml[label], rel=0.03)
    with pytest.raises(ValueError, match="overlaps"):
        fractured_long_bone(spacing=(1.5, 1.5, 2.0), gap_mm=0.5, angulation_deg=30.0,
                            translation_mm=(0, 0, 0))


def test_intact_bone_has_no_fracture_and_air_outside_the_body():
    p = intact_long_bone(spacing=(1.0, 1.0, 2.0), direction=OBLIQUE, body_radius_mm=25.0,
                         noise_sd=0.0)
    assert p.truth.fractures == []
    assert set(np.unique(p.labels)) == {0, 1}
    vol = p.labels.sum() * p.image.voxel_volume_mm3 / 1000
    assert vol == pytest.approx(p.truth.fragment_volumes_ml[1], rel=0.02)
    _, axis = _axis_pca(_mask_points_ras(p.image, p.labels == 1))
    assert _angle_deg(axis, np.asarray(p.truth.shaft_axis_ras)) < 0.5
    assert p.image.array.min() == pytest.approx(-1000.0)
    with pytest.raises(AttributeError):
        _ = p.truth.displacement_mm


def test_fracture_contract_entry_and_determinism():
    kw = {"spacing": (1.4, 1.4, 2.0), "direction": OBLIQUE}
    a, b = fractured_long_bone(seed=2, **kw), fractured_long_bone(seed=2, **kw)
    c = fractured_long_bone(seed=9, **kw)
    assert np.array_equal(a.image.array, b.image.array)
    assert np.array_equal(a.labels, c.labels)
    assert not np.array_equal(a.image.array, c.image.array)
    entry = a.truth.fractures[0].as_contract("femur")
    assert entry["fragments"] == ["bone_fragment_1", "bone_fragment_2"]
    assert entry["angulation_deg"] == pytest.approx(10.0)


# ----- vertebra ------------------------------------------------------------------------------
VERT_SPACING = (0.7, 0.7, 1.5)


@pytest.fixture(scope="module")
def vertebra():
    return vertebral_body(18.0, 24.0, 26.0, spacing=VERT_SPACING, direction=OBLIQUE, seed=4)


def test_vertebra_volume_and_si_axis(vertebra):
    t = vertebra.truth
    vol = vertebra.mask.sum() * vertebra.image.voxel_volume_mm3 / 1000
    assert vol == pytest.approx(t.volume_ml, rel=0.02)
    pts = _mask_points_ras(vertebra.image, vertebra.mask)
    smallest = np.linalg.eigh(np.cov((pts - pts.mean(0)).T))[1][:, 0]  # symmetric in S
    assert _angle_deg(smallest, np.asarray(t.si_axis_ras)) < 1.0
    assert np.linalg.norm(pts.mean(0) - t.point_ras(0, 0, 0)) < 4.0  # wedge shifts it in A


def test_vertebra_heights_measured_along_s_within_a_voxel(vertebra):
    img, t = vertebra.image, vertebra.truth
    s_dir = np.asarray(t.si_axis_ras)
    extent_along_s = np.abs(img.direction.T @ (s_dir * [-1, -1, 1])) @ np.asarray(VERT_SPACING)
    z = np.arange(-20.0, 20.0, 0.02)
    for ap in (-12.0, 0.0, 12.0):
        line = np.array([t.point_ras(5.0, ap, zz) for zz in z])
        ijk = np.round(img.ras_to_index(line)).astype(int)
        inside = vertebra.mask[ijk[:, 2], ijk[:, 1], ijk[:, 0]]
        height = inside.sum() * 0.02
        assert height == pytest.approx(t.height_at(ap), abs=extent_along_s)
    assert (t.height_at(15.0), t.height_at(0.0), t.height_at(-15.0)) == (18.0, 24.0, 26.0)


def test_vertebra_grade_and_determinism(vertebra):
    t = vertebra.truth
    assert t.height_reduction == pytest.approx(1 - 18 / 26)
    assert (t.genant_grade, t.deformity) == (2, "wedge")
    again = vertebral_body(18.0, 24.0, 26.0, spacing=VERT_SPACING, direction=OBLIQUE, seed=4)
    assert np.array_equal(again.image.array, vertebra.image.array)
    assert vertebral_body(28, 20, 28, spacing=(2, 2, 3)).truth.deformity == "biconcave"
    assert vertebral_body(28, 28, 14, spacing=(2, 2, 3),
                          adjacent_posterior_mm=(28, 28)).truth.genant_grade == 3


@pytest.mark.parametrize(
    ("heights", "grade"),
    [((30, 30, 30), 0), ((25, 30, 30), 0), ((24, 30, 30), 1), ((22.6, 30, 30), 1),
     ((22.5, 30, 30), 2), ((18, 30, 30), 2), ((17.9, 30, 30), 3), ((30, 30, 24), 0),
     ((30, 30, 19.2), 1), ((30, 24, 30), 1)],
)
def test_genant_grade_boundaries(heights, grade):
    assert genant_grade(*heights) == grade


# ----- intensity helpers ---------------------------------------------------------------------
def test_fit_grid_holds_its_points_and_fractions_sum_to_one():
    pts = np.array([[10.0, -30.0, 5.0], [-20.0, 15.0, 40.0], [0.0, 0.0, 0.0]])
    grid = fit_grid(pts, (0.9, 1.1, 2.0), OBLIQUE, margin_mm=2.0)
    ijk = grid.ras_to_index(pts)
    assert all(grid.contains_index(p, tol=0.0) for p in ijk)
    centre = pts[:2].mean(axis=0)  # the ball lies well inside the fitted box

    def ball(points):
        inside = np.linalg.norm(points - centre, axis=1) <= 8.0
        return np.where(inside, int(Tissue.LESION), int(Tissue.SOFT_TISSUE)).astype(np.int8)

    frac = tissue_fractions(grid, ball, supersample=4)
    assert np.allclose(frac.sum(axis=0), 1.0)
    vol = frac[Tissue.LESION].sum() * grid.voxel_volume_mm3
    assert vol == pytest.approx(4 / 3 * np.pi * 8**3, rel=0.005)


def test_blur_is_isotropic_in_millimetres_and_rician_floor():
    spacing = (0.5, 1.0, 2.0)
    grid = make_grid((41, 21, 11), spacing)
    delta = np.zeros(grid.array.shape, dtype=np.float32)
    delta[5, 10, 20] = 1.0
    out = blur_mm(delta, spacing, sigma_mm=2.0)
    assert out.sum() == pytest.approx(1.0, rel=1e-3)
    for axis, sp in zip((2, 1, 0), spacing, strict=True):
        profile = out.sum(axis=tuple(a for a in range(3) if a != axis))
        x = (np.arange(len(profile)) - np.argmax(profile)) * sp
        assert np.sqrt((profile * x**2).sum() / profile.sum()) == pytest.approx(2.0, rel=0.1)
    noise = rician_noise(np.zeros((64, 64, 16)), 10.0, np.random.default_rng(0))
    assert noise.mean() == pytest.approx(10.0 * np.sqrt(np.pi / 2), rel=0.02)
