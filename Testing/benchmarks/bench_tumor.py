"""TumorSeg benchmarks: click-to-result latency and tumour measurements."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from bench_case import Case

DATA = Path(__file__).resolve().parents[1] / "Data" / "sts_sarcoma"


def _crop_256x256x60():
    """A typical tumour crop: 256x256x60 at 0.98x0.98x3.27 mm with a noisy 30 mm lesion."""
    from mskai.interactive import Prompts
    from mskai.volume import Volume

    rng = np.random.default_rng(0)
    k, j, i = np.mgrid[0:60, 0:256, 0:256].astype(np.float32)
    r = np.sqrt(((i - 128) * 0.98) ** 2 + ((j - 128) * 0.98) ** 2 + ((k - 30) * 3.27) ** 2)
    image = np.where(r < 30, 60.0, 30.0) + rng.normal(0, 20, r.shape)
    volume = Volume(image.astype(np.float32), spacing=(0.98, 0.98, 3.27), modality="CT")
    centre = tuple(volume.index_to_ras([128, 128, 30]))
    lo, hi = volume.index_to_ras([0, 0, 0]), volume.index_to_ras([255, 255, 59])
    return volume, Prompts(positive_ras=[centre], roi_ras=(*lo, *hi))


def _click_ours(prepared) -> np.ndarray:
    """The first click on a newly loaded image (its crop is prepared in the timed call)."""
    from mskai.interactive import segment_from_prompts
    from mskai.interactive.segment import forget_prepared_crops

    forget_prepared_crops()
    volume, prompts = prepared
    return segment_from_prompts(volume, prompts)


def _click_confidence_connected(prepared) -> np.ndarray:
    """SimpleITK's ConfidenceConnected from the same click on the full-resolution crop."""
    import SimpleITK as sitk

    volume, prompts = prepared
    seed = tuple(int(round(v)) for v in volume.ras_to_index(prompts.positive_ras[0]))
    smooth = sitk.CurvatureFlow(volume.to_sitk(), timeStep=0.125, numberOfIterations=5)
    mask = sitk.ConfidenceConnected(smooth, seedList=[seed], numberOfIterations=3,
                                    multiplier=2.5, initialNeighborhoodRadius=2)
    return sitk.GetArrayFromImage(mask) > 0


def _refine_prepared():
    """The 256x256x60 crop, its classic first-click mask and a negative click at its edge."""
    from mskai.interactive import segment_from_prompts

    volume, prompts = _crop_256x256x60()
    mask = segment_from_prompts(volume, prompts)
    edge = tuple(volume.index_to_ras([128 + 36, 128, 30]))
    return volume, prompts.with_click(edge, positive=False), mask


def _refine_learned(prepared) -> np.ndarray:
    """A refinement click with the learned model (tumor_refine_unet)."""
    from mskai.interactive import segment_with_method

    volume, prompts, mask = prepared
    return segment_with_method(volume, prompts, current_mask=mask, method="learned")


def _refine_classic(prepared) -> np.ndarray:
    from mskai.interactive import segment_with_method

    volume, prompts, mask = prepared
    return segment_with_method(volume, prompts, current_mask=mask, method="classic")


def _sts_tumour():
    from mskai.image import read_image
    from mskai.labels import read_labels

    image = read_image(DATA / "STS_002_CT_image.nii.gz")
    mask = read_labels(DATA / "STS_002_CT_mask.nii.gz", image, {"tumor": 1})["tumor"]
    return image, mask


def _measure_ours(prepared) -> dict:
    from mskai.measure.recist import recist_axes
    from mskai.measure.shape import shape_measurements

    image, mask = prepared
    values = shape_measurements(mask, image, intensity=image.array)
    values.update(recist_axes(mask, image))
    return values


def _measure_pyradiomics(prepared) -> dict:
    """pyradiomics' shape class (volume, area, sphericity, diameters) on the same mask."""
    import logging

    import SimpleITK as sitk
    from radiomics import shape

    logging.getLogger("radiomics").setLevel(logging.ERROR)
    image, mask = prepared
    mask_img = sitk.GetImageFromArray(mask.astype(np.uint8))
    mask_img.CopyInformation(image.to_sitk())
    features = shape.RadiomicsShape(image.to_sitk(), mask_img)
    features.enableAllFeatures()
    return features.execute()


CASES = [
    Case("tumour click, 256x256x60 crop", _crop_256x256x60, _click_ours,
         _click_confidence_connected, "SimpleITK ConfidenceConnected"),
    Case("learned refinement click, 256x256x60 crop", _refine_prepared, _refine_learned,
         _refine_classic, "classic refinement click (mskai)"),
    Case("tumour measurements (STS_002 CT)", _sts_tumour, _measure_ours,
         _measure_pyradiomics, "pyradiomics shape"),
]
