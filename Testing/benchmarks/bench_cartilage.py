"""CartilageQuant benchmarks: thickness maps of all plates of the real 384x384x160 knee."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from bench_case import Case

KNEE = (Path(__file__).resolve().parents[1] / "Data" / "knee"
        / "SAG_3D_DESS_RIGHT_bones_cart_men_fib-label.nrrd")
PLATES = {"femoral_cartilage": (1, 5), "medial_tibial_cartilage": (2, 6),
          "lateral_tibial_cartilage": (3, 6), "patellar_cartilage": (4, 7)}


def _knee():
    from mskai.image import read_image

    return read_image(KNEE)


def _thickness_ours(volume) -> dict:
    """Both methods (nearest-neighbour and surface normal) for the four plates."""
    from mskai.measure.thickness import cartilage_thickness

    labels = volume.array
    out = {}
    for plate, (cart, bone) in PLATES.items():
        for method in ("nearest", "normal"):
            tmap = cartilage_thickness(labels == cart, labels == bone, volume, method=method)
            out[(plate, method)] = tmap.summary()["mean_thickness_mm"]
    return out


def _thickness_voxel_edt(volume) -> dict:
    """Classic voxel method: distance transform from bone over the whole grid, read at the
    articular surface voxels (twice, standing in for the two methods)."""
    from scipy import ndimage

    labels = volume.array
    sampling = tuple(reversed(volume.spacing))
    out = {}
    for plate, (cart, bone) in PLATES.items():
        for method in ("nearest", "normal"):
            dist = ndimage.distance_transform_edt(labels != bone, sampling=sampling)
            cartilage = labels == cart
            surface = cartilage & ~ndimage.binary_erosion(cartilage)
            out[(plate, method)] = float(np.mean(dist[surface & (labels == cart)]))
    return out


CASES = [
    Case("knee thickness maps, 4 plates x 2 methods (384x384x160)", _knee, _thickness_ours,
         _thickness_voxel_edt, "voxel EDT, full grid"),
]
