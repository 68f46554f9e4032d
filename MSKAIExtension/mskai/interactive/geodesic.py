"""Geodesic (minimum cumulative cost) distance from a set of seed voxels.

The solver is scikit-image's ``MCP_Geometric`` (Dijkstra on the 26-connected grid, each
step costing the mean of its two voxels' costs times its length in mm). It prepares every
start point in Python, so a seed set of tens of thousands of voxels (the background: the
crop's border, fat and far tissue) costs more to hand over than to solve. Only the seeds on
the set's surface are handed over: a path from an inner seed must leave the set through a
surface seed, which starts at cost 0 itself, so every distance outside the seeds is the
same, bit for bit; the seeds themselves are set to 0.
"""

from __future__ import annotations

import numpy as np


def geodesic_distance(cost: np.ndarray, seeds: np.ndarray,
                      spacing: tuple[float, float, float]) -> np.ndarray:
    """Distance (cost x mm) of every voxel from ``seeds``; ``inf`` where none arrives."""
    from scipy import ndimage
    from skimage.graph import MCP_Geometric

    seeds = np.asarray(seeds, dtype=bool)
    inner = ndimage.binary_erosion(seeds, structure=np.ones((3, 3, 3), dtype=bool),
                                   border_value=1)
    starts = np.argwhere(seeds & ~inner)
    if len(starts) == 0:  # no seed, or seeds everywhere
        return np.where(seeds, 0.0, np.inf)
    distance = MCP_Geometric(cost, sampling=spacing).find_costs(starts)[0]
    distance[seeds] = 0.0
    return distance
