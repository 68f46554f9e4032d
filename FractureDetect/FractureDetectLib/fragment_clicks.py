"""Fragment clicks of FractureDetect: a markups point list -> :class:`FragmentSeeds` (no Qt).

Each distinct control-point label is one fragment, numbered in order of first appearance
(Slicer names new points F-1, F-2, ..., one fragment each; renaming a point to another
point's label adds it to that fragment). Fragments that were edited by hand
(``bone_fragment_N`` segments with the edited status) are locked: the split leaves their
voxels alone, and clicks inside them are dropped (the fragment is already there).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from mskai.errors import InputError


def clickPoints(clicksNode: Any) -> tuple[list[list[float]], list[int]]:
    """World RAS positions of the points and their fragment numbers (by label)."""
    from MSKAILib.module_logic import MSKAIModuleLogic

    MSKAIModuleLogic.validateNodeClass(clicksNode, "vtkMRMLMarkupsFiducialNode",
                                       "fragment clicks")
    count = 0 if clicksNode is None else clicksNode.GetNumberOfControlPoints()
    if count == 0:
        raise InputError("Place one point inside each bone fragment first.")
    numbers: dict[str, int] = {}
    points, groups = [], []
    for index in range(count):
        label = clicksNode.GetNthControlPointLabel(index) or f"#{index}"
        groups.append(numbers.setdefault(label, len(numbers) + 1))
        points.append([float(v) for v in clicksNode.GetNthControlPointPositionWorld(index)])
    return points, groups


def editedFragments(segmentationNode: Any, volume: Any) -> np.ndarray | None:
    """Union of the hand-edited ``bone_fragment_N`` segments, or None when there are none."""
    if segmentationNode is None:
        return None
    from mskai.fracture.fragments import is_fragment_id
    from mskai.segments import STATUS_EDITED
    from mskai.slicer_io import segment_mask, segment_status

    locked = None
    for segmentId in segmentationNode.GetSegmentation().GetSegmentIDs():
        if is_fragment_id(segmentId) and segment_status(segmentationNode,
                                                        segmentId) == STATUS_EDITED:
            mask = segment_mask(segmentationNode, segmentId, volume)
            locked = mask if locked is None else locked | mask
    return locked


def fragmentSeeds(clicksNode: Any, segmentationNode: Any, volume: Any) -> Any:
    """The clicks as :class:`mskai.tasks.fracture_fragments.FragmentSeeds`, with hand-edited
    fragments locked and the clicks inside them dropped."""
    from mskai.tasks.fracture_fragments import FragmentSeeds

    points, groups = clickPoints(clicksNode)
    locked = editedFragments(segmentationNode, volume)
    if locked is not None:
        keep = [not _inside(volume, locked, p) for p in points]
        points = [p for p, k in zip(points, keep, strict=True) if k]
        groups = [g for g, k in zip(groups, keep, strict=True) if k]
    return FragmentSeeds(points, groups, locked)


def _inside(volume: Any, mask: np.ndarray, ras: list[float]) -> bool:
    ijk = np.round(np.asarray(volume.ras_to_index(np.asarray(ras, dtype=float)))).astype(int)
    kji = tuple(ijk[::-1])
    return all(0 <= v < s for v, s in zip(kji, mask.shape, strict=True)) and bool(mask[kji])
