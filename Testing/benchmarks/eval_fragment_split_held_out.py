"""Fragment Dice of the split on the FROC benchmark's held-out simulated fractures, per kind.

``python Testing/benchmarks/eval_fragment_split_held_out.py`` prints a Markdown table and
writes ``Testing/benchmarks/results_fragment_split_held_out.md`` (quoted in the README).

Cases: the 49 fractures of ``froc_real_fracture.py`` (the largest bone of TPTBox and of the
8 test sarcoma CTs, each kind once, seeds from 0; :mod:`mskai.phantoms.real_fracture`),
where the fracture lies anywhere in 30-70 % of the bone, not only across a shaft's middle as
in ``eval_fragment_split.py``. Truth: the simulation's fragments within the broken bone
(label 1, the unmoved piece, inside the bone's own mask; labels 2 and 3, the moved pieces).
Given the true bone mask, the click split has one click per fragment at its deepest voxel
(:func:`mskai.fracture.fragment_split.split_from_seeds` on its own reliefs,
:func:`mskai.fracture.fracture_landscape.click_reliefs`, and their vote); the automatic split is the
product's (:func:`eval_fragment_split.automatic`): the bone split at the fractures the
default detector reports on it, or along the landscape alone where it reports none;
``landscape`` is that landscape-only split (:func:`mskai.fracture.fragment_split.split_bone`)
everywhere, the automatic split before 2026-12-06; ``product`` is what a user gets from the CT
alone: the ``bone_fragment_N`` segments of ``run_fracture(image, split_touching=True)`` (HU
bone, fragments only at the fractures it reports; none reported scores 0). Per case the
worst fragment's Dice
(:func:`phantoms.touching_fracture.matched_dice`); per kind and over all, mean and worst.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]


def _paths() -> None:
    for path in (REPO / "MSKAIExtension", REPO / "Testing", HERE, REPO / "training" / "fracture"):
        if str(path) not in sys.path:
            sys.path.insert(0, str(path))


def truth_fragments(fragments: np.ndarray, bone: np.ndarray) -> np.ndarray:
    """The broken bone's fragments: the unmoved piece inside its mask, the moved ones whole."""
    return np.where(bone | (fragments >= 2), fragments, 0).astype(np.int32)


def sarcoma_case(data: Path, patient: str, kind: str, seed: int):
    """(image, truth fragments) of one simulated fracture of a sarcoma CT's largest HU bone
    component, read from ``data`` (../shared/data): one case of :func:`cases` for tests."""
    from scipy import ndimage

    from mskai.image import read_image
    from mskai.phantoms.real_fracture import simulate_real_fracture
    from mskai.segmentation.bone_ct import segment_bone_ct

    image = read_image(data / "sts_sarcoma" / patient / "CT_image.nii.gz")
    comps, _ = ndimage.label(segment_bone_ct(image), structure=np.ones((3, 3, 3)))
    bone = comps == np.bincount(comps.ravel())[1:].argmax() + 1
    sim = simulate_real_fracture(image, bone, kind, seed=seed)
    return sim.image, truth_fragments(sim.fragments, bone)


def deepest_clicks(image, truth: np.ndarray) -> list[np.ndarray]:
    """One click per truth fragment at its deepest voxel, on the true bone: the clicks
    :func:`split_from_seeds <mskai.fracture.fragment_split.split_from_seeds>` takes ((1, 3)
    voxel indices each)."""
    _paths()
    from eval_fragment_split import deepest_points

    from mskai.fracture.fragment_split import seeds_from_ras

    seeds = seeds_from_ras(image, truth > 0, deepest_points(truth, image), max_snap_mm=5.0)
    return [s[None] for s in seeds]


def sarcoma_click_case(data: Path, patient: str, kind: str, seed: int):
    """(image, truth fragments, clicks) of :func:`sarcoma_case`, with the clicks of
    :func:`deepest_clicks`."""
    image, truth = sarcoma_case(data, patient, kind, seed)
    return image, truth, deepest_clicks(image, truth)


def product_fragments(image) -> np.ndarray:
    """The fragment segments of ``run_fracture(image, split_touching=True)`` as one label
    map (``bone_fragment_N`` is label N)."""
    from mskai.fracture.fragments import fragment_number, is_fragment_id
    from mskai.tasks.fracture import run_fracture

    found = np.zeros(image.array.shape, dtype=np.int32)
    for seg in run_fracture(image, split_touching=True).segments:
        if is_fragment_id(seg.id):
            found[seg.mask] = fragment_number(seg.id)
    return found


def evaluate(image, truth: np.ndarray) -> dict[str, float]:
    """Worst-fragment Dice of the click, the automatic and the landscape-only split on the
    true bone, and of the product's fragments from the CT alone."""
    from eval_fragment_split import automatic

    from mskai.fracture.fracture_landscape import fracture_landscape
    from mskai.fracture.fragment_split import split_bone, split_from_seeds
    from phantoms.touching_fracture import matched_dice

    bone = truth > 0
    landscape = fracture_landscape(image, bone)
    clicked = split_from_seeds(image, bone, deepest_clicks(image, truth))  # its own reliefs
    return {"click": min(matched_dice(truth, clicked)),
            "auto": min(matched_dice(truth, automatic(image, bone, landscape))),
            "landscape": min(matched_dice(truth, split_bone(image, bone, landscape))),
            "product": min(matched_dice(truth, product_fragments(image)))}


def cases():
    """(patient, kind, image, truth fragments) of the FROC benchmark's fractures."""
    _paths()
    import real_bones
    from froc_real_fracture import SEED0

    for patient, kind, bone, sim in real_bones.broken_largest_bones(real_bones.split()["test"],
                                                                    SEED0):
        yield patient, kind, sim.image, truth_fragments(sim.fragments, bone.mask)


def main() -> None:
    _paths()
    rows = []
    for patient, kind, image, truth in cases():
        row = evaluate(image, truth)
        rows.append((patient, kind, row))
        print(patient, kind, {k: round(v, 3) for k, v in row.items()}, flush=True)
    kinds = sorted({k for _, k, _ in rows}, key=[k for _, k, _ in rows].index)
    lines = ["| kind | fractures | one click per fragment: mean / worst | automatic: mean / "
             "worst | landscape only: mean / worst | product from the CT: mean / worst | "
             "click >= 0.95 | automatic >= 0.90 | product >= 0.90 |",
             "|---|---|---|---|---|---|---|---|---|"]
    for kind in [*kinds, "all"]:
        sel = [r for _, k, r in rows if kind in ("all", k)]
        click, auto, land, product = (np.array([r[key] for r in sel])
                                      for key in ("click", "auto", "landscape", "product"))
        lines.append(f"| {kind} | {len(sel)} | {click.mean():.3f} / {click.min():.3f} | "
                     f"{auto.mean():.3f} / {auto.min():.3f} | "
                     f"{land.mean():.3f} / {land.min():.3f} | "
                     f"{product.mean():.3f} / {product.min():.3f} | "
                     f"{np.count_nonzero(click >= 0.95)} of {len(sel)} | "
                     f"{np.count_nonzero(auto >= 0.90)} of {len(sel)} | "
                     f"{np.count_nonzero(product >= 0.90)} of {len(sel)} |")
    lines += ["", "| case | kind | click | automatic | landscape only | product |",
              "|---|---|---|---|---|---|"]
    lines += [f"| {p} | {k} | {r['click']:.3f} | {r['auto']:.3f} | {r['landscape']:.3f} | "
              f"{r['product']:.3f} |" for p, k, r in rows]
    table = "\n".join(lines)
    print(table)
    (HERE / "results_fragment_split_held_out.md").write_text(table + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
