"""Built-in jobs: a test job that sleeps in steps, and model segmentation of an image file."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from mskai.errors import CancelledError
from mskai.runner.base import job


@job
def sleep_steps(steps: int = 5, delay_s: float = 0.05, child_pid_file: str | None = None,
                *, progress: Callable[[float, str], None],
                cancel: threading.Event) -> dict[str, Any]:
    """Report ``steps`` progress events ``delay_s`` apart (for tests of the runners).

    With ``child_pid_file`` it first starts a sleeping child process and writes its pid
    there, so a test can check that cancelling also ends the job's own children.
    """
    child = None
    if child_pid_file:
        child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
        Path(child_pid_file).write_text(str(child.pid))
    for step in range(1, steps + 1):
        if cancel.is_set():
            raise CancelledError("sleep_steps was cancelled")
        time.sleep(delay_s)
        progress(step / steps, f"step {step} of {steps}")
    if child is not None:
        child.kill()
        child.wait()
    return {"steps": steps}


@job
def segment_image(image: str, model_id: str, out: str, version: str | None = None,
                  device: str = "auto", model_dir: str | None = None, *,
                  progress: Callable[[float, str], None],
                  cancel: threading.Event) -> dict[str, Any]:
    """Segment ``image`` with an installed model and write the label map to ``out``."""
    import numpy as np

    from mskai.image import read_image, write_image
    from mskai.inference.pipeline import run_segmentation
    from mskai.models.registry import find_model

    entry = find_model(model_id, version, model_dir)
    volume = read_image(image)
    masks = run_segmentation(volume, entry, device, progress, cancel)
    labels = np.zeros(volume.array.shape[:3], dtype=np.uint16)
    for value, mask in masks.items():
        labels[mask] = value
    written = write_image(volume.with_array(labels), out)
    return {"labels": str(written), "model": {"id": entry.id, "version": entry.version,
                                              "sha256": entry.sha256},
            "segments": {str(v): entry.labels.get(v, str(v)) for v in masks}}
