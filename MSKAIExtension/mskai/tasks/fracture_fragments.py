"""FractureDetect fragments from clicks, and alignment measured on split fragments.

One click per fragment (``mskai fracture --fragment-ras R,A,S`` repeated, or a markups point
list in Slicer) splits the bone through the fracture with
:func:`mskai.fracture.fragment_split.split_from_seeds`. Clicks sharing a group number belong
to one fragment: a further click on a fragment refines where its boundary runs. Fragment
``n`` (``bone_fragment_n``) is the n-th group, in the order of the clicks.

Voxels in ``locked`` (fragments edited by hand, in Slicer) are left out of the split, so the
merge policy that keeps edited segments (``skip_edited``) finds them as they were.

Fragments that touch have no gap to fit an axis across, so their displacement and angulation
come from :func:`mskai.fracture.split_alignment.split_alignment` (shaft axes from each
fragment's lateral surface) instead of the gap-based fit of the candidates.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from mskai.errors import InputError
from mskai.segments import Result, Segment
from mskai.volume import Volume

FRAGMENT_RAS_OPTION = "--fragment-ras"


@dataclass(frozen=True)
class FragmentSeeds:
    """Clicks inside fragments (RAS mm), their fragment group (1-based; default one each),
    and voxels the split must not touch (hand-edited fragments)."""

    points_ras: Sequence[Sequence[float]]
    groups: Sequence[int] | None = None
    locked: np.ndarray | None = None

    def group_of_each(self) -> list[int]:
        groups = list(self.groups) if self.groups is not None else list(
            range(1, len(self.points_ras) + 1))
        if len(groups) != len(self.points_ras) or any(int(g) < 1 for g in groups):
            raise InputError("each fragment click needs a fragment number of 1 or more")
        return [int(g) for g in groups]


def clicked_fragments(image: Volume, bone: np.ndarray, seeds: FragmentSeeds) -> np.ndarray:
    """Fragment labels grown from the clicks, label n from group n (a group without clicks
    gets no label); InputError for a click outside the image or the bone, or fewer than two
    fragments (one is enough next to a locked, hand-edited one)."""
    from mskai.fracture.fragment_split import seeds_from_ras, split_from_seeds

    if len(seeds.points_ras) == 0:
        raise InputError(f"no fragment click outside the fragments edited by hand; add "
                         f"{FRAGMENT_RAS_OPTION} R,A,S (a point in Slicer) inside each "
                         "fragment to split")
    groups = seeds.group_of_each()
    free = bone if seeds.locked is None else bone & ~seeds.locked
    points = seeds_from_ras(image, free, seeds.points_ras, FRAGMENT_RAS_OPTION)
    grouped = [np.array([p for p, g in zip(points, groups, strict=True) if g == n],
                        dtype=int).reshape(-1, 3) for n in range(1, max(groups) + 1)]
    if len(set(groups)) < 2 and seeds.locked is None:
        raise InputError(f"give one {FRAGMENT_RAS_OPTION} click in each of at least two "
                         "fragments: one fragment has nothing to split from")
    _require_distinct(points, groups)
    return split_from_seeds(image, free, grouped, locked=seeds.locked)


def _require_distinct(points: list[np.ndarray], groups: list[int]) -> None:
    """Two clicks of different fragments on the same voxel cannot both win it."""
    seen: dict[tuple[int, ...], int] = {}
    for p, g in zip(points, groups, strict=True):
        key = tuple(int(v) for v in p)
        if seen.setdefault(key, g) != g:
            raise InputError(f"two {FRAGMENT_RAS_OPTION} clicks of different fragments fall on "
                             "the same voxel; click each fragment once, away from the fracture")


def touching_alignment(candidates: list, fragments: np.ndarray, image: Volume,
                       sources: set[int] | None = None, keep_position: bool = False) -> None:
    """Measure each candidate between touching fragments with :func:`split_alignment`
    (only candidates of the fragment maps in ``sources``, when given); its position becomes
    the split's centre unless ``keep_position``."""
    from mskai.fracture.split_alignment import split_alignment

    for c in candidates:
        if not c.labels or (sources is not None and c.label_map not in sources):
            continue
        a, b = (int(v) for v in c.labels)
        al = split_alignment(fragments, image, a, b)
        if al is not None:
            c.alignment = al
            if not keep_position:
                c.position_ras = al.fracture_center_ras


def name_clicked_fragments(result: Result, fractures: list, fragments: np.ndarray,
                           status: str) -> None:
    """A ``bone_fragment_n`` segment for every clicked fragment n, fractures naming theirs."""
    from mskai.fracture.fragments import fragment_id

    for n in range(1, int(fragments.max()) + 1):
        mask = fragments == n
        if mask.any():
            result.segments.append(Segment(fragment_id(n), mask, len(result.segments) + 1,
                                           status=status))
    for c in fractures:
        c.fragments = [fragment_id(int(v)) for v in c.labels]
