"""T2 relaxation per cartilage plate from a multi-echo series on the segmentation's grid."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from mskai.errors import InputError
from mskai.segments import Result

CARTILAGE_SUFFIX = "_cartilage"


def add_t2(result: Result, echoes_path: Path | Sequence[Path],
           echo_times_ms: Sequence[float] | None = None) -> None:
    """Fit T2 in the cartilage voxels and add ``t2`` statistics to each cartilage segment.

    The echoes must sample the same grid as the image the cartilage was measured on (the
    usual case: the segmentation was made on the first echo or a registered image).
    """
    from mskai.measure.t2_io import read_multi_echo
    from mskai.measure.t2map import fit_t2, t2_per_region

    echoes, times = read_multi_echo(echoes_path, echo_times_ms)
    reference = result.image
    if echoes.array.shape[:3] != reference.array.shape[:3] or not np.allclose(
            echoes.spacing, reference.spacing, atol=1e-3):
        raise InputError("the multi-echo series is not on the image's grid; resample it onto "
                         "the image (e.g. Slicer's Resample Scalar Volume) or segment an echo")
    plates = {s.id: s.mask for s in result.segments if s.id.endswith(CARTILAGE_SUFFIX)}
    if not plates:
        raise InputError("there is no cartilage segment to measure T2 in")
    cartilage = np.logical_or.reduce(list(plates.values()))
    t2map = fit_t2(echoes, times, mask=cartilage)
    for row in t2_per_region(t2map, plates):
        stats = {k: row[k] for k in ("mean_t2_ms", "median_t2_ms", "sd_t2_ms", "n_voxels",
                                     "rejected_fraction")}
        result.segment(row["name"]).measurements["t2"] = stats
    result.measurements["t2_method"] = {"echo_times_ms": [float(t) for t in times],
                                        "method": t2map.method}
