"""Result writers: the output folder of CONTRACT.md.

:func:`write_results` writes ``segmentation.seg.nrrd``, ``measurements.json``,
``measurements.csv``, ``measurement_units.csv`` and ``report.html`` into a folder (created
if missing; other files there are left alone). :func:`export_surfaces` adds STL/OBJ
surfaces on request.
"""

from __future__ import annotations

from pathlib import Path

from mskai.results.surfaces import export_surfaces
from mskai.segments import Result

__all__ = ["export_surfaces", "write_results"]

Figure = tuple[str, bytes]


def write_results(result: Result, out_dir: str | Path, figures: list[Figure] | tuple = (),
                  render_3d: bool = True) -> dict[str, Path]:
    """Write the output folder; returns ``{"segmentation", "json", "csv", "units_csv",
    "report"}`` paths.

    ``figures`` are extra ``(title, png bytes)`` plots a module adds to the report.
    ``render_3d=False`` skips the VTK attempt and draws the 3D view with matplotlib.
    """
    from mskai.results.report import render_report
    from mskai.results.segnrrd import write_seg_nrrd
    from mskai.results.snapshots import key_slices, start_snapshot_3d
    from mskai.results.tables import (
        UNITS_CSV,
        measurements_document,
        write_csv,
        write_json,
        write_units_csv,
    )

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    finish_3d = start_snapshot_3d(result, use_vtk=render_3d)  # renders while files are written
    try:
        document = measurements_document(result)
        paths = {"segmentation": write_seg_nrrd(result, out / "segmentation.seg.nrrd"),
                 "json": write_json(document, out / "measurements.json"),
                 "csv": write_csv(document, out / "measurements.csv"),
                 "units_csv": write_units_csv(document, out / UNITS_CSV)}
        slices = key_slices(result)
    finally:
        view_3d = finish_3d()
    colors = {s.id: tuple(s.color) for s in result.segments}
    page = render_report(document, colors, result.provenance.time, slices, view_3d,
                         list(figures))
    paths["report"] = out / "report.html"
    paths["report"].write_text(page, encoding="utf-8")
    return paths
