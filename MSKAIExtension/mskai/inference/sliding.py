"""Sliding-window inference with progress reports and cancellation between windows."""

from __future__ import annotations

import math
import threading
from collections.abc import Callable, Sequence
from typing import Any

from mskai.errors import CancelledError

Progress = Callable[[float, str], None]


def count_windows(image_size: Sequence[int], patch: Sequence[int], overlap: float) -> int:
    """How many windows MONAI's sliding_window_inference visits (its scan rule, per axis)."""
    total = 1
    for size, roi in zip(image_size, patch, strict=True):
        size = max(int(size), int(roi))  # MONAI pads images smaller than the window
        interval = roi if roi == size else max(int(roi * (1 - overlap)), 1)
        n = math.ceil(size / interval)
        n = next((d + 1 for d in range(n) if d * interval + roi >= size), n)
        total *= n
    return total


def sliding_window(model: Callable, tensor, patch: Sequence[int], overlap: float = 0.25,
                   device: Any = "cpu", progress: Progress | None = None,
                   cancel: threading.Event | None = None, sw_batch_size: int = 1,
                   mode: str = "gaussian"):
    """Network output for ``tensor`` (1, C, X, Y, Z), accumulated on the CPU.

    ``progress(fraction, message)`` is called after each window; ``cancel`` is checked
    before each window and a set event raises :class:`CancelledError`.
    """
    import torch
    from monai.inferers import sliding_window_inference

    patch = tuple(int(p) for p in patch)
    total = count_windows(tensor.shape[2:], patch, overlap) * tensor.shape[0]
    done = 0

    def predictor(window):
        nonlocal done
        if cancel is not None and cancel.is_set():
            raise CancelledError("inference was cancelled")
        out = model(window)
        done += window.shape[0]
        if progress is not None:
            progress(min(done / total, 1.0), f"window {done} of {total}")
        return out

    if progress is not None:
        progress(0.0, f"0 of {total} windows")
    with torch.no_grad():
        return sliding_window_inference(tensor, patch, sw_batch_size, predictor,
                                        overlap=overlap, mode=mode,
                                        sw_device=torch.device(device),
                                        device=torch.device("cpu"))
