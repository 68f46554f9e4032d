"""FractureDetect: bone on CT (or given segments), fragments, fracture candidates, alignment.

Pipeline: bone mask (the learned ``bone_seg`` model of the manifest when it verifies and
is marked preferred over HU, see :mod:`mskai.segmentation.bone_model`, else
:func:`mskai.segmentation.bone_ct.segment_bone_ct`; or the union of the given segments)
-> fragments (connected components of two HU masks, ``FRAGMENT_HU``; with
``bone_fragment_N`` segments given, those)
-> candidate fractures between fragments (:func:`mskai.fracture.candidates.find_candidates`;
scored by the learned ``fracture_score`` model of :mod:`mskai.fracture.scorer` when it
verifies and the fragments were not given by the user, else by the documented heuristic)
-> merged with the HU-valley candidates rescored by the learned false-positive reducer
(:mod:`mskai.fracture.valley_reducer`) on an automatically segmented CT, by default: its
entry is marked preferred (``output.preferred_over_components``). On 49 held-out simulated
fractures the merge finds 0.41 at score 0.5 (the components alone 0.00) with 0.11 false
positives per intact test CT (components 0.00), once the component scorer reports at its
own operating threshold (0.943, chosen on the intact TRAINING CTs; see :func:`rescore`).
Each candidate says which detector found it (``source`` in measurements.json:
:data:`mskai.fracture.candidates.SOURCE_NAME_COMPONENTS`, ``SOURCE_NAME_VALLEY``, ...)
-> the contract's ``fractures`` list
(candidates scoring >= ``min_score``) with displacement and angulation, all candidates
under ``fracture_candidates``, and shape measurements on every segment.

Fragments of an automatically segmented CT come from two label maps, and candidates of
both are pooled (one within ``DEDUPE_MM`` of a better-scoring one is dropped):

- the components of a stricter HU mask (hysteresis 150/250 HU instead of 110/300): the
  110 HU threshold that is best for bone Dice lets partial-volume voxels bridge 4-9 mm
  gaps at 3 mm voxels, and the 300 HU seed misses faint rib fragments. On simulated
  fractures of the TRAINING bones (left ribs, left femur; 21 scans) it raised the share
  with a candidate within 10 mm from 8 to 14 (4 instead of 5 candidates on the intact scan);
- the components of the bone mask itself, which keep fragments the stricter mask thins
  away (on the held-out bones the stricter mask alone found 9 of 21, the bone mask 11).

The ``bone`` segment keeps 110/300 (Dice 0.908 vs 0.873 for 150/250).

A CT without bone is bad input (:class:`InputError`, exit 2 on the command line), not an
empty result: the contract reads ``fractures: []`` as "bone looked at and intact", and a
script checking only that list must not take a scan of the wrong region, or of a soft-tissue
specimen, for an intact bone. Non-CT images (no air below -500 HU, or modality not CT) are
refused the same way by :func:`mskai.segmentation.bone_ct.require_ct`. So is a CT in which
bone fills the field of view (:func:`require_surroundings`, e.g. a crop taken inside a
bone): without soft tissue or air around it the bone has no surface to segment, and
fragments and fracture gaps cannot be told apart.

Candidates are searched on a grid of at most ``MAX_SEARCH_VOXELS`` (a stride of the
fragment labels; gaps narrower than two coarse voxels can then vanish, a warning says so).
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Executor, Future
from typing import TYPE_CHECKING

import numpy as np

from mskai.background import second_thread
from mskai.errors import CancelledError, InputError
from mskai.segments import STATUS_AI, STATUS_EDITED, Provenance, Result, Segment
from mskai.terminology import BONE, BONE_FRAGMENT_PREFIX
from mskai.volume import Volume

if TYPE_CHECKING:
    from mskai.models.manifest import ModelEntry
    from mskai.tasks.fracture_fragments import FragmentSeeds

MODULE = "FractureDetect"
MAX_SEARCH_VOXELS = 12_000_000
MIN_FRAGMENT_ML = 0.5
FRAGMENT_HU = (150.0, 250.0)  # (low, high) hysteresis thresholds of the stricter mask
DEDUPE_MM = 10.0
MIN_SCORE = 0.5  # candidates at or above are reported as fractures
SAME_FRACTURE_MM = 5.0  # a valley this close to both fragments of a better pair is its line
MAX_BONE_FRACTION = 0.9  # of the image's voxels
MAX_BONE_CUT = 0.5  # of the bone's surface on the image border, with >= half the image bone


def run_fracture(image: Volume, labels: dict[str, np.ndarray] | None = None,
                 progress: Callable[[float, str], None] | None = None,
                 cancel: Callable[[], bool] | None = None, min_score: float = MIN_SCORE,
                 split_touching: bool = False, use_models: bool = True,
                 learned_surface: bool | None = None,
                 fragment_seeds: FragmentSeeds | None = None,
                 valley_reducer: bool | None = None) -> Result:
    """Segment (or take) bone, find fractures, measure (see the module docstring).

    ``use_models=False`` forces the classical path (HU bone, heuristic score) even when
    the learned models verify. ``learned_surface`` adds the candidates of the learned
    fracture-surface model (:mod:`mskai.fracture.surface_candidates`): None = when its
    manifest entry verifies and is marked preferred by the held-out measurement.
    ``valley_reducer`` adds the HU-valley candidates rescored by the learned false-positive
    reducer (:mod:`mskai.fracture.valley_reducer`) on an automatically segmented CT, with
    the same rule (None = when its entry verifies and is marked preferred, as v1 is; False
    = the component candidates alone).
    ``fragment_seeds`` (clicks, one per fragment) split the bone into those fragments
    (:mod:`mskai.tasks.fracture_fragments`) instead of finding fragments automatically.
    ``split_touching`` splits the bone at every reported fracture line without fragments
    (:mod:`mskai.fracture.guided_split`), with displacement and angulation measured on
    those fragments. It adds no candidates: the list of fractures is the default one.
    Splitting first and scoring the pieces (at necks, along the fracture landscape) gave
    3.3 false fractures per intact test CT against 0.11
    (``Testing/benchmarks/results_split_touching_intact.md``).
    """
    report = progress or (lambda fraction, message: None)

    def step(fraction: float, message: str) -> None:
        if cancel is not None and cancel():
            raise CancelledError("fracture detection was cancelled")
        report(fraction, message)

    warnings: list[str] = []
    step(0.05, BONE)
    bone_entry = _entry(BONE, use_models and labels is None)
    shared: dict = {}  # bone_ct steps common to the HU masks of this image
    bone, fragments, method = _bone_and_fragments(image, labels, warnings, bone_entry, shared)
    require_surroundings(bone, given=labels is not None)
    step(0.4, "fragments")
    if fragment_seeds is not None:
        from mskai.tasks.fracture_fragments import clicked_fragments

        fragments = clicked_fragments(image, bone, fragment_seeds)
    given_fragments = fragments is not None
    valley = use_models and labels is None and valley_reducer is not False and (
        fragment_seeds is None)
    from mskai.measure.shape import shape_measurements

    with second_thread() as background:
        valley_job = _start_valley(background, image, bone, valley,
                                   preferred_only=valley_reducer is None)
        bone_shape = background.submit(shape_measurements, bone, image)
        maps = [fragments] if given_fragments else _fragment_maps(
            image, bone, labels, learned_bone=bone_entry is not None, shared=shared)
        shared.clear()  # frees the smoothed CT and body mask
        step(0.6, "fracture candidates")
        scorer = _entry("score", use_models and not given_fragments)
        candidates = _pooled_candidates(maps, image, warnings, scorer)
        candidates, surface = _with_learned_surface(candidates, image, bone, use_models and (
            learned_surface is not False) and fragment_seeds is None,
            preferred_only=learned_surface is None)
        candidates = _with_valley(candidates, valley_job, image, maps)
    reducer = valley_job[0] if valley_job is not None else None
    used = [e for e in (scorer, surface, reducer) if e is not None]  # the candidate models run
    if valley:
        warnings.extend(line_detection_warning(image))
    if given_fragments and (split_touching or fragment_seeds is not None):
        _touching_alignment(candidates, maps, image, {0})  # clicked or given: may touch
    elif split_touching:
        step(0.7, "fragments at the reported fractures")
        guided = _split_at_reported(candidates, maps, image, bone, min_score)
        _touching_alignment(candidates, maps, image, guided, keep_position=True)
    model = bone_entry
    provenance = Provenance(method=with_candidate_models(method, used),
                            model_id=model.id if model else None,
                            model_version=model.version if model else None,
                            model_sha256=model.sha256 if model else None)
    result = Result(MODULE, image, provenance, warnings=warnings)
    status = STATUS_EDITED if labels is not None else STATUS_AI
    result.segments.append(Segment(BONE, bone, 1, status=status))
    fractures = [c for c in candidates if c.score >= min_score]
    if fragment_seeds is None:
        _name_fragments(result, fractures, maps, labels, status)
    else:
        from mskai.tasks.fracture_fragments import name_clicked_fragments

        name_clicked_fragments(result, fractures, maps[0], status)
    step(0.8, "measurements")
    measure_fracture_result(result, {BONE: bone_shape.result()})
    result.measurements["fractures"] = [c.as_contract() for c in fractures]
    result.measurements["fracture_candidates"] = [c.as_contract() for c in candidates]
    step(1.0, "done")
    return result


def line_detection_warning(image: Volume) -> list[str]:
    """A warning when the in-plane pixels are too coarse for the fracture-line (HU valley)
    detector to find anything (:func:`mskai.fracture.valley_candidates.reaches_rim`): a
    user must not read an empty list there as "no touching fracture"."""
    from mskai.fracture.slice_dip import measures_slices
    from mskai.fracture.valley_candidates import LINE_PIXEL_MM, reaches_rim

    if reaches_rim(image.spacing):
        return []
    pixel = min(image.spacing[0], image.spacing[1])
    across = " (only as lines dark within one thick slice)" if measures_slices(image) else ""
    return [f"the in-plane pixels are {pixel:.2f} mm, coarser than the {LINE_PIXEL_MM:.2f} mm "
            "the fracture-line detector needs, so fractures whose fragments touch (undisplaced,"
            f" impacted, hairline) were not looked for{across}; only fragments parted by a gap "
            "were. Reconstruct the CT with finer in-plane pixels to look for them"]


def require_surroundings(bone: np.ndarray, given: bool = False) -> None:
    """Refuse a bone mask that fills the image: no soft tissue or air around it.

    Refused: bone in ``MAX_BONE_FRACTION`` of the voxels, or in half of them when most
    (``MAX_BONE_CUT``) of the bone's surface is the image border (a crop inside a bone).
    The real CTs of the test data have at most 17 % bone and 34 % of its surface cut.
    """
    fraction = float(np.count_nonzero(bone)) / max(bone.size, 1)
    if fraction < 0.5:
        return
    cut = border_share(bone)
    if fraction < MAX_BONE_FRACTION and cut < MAX_BONE_CUT:
        return
    what = (f"{fraction:.0%} of the image, and {cut:.0%} of the bone's surface is the image "
            "border")
    if given:
        raise InputError(f"the given bone segments cover {what}; check the label values given "
                         "to --label-names (is the background labelled?)")
    raise InputError(f"bone fills {what}, so there is no soft tissue or air around it to define "
                     "it; give a CT that includes the bone's surroundings, not a crop inside "
                     "the bone")


def border_share(mask: np.ndarray) -> float:
    """Share of the mask's surface voxels that lie on the image border (cut by the crop)."""
    from scipy import ndimage

    border = np.zeros(mask.shape, dtype=bool)
    for axis in range(3):
        index = [slice(None)] * 3
        for end in (0, -1):
            index[axis] = end
            border[tuple(index)] = True
    on_border = int(np.count_nonzero(mask & border))
    inside = int(np.count_nonzero(mask & ~ndimage.binary_erosion(mask, border_value=1)))
    return on_border / max(on_border + inside, 1)


def measure_fracture_result(result: Result, taken: dict[str, dict] | None = None) -> None:
    """Shape measurements on every segment; the same code runs after a manual edit.
    ``taken``: measurements of unchanged segments already taken, by segment id (the bone's,
    taken on the second thread while the fractures are found)."""
    from mskai.measure.shape import shape_measurements

    taken = taken or {}
    for seg in result.segments:
        values = taken.get(seg.id)
        seg.measurements.update(values if values is not None
                                else shape_measurements(seg.mask, result.image))


def _fragment_maps(image: Volume, bone: np.ndarray, labels: dict[str, np.ndarray] | None,
                   learned_bone: bool = False, shared: dict | None = None) -> list[np.ndarray]:
    """Fragment label maps: given bone alone, else the stricter HU mask and the bone mask.

    The HU bone mask is taken without its surface trimming here: trimming at 3 mm parts
    thin ribs into pieces that look like fragments (a false fracture on an intact rib).
    """
    if labels is not None:
        return [_components(bone, image)]
    from mskai.segmentation.bone_ct import segment_bone_ct

    low, high = FRAGMENT_HU
    strict = segment_bone_ct(image, low_hu=low, high_hu=high, refine=False, shared=shared)
    connected = bone if learned_bone else segment_bone_ct(image, refine=False, shared=shared)
    return [_components(strict, image), _components(connected, image)]


def _split_at_reported(candidates: list, maps: list[np.ndarray], image: Volume,
                       bone: np.ndarray, min_score: float) -> set[int]:
    """With ``split_touching``: the bone split at the reported fractures that have no
    fragments yet (line regions; :mod:`mskai.fracture.guided_split`), appended to ``maps``;
    each fracture used gets its two fragments. The new map's index, or none."""
    from mskai.fracture.guided_split import split_at_fractures

    lines = [c for c in candidates if c.score >= min_score and not c.labels]
    guided = split_at_fractures(image, bone, lines) if lines else None
    if guided is None or not guided.pairs:
        return set()
    maps.append(guided.labels)
    for c, pair in guided.pairs:
        c.labels, c.fragment_map = pair, len(maps) - 1
    return {len(maps) - 1}


def _touching_alignment(candidates: list, maps: list[np.ndarray], image: Volume,
                        sources: set[int], keep_position: bool = False) -> None:
    """Candidates of the maps in ``sources`` (clicked or given fragments, the split at
    reported fractures) measured on their split fragments where they touch
    (:mod:`mskai.tasks.fracture_fragments`). ``keep_position``: a fracture keeps the
    position its detector found instead of the split's centre, which lies on the first
    fragment's axis (off the line in a flat bone; on the 49 held-out simulated fractures,
    moving it lost 4 of the 49 at 1 false positive per scan)."""
    from mskai.tasks.fracture_fragments import touching_alignment

    for source in sorted(sources):
        touching_alignment(candidates, maps[source], image, {source}, keep_position)


def _pooled_candidates(maps: list[np.ndarray], image: Volume, warnings: list[str],
                       scorer_entry=None) -> list:
    """Candidates of every map, best first, without near-duplicates (``DEDUPE_MM``)."""
    pooled = []
    for source, fragments in enumerate(maps):
        for c in _candidates(fragments, image, warnings, scorer_entry):
            c.source = source
            pooled.append(c)
    return dedupe(sorted(pooled, key=lambda c: -c.score))


def with_candidate_models(method: str, used: list) -> str:
    """The method, naming the fracture-candidate models that ran: ``provenance.model`` holds
    one model (the bone model), and the candidates may come from up to three more."""
    if not used:
        return method
    return f"{method}; fracture candidates from {', '.join(f'{e.id} {e.version}' for e in used)}"


def _with_learned_surface(candidates: list, image: Volume, bone: np.ndarray, wanted: bool,
                          preferred_only: bool) -> tuple[list, ModelEntry | None]:
    """Component candidates merged with the learned surface model's, and its entry (None
    when not wanted or when no entry verifies: the candidates unchanged)."""
    if not wanted:
        return candidates, None
    from mskai.fracture.surface_candidates import learned_candidates, merge
    from mskai.fracture.surface_net import surface_model_entry

    entry = surface_model_entry(preferred_only=preferred_only)
    if entry is None:
        return candidates, None
    return merge(candidates, learned_candidates(image, bone, entry), DEDUPE_MM), entry


def _start_valley(background: Executor, image: Volume, bone: np.ndarray,
                  wanted: bool, preferred_only: bool) -> tuple[ModelEntry, Future] | None:
    """The reduced HU-valley candidates, started on the second thread: they need only the
    bone, so they run while the fragments are found. With the reducer's entry; None when not
    wanted or when no entry verifies."""
    if not wanted:
        return None
    from mskai.fracture.valley_reducer import reduced_valley_candidates, reducer_entry

    entry = reducer_entry(preferred_only=preferred_only)
    if entry is None:
        return None
    return entry, background.submit(reduced_valley_candidates, image, bone, entry)


def _with_valley(candidates: list, job: tuple[ModelEntry, Future] | None, image: Volume,
                 maps: list[np.ndarray] | None = None) -> list:
    """Candidates merged with the reduced HU-valley candidates of ``job``
    (:func:`_start_valley`), without valley candidates on the line of a better component
    candidate (:func:`off_component_lines`)."""
    if job is None:
        return candidates
    from mskai.fracture.surface_candidates import merge

    valley = job[1].result()
    if maps:
        valley = off_component_lines(valley, candidates, maps, image)
    return merge(candidates, valley, DEDUPE_MM)


def off_component_lines(valley: list, components: list, maps: list[np.ndarray],
                        image: Volume, radius_mm: float = SAME_FRACTURE_MM) -> list:
    """Valley candidates that do not lie on the fracture of a better-scoring component
    candidate: one with both of that pair's fragments within ``radius_mm`` is the same
    fracture line. A wide gap across a long bone gave both a component candidate at its
    narrowest point and a valley region 11.5 mm away on the same gap (more than
    ``DEDUPE_MM``): two fractures reported for one.
    """
    kept = []
    for v in valley:
        near = _labels_near(v.position_ras, maps, image, radius_mm)
        if not any(c.score >= v.score and 0 <= c.source < len(near)
                   and set(map(int, c.labels)) <= near[c.source] for c in components):
            kept.append(v)
    return kept


def _labels_near(position_ras: np.ndarray, maps: list[np.ndarray], image: Volume,
                 radius_mm: float) -> list[set[int]]:
    """Per fragment map, the labels within ``radius_mm`` of a point."""
    ijk = np.asarray(image.ras_to_index(np.asarray(position_ras, dtype=float)), dtype=float)
    half = np.ceil(radius_mm / np.asarray(image.spacing)).astype(int)
    shape_ijk = np.asarray(maps[0].shape[::-1])
    lo = np.clip(np.round(ijk).astype(int) - half, 0, shape_ijk)
    hi = np.clip(np.round(ijk).astype(int) + half + 1, 0, shape_ijk)
    box = (slice(lo[2], hi[2]), slice(lo[1], hi[1]), slice(lo[0], hi[0]))
    k, j, i = np.ogrid[box]
    offset = np.stack(np.broadcast_arrays(i - ijk[0], j - ijk[1], k - ijk[2]), axis=-1)
    ball = np.linalg.norm(offset * np.asarray(image.spacing), axis=-1) <= radius_mm
    return [set(np.unique(m[box][ball]).tolist()) - {0} for m in maps]


def dedupe(candidates: list, radius_mm: float = DEDUPE_MM) -> list:
    """Drop every candidate within ``radius_mm`` of an earlier (better) one."""
    kept: list = []
    for c in candidates:
        if all(np.linalg.norm(c.position_ras - k.position_ras) > radius_mm for k in kept):
            kept.append(c)
    return kept


def _entry(kind: str, wanted: bool):
    """The verified manifest entry of the bone model or the candidate scorer, or None."""
    if not wanted:
        return None
    if kind == BONE:
        from mskai.segmentation.bone_model import bone_model_entry

        return bone_model_entry()
    from mskai.fracture.scorer import scorer_entry

    return scorer_entry()


def _bone_and_fragments(image: Volume, labels: dict[str, np.ndarray] | None,
                        warnings: list[str], bone_entry=None,
                        shared: dict | None = None) -> tuple[
                            np.ndarray, np.ndarray | None, str]:
    """Bone mask, fragment label map when the user gave fragments, and the method."""
    if labels is not None:
        return _given(labels)
    from mskai.segmentation.bone_ct import segment_bone_ct

    if bone_entry is not None:
        from mskai.segmentation.bone_model import segment_bone_model

        bone = segment_bone_model(image, bone_entry, warnings=warnings)
        mode = bone_entry.output.get("combine_with_hu", "none")
        method = (f"learned bone segmentation ({bone_entry.id} {bone_entry.version}, "
                  f"combined with HU threshold: {mode}) + fragment analysis")
    else:
        bone = segment_bone_ct(image, warnings=warnings, shared=shared)
        method = "HU hysteresis threshold bone segmentation + fragment analysis"
    if not bone.any():
        raise InputError("no bone found in the image (nothing above 300 HU connected to "
                         "bone-like tissue); give a CT that contains bone, or a bone segment "
                         "with --labels")
    return bone, None, method


def _given(labels: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray | None, str]:
    from mskai.fracture.fragments import fragment_number
    from mskai.labels import canonical_id

    ids = {canonical_id(k): np.asarray(v, dtype=bool) for k, v in labels.items()}
    frag_ids = sorted((k for k in ids if k.startswith(BONE_FRAGMENT_PREFIX)),
                      key=fragment_number)
    if BONE not in ids and not frag_ids:
        raise InputError("the given labels have neither a 'bone' nor 'bone_fragment_N' "
                         "segment; name them with --label-names bone=1 or "
                         "bone_fragment_1=1,bone_fragment_2=2")
    bone = np.zeros(next(iter(ids.values())).shape, dtype=bool)
    for key in [BONE, *frag_ids]:
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


def _components(bone: np.ndarray, image: Volume) -> np.ndarray:
    from mskai.fracture.fragments import label_components

    return label_components(bone, image, MIN_FRAGMENT_ML)


def _candidates(fragments: np.ndarray, image: Volume, warnings: list[str], scorer_entry=None):
    from mskai.fracture.candidates import find_candidates

    if int(fragments.max()) < 2:
        return []
    sub, sub_image = search_grid(fragments, image, warnings)
    candidates = find_candidates(sub, sub_image)
    if scorer_entry is not None and candidates:
        rescore(candidates, sub, sub_image, image, scorer_entry)
    return candidates


def search_grid(fragments: np.ndarray, image: Volume,
                warnings: list[str]) -> tuple[np.ndarray, Volume]:
    """Fragment labels cropped to the bone (+10 mm) and strided to <= MAX_SEARCH_VOXELS."""
    from mskai.tasks.crop import padded_bbox

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
    return sub, sub_image


def candidate_features_of(image: Volume, bone_entry=None) -> tuple[list, np.ndarray]:
    """Candidates (heuristic score) of an image and their scorer features, for training.

    The same steps as :func:`run_fracture` without measurements, learned scoring or
    de-duplication (``Candidate.source`` tells the fragment map of each).
    """
    from mskai.fracture.candidates import find_candidates
    from mskai.fracture.scorer import FEATURES, candidate_features

    warnings: list[str] = []
    bone, _, _ = _bone_and_fragments(image, None, warnings, bone_entry)
    candidates, feats = [], []
    for source, fragments in enumerate(_fragment_maps(image, bone, None, False)):
        if int(fragments.max()) < 2:
            continue
        sub, grid = search_grid(fragments, image, warnings)
        for c in find_candidates(sub, grid):
            c.source = source
            candidates.append(c)
            feats.append(candidate_features(c, sub, grid, image))
    return candidates, np.array(feats).reshape(len(candidates), len(FEATURES))


def rescore(candidates: list, fragments: np.ndarray, grid: Volume, image: Volume,
            entry) -> None:
    """Replace each heuristic score by the learned one (kept as ``heuristic_score``).

    The score is the scorer's probability re-centred so that the entry's
    ``output.operating_threshold`` reads 0.5 (:func:`mskai.fracture.scorer.recentred`; the
    probability is kept as ``scorer_probability``). v1's threshold 0.943 was chosen on the
    17 intact TRAINING CTs only (``training/fracture/component_threshold.py``).
    """
    from mskai.fracture.scorer import (
        candidate_features,
        load_scorer,
        operating_threshold,
        recentred,
    )

    scorer = load_scorer(entry)
    threshold = operating_threshold(entry)
    features = np.stack([candidate_features(c, fragments, grid, image) for c in candidates])
    for c, p in zip(candidates, scorer(features), strict=True):
        c.terms["heuristic_score"] = float(c.score)
        c.terms["scorer_probability"] = float(p)
        c.score = recentred(float(p), threshold)
    candidates.sort(key=lambda c: -c.score)


def _strided(volume: Volume, stride: int, array: np.ndarray) -> Volume:
    from dataclasses import replace

    spacing = tuple(s * stride for s in volume.spacing)
    return replace(volume, array=array, spacing=spacing)


def _name_fragments(result: Result, fractures, maps: list[np.ndarray],
                    labels: dict[str, np.ndarray] | None, status: str) -> None:
    """Segments ``bone_fragment_N`` for every fragment of a fractured bone."""
    from mskai.fracture.fragments import fragment_id, fragment_number

    names: dict[tuple[int, int], str] = {}
    for c in fractures:
        for lab in c.labels:
            names.setdefault((c.label_map, int(lab)), fragment_id(len(names) + 1))
        c.fragments = [names[(c.label_map, int(lab))] for lab in c.labels]
    given = labels is not None and any(k.startswith(BONE_FRAGMENT_PREFIX) for k in labels)
    taken = np.zeros(maps[0].shape, dtype=bool)
    for (source, lab), seg_id in sorted(names.items(),
                                        key=lambda kv: fragment_number(kv[1])):
        seg_id = fragment_id(lab) if given else seg_id
        piece = maps[source] == lab
        mask = piece & ~taken  # pieces of the two maps may overlap; keep segments disjoint
        mask = mask if mask.any() else piece
        taken |= mask
        result.segments.append(Segment(seg_id, mask, len(result.segments) + 1,
                                       status=status))
    if given:
        for c in fractures:
            c.fragments = [fragment_id(int(lab)) for lab in c.labels]
