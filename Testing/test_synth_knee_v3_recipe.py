"""The sampling options knee_unet_v3 added to the SynthSeg-style generator (V3_RECIPE).

Truths: a linear ramp survives the anisotropic slice model unchanged (linear interpolation
and a symmetric blur keep linear functions); a tissue boundary is spread over about one
slice; with the options forced on, each bone's cortex and marrow share one mean and the
surroundings share one mean; v2's recipe draws none of them.
"""

from __future__ import annotations

import numpy as np
import pytest

from mskai.phantoms.synth_knee import (
    BONES,
    SURROUNDINGS,
    V2_RECIPE,
    V3_RECIPE,
    Recipe,
    resample_slices,
)
from mskai.phantoms.synth_knee_labels import GEN, N_GEN


@pytest.mark.parametrize("axis", [0, 1, 2])
def test_thick_slices_keep_a_linear_ramp(axis):
    shape = [24, 24, 24]
    ramp = np.arange(40, dtype=np.float32)
    shape[axis] = 40
    image = np.broadcast_to(ramp.reshape([-1 if a == axis else 1 for a in range(3)]),
                            shape).astype(np.float32)
    out = resample_slices(image, 1.6, axis, 0.3)
    inner = [slice(None)] * 3
    inner[axis] = slice(4, 34)   # away from the ends (the blur's edge handling)
    np.testing.assert_allclose(out[tuple(inner)], image[tuple(inner)], atol=1e-3)


def test_thick_slices_spread_a_boundary_over_about_one_slice():
    image = np.zeros((40, 8, 8), np.float32)
    image[20:] = 1.0
    profile = resample_slices(image, 1.8, 0, 0.0)[:, 4, 4]
    rising = np.flatnonzero((profile > 0.05) & (profile < 0.95))
    assert 1 <= len(rising) <= 4
    assert profile[:15].max() < 1e-3 and profile[26:].min() > 0.999


def test_v3_options_share_means():
    from mskai.phantoms.synth_knee import _share_means

    forced = Recipe(homogeneous_bone=1.0, uniform_surroundings=1.0)
    rng = np.random.default_rng(3)
    info: dict = {}
    mean = _share_means(rng.uniform(0, 1, N_GEN), rng, forced, info)
    for bone in BONES:
        assert mean[GEN[f"{bone}_cortex"]] == mean[GEN[f"{bone}_marrow"]]
    surroundings = {float(mean[GEN[name]]) for name in SURROUNDINGS}
    assert len(surroundings) == 1
    assert info["homogeneous_bone"] and info["uniform_surroundings"]


def test_v2_recipe_adds_nothing_and_v3_widens_the_field_of_view():
    from mskai.phantoms.synth_knee import _share_means

    rng = np.random.default_rng(3)
    before = rng.uniform(0, 1, N_GEN)
    state = rng.bit_generator.state
    info: dict = {}
    after = _share_means(before.copy(), rng, V2_RECIPE, info)
    np.testing.assert_array_equal(after, before)
    assert rng.bit_generator.state == state and not info   # no random draw for v2
    assert V3_RECIPE.class_centred < V2_RECIPE.class_centred
    assert V3_RECIPE.fov_margin_mm > 0 and V3_RECIPE.anisotropic > 0
