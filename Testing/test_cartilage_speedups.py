"""The CartilageQuant speed-ups (issue 14, item 5) leave every result unchanged.

Each faster routine is checked against the code it replaced, written out here as the
truth: the twelve-pass sharpened blur of the joint space width, Taubin smoothing as two
vector updates per step, centroids and extents from lists of voxel indices, the report's
focus slice, the cartilage surface's box, and the arg-max of interpolated probabilities
gathered class by class. Exact equality where the arithmetic is the same; float32 or
float64 rounding otherwise, with the tolerance stated.
"""

from __future__ import annotations

import numpy as np
import pytest

from mskai.volume import Volume


def _blob(shape, seed: int, threshold: float = 0.6) -> np.ndarray:
    from scipy import ndimage

    rng = np.random.default_rng(seed)
    field = ndimage.gaussian_filter(rng.random(shape), 2.0)
    return field > np.quantile(field, threshold)


def _twelve_pass(crop: np.ndarray, sigma: np.ndarray) -> np.ndarray:
    """The former joint-space field: gaussian_filter once, then once per second derivative."""
    from scipy.ndimage import gaussian_filter

    field = gaussian_filter(crop, sigma, mode="nearest")
    for axis in range(3):
        order = [0, 0, 0]
        order[axis] = 2
        field -= sigma[axis] ** 2 * gaussian_filter(crop, sigma, order=order, mode="nearest")
    return field


@pytest.mark.parametrize("sigma", [(1.0, 4.8, 4.8), (3.2, 1.1, 2.5), (0.0, 2.0, 1.5)])
def test_sharpened_blur_equals_the_twelve_pass_filter(sigma):
    from mskai.measure.sharpened_blur import sharpened_blur

    crop = _blob((24, 40, 36), seed=1).astype(np.float32)
    fast = sharpened_blur(crop, np.asarray(sigma))
    slow = _twelve_pass(crop, np.asarray(sigma))
    assert fast.dtype == np.float32 and fast.shape == crop.shape
    assert np.abs(fast - slow).max() < 2e-5  # float32 rounding of values within [-1, 2]


def _former_taubin(verts, faces, iterations, lam=0.5, mu=-0.53):
    from mskai.measure.mesh import _vertex_neighbours

    average = _vertex_neighbours(faces, len(verts))
    out = verts.astype(float, copy=True)
    for _ in range(iterations):
        out = out + lam * (average @ out - out)
        out = out + mu * (average @ out - out)
    return out


def test_taubin_smoothing_equals_the_two_vector_updates():
    from mskai.measure.mesh import binary_surface, taubin_smooth

    verts, faces = binary_surface(np.pad(_blob((20, 24, 22), seed=2), 2))
    verts = verts * np.array([1.5, 0.31, 0.31])
    fast = taubin_smooth(verts, faces, iterations=60)
    slow = _former_taubin(verts, faces, 60)
    assert np.abs(fast - slow).max() < 1e-9  # mm: float64 rounding only


@pytest.mark.parametrize("shape", [(7, 9, 11), (1, 1, 1), (3, 1, 70000), (40, 30, 20)])
def test_centroid_from_projections_equals_the_mean_voxel_index(shape):
    from mskai.measure.shape import centroid_kji

    rng = np.random.default_rng(3)
    mask = rng.random(shape) < 0.3
    mask.flat[0] = True
    assert np.array_equal(centroid_kji(mask), np.argwhere(mask).mean(axis=0))
    strided = mask[:, ::-1, ::2] if shape[2] > 1 else mask
    assert np.allclose(centroid_kji(strided), np.argwhere(strided).mean(axis=0), atol=1e-12)


def test_segmentation_extent_equals_the_voxel_index_extent():
    from mskai.results.segnrrd import _extent

    mask = np.zeros((12, 14, 16), dtype=bool)
    assert _extent(mask) == "0 -1 0 -1 0 -1"
    mask[3:7, 0, 5] = True
    mask[4, 9, 15] = True
    kji = np.argwhere(mask)
    lo, hi = kji.min(0)[::-1], kji.max(0)[::-1]
    assert _extent(mask) == " ".join(f"{a} {b}" for a, b in zip(lo, hi, strict=True))


def test_report_focus_is_the_largest_segments_rounded_centroid():
    from mskai.results.snapshots import _focus_index
    from mskai.segments import Provenance, Result, Segment

    image = Volume(np.zeros((20, 30, 40), dtype=np.int16), spacing=(0.5, 0.5, 1.5))
    small, large = _blob((20, 30, 40), seed=4, threshold=0.9), _blob((20, 30, 40), seed=5)
    large &= ~small
    result = Result("CartilageQuant", image, Provenance(method="test"))
    result.segments = [Segment("femur", small, 1), Segment("tibia", large, 3)]
    expected = np.round(np.argwhere(large).mean(axis=0)).astype(int)
    assert np.array_equal(_focus_index(result), expected)


def test_cartilage_box_is_the_three_voxel_margin_box_also_at_the_border():
    from mskai.measure.cartilage_surfaces import (
        bounding_box,
        check_cartilage_and_bone,
        grow_box,
    )

    volume = Volume(np.zeros((10, 12, 14), dtype=np.int16), spacing=(0.4, 0.4, 1.0))
    cartilage = np.zeros((10, 12, 14), dtype=bool)
    bone = np.zeros_like(cartilage)
    cartilage[0:2, 5:8, 11:14] = True          # touches three image borders
    bone[2, 5:8, 11:14] = True
    box = check_cartilage_and_bone(cartilage, bone, volume)
    assert box == bounding_box(cartilage, cartilage.shape, margin=1)
    assert grow_box(box, cartilage.shape, 2) == bounding_box(cartilage, cartilage.shape, 3)


def _former_interpolated_argmax(probs, amap, mixed, cells, weights):
    """The class-by-class gather the channel-last version replaced."""
    n_classes, sx, sy, sz = probs.shape
    index_ijk = (mixed[2], mixed[1], mixed[0])
    low = [cells[a][index_ijk[r]] for a, r in enumerate(amap.source)]
    frac = [weights[a][index_ijk[r]] for a, r in enumerate(amap.source)]
    flat = probs.reshape(n_classes, -1)
    total = np.zeros((n_classes, len(low[0])), dtype=np.float32)
    steps = [(1 if n > 1 else 0) for n in (sx, sy, sz)]
    for dx in (0, 1):
        wx = frac[0] if dx else 1 - frac[0]
        for dy in (0, 1):
            wy = frac[1] if dy else 1 - frac[1]
            for dz in (0, 1):
                wz = frac[2] if dz else 1 - frac[2]
                at = ((low[0] + dx * steps[0]) * sy + low[1] + dy * steps[1]) * sz \
                    + low[2] + dz * steps[2]
                total += flat[:, at] * (wx * wy * wz)[None, :]
    return np.argmax(total, axis=0).astype(np.uint16)


def test_channel_last_interpolated_argmax_equals_the_class_by_class_one():
    from mskai.inference.axis_aligned import AxisMap, _interpolated_argmax

    rng = np.random.default_rng(6)
    probs = rng.random((5, 9, 11, 7)).astype(np.float32)
    amap = AxisMap(source=(2, 0, 1), scale=(0.31, 0.4, 1.5), offset=(0.2, -0.1, 0.0))
    shape_kji = (20, 4, 25)  # reference sizes (i, j, k) = (25, 4, 20) feed model axes 1, 2, 0
    size_ijk = shape_kji[::-1]
    coords = [amap.scale[a] * np.arange(size_ijk[r]) + amap.offset[a]
              for a, r in enumerate(amap.source)]
    cells, weights = [], []
    for a, c in enumerate(coords):
        c = np.clip(c, 0.0, probs.shape[1 + a] - 1.0)
        low = np.minimum(np.floor(c).astype(np.int64), probs.shape[1 + a] - 2)
        cells.append(low)
        weights.append((c - low).astype(np.float32))
    mixed = np.nonzero(rng.random(shape_kji) < 0.5)
    fast = _interpolated_argmax(probs, amap, mixed, cells, weights)
    slow = _former_interpolated_argmax(probs, amap, mixed, cells, weights)
    assert np.array_equal(fast, slow)


def _former_cell_labels(probs: np.ndarray) -> np.ndarray:
    from mskai.inference.axis_aligned import MIXED

    best = np.argmax(probs, axis=0).astype(np.uint8)
    cell = best.copy()
    mixed = np.zeros(best.shape, dtype=bool)
    for shift in [(dx, dy, dz) for dx in (0, 1) for dy in (0, 1) for dz in (0, 1)][1:]:
        index = tuple(np.minimum(np.arange(n) + d, n - 1) for n, d in
                      zip(best.shape, shift, strict=True))
        mixed |= best[np.ix_(*index)] != best
    cell[mixed] = MIXED
    return cell


@pytest.mark.parametrize("shape", [(6, 8, 5), (1, 7, 4), (3, 1, 1)])
def test_cell_labels_and_first_argmax_equal_the_index_array_versions(shape):
    from mskai.inference.axis_aligned import _cell_labels, _first_argmax

    rng = np.random.default_rng(7)
    probs = np.round(rng.random((4, *shape)), 1).astype(np.float32)  # many exact ties
    assert np.array_equal(_first_argmax(probs), np.argmax(probs, axis=0))
    assert np.array_equal(_cell_labels(probs), _former_cell_labels(probs))


def _overlay_png(mask2d: np.ndarray, former: bool) -> bytes:
    from matplotlib.figure import Figure

    from mskai.results.snapshots import _overlay, _png
    from mskai.segments import Segment

    fig = Figure(figsize=(4.2, 4.2), dpi=100)
    ax = fig.add_axes((0, 0, 1, 0.93))
    ax.imshow(np.linspace(0, 1, mask2d.size).reshape(mask2d.shape), cmap="gray",
              aspect=0.5, interpolation="nearest")
    seg = Segment("femur", mask2d, 1, color=(0.9, 0.6, 0.2))
    if former:  # the overlay before the speed-up: the contour over the whole slice
        rgba = np.zeros((*mask2d.shape, 4))
        rgba[mask2d] = (*seg.color, 0.35)
        ax.imshow(rgba, aspect=0.5, interpolation="nearest")
        ax.contour(mask2d.astype(float), levels=[0.5], colors=[seg.color], linewidths=1.0)
    else:
        _overlay(ax, mask2d, seg, 0.5)
    ax.set_axis_off()
    return _png(fig)


def test_key_slice_overlay_contour_on_the_mask_box_draws_the_same_png():
    mask = _blob((1, 300, 260), seed=8, threshold=0.85)[0]
    mask[:, :3] = mask[:, 3:6]  # the mask also touches the slice's left edge
    assert _overlay_png(mask, former=False) == _overlay_png(mask, former=True)
