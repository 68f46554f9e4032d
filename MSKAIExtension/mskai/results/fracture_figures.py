"""Report figures of FractureDetect: axial, coronal and sagittal slices through each candidate.

Every reported fracture (``F1``, ``F2``, ...) gets one figure, and so do the best
``max_below`` candidates that scored below the threshold (``C1``, ... "below threshold"),
so a reader can check what was rejected. Overlays: the bone and the fragment segments;
a cross marks the candidate position. Drawing is :func:`slices_through_point`.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from mskai.segments import Result
from mskai.terminology import BONE, BONE_FRAGMENT_PREFIX

Figure = tuple[str, bytes]
CT_WINDOW = (-500.0, 1300.0)  # HU: bone and soft tissue both readable


def candidate_title(entry: dict[str, Any], name: str, accepted: bool) -> str:
    """E.g. ``F1 score 0.93 — displacement 4.1 mm, angulation 12°``."""
    note = "" if accepted else " (below threshold)"
    return (f"{name} score {entry['score']:.2f}{note} — displacement "
            f"{_number(entry.get('displacement_mm'), '.1f')} mm, angulation "
            f"{_number(entry.get('angulation_deg'), '.0f')}°")


def _number(value: Any, fmt: str) -> str:
    if value is None or not np.isfinite(value):
        return "n/a"
    return format(float(value), fmt)


def _is_reported(entry: dict[str, Any], fractures: list[dict[str, Any]]) -> bool:
    return any(np.allclose(entry["position_ras"], f["position_ras"]) for f in fractures)


def candidate_figures(result: Result, max_below: int = 3) -> list[Figure]:
    """One ``(title, png)`` per reported fracture and per best rejected candidate."""
    from mskai.results.snapshots import slices_through_point

    fractures = result.measurements.get("fractures", [])
    candidates = result.measurements.get("fracture_candidates", [])
    rejected = [c for c in candidates if not _is_reported(c, fractures)][:max_below]
    named = ([(f, f"F{n}", True) for n, f in enumerate(fractures, start=1)]
             + [(c, f"C{n}", False) for n, c in enumerate(rejected, start=1)])
    segments = [s for s in result.segments
                if s.id == BONE or s.id.startswith(BONE_FRAGMENT_PREFIX)]
    window = CT_WINDOW if float(np.min(result.image.array[::4, ::4, ::4])) < -500 else None
    figures = []
    for entry, name, accepted in named:
        title = candidate_title(entry, name, accepted)
        png = slices_through_point(result.image, segments, entry["position_ras"], title,
                                   window=window)
        figures.append((title, png))
    return figures
