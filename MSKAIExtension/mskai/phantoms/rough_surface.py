"""Rough fracture surfaces: a plane perturbed by a random 1/f (fractal-like) height field.

The surface through centre ``c`` with normal ``n`` is ``d(x) = (x - c) . n - h(u, v) = 0``
where ``(u, v)`` are the in-plane coordinates of ``x`` and ``h`` a sum of ``modes``
sinusoids of random direction and phase, wavelengths log-uniform between ``min_wave_mm``
and ``max_wave_mm`` and amplitudes proportional to the wavelength (a 1/f spectrum),
scaled so that ``h`` has the requested RMS. ``d`` is a signed height (mm) above the surface,
exact along ``n``; it is evaluated analytically at any point, so fracture lines can be
rendered far below the scanner's voxel size.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class RoughSurface:
    center: np.ndarray  # RAS mm
    normal: np.ndarray  # unit
    basis: np.ndarray  # 2x3, in-plane unit vectors
    wave: np.ndarray  # (modes, 2) spatial frequencies, cycles per mm
    amplitude: np.ndarray  # (modes,)
    phase: np.ndarray  # (modes,)
    radius_mm: float  # the surface cuts only within this distance of ``center``

    def height(self, points: np.ndarray) -> np.ndarray:
        """Signed distance-like height of RAS points (N, 3) above the rough surface."""
        rel = np.asarray(points, dtype=float) - self.center
        uv = rel @ self.basis.T
        h = np.sin(2 * np.pi * (uv @ self.wave.T) + self.phase) @ self.amplitude
        return rel @ self.normal - h

    def within(self, points: np.ndarray) -> np.ndarray:
        """True where a point lies within ``radius_mm`` of the centre (where the cut acts)."""
        return np.linalg.norm(np.asarray(points, dtype=float) - self.center, axis=1) \
            <= self.radius_mm


def in_plane_basis(normal: np.ndarray) -> np.ndarray:
    """Two unit vectors perpendicular to ``normal`` and to each other (2x3)."""
    n = normal / np.linalg.norm(normal)
    helper = np.eye(3)[int(np.argmin(np.abs(n)))]
    u = np.cross(n, helper)
    u /= np.linalg.norm(u)
    return np.stack([u, np.cross(n, u)])


def random_surface(center: np.ndarray, normal: np.ndarray, rng: np.random.Generator,
                   rms_mm: float, radius_mm: float, modes: int = 24,
                   min_wave_mm: float = 3.0, max_wave_mm: float = 30.0) -> RoughSurface:
    """A rough surface (module docstring) with height RMS ``rms_mm``."""
    n = np.asarray(normal, dtype=float)
    n = n / np.linalg.norm(n)
    wavelength = np.exp(rng.uniform(np.log(min_wave_mm), np.log(max_wave_mm), modes))
    theta = rng.uniform(0, 2 * np.pi, modes)
    wave = np.stack([np.cos(theta), np.sin(theta)], axis=1) / wavelength[:, None]
    amplitude = wavelength / np.sqrt(np.sum(wavelength ** 2) / 2.0) * rms_mm
    return RoughSurface(np.asarray(center, dtype=float), n, in_plane_basis(n), wave, amplitude,
                        rng.uniform(0, 2 * np.pi, modes), float(radius_mm))
