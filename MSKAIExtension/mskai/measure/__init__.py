"""Measurements on masks in physical space: shape, RECIST axes, margins, thickness, ...

Every function takes boolean masks on a :class:`mskai.volume.Volume` grid and reports
millimetres, mL and RAS coordinates, exact for oblique directions and anisotropic voxels.
"""

from mskai.measure.recist import recist_axes
from mskai.measure.shape import max_diameter_mm, shape_measurements

__all__ = ["max_diameter_mm", "recist_axes", "shape_measurements"]
