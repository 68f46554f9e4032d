"""One model of the manifest applied to one image: masks on the image's own grid."""

from __future__ import annotations

import threading
from collections.abc import Callable

import numpy as np

from mskai.errors import CancelledError
from mskai.inference.device import choose_device
from mskai.inference.postprocess import postprocess
from mskai.inference.preprocess import preprocess
from mskai.inference.sliding import Progress, sliding_window
from mskai.models.manifest import ModelEntry
from mskai.volume import Volume

# Share of the progress bar per stage: loading + preprocessing, windows, postprocessing.
_STAGES = (0.1, 0.85)
# Manifest output field: ``{class value: logit bias}`` applied before the arg-max.
CLASS_LOGIT_BIAS = "class_logit_bias"


def run_segmentation(volume: Volume, entry: ModelEntry, device: str = "auto",
                     progress: Progress | None = None,
                     cancel: threading.Event | None = None,
                     model: Callable | None = None) -> dict[int, np.ndarray]:
    """``{label value: boolean mask [k, j, i]}`` for every non-background label of ``entry``.

    ``model`` may be given already loaded (it is then used as is); otherwise the entry's
    file is verified and loaded on the chosen device.
    """
    report = progress or (lambda fraction, message: None)
    torch_device = choose_device(device)
    _check_cancel(cancel)
    report(0.0, f"loading model {entry.id} {entry.version}")
    if model is None:
        from mskai.models.loaders import load_model

        model = load_model(entry, torch_device)
    tensor, context = preprocess(volume, entry.input)
    _check_cancel(cancel)
    start, end = _STAGES
    report(start, "preprocessed")
    output = sliding_window(model, tensor, entry.input.patch_size, entry.input.overlap,
                            torch_device,
                            lambda f, m: report(start + f * (end - start), m), cancel)
    _check_cancel(cancel)
    probabilities = apply_logit_bias(activate(output, entry.activation),
                                     class_logit_bias(entry))
    labels = postprocess(probabilities, context, volume,
                         keep_largest=bool(entry.output.get("keep_largest_component", False)))
    report(1.0, "done")
    wanted = sorted(v for v in entry.labels if v != 0) or sorted(set(np.unique(labels)) - {0})
    return {int(v): labels == v for v in wanted}


def activate(output, activation: str):
    """Class probabilities from the network output (``softmax`` over channels, ``sigmoid``)."""
    import torch

    if activation == "softmax" and output.shape[1] > 1:
        return torch.softmax(output.float(), dim=1)
    if activation == "sigmoid" or (activation == "softmax" and output.shape[1] == 1):
        return torch.sigmoid(output.float())
    return output


def class_logit_bias(entry: ModelEntry) -> dict[int, float]:
    """``{class: bias}`` of the entry's output ``class_logit_bias`` (empty when absent)."""
    return {int(c): float(b) for c, b in entry.output.get(CLASS_LOGIT_BIAS, {}).items()}


def apply_logit_bias(probabilities, bias: dict[int, float]):
    """Class probabilities with ``bias[c]`` added to class ``c``'s logit: ``p_c`` times
    ``exp(bias[c])``, renormalised over classes (axis 1 of a batch, else axis 0).

    A calibration of the arg-max boundary between classes (e.g. cartilage against joint
    space) that leaves the network unchanged; ``probabilities`` unchanged for no bias.
    """
    if not bias:
        return probabilities
    axis = 1 if probabilities.ndim == 5 else 0
    scale = np.ones(probabilities.shape[axis], dtype=np.float32)
    for channel, value in bias.items():
        scale[channel] = np.exp(value)
    shape = [1] * probabilities.ndim
    shape[axis] = -1
    if hasattr(probabilities, "detach"):
        import torch

        scaled = probabilities * torch.from_numpy(scale).to(probabilities.device).view(shape)
        return scaled / scaled.sum(dim=axis, keepdim=True)
    scaled = probabilities * scale.reshape(shape)
    return scaled / scaled.sum(axis=axis, keepdims=True)


def _check_cancel(cancel: threading.Event | None) -> None:
    if cancel is not None and cancel.is_set():
        raise CancelledError("inference was cancelled")
