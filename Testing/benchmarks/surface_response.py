"""Does the learned fracture-surface probability respond to the fracture, or to anatomy?

For held-out bones (the largest HU bone component of test patients STS_001 and STS_008)
broken as touching, hairline and impacted fractures (seeds 3, 1, 2), the highest and the
95th-percentile probability over the TRUE surface voxels is compared with the same voxels
of the intact CT. A detector that sees the fracture reads clearly higher on the fractured
scan; equal values mean the network answers to where bone is, not to the fracture.

Run: ``nice -n 10 .venv/bin/python Testing/benchmarks/surface_response.py`` (3 min).
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "MSKAIExtension"))
DATA = REPO.parent / "shared" / "data" / "sts_sarcoma"
PATIENTS = ("STS_001", "STS_008")
CASES = (("touching", 3), ("hairline", 1), ("impacted", 2))


def probability(image, bone: np.ndarray, net) -> np.ndarray:
    import SimpleITK as sitk

    from mskai.fracture.surface_net import fracture_surface_probability

    mask = image.with_array(bone.astype(np.uint8)).to_sitk()
    return sitk.GetArrayFromImage(fracture_surface_probability(image.to_sitk(), mask, net=net))


def main() -> None:
    import torch
    from scipy import ndimage

    from mskai.fracture.surface_net import load_surface_net
    from mskai.image import read_image
    from mskai.phantoms.real_fracture import simulate_real_fracture
    from mskai.segmentation.bone_ct import segment_bone_ct

    torch.set_num_threads(1)
    net = load_surface_net()
    print("| patient | kind | max fractured | max intact | p95 fractured | p95 intact |")
    print("|---|---|---|---|---|---|")
    for patient in PATIENTS:
        image = read_image(DATA / patient / "CT_image.nii.gz")
        hu_bone = segment_bone_ct(image)
        comps, _ = ndimage.label(hu_bone, structure=np.ones((3, 3, 3)))
        bone = comps == np.bincount(comps.ravel())[1:].argmax() + 1
        intact = probability(image, hu_bone, net)
        for kind, seed in CASES:
            sim = simulate_real_fracture(image, bone, kind, seed=seed)
            broken = probability(sim.image, segment_bone_ct(sim.image), net)
            s = sim.surface
            print(f"| {patient} | {kind} | {broken[s].max():.2f} | {intact[s].max():.2f} | "
                  f"{np.percentile(broken[s], 95):.2f} | {np.percentile(intact[s], 95):.2f} |",
                  flush=True)


if __name__ == "__main__":
    main()
