"""Gaussian blur minus ``tr(S Hess)`` of a 3D array in seven separable passes.

``G * f - sum_a s_a^2 d^2/da^2 (G * f)`` (``S = diag(s_a^2)``, the blur's widths in voxels)
cancels the blur's curvature shrinkage of an iso-surface (:mod:`mskai.measure.joint_space`).
Calling ``gaussian_filter`` once for the blur and once per second derivative makes twelve
1D passes; sharing the passes of the axes a term does not differentiate makes seven:

    A = g_k(f),  A2 = g_k''(f),  B = g_j(A),  E = -s_j^2 g_j''(A) - s_k^2 g_j(A2)
    result = (g_i - s_i^2 g_i'')(B) + g_i(E)

(axes i, j, k here standing for array axes 0, 1, 2). The kernels, their radius
(``truncate`` widths) and the ``"nearest"`` edges are scipy's ``gaussian_filter``'s, and
every pass is linear, so the result equals the twelve-pass one up to float32 rounding.
"""

from __future__ import annotations

import numpy as np

TRUNCATE = 4.0  # scipy.ndimage.gaussian_filter's default


def gaussian_kernel(sigma: float, order: int, truncate: float = TRUNCATE) -> np.ndarray:
    """scipy's 1D Gaussian kernel (order 0) or its second derivative (order 2); a width of
    zero leaves the axis alone, as scipy does."""
    if sigma <= 1e-15:
        return np.ones(1) if order == 0 else np.zeros(1)
    radius = int(truncate * float(sigma) + 0.5)
    x = np.arange(-radius, radius + 1, dtype=float)
    phi = np.exp(-0.5 / (sigma * sigma) * x**2)
    phi /= phi.sum()
    if order == 0:
        return phi
    if order == 2:
        return (x**2 / sigma**4 - 1.0 / sigma**2) * phi
    raise ValueError(f"order {order} is not 0 or 2")


def _pass(array: np.ndarray, kernel: np.ndarray, axis: int) -> np.ndarray:
    from scipy.ndimage import correlate1d

    return correlate1d(array, kernel[::-1], axis=axis, mode="nearest")


def sharpened_blur(array: np.ndarray, sigma_vox) -> np.ndarray:
    """float32 ``G * f - sum_a s_a^2 d^2_a (G * f)`` of a 3D array (module docstring)."""
    f = np.asarray(array, dtype=np.float32)
    s = [float(v) for v in sigma_vox]
    g = [gaussian_kernel(v, 0) for v in s]
    d2 = [gaussian_kernel(v, 2) for v in s]
    a = _pass(f, g[2], 2)
    a2 = _pass(f, d2[2], 2)
    b = _pass(a, g[1], 1)
    e = _pass(a, d2[1], 1)
    e *= np.float32(-s[1] ** 2)
    e2 = _pass(a2, g[1], 1)
    del a, a2
    e -= np.float32(s[2] ** 2) * e2
    del e2
    out = _pass(b, g[0] - s[0] ** 2 * d2[0], 0)
    out += _pass(e, g[0], 0)
    return out
