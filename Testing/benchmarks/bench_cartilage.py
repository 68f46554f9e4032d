"""CartilageQuant benchmarks: thickness maps of all plates of the real 384x384x160 knee, and
``mskai cartilage`` end to end on a 512x512x80 DESS-like knee (0.31x0.31x1.5 mm, sagittal).

The DESS-like volume is the real pymskt knee label map resampled onto a typical clinical
3D DESS grid, with DESS-like relative signal per tissue (bright cartilage and joint fluid,
dark bone marrow and menisci), a light blur and Rician-like noise, stored as int16.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from bench_case import Case

KNEE = (Path(__file__).resolve().parents[1] / "Data" / "knee"
        / "SAG_3D_DESS_RIGHT_bones_cart_men_fib-label.nrrd")
PLATES = {"femoral_cartilage": (1, 5), "medial_tibial_cartilage": (2, 6),
          "lateral_tibial_cartilage": (3, 6), "patellar_cartilage": (4, 7)}


DESS_SHAPE_KJI = (80, 512, 512)
DESS_SPACING = (0.3125, 0.3125, 1.5)  # mm, i j k (k: the sagittal slice direction)
# Relative DESS signal per pymskt label: background, 4 cartilages, 4 bones, 2 menisci.
DESS_SIGNAL = np.array([0.30, 0.60, 0.60, 0.60, 0.60, 0.15, 0.15, 0.15, 0.15, 0.06, 0.06],
                       dtype=np.float32)
DESS_FLUID, DESS_FLUID_MM, DESS_NOISE = 0.9, 1.0, 0.03


def dess_like_knee(shape_kji: tuple[int, int, int] = DESS_SHAPE_KJI,
                   spacing: tuple[float, float, float] = DESS_SPACING):
    """``(image, labels)`` Volumes on the 512x512x80 DESS grid (see the module docstring);
    ``shape_kji`` / ``spacing`` (i, j, k mm) give a coarser grid of the same kind."""
    import SimpleITK as sitk
    from scipy import ndimage

    from mskai.image import sitk_to_volume

    ref = sitk.ReadImage(str(KNEE))
    size_ijk = shape_kji[::-1]
    direction = np.asarray(ref.GetDirection()).reshape(3, 3)
    centre = ref.TransformContinuousIndexToPhysicalPoint(
        [(n - 1) / 2 for n in ref.GetSize()])
    half = (np.asarray(size_ijk) - 1) / 2 * np.asarray(spacing)
    origin = np.asarray(centre) - direction @ half
    labels = sitk.Resample(ref, size_ijk, sitk.Transform(), sitk.sitkNearestNeighbor,
                           origin.tolist(), spacing, ref.GetDirection(), 0,
                           sitk.sitkUInt8)
    label_volume = sitk_to_volume(labels)
    array = label_volume.array
    sampling = tuple(reversed(spacing))
    near = ndimage.distance_transform_edt(~np.isin(array, [1, 2, 3, 4]), sampling=sampling)
    image = DESS_SIGNAL[array]
    image[(array == 0) & (near <= DESS_FLUID_MM)] = DESS_FLUID
    image = ndimage.gaussian_filter(image, 0.3 / np.asarray(sampling))
    rng = np.random.default_rng(0)
    real = image + rng.normal(0, DESS_NOISE, image.shape).astype(np.float32)
    imag = rng.normal(0, DESS_NOISE, image.shape).astype(np.float32)
    signal = np.sqrt(real * real + imag * imag) * 1000.0
    image_volume = label_volume.with_array(signal.astype(np.int16), modality="MR")
    return image_volume, label_volume


def _knee():
    from mskai.image import read_image

    return read_image(KNEE)


def _thickness_ours(volume) -> dict:
    """Both methods (nearest-neighbour and surface normal) for the four plates, as
    ``mskai cartilage`` computes them (one surface extraction per plate)."""
    from mskai.measure.thickness import cartilage_thickness_maps

    labels = volume.array
    out = {}
    for plate, (cart, bone) in PLATES.items():
        maps = cartilage_thickness_maps(labels == cart, labels == bone, volume)
        for method, tmap in maps.items():
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


DESS_LABEL_NAMES = ("femoral_cartilage=1,medial_tibial_cartilage=2,lateral_tibial_cartilage=3,"
                    "patellar_cartilage=4,femur=5,tibia=6,patella=7")


def _dess_files() -> dict:
    """The DESS-like image and its true labels as files in a temporary folder."""
    import tempfile

    from mskai.image import write_image

    folder = Path(tempfile.mkdtemp(prefix="mskai-bench-dess-"))
    image, labels = dess_like_knee()
    return {"image": write_image(image, folder / "dess.nrrd"),
            "labels": write_image(labels, folder / "dess_labels.nrrd"), "folder": folder}


def _cartilage_cli(files: dict, *extra: str) -> int:
    """One ``mskai cartilage`` call as on a new image: the mesh cache that the warm-up run
    filled with these very masks is emptied first (with it, the surfaces of the shape
    measurements, about 3 s here, were never timed)."""
    from mskai.cli import main
    from mskai.measure.mesh import clear_mesh_cache

    clear_mesh_cache()
    return main(["cartilage", str(files["image"]), "--out", str(files["folder"] / "out"),
                 "--overwrite", *extra])


def _end_to_end_model(files: dict) -> int:
    """``mskai cartilage IMAGE``: knee model, anatomical checks, measurements, output folder
    (exit 2 when the model's structures fail the checks: the folder is written all the same)."""
    return _cartilage_cli(files)


def _end_to_end_labels(files: dict) -> int:
    """``mskai cartilage IMAGE --labels TRUE``: the measurements and output folder alone."""
    return _cartilage_cli(files, "--labels", str(files["labels"]), "--label-names",
                          DESS_LABEL_NAMES)


CASES = [
    Case("knee thickness maps, 4 plates x 2 methods (384x384x160)", _knee, _thickness_ours,
         _thickness_voxel_edt, "voxel EDT, full grid"),
    Case("mskai cartilage end to end, knee model (512x512x80 DESS-like)", _dess_files,
         _end_to_end_model, _end_to_end_labels, "the same with --labels (no model)"),
]
