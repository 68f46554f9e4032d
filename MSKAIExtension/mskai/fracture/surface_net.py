"""Learned fracture-surface detector (FracNet-style): a small 3D UNet inside bone.

The network (manifest task :data:`TASK`, ``monai.UNet`` 2 -> 1 channels) sees the CT
resampled to ``WORK_MM`` isotropic voxels in the image's own orientation, as two channels:
the HU window ``(clip(HU, -200, 1800) - 300) / 500`` and the bone mask. Its sigmoid output
is the probability that the fracture surface passes through the voxel; it is kept inside
the bone mask only, and resampled (linear) back to the image grid.

Inference runs on ``PATCH``-voxel windows (overlap ``OVERLAP``) that hold bone; windows
without bone are skipped, so the time grows with the bone volume, not the field of view.
Trained by ``training/fracture/train_detector.py`` on the realistic simulated fractures of
:mod:`mskai.phantoms.real_fracture`; card ``models/cards/fracture_surface_unet.md``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

TASK = "fracture_surface"
MODEL_ID = "fracture_surface_unet"
WORK_MM = 1.5
PATCH = 64
OVERLAP = 16
HU_LOW, HU_HIGH, HU_CENTRE, HU_SCALE = -200.0, 1800.0, 300.0, 500.0
ARCHITECTURE: dict[str, Any] = {
    "type": "monai.UNet",
    "kwargs": {"spatial_dims": 3, "in_channels": 2, "out_channels": 1,
               "channels": [8, 16, 32, 64], "strides": [2, 2, 2], "num_res_units": 1}}


def fracture_surface_probability(image: Any, bone_mask: Any, entry: Any = None,
                                 net: Any = None) -> Any:
    """Probability (float32, 0..1) of a fracture surface per voxel, zero outside bone.

    ``image`` is a CT ``SimpleITK.Image`` in HU, ``bone_mask`` a binary ``SimpleITK.Image``
    on the same grid; the result is a ``SimpleITK.Image`` with the image's geometry.
    ``entry`` defaults to the verified manifest entry (:func:`surface_model_entry`); raises
    :class:`mskai.errors.ModelError` when none verifies.
    """
    import SimpleITK as sitk

    mask = sitk.Cast(bone_mask > 0, sitk.sitkUInt8)
    out = sitk.Image(image.GetSize(), sitk.sitkFloat32)
    out.CopyInformation(image)
    box = _bone_box(mask, pad_mm=8.0)
    if box is None:
        return out
    net = net if net is not None else load_surface_net(entry)
    ct_crop = sitk.RegionOfInterest(image, box[1], box[0])
    mask_crop = sitk.RegionOfInterest(mask, box[1], box[0])
    ref = work_reference(ct_crop)
    ct_w = sitk.GetArrayFromImage(resample(ct_crop, ref, linear=True))
    mask_w = sitk.GetArrayFromImage(resample(mask_crop, ref, linear=False)) > 0
    prob_w = predict_work(net, ct_w, mask_w)
    prob_img = sitk.GetImageFromArray(prob_w.astype(np.float32))
    prob_img.CopyInformation(ref)
    back = sitk.GetArrayFromImage(resample(prob_img, ct_crop, linear=True))
    back *= sitk.GetArrayFromImage(mask_crop) > 0
    arr = sitk.GetArrayFromImage(out)
    i0, j0, k0 = box[0]
    si, sj, sk = box[1]
    arr[k0:k0 + sk, j0:j0 + sj, i0:i0 + si] = np.clip(back, 0.0, 1.0)
    result = sitk.GetImageFromArray(arr)
    result.CopyInformation(image)
    return result


def _bone_box(mask: Any, pad_mm: float) -> tuple[list[int], list[int]] | None:
    """(index, size) in (i, j, k) of the mask's bounding box padded by ``pad_mm``."""
    import SimpleITK as sitk

    arr = sitk.GetArrayViewFromImage(mask)
    if not arr.any():
        return None
    kji = np.argwhere(arr)
    pad = np.ceil(pad_mm / np.asarray(mask.GetSpacing())).astype(int)
    lo = np.maximum(kji.min(axis=0)[::-1] - pad, 0)
    hi = np.minimum(kji.max(axis=0)[::-1] + pad + 1, np.asarray(mask.GetSize()))
    return [int(v) for v in lo], [int(v) for v in hi - lo]


def work_reference(image: Any, spacing_mm: float = WORK_MM) -> Any:
    """An empty image covering ``image`` with ``spacing_mm`` isotropic voxels, same axes."""
    import SimpleITK as sitk

    size = np.asarray(image.GetSize()) * np.asarray(image.GetSpacing())
    n = [max(int(np.ceil(s / spacing_mm)), 1) for s in size]
    ref = sitk.Image(n, sitk.sitkFloat32)
    ref.SetDirection(image.GetDirection())
    ref.SetSpacing([spacing_mm] * 3)
    direction = np.asarray(image.GetDirection()).reshape(3, 3)
    corner = np.asarray(image.GetOrigin()) - direction @ (np.asarray(image.GetSpacing()) / 2)
    ref.SetOrigin(tuple(corner + direction @ np.full(3, spacing_mm / 2)))
    return ref


def patch_reference(image: Any, center_lps: np.ndarray, size: int,
                    spacing_mm: float = WORK_MM) -> Any:
    """A ``size``-cubed work-grid image centred at ``center_lps`` in ``image``'s axes."""
    import SimpleITK as sitk

    ref = sitk.Image([size] * 3, sitk.sitkFloat32)
    ref.SetDirection(image.GetDirection())
    ref.SetSpacing([spacing_mm] * 3)
    direction = np.asarray(image.GetDirection()).reshape(3, 3)
    ref.SetOrigin(tuple(np.asarray(center_lps) - direction @ np.full(3, (size - 1) / 2
                                                                      * spacing_mm)))
    return ref


def resample(image: Any, reference: Any, linear: bool, default: float = 0.0) -> Any:
    import SimpleITK as sitk

    interp = sitk.sitkLinear if linear else sitk.sitkNearestNeighbor
    return sitk.Resample(image, reference, sitk.Transform(), interp, default,
                         sitk.sitkFloat32 if linear else image.GetPixelID())


def network_input(ct: np.ndarray, bone: np.ndarray) -> np.ndarray:
    """The two input channels (module docstring), shape (2,) + ct.shape, float32."""
    window = (np.clip(ct, HU_LOW, HU_HIGH) - HU_CENTRE) / HU_SCALE
    return np.stack([window, bone.astype(np.float32)]).astype(np.float32)


def window_starts(n: int, patch: int = PATCH, overlap: int = OVERLAP) -> list[int]:
    if n <= patch:
        return [0]
    step = patch - overlap
    starts = list(range(0, n - patch + 1, step))
    if starts[-1] != n - patch:
        starts.append(n - patch)
    return starts


def predict_work(net: Any, ct: np.ndarray, bone: np.ndarray) -> np.ndarray:
    """Probability on the work grid: windows holding bone only, averaged where they overlap."""
    import torch

    shape = ct.shape
    padded = [max(s, PATCH) for s in shape]
    x = np.zeros((2, *padded), dtype=np.float32)
    x[:, :shape[0], :shape[1], :shape[2]] = network_input(ct, bone)
    x[0, shape[0]:, :, :] = x[0, :, shape[1]:, :] = x[0, :, :, shape[2]:] = (
        HU_LOW - HU_CENTRE) / HU_SCALE
    acc = np.zeros(padded, dtype=np.float32)
    hits = np.zeros(padded, dtype=np.float32)
    with torch.no_grad():
        for k in window_starts(padded[0]):
            for j in window_starts(padded[1]):
                for i in window_starts(padded[2]):
                    win = (slice(k, k + PATCH), slice(j, j + PATCH), slice(i, i + PATCH))
                    if not x[1][win].any():
                        continue
                    logits = net(torch.from_numpy(x[(slice(None), *win)][None]))
                    acc[win] += torch.sigmoid(logits)[0, 0].numpy()
                    hits[win] += 1.0
    prob = np.divide(acc, hits, out=np.zeros_like(acc), where=hits > 0)
    return prob[:shape[0], :shape[1], :shape[2]] * bone


def surface_model_entry(user_dir: str | None = None, preferred_only: bool = False):
    """The last :data:`TASK` CT entry whose weights verify (sha256), or None.

    With ``preferred_only`` only an entry whose ``output.preferred_over_components`` is true
    counts (set by the training script only when the learned candidates beat the component
    candidates on the held-out FROC).
    """
    from mskai.fracture.candidates import PREFERRED_FLAG
    from mskai.models.registry import latest_verified

    return latest_verified(TASK, "CT", user_dir,
                           PREFERRED_FLAG if preferred_only else None)


def load_surface_net(entry: Any = None) -> Any:
    """The network of ``entry`` (default: :func:`surface_model_entry`), eval mode, CPU."""
    from mskai.errors import ModelError
    from mskai.models.loaders import load_model

    entry = entry if entry is not None else surface_model_entry()
    if entry is None:
        raise ModelError(f"the fracture surface model ({MODEL_ID}) is not installed or its "
                         "sha256 does not match the manifest")
    net = load_model(entry)
    return net.eval() if hasattr(net, "eval") else net


def build_network() -> Any:
    from mskai.models.loaders import build_network as build

    return build(ARCHITECTURE)
