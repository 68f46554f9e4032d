"""A job's ``segmentation.seg.nrrd`` into the page's segmentation node, by merge policy."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from mskai.segments import Provenance, Result, Segment
from mskai.web.session import Session


def read_document(outputs: dict[str, Any]) -> dict[str, Any]:
    path = outputs.get("measurements")
    if not path or not Path(path).is_file():
        return {}
    return json.loads(Path(path).read_text(encoding="utf-8"))


def apply_job_segments(session: Session, outputs: dict[str, Any], module: str,
                       policy: str) -> list[Any]:
    """Write every non-empty segment of the job's seg.nrrd; returns the merge actions."""
    from mskai.results.segnrrd import read_seg_nrrd
    from mskai.slicer_io import apply_result

    volume = session.require_image()
    _grid, records = read_seg_nrrd(outputs["segmentation"])
    document = read_document(outputs)
    method = (document.get("provenance") or {}).get("method", module)
    segments = [Segment(r.id, r.mask, r.label, name=r.name or None) for r in records
                if r.mask.any()]
    if not segments:
        return []
    result = Result(module, volume, Provenance(method=method), segments)
    applied = apply_result(session.scene, result, session.segmentation_node, policy,
                           reference_node=session.volume_node)
    session.editor.set_surface_representation_enabled(True)
    return applied.actions


def segment_on_image(session: Session, segment_id: str) -> Any:
    """The segment's voxels on the image grid (hand edits included), None when absent or
    empty."""
    from mskai.slicer_io import segment_mask

    volume = session.require_image()
    node = session.segmentation_node
    if node is None or node.GetSegmentation().GetSegment(segment_id) is None:
        return None
    mask = segment_mask(node, segment_id, volume)
    return mask if mask.any() else None


def write_segment(session: Session, segment_id: str, path: Path) -> str | None:
    """:func:`segment_on_image` as a file for a job; None when there is nothing."""
    import numpy as np

    from mskai.image import write_image

    mask = segment_on_image(session, segment_id)
    if mask is None:
        return None
    volume = session.require_image()
    return str(write_image(volume.with_array(mask.astype(np.uint8)), path))
