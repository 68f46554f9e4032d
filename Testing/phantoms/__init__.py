"""Phantoms with analytic truth: images whose correct measurements are known exactly.

Every generator returns the image (a :class:`mskai.volume.Volume`), its label masks, and a
truth object; grids may be oblique and anisotropic so tests catch geometry mistakes.

The phantoms that shipped code needs (``mskai demo``, the training scripts) live in
:mod:`mskai.phantoms`; ``grid``, ``intensity``, ``long_bone`` and ``simulated_fracture`` here
re-export them (one copy), the rest are test-only.
"""
