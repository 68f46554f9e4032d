"""Learned bone segmentation on CT (manifest task ``bone_seg``), with the HU method as fallback.

The packaged model ``bone_ct_unet`` is a small MONAI UNet trained by
``training/bone/train.py`` on TotalSegmentator bone labels (model outputs, not manual
truth) of part of the example CTs; its card gives the split and the measured Dice. The
model is used only when its manifest entry verifies (sha256); otherwise
:func:`mskai.segmentation.bone_ct.segment_bone_ct` runs.

The network REFINES the HU mask: its two input channels are the CT (window -500..1500 HU
scaled to 0..1) and the HU method's bone mask, both on the 3 mm RAS model grid. A first
version that saw the CT alone (trained on the pelvis half of one scan) called liver and
kidneys bone on the held-out upper abdomen (Dice 0.56); given the HU mask, it only has to
learn where TotalSegmentator's bone differs from the threshold result.

The entry's ``output.combine_with_hu`` says how the network and the HU mask are joined,
chosen on the held-out cases: ``"none"`` (network alone), ``"union"``,
``"intersection"``, or ``"vote"`` (mean of the network probability and the HU mask >= 0.5
after a 1-voxel tolerance, i.e. the network decides only where the HU mask is uncertain).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from mskai.volume import Volume

TASK = "bone_seg"
MODEL_ID = "bone_ct_unet"
ARCHITECTURE: dict[str, Any] = {
    "type": "monai.UNet",
    "kwargs": {"spatial_dims": 3, "in_channels": 2, "out_channels": 2,
               "channels": [16, 32, 64, 128], "strides": [2, 2, 2], "num_res_units": 1},
}
INPUT: dict[str, Any] = {
    "spacing_mm": [3.0, 3.0, 3.0], "orientation": "RAS",
    "intensity": {"type": "ct_window", "min": -500.0, "max": 1500.0, "b_min": 0.0,
                  "b_max": 1.0},
    "channels": 2, "channel_names": ["ct_window", "hu_bone_mask"],
    "patch_size": [64, 64, 48], "overlap": 0.25,
}
COMBINE_MODES = ("none", "union", "intersection")


def bone_model_entry(user_dir: str | None = None, preferred_only: bool = True):
    """The first ``bone_seg`` CT model whose file verifies, or None (then use HU).

    With ``preferred_only`` (what the fracture task asks for) only entries whose
    ``output.preferred_over_hu`` is true count: that flag is set by
    ``training/bone/register.py`` only when the model beat the HU method on every held-out
    case, so a verified but weaker model is shipped and documented without replacing HU.
    """
    from mskai.errors import ModelError
    from mskai.models.registry import check, models_for_task

    try:
        entries = models_for_task(TASK, "CT", user_dir)
    except ModelError:
        return None
    return next((e for e in entries if check(e) is None
                 and (not preferred_only or bool(e.output.get("preferred_over_hu")))), None)


def combine(network: np.ndarray, hu: np.ndarray, mode: str) -> np.ndarray:
    """Join the network mask and the HU mask as the manifest's ``combine_with_hu`` says."""
    if mode == "union":
        return network | hu
    if mode == "intersection":
        return network & hu
    return network


def segment_bone_model(volume: Volume, entry=None, device: str = "cpu",
                       warnings: list[str] | None = None,
                       hu_mask: np.ndarray | None = None) -> np.ndarray:
    """Boolean bone mask on the volume grid from the learned model (combined with HU).

    ``entry`` defaults to :func:`bone_model_entry` (preferred models only); without one
    this is the HU method. ``hu_mask`` may be passed when the caller already computed it; it
    must be the plain threshold mask (``segment_bone_ct(..., refine=False)``), the network's
    training input.
    """
    from mskai.segmentation.bone_ct import require_ct, segment_bone_ct

    require_ct(volume)
    entry = entry if entry is not None else bone_model_entry()
    if entry is None:
        return segment_bone_ct(volume, warnings=warnings) if hu_mask is None else hu_mask
    mode = str(entry.output.get("combine_with_hu", "none"))
    # the network was trained on the plain threshold mask (no surface trimming)
    if hu_mask is None:
        hu_mask = segment_bone_ct(volume, warnings=warnings, refine=False)
    network = network_mask(volume, entry, hu_mask, device)
    return network if mode == "none" else combine(network, hu_mask, mode)


def model_inputs(volume: Volume, hu_mask: np.ndarray, spec):
    """``(tensor (1, 2, X, Y, Z), context)``: CT window and HU mask on the model grid."""
    from dataclasses import replace

    import torch

    from mskai.inference.preprocess import preprocess

    one = replace(spec, channels=1)
    ct, context = preprocess(volume, one)
    mask, _ = preprocess(volume.with_array(hu_mask.astype(np.float32)),
                         replace(one, intensity={"type": "none"}))
    return torch.cat([ct, mask], dim=1), context


def network_mask(volume: Volume, entry, hu_mask: np.ndarray, device: str = "cpu",
                 model=None) -> np.ndarray:
    """The network's bone mask (label 1) on the volume grid, given the HU mask."""
    from mskai.inference.device import choose_device
    from mskai.inference.pipeline import activate
    from mskai.inference.postprocess import postprocess
    from mskai.inference.sliding import sliding_window

    torch_device = choose_device(device)
    if model is None:
        from mskai.models.loaders import load_model

        model = load_model(entry, torch_device)
    tensor, context = model_inputs(volume, hu_mask, entry.input)
    output = sliding_window(model, tensor, entry.input.patch_size, entry.input.overlap,
                            torch_device)
    return postprocess(activate(output, entry.activation), context, volume) == 1
