"""Runner jobs of TumorSeg, so the Slicer module can segment in a child process.

``{"task": "mskai.tasks.tumor_jobs:segment_tumor", "args": {...}}`` reads the image (and the
current, possibly hand-edited, tumour mask) from files, runs :func:`run_tumor` and writes
``segmentation.seg.nrrd`` (one layer per overlapping segment, so tumour, margin and bone all
keep every voxel) and ``measurements.json`` into ``out``. Files, not arrays, cross the
process boundary: the JSON-lines stream only carries progress and these paths.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Any

from mskai.click_methods import DEFAULT_METHOD
from mskai.results.job_files import write_job_files
from mskai.runner.base import job

#: The files a TumorSeg job hands back (also what a fake runner in tests writes).
write_job_outputs = write_job_files


@job
def segment_tumor(image: str, out: str, positive_ras: Sequence[Sequence[float]],
                  negative_ras: Sequence[Sequence[float]] = (),
                  roi_ras: Sequence[float] | None = None, margin_mm: float = 10.0,
                  current_mask: str | None = None, modality: str | None = None,
                  method: str = DEFAULT_METHOD,
                  recist_line_ras: Sequence[float] | None = None, *,
                  progress: Callable[[float, str], None],
                  cancel: threading.Event) -> dict[str, Any]:
    """Segment the tumour with ``method`` (``classic`` or ``learned``, see :func:`run_tumor`)
    from clicks, a box (``roi_ras``) and/or a RECIST line (``recist_line_ras``, its two end
    points); returns ``{"segmentation", "measurements"}`` paths. The learned method's model
    id and version go into measurements.json's provenance."""
    from mskai.image import read_image
    from mskai.interactive import Prompts
    from mskai.tasks.tumor import run_tumor

    volume = read_image(image)
    if modality:
        volume.modality = modality
    current = None
    if current_mask:
        mask_volume = read_image(current_mask)
        current = mask_volume.array.astype(bool)
        if not current.any():
            current = None
    prompts = Prompts([tuple(p) for p in positive_ras], [tuple(p) for p in negative_ras],
                      tuple(roi_ras) if roi_ras is not None else None,
                      tuple(recist_line_ras) if recist_line_ras is not None else None)
    result = run_tumor(volume, prompts, margin_mm=margin_mm, current_mask=current,
                       progress=progress, cancel=cancel.is_set, method=method)
    return write_job_outputs(result, out)

