"""User prompts for interactive segmentation: positive and negative clicks, an optional box
and an optional RECIST line (expanded to clicks and a box by
:func:`mskai.interactive.recist_line.expand_recist_line`).

Points are RAS millimetres (Slicer's convention); :meth:`Prompts.to_indices` turns them into
voxel indices ``[k, j, i]`` of a :class:`~mskai.volume.Volume` and refuses points outside it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace

import numpy as np

from mskai.errors import InputError
from mskai.volume import Volume

Point = tuple[float, float, float]


def _point(p: Sequence[float]) -> Point:
    vals = tuple(float(v) for v in p)
    if len(vals) != 3 or not all(np.isfinite(vals)):
        raise InputError(f"a point needs three finite RAS coordinates R,A,S; got {p!r}")
    return vals  # type: ignore[return-value]


def _box(roi: Sequence) -> tuple[float, float, float, float, float, float]:
    """Six floats R1,A1,S1,R2,A2,S2 from six numbers or from two R,A,S corners.

    The command line (:func:`mskai.cli_args.ras_box`) gives two corner tuples, Slicer six
    numbers. A box without extent along an axis (R1 = R2, ...) is refused.
    """
    values = _two_points(roi, "the ROI box", "give two opposite corners")
    flat = [axis for axis, a, b in zip("RAS", values[:3], values[3:], strict=True) if a == b]
    if flat:
        raise InputError(f"the ROI box has no extent along {', '.join(flat)} (both corners at "
                         "the same coordinate); give two opposite corners of a box around the "
                         "tumour as R1,A1,S1,R2,A2,S2")
    return values  # type: ignore[return-value]


def _two_points(given: Sequence, what: str, how: str) -> tuple[float, ...]:
    """Six finite floats R1,A1,S1,R2,A2,S2 from six numbers (Slicer) or two R,A,S points
    (the command line); ``what`` and ``how`` word the error."""
    try:
        items = list(given)
        if len(items) == 2 and all(isinstance(c, Sequence | np.ndarray) for c in items):
            items = [*items[0], *items[1]]
        values = tuple(float(v) for v in items)
    except (TypeError, ValueError):
        values = ()
    if len(values) != 6 or not all(np.isfinite(values)):
        raise InputError(f"{what} {given!r} is not six finite RAS coordinates; {how} as "
                         "R1,A1,S1,R2,A2,S2 in millimetres")
    return values


def _line(line: Sequence) -> tuple[float, float, float, float, float, float]:
    """Six floats R1,A1,S1,R2,A2,S2 (the two end points) from six numbers or two points."""
    values = _two_points(line, "the RECIST line", "give its two end points")
    if values[:3] == values[3:]:
        raise InputError("the RECIST line's two end points are the same point; draw the line "
                         "across the tumour's longest axis")
    return values  # type: ignore[return-value]


@dataclass(frozen=True)
class Prompts:
    """Clicks inside the object (positive), outside it (negative), an optional RAS box and an
    optional RECIST line (two RAS end points across the longest axis, on one slice)."""

    positive_ras: list[Point] = field(default_factory=list)
    negative_ras: list[Point] = field(default_factory=list)
    roi_ras: tuple[float, float, float, float, float, float] | None = None
    recist_line_ras: tuple[float, float, float, float, float, float] | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "positive_ras", [_point(p) for p in self.positive_ras])
        object.__setattr__(self, "negative_ras", [_point(p) for p in self.negative_ras])
        if self.roi_ras is not None:
            object.__setattr__(self, "roi_ras", _box(self.roi_ras))
        if self.recist_line_ras is not None:
            object.__setattr__(self, "recist_line_ras", _line(self.recist_line_ras))

    def with_click(self, ras: Sequence[float], positive: bool) -> Prompts:
        """A copy with one more click."""
        if positive:
            return replace(self, positive_ras=[*self.positive_ras, _point(ras)])
        return replace(self, negative_ras=[*self.negative_ras, _point(ras)])

    def with_box_centre_seed(self) -> Prompts:
        """A box alone: its centre becomes the seed (a box drawn around the tumour is centred
        on it). Unchanged when there is a seed already or no box. (Background clicks at the
        centres of the box's faces were tried and did not help: mean Dice 0.650 vs 0.652 on
        the 49 STS volumes where they fell inside the image.)"""
        if self.positive_ras or self.roi_ras is None:
            return self
        centre = [(a + b) / 2 for a, b in zip(self.roi_ras[:3], self.roi_ras[3:], strict=True)]
        return replace(self, positive_ras=[_point(centre)])

    def to_indices(self, volume: Volume) -> tuple[np.ndarray, np.ndarray]:
        """Nearest voxel ``[k, j, i]`` of every positive and negative click, shapes (n, 3)."""
        if not self.positive_ras:
            if self.recist_line_ras is not None:
                raise InputError("expand the RECIST line first (mskai.interactive.recist_line"
                                 ".expand_recist_line)")
            raise InputError("place at least one click inside the tumour (a positive seed) "
                             "or draw a RECIST line across it")
        pos = points_to_kji(volume, self.positive_ras, "seed")
        neg = points_to_kji(volume, self.negative_ras, "background click")
        self._check_conflicts(volume, pos, neg)
        return pos, neg

    def _check_conflicts(self, volume: Volume, pos: np.ndarray, neg: np.ndarray) -> None:
        """Refuse a seed and a background click in the same voxel or closer than a voxel,
        and seeds outside the ROI box."""
        spacing = min(volume.spacing)
        for p, p_kji in zip(self.positive_ras, pos, strict=True):
            for q, q_kji in zip(self.negative_ras, neg, strict=True):
                if np.array_equal(p_kji, q_kji) or np.linalg.norm(np.subtract(p, q)) < spacing:
                    raise InputError(
                        f"the seed at RAS {_text(p)} and the background click at RAS "
                        f"{_text(q)} fall within one voxel of each other; put the seed inside "
                        "the tumour and the background click outside it")
        box = self.roi_box(volume)
        if box is None:
            return
        lo, hi = box
        for p, p_kji in zip(self.positive_ras, pos, strict=True):
            if not np.all((p_kji >= lo) & (p_kji < hi)):
                corners = self.roi_ras or ()
                raise InputError(
                    f"the seed at RAS {_text(p)} lies outside the ROI box "
                    f"{_text(corners[:3])} to {_text(corners[3:])}; give a box that contains "
                    "every seed, or move the seed")

    def roi_box(self, volume: Volume) -> tuple[np.ndarray, np.ndarray] | None:
        """Voxel box ``(lo, hi)`` in ``[k, j, i]`` (hi exclusive) of the ROI within the image."""
        if self.roi_ras is None:
            return None
        corners = np.array([[x, y, z] for x in self.roi_ras[0::3] for y in self.roi_ras[1::3]
                            for z in self.roi_ras[2::3]])
        ijk = volume.ras_to_index(corners)
        kji = ijk[:, ::-1]
        shape = np.array(volume.array.shape[:3])
        lo = np.clip(np.floor(kji.min(0) + 0.5).astype(int), 0, shape)
        hi = np.clip(np.floor(kji.max(0) + 0.5).astype(int) + 1, 0, shape)
        if np.any(hi - lo < 2):
            raise InputError("the ROI does not overlap the image or is thinner than two voxels; "
                             f"the image spans {ras_bounds_text(volume)}")
        return lo, hi


def ras_bounds(volume: Volume) -> tuple[np.ndarray, np.ndarray]:
    """Lowest and highest RAS coordinates of the image's voxel centres."""
    size = np.array(volume.size, dtype=float) - 1
    corners = np.array([[a, b, c] for a in (0, size[0]) for b in (0, size[1])
                        for c in (0, size[2])])
    ras = volume.index_to_ras(corners)
    return ras.min(0), ras.max(0)


def ras_bounds_text(volume: Volume) -> str:
    lo, hi = ras_bounds(volume)
    return ", ".join(f"{n} {a:.1f}..{b:.1f}" for n, a, b in zip("RAS", lo, hi, strict=True)) + " mm"


def points_to_kji(volume: Volume, points: Sequence[Point], what: str) -> np.ndarray:
    """Nearest voxel indices ``[k, j, i]`` of RAS points; InputError for a point outside."""
    out = np.zeros((len(points), 3), dtype=int)
    for n, p in enumerate(points):
        ijk = volume.ras_to_index(np.asarray(p, dtype=float))
        if not volume.contains_index(ijk):
            raise InputError(f"the {what} at RAS {p[0]:.1f},{p[1]:.1f},{p[2]:.1f} lies outside "
                             f"the image, which spans {ras_bounds_text(volume)}")
        clipped = np.clip(np.rint(ijk).astype(int), 0, np.array(volume.size) - 1)
        out[n] = clipped[::-1]
    return out


def _text(point: Sequence[float]) -> str:
    return ",".join(f"{float(v):.1f}" for v in point)
