"""The files a module job hands back through its runner (no Slicer, nothing heavy).

Files, not arrays, cross the process boundary: a job writes ``segmentation.seg.nrrd`` and
``measurements.json`` (CONTRACT.md) into its ``out`` folder and returns their paths, which
the module's ``job_bridge`` reads back onto the input grid. Fake runners in the tests
write the same files with :func:`write_job_files`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mskai.segments import Result

SEGMENTATION_FILE = "segmentation.seg.nrrd"
MEASUREMENTS_FILE = "measurements.json"


def write_job_files(result: Result, out: str | Path,
                    with_segmentation: bool = True) -> dict[str, Any]:
    """Write ``result``'s measurements (and segmentation) into ``out``; returns the job's
    outputs ``{"segmentation": path or None, "measurements": path, "warnings": [...]}``."""
    from mskai.results.segnrrd import write_seg_nrrd
    from mskai.results.tables import measurements_document, write_json

    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    measurements = write_json(measurements_document(result), folder / MEASUREMENTS_FILE)
    segmentation = (str(write_seg_nrrd(result, folder / SEGMENTATION_FILE))
                    if with_segmentation else None)
    return {"segmentation": segmentation, "measurements": str(measurements),
            "warnings": list(result.warnings)}
