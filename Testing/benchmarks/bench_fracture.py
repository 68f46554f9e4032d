"""FractureDetect benchmark: the whole pipeline on a 512x512x300 CT."""

from __future__ import annotations

import numpy as np
from bench_case import Case


def _large_ct():
    """512x512x300 CT at 0.8x0.8x1.0 mm: a fractured long bone phantom inside a body, tiled
    into a large field of view (soft tissue, air outside the body, noise)."""
    from mskai.volume import Volume
    from phantoms.long_bone import fractured_long_bone

    phantom = fractured_long_bone(translation_mm=(4.0, 2.0, 0.0), angulation_deg=12.0,
                                  spacing=(0.8, 0.8, 1.0), direction="identity")
    small = phantom.image.array.astype(np.float32)
    rng = np.random.default_rng(0)
    big = rng.normal(40.0, 12.0, (300, 512, 512)).astype(np.float32)
    j, i = np.ogrid[0:512, 0:512]
    big[:, ((j - 256) ** 2 + (i - 256) ** 2) > 240**2] = -1000.0
    sk, sj, si = (min(a, b) for a, b in zip(small.shape, big.shape, strict=True))
    k0, j0, i0 = (300 - sk) // 2, 256 - sj // 2, 256 - si // 2
    big[k0:k0 + sk, j0:j0 + sj, i0:i0 + si] = small[:sk, :sj, :si]
    return Volume(big, spacing=(0.8, 0.8, 1.0), modality="CT")


def _pipeline_ours(volume):
    from mskai.tasks.fracture import run_fracture

    return run_fracture(volume)


def _threshold_components(volume):
    """Baseline: a 200 HU threshold and connected components (what a quick script does)."""
    from scipy import ndimage

    labels, n = ndimage.label(volume.array > 200)
    return n


CASES = [
    Case("fracture pipeline, 512x512x300 CT", _large_ct, _pipeline_ours,
         _threshold_components, "threshold + connected components"),
]
