"""Phantoms with analytic truth: images whose correct measurements are known exactly.

Every generator returns the image (a :class:`mskai.volume.Volume`), its label masks, and a
truth object; grids may be oblique and anisotropic so tests catch geometry mistakes.
"""
