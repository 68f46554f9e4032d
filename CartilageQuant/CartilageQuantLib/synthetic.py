"""A synthetic knee slab made in code, for the module's self-test inside Slicer (and pytest).

Axis-aligned, 0.5 mm voxels: "femur" below, a femoral cartilage disc of 4 voxels (exactly
2.0 mm) on it, and a "tibia" slab 3 mm above the cartilage, so the joint space width is
5.0 mm. A layer of n voxels has a 0.5-iso-surface exactly n voxels thick, which makes the
thickness truth independent of the phantom helpers in Testing/.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from mskai.terminology import FEMORAL_CARTILAGE, FEMUR, TIBIA

SPACING_MM = 0.5
THICKNESS_MM = 2.0
JOINT_SPACE_MM = 5.0
LABELS = {FEMUR: 1, FEMORAL_CARTILAGE: 2, TIBIA: 3}


def slabKneeLabels(size: int = 44, discRadiusMm: float = 8.0) -> np.ndarray:
    """Label array ``[k, j, i]`` (k is the slab normal): 1 femur, 2 cartilage, 3 tibia."""
    k, j, i = np.indices((size, size, size))
    centre = (size - 1) / 2
    inDisc = np.hypot(j - centre, i - centre) * SPACING_MM <= discRadiusMm
    labels = np.zeros((size, size, size), dtype=np.uint8)
    base = size // 3
    cartilageVoxels = round(THICKNESS_MM / SPACING_MM)
    labels[k < base] = LABELS[FEMUR]
    labels[(k >= base) & (k < base + cartilageVoxels) & inDisc] = LABELS[FEMORAL_CARTILAGE]
    gapVoxels = round((JOINT_SPACE_MM - THICKNESS_MM) / SPACING_MM)
    tibia = base + cartilageVoxels + gapVoxels
    labels[(k >= tibia) & (k < tibia + 8)] = LABELS[TIBIA]
    return labels


def addSlabKnee(scene: Any) -> tuple[Any, Any]:
    """A volume node (the labels as intensities) and a segmentation with the three
    canonical segments, on the same grid."""
    from mskai.slicer_io import volume_to_node
    from mskai.slicer_io.segmentation import add_segment, write_mask
    from mskai.volume import Volume

    labels = slabKneeLabels()
    volume = Volume(labels.astype(np.int16), (SPACING_MM,) * 3, (0.0, 0.0, 0.0), np.eye(3))
    volumeNode = volume_to_node(scene, volume, "SyntheticKneeSlab")
    segmentationNode = scene.AddNewNodeByClass("vtkMRMLSegmentationNode",
                                               "SyntheticKneeSlab segmentation")
    segmentationNode.CreateDefaultDisplayNodes()
    segmentationNode.SetReferenceImageGeometryParameterFromVolumeNode(volumeNode)
    colours = {FEMUR: (0.9, 0.85, 0.7), FEMORAL_CARTILAGE: (0.3, 0.6, 0.9),
               TIBIA: (0.85, 0.8, 0.6)}
    for name, value in LABELS.items():
        add_segment(segmentationNode, name, name.replace("_", " "), colours[name])
        write_mask(segmentationNode, name, labels == value, volume)
    return volumeNode, segmentationNode
