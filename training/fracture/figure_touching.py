"""Draw docs/images/fracture_touching.png: a touching-fragment fracture and its detection.

A held-out bone (largest HU bone component of test patient STS_001, 1x1x3.3 mm) broken by
:func:`mskai.phantoms.real_fracture.simulate_real_fracture` (kind ``touching``, seed 3, the
same case as ``Testing/test_fracture_surface.py``); panels on the reformatted plane through
the fracture centre: the CT with the true surface, the learned surface probability, and
the fragments split along it (:func:`mskai.fracture.fragment_split.split_bone` on
:func:`mskai.fracture.fracture_landscape.fracture_landscape`, when those modules exist).

Run: ``.venv/bin/python training/fracture/figure_touching.py``
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
OUT = REPO / "docs" / "images" / "fracture_touching.png"
PATIENT, KIND, SEED = "STS_001", "touching", 3


def case():
    sys.path.insert(0, str(HERE))
    import real_bones

    from mskai.phantoms.real_fracture import simulate_real_fracture

    image, bones = real_bones.load_patient(PATIENT)
    return simulate_real_fracture(image, bones[0].mask, KIND, seed=SEED)


def fragments_of(image, bone: np.ndarray) -> np.ndarray | None:
    try:
        from mskai.fracture.fracture_landscape import fracture_landscape
        from mskai.fracture.fragment_split import split_bone
    except ImportError:
        return None
    return split_bone(image, bone, fracture_landscape(image, bone))


def main() -> None:
    sys.path.insert(0, str(REPO / "MSKAIExtension"))
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import SimpleITK as sitk

    from mskai.fracture.surface_net import fracture_surface_probability
    from mskai.segmentation.bone_ct import segment_bone_ct

    sim = case()
    image = sim.image
    bone = segment_bone_ct(image)
    mask = image.with_array(bone.astype(np.uint8)).to_sitk()
    prob = sitk.GetArrayFromImage(fracture_surface_probability(image.to_sitk(), mask))
    frags = fragments_of(image, bone)
    centre = np.rint(image.ras_to_index(sim.centers_ras[0])).astype(int).reshape(3)
    # the in-plane array axis (i or j) most along the fracture normal stays in the picture
    normal_ijk = np.abs(np.linalg.inv(image.direction) @ (np.array([-1.0, -1.0, 1.0])
                                                           * _normal(sim)))
    cut_axis = 1 if normal_ijk[0] > normal_ijk[1] else 2  # array axis (k, j, i) to slice
    index = centre[::-1][cut_axis]

    def plane(a):
        return np.take(a, index, axis=cut_axis)

    sp = image.spacing[::-1]
    aspect = sp[0] / sp[2 if cut_axis == 1 else 1]
    ct = plane(np.asarray(image.array, dtype=float))
    panels = [("simulated CT (touching, 1x1x3.3 mm)", None),
              ("true fracture surface", plane(sim.surface)),
              ("learned surface probability (v1: no detector)", plane(prob))]
    if frags is not None:
        panels.append(("fragments split along it", plane(frags)))
    fig, axes = plt.subplots(1, len(panels), figsize=(3.2 * len(panels), 3.6))
    for ax, (title, overlay) in zip(axes, panels, strict=True):
        ax.imshow(ct, cmap="gray", vmin=-200, vmax=1500, origin="lower", aspect=aspect)
        if overlay is not None and overlay.dtype == bool:
            ax.contour(overlay, levels=[0.5], colors="red", linewidths=0.8)
        elif overlay is not None and "probability" in title:
            ax.imshow(np.ma.masked_less(overlay, 0.1), cmap="hot", vmin=0, vmax=1,
                      origin="lower", aspect=aspect, alpha=0.8)
        elif overlay is not None:
            ax.imshow(np.ma.masked_equal(overlay, 0), cmap="tab10", vmin=0, vmax=10,
                      origin="lower", aspect=aspect, alpha=0.5)
        ax.set_title(title, fontsize=8)
        ax.axis("off")
    fig.tight_layout()
    OUT.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(OUT, dpi=110)
    print(f"wrote {OUT}")


def _normal(sim) -> np.ndarray:
    """Normal (RAS) of the true surface: its direction of least spread."""
    kji = np.argwhere(sim.surface)
    pts = np.asarray(sim.image.index_to_ras(kji[:, ::-1].astype(float))).reshape(-1, 3)
    return np.linalg.eigh(np.cov((pts - pts.mean(axis=0)).T))[1][:, 0]


if __name__ == "__main__":
    main()
