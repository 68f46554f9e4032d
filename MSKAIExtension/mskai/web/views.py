"""The slice views' geometry in the page state, so the browser can turn a point in RAS
millimetres into a pixel of a view (and back): each view's XY-to-RAS matrix and size."""

from __future__ import annotations

from typing import Any

from mskai.web import state as names


def slice_view_geometry(slice_node: Any) -> dict[str, Any]:
    """``{"orientation", "xy_to_ras": 16 numbers row by row, "size": [w, h]}``; XY is the
    view's pixel position from its bottom-left corner."""
    matrix = slice_node.GetXYToRAS()
    dims = slice_node.GetDimensions()
    return {"orientation": slice_node.GetOrientation(),
            "xy_to_ras": [round(matrix.GetElement(r, c), 6) for r in range(4) for c in range(4)],
            "size": [int(dims[0]), int(dims[1])]}


class ViewGeometry:
    """Keeps ``state[VIEWS]`` equal to the scene's slice nodes (updated when they change)."""

    def __init__(self, scene: Any, state: Any) -> None:
        self._scene = scene
        self._state = state
        self._observed: dict[str, tuple[Any, int]] = {}

    def watch(self) -> None:
        """Observe every slice node of the scene (call after views are created)."""
        for node in self._scene.GetNodesByClass("vtkMRMLSliceNode"):
            node_id = node.GetID()
            if node_id not in self._observed:
                tag = node.AddObserver("ModifiedEvent", self._update)
                self._observed[node_id] = (node, tag)
        self._update()

    def _update(self, *_: Any) -> None:
        views = {node.GetLayoutName(): slice_view_geometry(node)
                 for node, _tag in self._observed.values()}
        if views != self._state[names.VIEWS]:
            with self._state:
                self._state[names.VIEWS] = views
