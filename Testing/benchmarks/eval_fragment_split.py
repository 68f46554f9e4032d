"""Fragment Dice of the automatic and the click-driven split on touching fractures.

``python Testing/benchmarks/eval_fragment_split.py`` prints a Markdown table and writes
``Testing/benchmarks/results_fragment_split.md`` (quoted in the README).

Cases (truth from :mod:`phantoms.touching_fracture` / :mod:`phantoms.long_bone`):

- phantom long bone (0.7 x 0.7 x 1.0 mm, oblique grid, 20 HU noise), three seeds each:
  ``touching`` (rough surface, 2 mm roughness, ~2 mm displacement, 4 degrees, 0.6 mm line),
  ``hairline`` (1 mm roughness, no motion, 0.4 mm line), ``bridged`` (planar oblique cut,
  1.2 mm gap bridged by partial volume, 8-10 degrees);
- real CT bones: the largest bone of the sarcoma CT crops (1 x 1 x 3.3 mm; never the
  reserved patients) whose largest bone is a shaft (``REAL``), cut across its long axis on a
  plane tilted about 34 degrees, with a rough touching fracture (2 mm roughness, 1 mm
  displacement, 3 degrees, 1 mm line, no added noise: the scan's own).

The automatic split is the product's (:func:`automatic`: at the fractures the detector
reports, else along the landscape alone); "landscape only" is
:func:`mskai.fracture.fragment_split.split_bone` alone, the automatic split before
2026-12-06. Per case: Dice of each truth fragment with the split fragment overlapping it most (worst
of the two), for the split given the true bone mask ("true bone") and given the HU bone
mask of :func:`mskai.segmentation.bone_ct.segment_bone_ct` ("HU bone", end to end; bounded
by that mask's own Dice, given as "bone Dice"); the click split uses one click per fragment
at the fragment's deepest voxel (phantoms: on the axis 25 mm from the fracture).
Displacement and angulation errors are of the click split on the true bone mask (on the
HU mask of a crop the fragment can include a neighbouring bone it touches at a joint).
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
STS = Path("/work/shared/data/sts_sarcoma")
# the crops whose largest bone is a long-bone shaft (PCA elongation >= 4); the others hold
# pelvis, joints or bone cut short by the 5 cm crop, with no long axis to break across
REAL = ("STS_014", "STS_022", "STS_023", "STS_024", "STS_025", "STS_032", "STS_033",
        "STS_034", "STS_038")


def _paths() -> None:
    for path in (REPO / "MSKAIExtension", REPO / "Testing"):
        if str(path) not in sys.path:
            sys.path.insert(0, str(path))


def phantom_case(kind: str, seed: int):
    """(image, truth labels, clicks, displacement, angulation) of one phantom case."""
    from phantoms.long_bone import fractured_long_bone, intact_long_bone
    from phantoms.touching_fracture import break_bone

    if kind == "bridged":
        ph = fractured_long_bone(spacing=(0.7, 0.7, 1.0), gap_mm=1.2,
                                 translation_mm=(2.5, 1.5 - seed, 0.0),
                                 angulation_deg=8.0 + seed, noise_sd=20.0,
                                 body_radius_mm=30.0, fracture_plane_normal=(0.4, -0.1, -1.0),
                                 seed=seed, length_mm=100.0, fracture_position_mm=50.0,
                                 blur_sigma_mm=0.4, supersample=2)
        f = ph.truth.fractures[0]
        u, c = np.asarray(f.proximal_axis_ras), np.asarray(f.center_ras)
        return (ph.image, ph.labels, [c - 25 * u, c + 25 * u], f.transverse_displacement_mm,
                f.angulation_deg)
    ph = intact_long_bone(spacing=(0.7, 0.7, 1.0), body_radius_mm=30.0, length_mm=100.0,
                          seed=seed, noise_sd=20.0, supersample=2)
    u, c = np.asarray(ph.truth.shaft_axis_ras), np.asarray(ph.truth.shaft_center_ras)
    motion = (dict(roughness_mm=2.0, translation_ras=(1.5, 1.2 * (seed - 1), 0.2),
                   angulation_deg=4.0, line_mm=0.6) if kind == "touching"
              else dict(roughness_mm=1.0, line_mm=0.4))
    image, truth = break_bone(ph.image, ph.labels > 0, c, u + np.array([0.3, 0.1 * seed, 0.0]),
                              seed=10 + seed, **motion)
    return (image, truth.labels, [c - 25 * u, c + 25 * u], truth.displacement_mm,
            truth.angulation_deg)


def real_case(patient: str):
    """The largest bone of a sarcoma CT crop broken across its long axis, or None."""
    from scipy import ndimage

    from mskai.fracture.alignment import principal_axis, voxel_points_ras
    from mskai.fracture.fragments import label_components
    from mskai.image import read_image
    from mskai.segmentation.bone_ct import segment_bone_ct
    from phantoms.touching_fracture import break_bone

    image = read_image(STS / patient / "CT_image.nii.gz")
    comps = label_components(segment_bone_ct(image), image, 5.0)
    if comps.max() == 0:
        return None
    bone = ndimage.binary_fill_holes(comps == 1)
    axis = principal_axis(voxel_points_ras(bone, image))
    image, truth = break_bone(image, bone, axis.centroid_ras,
                              axis.direction_ras + np.array([0.6, 0.3, 0.0]), roughness_mm=2.0,
                              translation_ras=(0.8, -0.6, 0.0), angulation_deg=3.0,
                              line_mm=1.0, noise_sd=0.0, blur_mm=0.0, seed=7)
    if min(np.count_nonzero(truth.labels == n) for n in (1, 2)) < 2000:
        return None
    return image, truth.labels, deepest_points(truth.labels, image), \
        truth.displacement_mm, truth.angulation_deg


def deepest_points(labels: np.ndarray, image) -> list[np.ndarray]:
    """One click (RAS) per fragment 1..n, at its deepest voxel."""
    from scipy import ndimage

    out = []
    for n in range(1, int(labels.max()) + 1):  # the image border counts as outside
        depth = ndimage.distance_transform_edt(np.pad(labels == n, 1),
                                               sampling=tuple(reversed(image.spacing)))
        kji = np.array(np.unravel_index(int(np.argmax(depth)), depth.shape)) - 1
        out.append(image.index_to_ras(np.asarray(kji[::-1], dtype=float)))
    return out


def automatic(image, bone: np.ndarray, landscape: np.ndarray | None = None) -> np.ndarray:
    """The product's automatic split of ``bone``: at the fractures the default detector
    reports on it (reduced valley candidates scoring at least ``MIN_SCORE``), else along the
    landscape alone (:func:`mskai.fracture.guided_split.automatic_fragments`)."""
    from mskai.fracture.guided_split import automatic_fragments
    from mskai.fracture.valley_reducer import reduced_valley_candidates
    from mskai.tasks.fracture import MIN_SCORE

    reported = [c for c in reduced_valley_candidates(image, bone) if c.score >= MIN_SCORE]
    return automatic_fragments(image, bone, reported, landscape)


def evaluate(image, truth: np.ndarray, clicks, displacement: float, angulation: float) -> dict:
    from mskai.fracture.fragment_split import seeds_from_ras, split_bone, split_from_seeds
    from mskai.fracture.split_alignment import split_alignment
    from mskai.segmentation.bone_ct import segment_bone_ct
    from phantoms.touching_fracture import dice, matched_dice

    row = {}
    hu = segment_bone_ct(image)
    row["bone_dice"] = dice(hu, truth > 0)
    for name, bone in (("true", truth > 0), ("hu", hu)):
        row[f"auto_{name}"] = min(matched_dice(truth, automatic(image, bone)))
        if name == "true":
            row["landscape_true"] = min(matched_dice(truth, split_bone(image, bone)))
        seeds = seeds_from_ras(image, bone, clicks, max_snap_mm=5.0)
        clicked = split_from_seeds(image, bone, [s[None] for s in seeds])
        row[f"click_{name}"] = min(matched_dice(truth, clicked))
        if name == "true":
            al = split_alignment(clicked, image, 1, 2)
    row["disp_err"] = abs(al.displacement_mm - displacement) if al else float("nan")
    row["ang_err"] = abs(al.angulation_deg - angulation) if al else float("nan")
    return row


def main() -> None:
    _paths()
    rows = []
    for kind in ("touching", "hairline", "bridged"):
        for seed in (0, 1, 2):
            rows.append((f"phantom {kind} #{seed}", evaluate(*phantom_case(kind, seed))))
            print(rows[-1], flush=True)
    for patient in REAL:
        case = real_case(patient)
        if case is not None:
            rows.append((f"real CT {patient} touching", evaluate(*case)))
            print(rows[-1], flush=True)
    keys = ("auto_true", "landscape_true", "click_true", "auto_hu", "click_hu", "bone_dice",
            "disp_err", "ang_err")
    lines = ["| case | auto, true bone | landscape only, true bone | click, true bone | auto, "
             "HU bone | click, HU bone | HU bone Dice | displacement error mm | angulation "
             "error deg |", "|---|---|---|---|---|---|---|---|---|"]
    lines += [f"| {name} | " + " | ".join(f"{r[k]:.3f}" if "err" not in k else f"{r[k]:.2f}"
                                          for k in keys) + " |" for name, r in rows]
    for group in ("phantom", "real CT"):
        sel = [r for name, r in rows if name.startswith(group)]
        if sel:
            lines.append(f"| **{group}: mean / worst** | " + " | ".join(
                f"{np.nanmean([r[k] for r in sel]):.3f} / "
                f"{(np.nanmax if 'err' in k else np.nanmin)([r[k] for r in sel]):.3f}"
                for k in keys) + " |")
    table = "\n".join(lines)
    print(table)
    (HERE / "results_fragment_split.md").write_text(table + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
