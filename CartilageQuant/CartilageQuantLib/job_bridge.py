"""Running the cartilage job through a :class:`mskai.runner.base.ProcessRunner` (no Qt).

The image and the current knee masks go to a temporary folder, the job
``mskai.tasks.cartilage_jobs:measure_cartilage`` runs (in a child process inside Slicer, so
the GUI keeps drawing and Cancel works) and its files come back as a
:class:`CartilageOutputs`. Tests swap the runner for a fake that writes known files.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from mskai.errors import CancelledError, InputError
from mskai.volume import Volume

TASK = "mskai.tasks.cartilage_jobs:measure_cartilage"
MODULE = "CartilageQuant"
POLL_S = 0.05
ProgressCallback = Callable[[float, str], None]
CancelCallback = Callable[[], bool]


@dataclass
class CartilageOutputs:
    """What one job hands back: the measurements document, the plates' thickness surfaces
    (``mskai.tasks.cartilage_jobs.PlateSurface`` by plate id) and, after AI segmentation,
    the segments as a :class:`mskai.segments.Result` on the input grid."""

    document: dict[str, Any]
    surfaces: dict[str, Any]
    result: Any = None
    warnings: list[str] = field(default_factory=list)


def cartilageJob(imagePath: str, outDir: str, masksPath: str | None, method: str,
                 kneeSide: str | None = None) -> dict[str, Any]:
    """The job dict (plain JSON) for one run."""
    return {"task": TASK, "args": {"image": imagePath, "out": outDir, "labels": masksPath,
                                   "method": method, "knee_side": kneeSide}}


def runCartilageJob(runner: Any, volume: Volume, masks: Mapping[str, np.ndarray] | None,
                    method: str, progress: ProgressCallback | None = None,
                    cancel: CancelCallback | None = None,
                    kneeSide: str | None = None) -> CartilageOutputs:
    """Run the job on ``runner`` and read its outputs; the temporary files are removed."""
    from mskai.image import write_image
    from mskai.tasks.cartilage_jobs import save_masks

    work = Path(tempfile.mkdtemp(prefix="mskai-cartilagequant-"))
    try:
        imagePath = write_image(volume, work / "image.nrrd")
        masksPath = str(save_masks(masks, work / "masks.npz")) if masks is not None else None
        job = cartilageJob(str(imagePath), str(work / "out"), masksPath, method, kneeSide)
        outputs = driveRunner(runner, job, progress, cancel)
        return readJobOutputs(outputs, volume)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def driveRunner(runner: Any, job: dict[str, Any], progress: ProgressCallback | None,
                cancel: CancelCallback | None) -> dict[str, Any]:
    """Start ``job``, relay progress, honour Cancel; returns the job's outputs.

    ``progress`` is called on every poll, even without news, because inside Slicer it is
    what processes GUI events (see ``MSKAILib.widget_helpers.ProgressRunner``).
    """
    runner.start(job)
    fraction, message = 0.0, "starting"
    while True:
        for event in runner.poll():
            kind = event.get("event")
            if kind == "progress":
                fraction, message = float(event.get("fraction", 0.0)), event.get("message", "")
            elif kind == "done":
                return event.get("outputs") or {}
            elif kind == "cancelled":
                raise CancelledError("Cancelled: cartilage measurement")
            elif kind == "error":
                text = event.get("message", "the job failed")
                if event.get("kind") == "input":
                    raise InputError(text[:1].upper() + text[1:])
                raise RuntimeError(f"Cartilage measurement failed: {text}")
        if cancel is not None and cancel():
            runner.cancel()
            runner.wait(5.0)
            raise CancelledError("Cancelled: cartilage measurement")
        if progress is not None:
            progress(fraction, message)
        runner.wait(POLL_S)


def readJobOutputs(outputs: Mapping[str, Any], volume: Volume) -> CartilageOutputs:
    """The document, the thickness surfaces and (when written) the segments."""
    from mskai.tasks.cartilage_jobs import load_surfaces

    path = outputs.get("measurements")
    if not path or not Path(path).is_file():
        raise RuntimeError("The cartilage job finished without writing its measurements.")
    document = json.loads(Path(path).read_text(encoding="utf-8"))
    maps = outputs.get("thickness_maps")
    surfaces = load_surfaces(maps) if maps and Path(maps).is_file() else {}
    result = None
    if outputs.get("segmentation"):
        result = _segments(outputs["segmentation"], volume, document)
    return CartilageOutputs(document, surfaces, result, list(outputs.get("warnings") or []))


def _segments(path: str, volume: Volume, document: Mapping[str, Any]) -> Any:
    from mskai.results.segnrrd import read_seg_nrrd
    from mskai.segments import STATUS_AI, Provenance, Result, Segment

    grid, records = read_seg_nrrd(path)
    if not grid.same_geometry(volume):
        raise RuntimeError("The cartilage job wrote a segmentation on another grid than the "
                           "input volume.")
    data = document.get("provenance") or {}
    model = data.get("model") or {}
    provenance = Provenance(method=data.get("method") or "cartilage job",
                            model_id=model.get("id"), model_version=model.get("version"),
                            model_sha256=model.get("sha256"))
    result = Result(MODULE, volume, provenance)
    for record in records:
        result.segments.append(Segment(record.id, record.mask, record.label,
                                       name=record.name or None, status=STATUS_AI))
    return result
