"""Learned click segmentation (DeepEdit / nnInteractive style): a 3D UNet from clicks.

Inputs, on a working grid of ``GRID_SPACING`` mm around the clicks (and the current mask):

1. the image relative to the tumour: ``(x - median near the first positive click) / scale``
   (CT: 100 HU, after clipping to -300..400 HU; MR: a tenth of the crop's 1-99 percentile
   range), clipped to +-5;
2. the image on a fixed scale: CT ``(clip(x, -200, 300 HU) - 50) / 125``; MR the crop's 1st
   percentile -> -2 and 99th -> +2, so raw scanner MR and fat-normalised MR look alike;
3. a modality flag (+1 CT, -1 MR): one network for both;
4. positive clicks and 5. negative clicks as Gaussian maps (``CLICK_SIGMA_MM``);
6. the current mask (empty for the first click; possibly a person's edit).

The output (sigmoid) is interpolated linearly back onto the native grid and thresholded at
0.5; the components holding positive clicks are kept, holes filled. Outside the crop the
current mask is kept unchanged. By default the network makes the first guess too
(``FIRST_GUESS``, as ``mskai tumor --method learned``); ``LOCAL`` says whether, at later
clicks, only the network's changes connected to the new clicks are applied (so hand edits
elsewhere survive). The weights are the packaged ``tumor_refine_unet`` model v6
(``mskai.models``), trained on 36 real sarcoma patients (CT and T1 MR), verified by sha256
and run by onnxruntime (no torch or MONAI import); training and cross-validation:
``training/tumor/``; results: the model card.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from mskai.click_methods import AUTO, CLASSIC, DEFAULT_METHOD, LEARNED, METHODS
from mskai.errors import CancelledError, InputError
from mskai.interactive.prompts import Prompts
from mskai.volume import Volume

MODEL_ID = "tumor_refine_unet"
GRID_SPACING = (4.0, 3.0, 3.0)     # k, j, i mm (slices, rows, columns); v3 (v2: 3 x 2 x 2)
BASE_SHAPE = (40, 56, 56)          # field of view for a first click: 160 x 168 x 168 mm
MARGIN_MM = 24.0                   # around an existing mask when refining
# smallest field when refining: the base field (v2: measured better on MR than a smaller one)
REFINE_MIN_MM = tuple(n * s for n, s in zip(BASE_SHAPE, GRID_SPACING, strict=True))
CLICK_SIGMA_MM = 5.0
CT_CLIP = (-300.0, 400.0)
CT_SCALE = 100.0
CT_WINDOW = (-200.0, 300.0)
IN_CHANNELS = 6
ARCHITECTURE = {"type": "monai.UNet",
                "kwargs": {"spatial_dims": 3, "in_channels": IN_CHANNELS, "out_channels": 1,
                           "channels": [16, 32, 64, 128], "strides": [2, 2, 2],
                           "num_res_units": 1}}
SEED_RADIUS_MM = 6.0
FIRST_GUESS = "network"   # v3: the measured configuration, as `mskai tumor --method learned`
LOCAL = True              # see segment_learned

_MODELS: dict[str, object] = {}


# ----- inputs shared with training -----------------------------------------------------------
def normalise(image: np.ndarray, is_ct: bool, first_click: np.ndarray) -> np.ndarray:
    """The image relative to the tumour near the first positive click (see the module doc)."""
    x = np.clip(image, *CT_CLIP) if is_ct else image.astype(np.float32)
    near = click_distance(x.shape, first_click[None]) <= SEED_RADIUS_MM
    centre = float(np.median(x[near]))
    if is_ct:
        scale = CT_SCALE
    else:
        lo, hi = np.percentile(x, [1, 99])
        scale = max(float(hi - lo) / 10.0, 1e-3)
    return np.clip((x - centre) / scale, -5.0, 5.0).astype(np.float32)


def normalise_absolute(image: np.ndarray, is_ct: bool) -> np.ndarray:
    """The image on a fixed scale: CT by a fixed HU window, MR by the crop's 1-99 percentiles.

    CT: ``(clip(x, -200, 300) - 50) / 125`` (fat about -1.2, muscle 0, bone 2). MR: the
    crop's 1st percentile maps to -2 and its 99th to +2 (clipped to +-2.5), so raw scanner
    units and fat-normalised units give the same input.
    """
    x = image.astype(np.float32)
    if is_ct:
        return ((np.clip(x, *CT_WINDOW) - 50.0) / 125.0).astype(np.float32)
    lo, hi = np.percentile(x, [1, 99])
    scaled = (x - lo) / max(float(hi - lo), 1e-3) * 4.0 - 2.0
    return np.clip(scaled, -2.5, 2.5).astype(np.float32)


def image_channels(image: np.ndarray, is_ct: bool, first_click: np.ndarray) -> np.ndarray:
    """The (3, K, J, I) image part of the input: relative, absolute, modality flag."""
    flag = np.full(image.shape, 1.0 if is_ct else -1.0, np.float32)
    return np.stack([normalise(image, is_ct, first_click), normalise_absolute(image, is_ct),
                     flag])


def click_distance(shape: tuple[int, ...], points: np.ndarray,
                   spacing=GRID_SPACING) -> np.ndarray:
    """Distance in mm from each voxel to the nearest of ``points`` (inf without points)."""
    out = np.full(shape, np.inf, dtype=np.float32)
    axes = [np.arange(n, dtype=np.float32) * s for n, s in zip(shape, spacing, strict=True)]
    for p in np.asarray(points, dtype=np.float32).reshape(-1, 3):
        d2 = sum(((a - c * s) ** 2).reshape([-1 if i == d else 1 for i in range(3)])
                 for d, (a, c, s) in enumerate(zip(axes, p, spacing, strict=True)))
        out = np.minimum(out, np.sqrt(d2))
    return out


def click_map(shape: tuple[int, ...], points: np.ndarray) -> np.ndarray:
    """Gaussian click map (1 at a click), zero without clicks."""
    if len(points) == 0:
        return np.zeros(shape, dtype=np.float32)
    d = click_distance(shape, points)
    return np.exp(-0.5 * (d / CLICK_SIGMA_MM) ** 2).astype(np.float32)


def network_input(channels: np.ndarray, pos: np.ndarray, neg: np.ndarray,
                  current: np.ndarray | None) -> np.ndarray:
    """The (6, K, J, I) input: :func:`image_channels`, positive and negative click maps,
    current mask."""
    shape = channels.shape[1:]
    mask = np.zeros(shape, np.float32) if current is None else current.astype(np.float32)
    return np.concatenate([channels, np.stack([click_map(shape, pos),
                                               click_map(shape, np.reshape(neg, (-1, 3))),
                                               mask])]).astype(np.float32)


def padded_shape(shape: tuple[int, ...], multiple: int = 8) -> tuple[int, ...]:
    return tuple(int(-(-n // multiple) * multiple) for n in shape)


# ----- the working grid around the clicks ----------------------------------------------------
class Crop:
    """A working grid: voxel n along axis d sits at native index ``origin[d] + n * step[d]``."""

    def __init__(self, volume: Volume, centre: np.ndarray, extent_mm: np.ndarray) -> None:
        native = np.array(volume.spacing[::-1], dtype=float)
        self.step = np.array(GRID_SPACING) / native
        self.shape = padded_shape(tuple(int(np.ceil(e / s))
                                        for e, s in zip(extent_mm, GRID_SPACING, strict=True)))
        self.origin = np.asarray(centre, float) - (np.array(self.shape) - 1) / 2 * self.step
        self.native_shape = np.array(volume.array.shape[:3])

    def to_work(self, kji: np.ndarray) -> np.ndarray:
        return (np.asarray(kji, float) - self.origin) / self.step

    def native_box(self) -> tuple[np.ndarray, np.ndarray]:
        """Native voxel box (lo, hi exclusive) covered by the grid, within the image."""
        lo = np.floor(self.origin).astype(int)
        hi = np.ceil(self.origin + (np.array(self.shape) - 1) * self.step).astype(int) + 1
        return np.maximum(lo, 0), np.minimum(hi, self.native_shape)

    def sample(self, array: np.ndarray, order: int = 1) -> np.ndarray:
        """``array`` (native grid) resampled onto the working grid, anti-aliased."""
        from scipy import ndimage

        from mskai.interactive.separable import smooth_and_sample

        lo, hi = self.native_box()
        pad = np.ceil(2 * self.step).astype(int) + 1
        lo, hi = np.maximum(lo - pad, 0), np.minimum(hi + pad, self.native_shape)
        sub = array[lo[0]:hi[0], lo[1]:hi[1], lo[2]:hi[2]].astype(np.float32)
        sigma = np.sqrt(np.maximum(self.step**2 - 1, 0)) / 2
        coords = [(self.origin[d] + np.arange(self.shape[d]) * self.step[d] - lo[d])
                  for d in range(3)]
        if order == 1:  # one matrix per axis (separable.smooth_and_sample)
            return smooth_and_sample(sub, coords, sigma)
        grid = np.meshgrid(*coords, indexing="ij", sparse=False)
        return ndimage.map_coordinates(sub, grid, order=order, mode="nearest")

    def support_box(self, prob: np.ndarray, above: float,
                    points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The part of :meth:`native_box` where the linearly interpolated ``prob`` can exceed
        ``above`` (the working voxels above it and one voxel around them), grown to hold
        ``points`` (native indices); outside it the interpolated value is at most ``above``.
        """
        lo, hi = self.native_box()
        found = np.argwhere(prob > above)
        starts, ends = [], []
        if len(found):
            starts.append(np.floor(self.origin + (found.min(0) - 1) * self.step))
            ends.append(np.ceil(self.origin + (found.max(0) + 1) * self.step) + 1)
        if len(points):
            starts.append(np.min(points, 0))
            ends.append(np.max(points, 0) + 1)
        if not starts:
            return lo, lo.copy()
        sub_lo = np.maximum(lo, np.min(starts, 0).astype(int))
        return sub_lo, np.maximum(np.minimum(hi, np.max(ends, 0).astype(int)), sub_lo)

    def to_native(self, prob: np.ndarray, box: tuple[np.ndarray, np.ndarray] | None = None
                  ) -> tuple[np.ndarray, tuple[np.ndarray, np.ndarray]]:
        """Probability on ``box`` (default :meth:`native_box`) and that box."""
        from mskai.interactive.separable import linear_on_axes

        lo, hi = self.native_box() if box is None else box
        coords = [(np.arange(lo[d], hi[d]) - self.origin[d]) / self.step[d] for d in range(3)]
        return linear_on_axes(prob, coords), (lo, hi)


def crop_for(volume: Volume, pos: np.ndarray, neg: np.ndarray,
             current: np.ndarray | None) -> Crop:
    """The base field around the first click, grown to hold the current mask and all clicks."""
    native = np.array(volume.spacing[::-1], dtype=float)
    points = np.vstack([pos, neg]) if len(neg) else pos
    if current is not None and current.any():
        found = np.argwhere(current)
        points = np.vstack([points, found.min(0), found.max(0)])
    refining = current is not None and current.any()
    lo_mm, hi_mm = points.min(0) * native, points.max(0) * native
    smallest = np.array(REFINE_MIN_MM if refining else np.array(BASE_SHAPE) * GRID_SPACING)
    extent = np.maximum(hi_mm - lo_mm + 2 * MARGIN_MM, smallest)
    extent = np.minimum(extent, 3 * np.array(BASE_SHAPE) * GRID_SPACING)
    centre_mm = (lo_mm + hi_mm) / 2 if refining else pos[0] * native
    return Crop(volume, centre_mm / native, extent)


# ----- model and inference ---------------------------------------------------------------------
def load_refine_model(model_id: str = MODEL_ID):
    """The packaged (or user-imported) refinement network, cached after the first load."""
    from mskai.models.loaders import load_model
    from mskai.models.registry import find_model

    if model_id not in _MODELS:
        _MODELS[model_id] = load_model(find_model(model_id))
    return _MODELS[model_id]


def predict(model, x: np.ndarray) -> np.ndarray:
    """Sigmoid output of the network for one (C, K, J, I) input.

    The shipped ONNX model runs on numpy (no torch import); a torch module (a user's
    TorchScript or state-dict import) runs under torch.
    """
    from scipy.special import expit

    from mskai.models.loaders import OnnxModel

    if isinstance(model, OnnxModel):
        return expit(model.numpy(np.asarray(x, np.float32)[None])[0, 0])
    import torch

    with torch.inference_mode():
        logits = model(torch.from_numpy(np.ascontiguousarray(x))[None])
    return torch.sigmoid(logits[0, 0]).numpy()


def _keep_clicked(mask: np.ndarray, pos: np.ndarray) -> np.ndarray:
    from scipy import ndimage

    labels, n = ndimage.label(mask)
    if n == 0:
        return mask
    inside = [p for p in pos if np.all((p >= 0) & (p < mask.shape))]
    keep = np.unique([labels[tuple(p)] for p in inside]) if inside else np.zeros(0, int)
    keep = keep[keep > 0]
    if keep.size == 0:   # the network missed the click itself: keep the largest part
        keep = np.array([int(np.argmax(np.bincount(labels.ravel())[1:])) + 1])
    out = np.isin(labels, keep)
    for k in range(out.shape[0]):
        out[k] = ndimage.binary_fill_holes(out[k])
    return out


def _in_box(points: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """The points inside the box, relative to its corner."""
    return points[np.all((points >= lo) & (points < hi), axis=1)] - lo


def _network_mask(volume: Volume, modality: str, pos: np.ndarray, neg: np.ndarray,
                  current: np.ndarray | None, model, cancel) -> np.ndarray:
    """The network's mask on the volume's grid; the current mask (if any) outside the crop."""
    crop = crop_for(volume, pos, neg, current)
    pos_w, neg_w = crop.to_work(pos), crop.to_work(neg)
    norm = image_channels(crop.sample(volume.array), modality == "CT", pos_w[0])
    mask_w = None if current is None else crop.sample(current.astype(np.float32)) > 0.5
    if cancel is not None and cancel():
        raise CancelledError("segmentation cancelled")
    prob = predict(model, network_input(norm, pos_w, neg_w, mask_w))
    out = np.zeros(volume.array.shape[:3], bool) if current is None else current.copy()
    crop_lo, crop_hi = crop.native_box()
    out[crop_lo[0]:crop_hi[0], crop_lo[1]:crop_hi[1], crop_lo[2]:crop_hi[2]] = False
    # interpolate back only where the probability can exceed 0.5 (exact, and much faster)
    lo, hi = crop.support_box(prob, 0.5, _in_box(pos, crop_lo, crop_hi) + crop_lo)
    if np.any(hi <= lo):
        return out
    native_prob, _ = crop.to_native(prob, (lo, hi))
    inside = native_prob > 0.5
    inside[tuple(_in_box(neg, lo, hi).T)] = False
    inside[tuple(_in_box(pos, lo, hi).T)] = True
    out[lo[0]:hi[0], lo[1]:hi[1], lo[2]:hi[2]] = _keep_clicked(inside, _in_box(pos, lo, hi))
    return out


def segment_learned(volume: Volume, prompts: Prompts, current_mask: np.ndarray | None = None,
                    modality: str | None = None, model=None, first_guess: str = FIRST_GUESS,
                    local: bool = LOCAL,
                    progress: Callable[[float, str], None] | None = None,
                    cancel: Callable[[], bool] | None = None) -> np.ndarray:
    """Boolean tumour mask on the volume's grid from clicks and the current mask (if any).

    ``first_guess``: without a current mask, ``"network"`` segments from the clicks alone,
    ``"classic"`` returns the non-learned method's result (the network then refines it at
    the next click). ``local``: with a current mask, apply only the network's changes
    connected to the new clicks (:func:`mskai.interactive.refine.merge_with_current`, the
    classic method's policy), so hand edits elsewhere survive; ``local=False`` lets the
    network rewrite the whole crop (about equal after 3 clicks in the cross-validation,
    better after 5, but it can undo hand edits and spoils phantom masks more; model card).
    """
    from mskai.interactive.refine import merge_with_current
    from mskai.interactive.segment import check_not_air, resolve_modality, segment_from_prompts

    if first_guess not in ("classic", "network"):
        raise InputError(f"first_guess must be 'classic' or 'network', not {first_guess!r}")
    if current_mask is None and first_guess == "classic":
        return segment_from_prompts(volume, prompts, modality=modality, progress=progress,
                                    cancel=cancel)
    modality = resolve_modality(volume, modality)
    pos, neg = prompts.to_indices(volume)
    if modality == "CT":
        check_not_air(volume, pos, prompts)
    if current_mask is not None and current_mask.shape != volume.array.shape[:3]:
        raise InputError(f"the current mask has shape {current_mask.shape}, the image "
                         f"{volume.array.shape[:3]}; give a mask on the image's grid")
    current = None if current_mask is None else current_mask.astype(bool)
    if progress is not None:
        progress(0.0, "preparing")
    out = _network_mask(volume, modality, pos, neg, current,
                        model if model is not None else load_refine_model(), cancel)
    if current is not None and local:
        out = merge_with_current(current, out, pos, neg, tuple(reversed(volume.spacing)))
    if progress is not None:
        progress(1.0, "done")
    return out


def segment_with_method(volume: Volume, prompts: Prompts, current_mask: np.ndarray | None = None,
                        method: str | None = None, modality: str | None = None,
                        progress: Callable[[float, str], None] | None = None,
                        cancel: Callable[[], bool] | None = None) -> np.ndarray:
    """Dispatch to the non-learned method (``"classic"``), the learned model (``"learned"``)
    or the size-gated choice between them (``"auto"``, :mod:`mskai.interactive.auto_method`).

    ``None`` (the default) is :data:`mskai.click_methods.DEFAULT_METHOD`.
    """
    if method is None:
        method = DEFAULT_METHOD
    if method == AUTO:
        from mskai.interactive.auto_method import segment_auto

        return segment_auto(volume, prompts, current_mask=current_mask, modality=modality,
                            progress=progress, cancel=cancel)[0]
    if method == CLASSIC:
        from mskai.interactive.segment import segment_from_prompts

        return segment_from_prompts(volume, prompts, current_mask=current_mask,
                                    modality=modality, progress=progress, cancel=cancel)
    if method == LEARNED:
        return segment_learned(volume, prompts, current_mask=current_mask, modality=modality,
                               progress=progress, cancel=cancel)
    raise InputError(f"unknown interactive method {method!r}; choose one of {METHODS}")
