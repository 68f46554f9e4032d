"""``.seg.nrrd`` files through ``vtkMRMLSegmentationStorageNode`` (tags, colours, layers kept)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mskai.errors import InputError


def save_segmentation(node: Any, path: str | Path) -> Path:
    """Write the segmentation node to a ``.seg.nrrd`` file; returns the path written."""
    import slicer

    path = Path(path)
    if not path.name.endswith(".seg.nrrd"):
        raise InputError(f"'{path}' does not end in .seg.nrrd; give a .seg.nrrd file name.")
    path.parent.mkdir(parents=True, exist_ok=True)
    storage = slicer.vtkMRMLSegmentationStorageNode()
    storage.SetFileName(str(path))
    if not storage.WriteData(node):
        raise RuntimeError(f"Slicer could not write '{path}'.")
    return path


def load_segmentation(scene: Any, path: str | Path, name: str | None = None) -> Any:
    """Read a ``.seg.nrrd`` file into a new segmentation node in ``scene``."""
    import slicer

    path = Path(path)
    if not path.is_file():
        raise InputError(f"Segmentation file '{path}' does not exist; check the path.")
    node = scene.AddNewNodeByClass("vtkMRMLSegmentationNode",
                                   name or path.name.removesuffix(".seg.nrrd"))
    storage = scene.AddNode(slicer.vtkMRMLSegmentationStorageNode())
    storage.SetFileName(str(path))
    node.SetAndObserveStorageNodeID(storage.GetID())
    if not storage.ReadData(node):
        scene.RemoveNode(node)
        scene.RemoveNode(storage)
        raise InputError(f"'{path}' is not a readable segmentation file; "
                         "give a .seg.nrrd written by Slicer or mskai.")
    node.CreateDefaultDisplayNodes()
    return node
