"""2D thickness maps and change maps: PNG output and the computed difference arrays."""

from __future__ import annotations

import functools
import io

import numpy as np
import pytest

from mskai.measure.knee_axes import KneeAxes
from mskai.measure.thickness import ThicknessMap, cartilage_thickness
from mskai.measure.thickness_map_figure import (
    fit_projection,
    thickness_change,
    thickness_change_png,
    thickness_map_png,
)
from mskai.volume import LPS_TO_RAS
from phantoms.cartilage import slab
from phantoms.grid import oblique_direction

OBLIQUE = oblique_direction()
CHORD_MM = 6.0


@functools.cache
def _slab(thin: float | None):
    ph = slab(2.0, 0, 14, (0.3, 0.3, 0.5), OBLIQUE, thin_thickness_mm=thin,
              thin_beyond_mm=CHORD_MM)
    u, v, n = (LPS_TO_RAS @ axis for axis in ph.frame_lps)
    axes = KneeAxes(n, v, u, np.zeros(3), (-14.0, 14.0))  # anterior = u: thinned part
    return axes, cartilage_thickness(ph.cartilage, ph.bone, ph.labels, "normal")


def _decode(png: bytes) -> np.ndarray:
    from matplotlib.image import imread

    return imread(io.BytesIO(png), format="png")


def test_thickness_map_png_decodes():
    axes, tmap = _slab(None)
    png = thickness_map_png(tmap, "medial_tibial_cartilage", axes)
    image = _decode(png)
    assert len(png) > 1000 and image.shape[0] > 100 and image.shape[1] > 100


def test_change_of_identical_maps_is_zero_everywhere():
    axes, tmap = _slab(None)
    change = thickness_change(tmap, tmap, "medial_tibial_cartilage", axes)
    measured = np.isfinite(tmap.thickness_mm)
    assert np.all(np.isfinite(change.difference_mm[measured]))
    assert np.all(change.difference_mm[measured] == 0.0)
    assert len(_decode(thickness_change_png(tmap, tmap, "medial_tibial_cartilage", axes))) > 0


def test_thinned_region_shows_as_negative_change():
    # follow-up: 0.8 mm instead of 2 mm beyond the chord u > 6 mm (anterior): -1.2 mm there
    axes, baseline = _slab(None)
    _, followup = _slab(0.8)
    change = thickness_change(baseline, followup, "medial_tibial_cartilage", axes)
    anterior = fit_projection(baseline, "medial_tibial_cartilage", axes).project(
        baseline.points_ras)[:, 1] + (_centroid(baseline) @ axes.anterior)
    inside, outside = anterior > CHORD_MM + 1.0, anterior < CHORD_MM - 1.0
    assert np.nanmedian(change.difference_mm[inside]) == pytest.approx(-1.2, abs=0.1)
    assert np.nanmedian(np.abs(change.difference_mm[outside])) < 0.05
    assert np.nanmean(change.difference_mm[outside]) == pytest.approx(0.0, abs=0.05)


def _centroid(tmap: ThicknessMap) -> np.ndarray:
    return (tmap.points_ras * tmap.area_mm2[:, None]).sum(0) / tmap.area_mm2.sum()


def test_femur_unrolls_a_condyle_to_its_arc_length():
    # points on a 20 mm cylinder about ML from 100 degrees posterior to 100 anterior
    theta = np.radians(np.linspace(-100, 100, 401))
    x = np.linspace(-15, 15, 31)
    tt, xx = (a.ravel() for a in np.meshgrid(theta, x))
    normals = np.stack([0 * tt, np.sin(tt), -np.cos(tt)], axis=1)
    pts = np.stack([xx, 20 * normals[:, 1], 20 * normals[:, 2] + 5.0], axis=1)
    tmap = ThicknessMap(pts, normals, np.full(len(pts), 2.0), np.ones(len(pts)), "x", 0, 0)
    axes = KneeAxes(np.array([0.0, 0, 1]), np.array([-1.0, 0, 0]), np.array([0.0, 1, 0]),
                    np.zeros(3), (-10.0, 10.0))
    frame = fit_projection(tmap, "femoral_cartilage", axes)
    assert frame.radius_mm == pytest.approx(20.0, rel=1e-6)
    xy = frame.project(pts)
    assert xy[:, 1] == pytest.approx(20 * tt, abs=1e-6)   # arc length, anterior positive
    assert xy[:, 0] == pytest.approx(-xx, abs=1e-6)       # medial (-R) positive
    assert len(_decode(thickness_map_png(tmap, "femoral_cartilage", axes))) > 0
