"""FractureDetect: bone on CT (or given segments), fragments, fracture candidates, alignment.

Pipeline: bone mask (:func:`mskai.segmentation.bone_ct.segment_bone_ct`, or the union of
the given segments) -> fragments (connected components; with ``bone_fragment_N`` segments
given, those) -> candidate fractures between fragments
(:func:`mskai.fracture.candidates.find_candidates`) -> the contract's ``fractures`` list
(candidates scoring >= ``min_score``) with displacement and angulation, all candidates
under ``fracture_candidates``, and shape measurements on every segment.

Candidates are searched on a grid of at most ``MAX_SEARCH_VOXELS`` (a stride of the
fragment labels; gaps narrower than two coarse voxels can then vanish, a warning says so).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from mskai.errors import CancelledError, InputError
from mskai.segments import STATUS_EDITED, Provenance, Result, Segment
from mskai.volume import Volume

MODULE = "FractureDetect"
MAX_SEARCH_VOXELS = 12_000_000
MIN_FRAGMENT_ML = 0.5


def run_fracture(image: Volume, labels: dict[str, np.ndarray] | None = None,
                 progress: Callable[[float, str], None] | None = None,
                 cancel: Callable[[], bool] | None = None, min_score: float = 0.5,
                 split_touching: bool = False) -> Result:
    """Segment (or take) bone, find fractures, measure (see the module docstring)."""
    report = progress or (lambda fraction, message: None)

    def step(fraction: float, message: str) -> None:
        if cancel is not None and cancel():
            raise CancelledError("fracture detection was cancelled")
        report(fraction, message)

    warnings: list[str] = []
    step(0.05, "bone")
    bone, fragments, method = _bone_and_fragments(image, labels, warnings)
    step(0.4, "fragments")
    if fragments is None:
        fragments = _components(bone, image, split_touching)
    step(0.6, "fracture candidates")
    candidates = _candidates(fragments, image, warnings)
    result = Result(MODULE, image, Provenance(method=method), warnings=warnings)
    status = STATUS_EDITED if labels is not None else "ai_result"
    result.segments.append(Segment("bone", bone, 1, status=status))
    fractures = [c for c in candidates if c.score >= min_score]
    _name_fragments(result, fractures, fragments, labels, status)
    step(0.8, "measurements")
    measure_fracture_result(result)
    result.measurements["fractures"] = [c.as_contract() for c in fractures]
    result.measurements["fracture_candidates"] = [c.as_contract() for c in candidates]
    step(1.0, "done")
    return result


def measure_fracture_result(result: Result) -> None:
    """Shape measurements on every segment; the same code runs after a manual edit."""
    from mskai.measure.shape import shape_measurements

    for seg in result.segments:
        seg.measurements.update(shape_measurements(seg.mask, result.image))


def _bone_and_fragments(image: Volume, labels: dict[str, np.ndarray] | None,
                        warnings: list[str]) -> tuple[np.ndarray, np.ndarray | None, str]:
    """Bone mask, fragment label map when the user gave fragments, and the method."""
    if labels is not None:
        return _given(labels)
    from mskai.segmentation.bone_ct import segment_bone_ct

    bone = segment_bone_ct(image, warnings=warnings)
    if not bone.any():
        raise InputError("no bone found in the image (nothing above 300 HU connected to "
                         "bone-like tissue); give a CT that contains bone")
    return bone, None, "HU hysteresis threshold bone segmentation + fragment analysis"


def _given(labels: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray | None, str]:
    from mskai.labels import canonical_id

    ids = {canonical_id(k): np.asarray(v, dtype=bool) for k, v in labels.items()}
    frag_ids = sorted((k for k in ids if k.startswith("bone_fragment_")),
                      key=lambda k: int(k.rsplit("_", 1)[1]))
    if "bone" not in ids and not frag_ids:
        raise InputError("the given labels have neither a 'bone' nor 'bone_fragment_N' "
                         "segment; name them with --label-names bone=1 or "
                         "bone_fragment_1=1,bone_fragment_2=2")
    bone = np.zeros(next(iter(ids.values())).shape, dtype=bool)
    for key in ["bone", *frag_ids]:
        if key in ids:
            bone |= ids[key]
    if not bone.any():
        raise InputError("the given bone segments are empty; check the label values")
    if not frag_ids:
        return bone, None, "given segmentation"
    fragments = np.zeros(bone.shape, dtype=np.int32)
    for n, key in enumerate(frag_ids, start=1):
        fragments[ids[key] & (fragments == 0)] = n
    return bone, fragments, "given segmentation"


def _components(bone: np.ndarray, image: Volume, split_touching: bool) -> np.ndarray:
    from mskai.fracture.fragments import label_components, split_at_necks

    comps = label_components(bone, image, MIN_FRAGMENT_ML)
    if not split_touching:
        return comps
    out = np.zeros_like(comps)
    for n in range(1, int(comps.max()) + 1):
        parts = split_at_necks(comps == n, image)
        out[parts > 0] = parts[parts > 0] + out.max()
    return out


def _candidates(fragments: np.ndarray, image: Volume, warnings: list[str]):
    from mskai.fracture.candidates import find_candidates
    from mskai.tasks.crop import padded_bbox

    if int(fragments.max()) < 2:
        return []
    box = padded_bbox(fragments > 0, image, pad_mm=10.0)
    sub, sub_image = fragments[box], image.crop(box)
    stride = 1
    while sub[::stride, ::stride, ::stride].size > MAX_SEARCH_VOXELS:
        stride += 1
    if stride > 1:
        sub = sub[::stride, ::stride, ::stride]
        sub_image = _strided(sub_image, stride, sub)
        warnings.append(f"fracture candidates were searched on every {stride}th voxel; gaps "
                        f"narrower than {2 * stride * min(image.spacing):.1f} mm may be missed")
    return find_candidates(sub, sub_image)


def _strided(volume: Volume, stride: int, array: np.ndarray) -> Volume:
    from dataclasses import replace

    spacing = tuple(s * stride for s in volume.spacing)
    return replace(volume, array=array, spacing=spacing)


def _name_fragments(result: Result, fractures, fragments: np.ndarray,
                    labels: dict[str, np.ndarray] | None, status: str) -> None:
    """Segments ``bone_fragment_N`` for every fragment of a fractured bone."""
    from mskai.fracture.fragments import fragment_id

    names: dict[int, str] = {}
    for c in fractures:
        for lab in c.labels:
            names.setdefault(int(lab), fragment_id(len(names) + 1))
        c.fragments = [names[int(lab)] for lab in c.labels]
    given = labels is not None and any(k.startswith("bone_fragment_") for k in labels)
    for lab, seg_id in sorted(names.items(), key=lambda kv: kv[1]):
        seg_id = fragment_id(lab) if given else seg_id
        result.segments.append(Segment(seg_id, fragments == lab,
                                       len(result.segments) + 1, status=status))
    if given:
        for c in fractures:
            c.fragments = [fragment_id(int(lab)) for lab in c.labels]
