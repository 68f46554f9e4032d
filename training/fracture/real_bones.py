"""The real bones the fracture detector is trained and tested on, split by patient.

Bones:

- ``ts_example`` (one patient, 3 mm): every TotalSegmentator bone label (model output) of
  ``example_ct`` with at least ``MIN_BONE_ML``;
- ``sts_sarcoma`` (24 patients, 1x1x3.3 mm limb and pelvic crops; only STS_001-003 and
  STS_007-039 exist here, STS_004-006 and STS_040-051 are reserved and never read): the
  connected components of the HU bone mask (:func:`mskai.segmentation.bone_ct.segment_bone_ct`)
  of at least ``MIN_BONE_ML``, at most ``MAX_BONES_PER_SCAN`` largest;
- ``tptbox`` (one patient, 1.5 mm lumbar crop): the vertebra labels.

Split by patient (:func:`split`): every third sarcoma patient in sorted order (from the
first) and TPTBox are TEST patients; ts_example and the other sarcoma patients TRAIN. No bone
of a test patient is ever simulated for training. ``write_split`` stores the lists in
``training/fracture/split.json``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from itertools import count
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
DATA = REPO.parent / "shared" / "data"
STS = DATA / "sts_sarcoma"
RESERVED = {f"STS_{n:03d}" for n in (*range(4, 7), *range(40, 52))}
TS_BONE = [25, *range(26, 51), *range(69, 79), 91, *range(92, 117)]
MIN_BONE_ML = 3.0
MAX_BONES_PER_SCAN = 3
TEST_EVERY = 3


@dataclass
class Bone:
    patient: str
    name: str
    image: object  # mskai.volume.Volume
    mask: np.ndarray


def sarcoma_patients() -> list[str]:
    """Sarcoma patients with a CT, reserved ones excluded."""
    return sorted(p.parent.name for p in STS.glob("STS_*/CT_image.nii.gz")
                  if p.parent.name not in RESERVED)


def split() -> dict[str, list[str]]:
    """Patients per split (module docstring)."""
    sts = sarcoma_patients()
    test = [p for n, p in enumerate(sts) if n % TEST_EVERY == 0]
    train = [p for p in sts if p not in test]
    return {"train": ["ts_example", *train], "test": ["tptbox", *test]}


def write_split(path: Path = HERE / "split.json") -> dict[str, list[str]]:
    data = split()
    path.write_text(json.dumps({**data, "rule": __doc__.split("Split by patient")[1].strip()},
                               indent=1) + "\n", encoding="utf-8")
    return data


def load_patient(patient: str) -> tuple[object, list[Bone]]:
    """The intact CT of a patient and its bones."""
    if patient in RESERVED:
        raise ValueError(f"{patient} is reserved for independent evaluation")
    if patient == "ts_example":
        return _ts_example()
    if patient == "tptbox":
        return _tptbox()
    return _sarcoma(patient)


def bones_of(patients: list[str]) -> Iterator[Bone]:
    for patient in patients:
        yield from load_patient(patient)[1]


def broken(image, pairs: Iterable[tuple[Bone, str]],
           seeds: Iterator[int]) -> Iterator[tuple[Bone, str, int, object]]:
    """(bone, kind, seed, simulated fracture) for each (bone, kind) of ``pairs`` broken on
    ``image`` (:mod:`mskai.phantoms.real_fracture`) with the next seed of ``seeds``; a seed
    the simulator refuses (ValueError) is used up and skipped. The training scripts share it
    so that each draws its seeds the same way."""
    from mskai.phantoms.real_fracture import simulate_real_fracture

    for bone, kind in pairs:
        seed = next(seeds)
        try:
            sim = simulate_real_fracture(image, bone.mask, kind, seed=seed)
        except ValueError:
            continue
        yield bone, kind, seed, sim


def broken_largest_bones(patients: list[str], seed0: int) -> Iterator[tuple[str, str, Bone,
                                                                          object]]:
    """(patient, kind, bone, simulated fracture) for each patient's largest bone broken once
    per kind (:func:`broken`), seeds ``seed0 + 1``, ``+ 2``, ... in that order."""
    from mskai.phantoms.real_fracture import KINDS

    seeds = count(seed0 + 1)
    for patient in patients:
        _, bones = load_patient(patient)
        for bone, kind, _, sim in broken(bones[0].image, ((bones[0], k) for k in KINDS), seeds):
            yield patient, kind, bone, sim


def _labelled(patient: str, image, seg: np.ndarray, labels: list[int]) -> list[Bone]:
    ml = image.voxel_volume_mm3 / 1000.0
    counts = np.bincount(seg.ravel().astype(np.int64), minlength=max(labels) + 1)
    return [Bone(patient, f"label_{lab}", image, seg == lab) for lab in labels
            if counts[lab] * ml >= MIN_BONE_ML]


def _ts_example():
    from mskai.image import read_image

    image = read_image(DATA / "ts_example" / "example_ct.nii.gz")
    seg = read_image(DATA / "ts_example" / "example_seg_fast_force_split.nii.gz").array
    return image, _labelled("ts_example", image, seg, TS_BONE)


def _tptbox():
    from mskai.image import read_image

    folder = DATA / "tptbox_spine" / "sample_ct"
    image = read_image(folder / "sub-ct_label-22_ct.nii.gz")
    seg = read_image(folder / "sub-ct_seg-vert_label-22_msk.nii.gz").array
    return image, _labelled("tptbox", image, seg, sorted(int(v) for v in np.unique(seg) if v))


def hu_bones(image, patient: str) -> list[Bone]:
    """Largest components of the HU bone mask (module docstring)."""
    from scipy import ndimage

    from mskai.segmentation.bone_ct import segment_bone_ct

    comps, n = ndimage.label(segment_bone_ct(image), structure=np.ones((3, 3, 3)))
    counts = np.bincount(comps.ravel())[1:] * image.voxel_volume_mm3 / 1000.0
    order = [int(i) + 1 for i in np.argsort(-counts) if counts[i] >= MIN_BONE_ML]
    return [Bone(patient, f"component_{r}", image, comps == lab)
            for r, lab in enumerate(order[:MAX_BONES_PER_SCAN], start=1)]


def _sarcoma(patient: str):
    from mskai.image import read_image

    image = read_image(STS / patient / "CT_image.nii.gz")
    return image, hu_bones(image, patient)
