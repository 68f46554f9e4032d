"""Region of interest: a ``vtkMRMLMarkupsROINode`` as the oriented RAS box the job crops to.

The crop itself (grid box around the ROI, voxels outside it set to air, results put back on
the whole grid) is :mod:`mskai.tasks.fracture_jobs`, so a run in a child process and one in
Slicer's process cut exactly the same voxels. An ROI may be rotated and the volume oblique:
the box is expressed in world RAS and mapped through the volume's own IJK-to-RAS matrix.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from mskai.errors import InputError
from mskai.volume import Volume


def roiFromNode(roiNode: Any) -> dict[str, Any] | None:
    """``{"center_ras", "axes_ras", "size_mm"}`` of an ROI node in world RAS (None: no ROI).

    Parent transforms are included (``GetObjectToWorldMatrix``); a scaling transform scales
    the size and leaves unit axes.
    """
    from mskai.tasks.fracture_jobs import roi_dict

    if roiNode is None:
        return None
    matrix = roiNode.GetObjectToWorldMatrix()
    m = np.array([[matrix.GetElement(r, c) for c in range(4)] for r in range(4)])
    bounds = [0.0] * 6
    roiNode.GetObjectBounds(bounds)
    lo, hi = np.array(bounds[0::2]), np.array(bounds[1::2])
    center = (m @ np.r_[(lo + hi) / 2, 1.0])[:3]
    columns = m[:3, :3]
    norms = np.linalg.norm(columns, axis=0)
    if np.any(norms < 1e-9) or np.any(hi - lo <= 0):
        raise InputError(f"Region of interest {roiNode.GetName()} has no volume: "
                         "give it a size in all three directions.")
    return roi_dict(center, (columns / norms).T, (hi - lo) * norms)


def checkRoi(volume: Volume, roi: dict[str, Any] | None, roiName: str = "ROI") -> None:
    """InputError when the ROI does not overlap the volume (before anything is written)."""
    from mskai.tasks.fracture_jobs import roi_slices

    if roi is None:
        return
    try:
        roi_slices(volume, roi)
    except InputError as exc:
        raise InputError(f"{roiName}: {exc}") from None
