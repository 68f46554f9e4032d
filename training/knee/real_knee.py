"""The knee models on a real knee: pymskt's multi-echo T2 series, first echo (no labels).

    .venv/bin/python training/knee/real_knee.py [--png docs/images/knee_real_overlay.png]

Reads the echoes with :func:`mskai.measure.t2_io.read_multi_echo` and keeps the shortest
echo (TE 6.3 ms: proton-density-like spin echo; sagittal, 0.625x0.625 mm, 3 mm slices every
4 mm). Segments it with each model as ``mskai cartilage`` does (the bone-leak removal of
:mod:`mskai.segmentation.knee_bone_cleanup` included, unless ``--no-bone-cleanup``),
measures cartilage volume and mean thickness (``nearest`` method) per plate, and draws
sagittal slices with each model's outlines (second row: the first model without the
cleanup). Bone volumes are printed with and without the cleanup. Prints a JSON summary.
There is no ground truth: the picture must be looked at.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from cases import REPO, setup_paths

SERIES = REPO.parent / "shared" / "data" / "pymskt_knee" / "MESE_T2_dicom_anon"
PLATES = {"femoral_cartilage": "femur", "tibial_cartilage": "tibia",
          "patellar_cartilage": "patella"}
RAW = " without bone cleanup"
COLOURS = {"femur": "#1f77b4", "tibia": "#d62728", "patella": "#8c564b",
           "femoral_cartilage": "#ffd700", "tibial_cartilage": "#2ca02c",
           "patellar_cartilage": "#ff69b4"}


def first_echo(folder: Path):
    """The shortest-TE echo of a multi-echo DICOM folder as a 3D MR Volume."""
    from mskai.measure.t2_io import read_multi_echo
    from mskai.volume import Volume

    echoes, times = read_multi_echo(folder)
    index = int(np.argmin(times))
    return Volume(np.ascontiguousarray(echoes.array[..., index]), echoes.spacing,
                  echoes.origin, echoes.direction, modality="MR",
                  metadata={"echo_time_ms": float(times[index])})


def segment(volume, model_id: str, weights: Path | None = None,
            cleanup: bool = True) -> dict[str, np.ndarray]:
    """Masks by segment id; ``weights`` (a state dict) replaces the registered file.
    ``cleanup`` applies CartilageQuant's bone-leak removal
    (:func:`mskai.segmentation.knee_bone_cleanup.remove_bone_leaks`), as ``mskai cartilage``
    does after the model."""
    import torch

    from mskai.inference.pipeline import run_segmentation
    from mskai.models.loaders import build_network
    from mskai.models.registry import find_model

    entry = find_model(model_id if weights is None else "knee_unet_v1")
    model = None
    if weights is not None:  # same architecture and input spec as v1
        model = build_network(entry.architecture)
        model.load_state_dict(torch.load(weights, map_location="cpu", weights_only=True))
        model.eval()
    by_value = run_segmentation(volume, entry, "cpu", model=model)
    masks = {entry.labels[v]: m for v, m in by_value.items()}
    if cleanup:
        from mskai.segmentation.knee_bone_cleanup import remove_bone_leaks

        masks = remove_bone_leaks(masks, volume)
    return masks


def bone_volumes(masks: dict[str, np.ndarray], volume) -> dict[str, float]:
    """Femur, tibia and patella volumes (mL, one decimal)."""
    return {b: round(float(masks[b].sum()) * volume.voxel_volume_mm3 / 1000.0, 1)
            for b in ("femur", "tibia", "patella") if b in masks}


def measure(masks: dict[str, np.ndarray], volume) -> dict[str, dict]:
    """Volume (ml) and mean thickness (mm) per cartilage plate that touches its bone."""
    from mskai.errors import InputError
    from mskai.measure.thickness import cartilage_thickness

    out = {}
    for plate, bone in PLATES.items():
        cartilage = masks.get(plate)
        if cartilage is None or not cartilage.any():
            out[plate] = {"volume_ml": 0.0, "mean_thickness_mm": None}
            continue
        ml = float(cartilage.sum()) * volume.voxel_volume_mm3 / 1000.0
        try:
            summary = cartilage_thickness(cartilage, masks[bone], volume).summary()
            mean = summary["mean_thickness_mm"]
        except InputError as error:
            mean = f"not measured: {error}"
        out[plate] = {"volume_ml": round(ml, 2),
                      "mean_thickness_mm": round(mean, 2) if isinstance(mean, float) else mean}
    return out


def overlay_png(volume, results: dict[str, dict], path: Path, n_slices: int = 6) -> None:
    """One row per model, ``n_slices`` sagittal slices through the segmented knee."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D

    image = volume.array
    union = np.zeros(image.shape, bool)
    for masks in results.values():
        for mask in masks.values():
            union |= mask
    occupied = np.flatnonzero(union.any(axis=(1, 2)))
    lo, hi = (occupied.min(), occupied.max()) if occupied.size else (0, image.shape[0] - 1)
    slices = np.unique(np.linspace(lo, hi, n_slices + 2).round().astype(int)[1:-1])
    crop = _crop(union, image.shape, margin=12)
    high = np.percentile(image, 99.5)
    fig, axes = plt.subplots(len(results), len(slices),
                             figsize=(3.2 * len(slices), 3.4 * len(results)), squeeze=False)
    for row, (name, masks) in enumerate(results.items()):
        for col, k in enumerate(slices):
            ax = axes[row, col]
            ax.imshow(image[k][crop], cmap="gray", vmin=0, vmax=high)
            for label, mask in masks.items():
                if mask[k][crop].any():
                    ax.contour(mask[k][crop], levels=[0.5], colors=COLOURS.get(label, "w"),
                               linewidths=0.9)
            ax.set_xticks([])
            ax.set_yticks([])
            ax.set_title(f"{name}, slice {k}", fontsize=8)
    handles = [Line2D([], [], color=c, label=n.replace("_", " ")) for n, c in COLOURS.items()]
    fig.legend(handles=handles, loc="lower center", ncol=6, fontsize=8, frameon=False)
    fig.suptitle("Real knee (pymskt MESE T2, echo 1, TE 6.3 ms; sagittal, anterior left)",
                 fontsize=9)
    fig.tight_layout(rect=(0, 0.05, 1, 0.96))
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=72)
    plt.close(fig)


def _crop(union: np.ndarray, shape: tuple[int, ...], margin: int) -> tuple[slice, slice]:
    """In-plane window around everything any model labelled (whole slice if nothing)."""
    if not union.any():
        return slice(None), slice(None)
    rows = np.flatnonzero(union.any(axis=(0, 2)))
    cols = np.flatnonzero(union.any(axis=(0, 1)))
    return (slice(max(rows[0] - margin, 0), min(rows[-1] + margin + 1, shape[1])),
            slice(max(cols[0] - margin, 0), min(cols[-1] + margin + 1, shape[2])))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--series", type=Path, default=SERIES)
    parser.add_argument("--png", type=Path, default=REPO / "docs" / "images" /
                        "knee_real_overlay.png")
    parser.add_argument("--models", nargs="+", default=["knee_unet_v2", "knee_unet_v1"])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--v2-weights", type=Path, help="unregistered v2 state dict to try")
    parser.add_argument("--candidate", type=Path,
                        help="also segment with these unregistered weights ('candidate')")
    parser.add_argument("--no-bone-cleanup", action="store_true",
                        help="keep the model's bones as they are (no bone-leak removal)")
    args = parser.parse_args(argv)
    setup_paths()
    import torch

    torch.set_num_threads(args.threads)
    volume = first_echo(args.series)
    raw = {m: segment(volume, m, args.v2_weights if m == "knee_unet_v2" else None, False)
           for m in args.models}
    if args.candidate is not None:
        raw = {"candidate": segment(volume, "candidate", args.candidate, False), **raw}
    results = raw
    if not args.no_bone_cleanup:
        from mskai.segmentation.knee_bone_cleanup import remove_bone_leaks

        results = {m: remove_bone_leaks(masks, volume) for m, masks in raw.items()}
    summary = {m: measure(masks, volume) for m, masks in results.items()}
    for m, masks in results.items():
        summary[m]["bone_volume_ml"] = bone_volumes(masks, volume)
        summary[m]["bone_volume_ml_without_cleanup"] = bone_volumes(raw[m], volume)
    rows = dict(results)
    if not args.no_bone_cleanup:  # second row: the first model before the cleanup
        first = next(iter(raw))
        rows = {first: results[first], first + RAW: raw[first],
                **{m: r for m, r in results.items() if m != first}}
    overlay_png(volume, rows, args.png)
    print(json.dumps(summary, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
