"""TumorSeg click methods side by side: the learned network (tumor_refine_unet) against the
classic method, on a 256x256x60 crop with 2 threads (onnxruntime's default on the 2-core
machine), after loading; and the model's load time.

Targets (issue "TumorSeg: box and RECIST-line prompts ..."): < 0.3 s per click, < 2 s to load
the model. Peak memory is each process's ``ru_maxrss`` (``run_benchmarks.py`` runs every side
of every case in its own process, so the learned side includes onnxruntime and the model;
neither side imports torch).
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from bench_case import Case
from bench_tumor import _crop_256x256x60

REPO = Path(__file__).resolve().parents[2]


def _first_click_prepared():
    """The crop, one click at the lesion's centre, and the model loaded (not timed)."""
    from mskai.interactive.learned import load_refine_model

    volume, prompts = _crop_256x256x60()
    return volume, prompts, load_refine_model()


def _newly_loaded() -> None:
    """A first click prepares its crop (smoothing, working grid); the refinement clicks
    after it reuse that. Best-of-N timing would otherwise time the reuse from the second
    repeat on, so each first click starts as on a newly loaded image."""
    from mskai.interactive.segment import forget_prepared_crops

    forget_prepared_crops()


def _first_click_learned(prepared):
    """What ``mskai tumor --method learned`` runs for a first click: the network."""
    from mskai.interactive import segment_learned

    volume, prompts, model = prepared
    return segment_learned(volume, prompts, model=model, first_guess="network")


def _first_click_classic(prepared):
    from mskai.interactive import segment_with_method

    _newly_loaded()
    volume, prompts, _ = prepared
    return segment_with_method(volume, prompts, method="classic")


def _click_alone(prepared):
    """The prompts without the crop-wide box: a click alone, as a user clicks in a view."""
    from mskai.interactive import Prompts

    volume, prompts, model = prepared
    return volume, Prompts(positive_ras=prompts.positive_ras), model


def _first_click_alone_classic(prepared):
    """The classic method from a click alone: it searches a box of 64 mm around the click
    (``segment.MARGINS_MM``), grown when the tumour reaches its side."""
    from mskai.interactive import segment_with_method

    _newly_loaded()
    volume, click, _ = _click_alone(prepared)
    return segment_with_method(volume, click, method="classic")


def _first_click_auto(prepared):
    """What the default (``auto``) runs for a first click alone (no box) on this 113 mL
    lesion: the classic one-click gate, then the network (the gate's volume is over 100 mL).
    """
    from mskai.click_methods import LEARNED
    from mskai.interactive.auto_method import segment_auto

    _newly_loaded()
    volume, click, model = _click_alone(prepared)
    mask, used = segment_auto(volume, click, model=model)
    if used != LEARNED:
        raise AssertionError(f"the gate chose {used}; this case times the network path")
    return mask


def _refine_prepared():
    """The crop, the classic first-click mask, a background click at its edge, the model."""
    from mskai.interactive import segment_from_prompts
    from mskai.interactive.learned import load_refine_model

    volume, prompts = _crop_256x256x60()
    mask = segment_from_prompts(volume, prompts)
    edge = tuple(volume.index_to_ras([128 + 36, 128, 30]))
    return volume, prompts.with_click(edge, positive=False), mask, load_refine_model()


def _refine_learned(prepared):
    from mskai.interactive import segment_learned

    volume, prompts, mask, model = prepared
    return segment_learned(volume, prompts, current_mask=mask, model=model)


def _refine_classic(prepared):
    from mskai.interactive import segment_with_method

    volume, prompts, mask, _ = prepared
    return segment_with_method(volume, prompts, current_mask=mask, method="classic")


def _load_prepared():
    """onnxruntime imported and the weights' file in the page cache (warm start)."""
    import onnxruntime  # noqa: F401

    from mskai.models.registry import find_model

    return find_model("tumor_refine_unet")


def _load_model(entry):
    """sha256 check, then the ONNX session built (no torch, no MONAI network to build)."""
    from mskai.models.loaders import load_model

    return load_model(entry)


def _read_file_only(entry):
    """onnxruntime's session of the file alone, without the sha256 check."""
    import onnxruntime

    return onnxruntime.InferenceSession(str(entry.path), providers=["CPUExecutionProvider"])


def _cold(code: str) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO / "MSKAIExtension")
    return time.perf_counter() - start


def _cold_learned(_):
    """A fresh interpreter: import the model code, verify and load the model."""
    return _cold("from mskai.interactive.learned import load_refine_model; load_refine_model()")


def _cold_classic(_):
    """A fresh interpreter: import the classic method (it has no model to load)."""
    return _cold("import mskai.interactive.segment")


CASES = [
    Case("first click, learned network, 256x256x60, 2 threads", _first_click_prepared,
         _first_click_learned, _first_click_classic, "first click, classic, crop-wide box"),
    Case("first click alone, auto (classic gate + network), 256x256x60, 2 threads",
         _first_click_prepared, _first_click_auto, _first_click_alone_classic,
         "first click alone, classic"),
    Case("refinement click, learned, 256x256x60, 2 threads", _refine_prepared,
         _refine_learned, _refine_classic, "refinement click, classic"),
    Case("load tumor_refine_unet, onnxruntime already imported", _load_prepared, _load_model,
         _read_file_only, "onnxruntime session of the file alone"),
    Case("cold start + load tumor_refine_unet (new process)", lambda: None, _cold_learned,
         _cold_classic, "cold start, classic (import only)"),
]
