"""MRML adapters between the core and Slicer: volumes, segmentations, tables, markups.

The only part of ``mskai`` that touches ``slicer``, always inside functions, so importing
this package needs no Slicer. Works in the Slicer application and, with
:func:`mskai.slicer_io.app.create_app`, on slicer-core's MRML in plain Python.
"""

from mskai.slicer_io.markups import (
    line_length,
    line_markup,
    markups_to_points,
    points_to_markups,
    prompt_points,
)
from mskai.slicer_io.merge import (
    POLICIES,
    Applied,
    SegmentAction,
    apply_result,
    segment_status,
    segment_statuses,
)
from mskai.slicer_io.segmentation import closed_surface, segment_mask, segmentation_to_masks
from mskai.slicer_io.segmentation_files import load_segmentation, save_segmentation
from mskai.slicer_io.tables import measurements_to_table, table_to_rows
from mskai.slicer_io.volumes import node_to_volume, volume_to_node

__all__ = [
    "POLICIES", "Applied", "SegmentAction", "apply_result", "closed_surface", "line_length",
    "line_markup", "load_segmentation", "markups_to_points", "measurements_to_table",
    "node_to_volume", "points_to_markups", "prompt_points", "save_segmentation",
    "segment_mask", "segment_status", "segment_statuses", "segmentation_to_masks",
    "table_to_rows", "volume_to_node",
]
