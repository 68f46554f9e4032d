"""The fast arg-max of :mod:`mskai.inference.axis_aligned` equals resampling every class.

Truth: the per-class resampling of :func:`mskai.inference.postprocess._resampled_argmax`
(SimpleITK linear resampling in physical space, then the arg-max). Probabilities are smooth
random fields (many boundaries and near-ties) on the model grid that :func:`preprocess`
makes from oblique, anisotropic grids in the axis orders of sagittal, coronal and axial
acquisitions (reoriented to RAS: axes permuted and flipped, then rescaled).
"""

from __future__ import annotations

import numpy as np
import pytest

from mskai.inference.axis_aligned import argmax_onto, axis_map
from mskai.inference.postprocess import _resampled_argmax, postprocess
from mskai.inference.preprocess import preprocess
from mskai.models.manifest import InputSpec
from phantoms.grid import make_grid, oblique_direction

# (shape kji, spacing ijk, axis order): a sagittal DESS-like grid, a coronal and an axial one.
GRIDS = {"sagittal": ((20, 60, 56), (0.31, 0.31, 1.5), (2, 1, 0)),
         "coronal": ((18, 50, 44), (0.4, 0.45, 2.0), (0, 2, 1)),
         "axial": ((16, 40, 48), (0.7, 0.7, 3.0), (0, 1, 2))}


def _case(name: str, classes: int = 5, seed: int = 0):
    from scipy import ndimage

    shape, spacing, order = GRIDS[name]
    direction = oblique_direction(20)[:, list(order)] * np.array([1, -1, 1])
    volume = make_grid(shape[::-1], spacing, direction)
    _, context = preprocess(volume, InputSpec(spacing_mm=(1.0, 1.0, 1.0)))
    rng = np.random.default_rng(seed)
    logits = ndimage.gaussian_filter(rng.normal(size=(classes, *context.grid.size)),
                                     (0, 1.5, 1.5, 1.5)) * 8
    probs = np.exp(logits - logits.max(0))
    return (probs / probs.sum(0)).astype(np.float32), context, volume


@pytest.mark.parametrize("name", sorted(GRIDS))
def test_preprocessed_grids_are_axis_aligned(name):
    _, context, volume = _case(name)
    assert axis_map(context.grid, volume) is not None


@pytest.mark.parametrize("name", sorted(GRIDS))
def test_fast_argmax_equals_resampling_every_class(name):
    probs, context, volume = _case(name)
    fast = argmax_onto(probs, axis_map(context.grid, volume), volume.array.shape)
    slow = _resampled_argmax(probs, context, volume)
    assert len(np.unique(slow)) == probs.shape[0]          # every class shows up
    assert np.count_nonzero(fast != slow) <= 1e-4 * slow.size  # rounding in near-ties only


def test_a_rotated_model_grid_takes_the_resampling_path():
    probs, context, volume = _case("axial")
    rotated = volume.with_array(volume.array)
    rotated.direction = oblique_direction(20) @ volume.direction
    assert axis_map(context.grid, rotated) is None
    labels = postprocess(probs, context, rotated)           # still a label map, no error
    assert labels.shape == volume.array.shape
