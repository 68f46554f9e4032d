"""``report.html``: one self-contained page (PNG figures inlined as base64) per result.

The page holds image and provenance information, key slices with overlays, a 3D view, the
measurement tables (segments, then each module-specific top-level key) and any extra
figures a module passes in (e.g. a cartilage thickness map).
"""

from __future__ import annotations

import base64
import html
import json
from importlib.resources import files
from string import Template
from typing import Any

from mskai.results.tables import RESERVED

Figure = tuple[str, bytes]


def _number(value: float) -> str:
    return f"{value:.2f}" if abs(value) < 1e6 else f"{value:.4g}"


def format_value(value: Any) -> str:
    """HTML for one measurement value: numbers to 2 decimals, points as (R, A, S), tables."""
    if isinstance(value, _Raw):
        return str(value)
    if value is None:
        return "&ndash;"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int | float):
        return _number(value)
    if isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
        return table(value)
    if isinstance(value, list) and all(isinstance(v, int | float) for v in value):
        return "(" + ", ".join(_number(v) for v in value) + ")"
    if isinstance(value, dict):
        return key_value_table(value)
    if isinstance(value, list):
        return html.escape(json.dumps(value))
    return html.escape(str(value))


def table(rows: list[dict[str, Any]]) -> str:
    """An HTML table with one row per dict and the union of keys as columns."""
    columns: list[str] = []
    for row in rows:
        columns += [c for c in row if c not in columns]
    head = "".join(f"<th>{html.escape(c)}</th>" for c in columns)
    body = "".join(
        "<tr>" + "".join(_cell(row.get(c)) for c in columns) + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def key_value_table(values: dict[str, Any]) -> str:
    rows = "".join(f"<tr><th>{html.escape(str(k))}</th>{_cell(v)}</tr>"
                   for k, v in values.items())
    return f"<table>{rows}</table>"


def _cell(value: Any) -> str:
    numeric = isinstance(value, int | float) and not isinstance(value, bool)
    return f"<td{' class=num' if numeric else ''}>{format_value(value)}</td>"


def figure_html(figure: Figure) -> str:
    title, png = figure
    data = base64.b64encode(png).decode("ascii")
    caption = html.escape(title)
    return (f'<figure><img src="data:image/png;base64,{data}" alt="{caption}">'
            f"<figcaption>{caption}</figcaption></figure>")


def _segments_html(segments: list[dict[str, Any]], colors: dict[str, tuple]) -> str:
    if not segments:
        return "<p>No segments.</p>"
    rows = []
    for entry in segments:
        rgb = ",".join(str(int(255 * c)) for c in colors.get(entry["id"], (0.6, 0.6, 0.6)))
        name = (f'<span class="swatch" style="background:rgb({rgb})"></span>'
                f"{html.escape(str(entry['name']))}")
        rows.append({**entry, "name": _Raw(name)})
    return "<h3>Segments</h3>" + table(rows)


class _Raw(str):
    """Already-escaped HTML that :func:`format_value` passes through."""


def _info_html(document: dict[str, Any], time: str) -> str:
    image, prov = document["image"], document["provenance"]
    info = {"Image": image["path"] or "(in memory)", "Modality": image["modality"] or "unknown",
            "Size (i, j, k)": " x ".join(str(s) for s in image["size"]),
            "Spacing (mm)": format_value(image["spacing_mm"]),
            "Method": prov["method"], "Model": prov["model"] or "none (no trained model)",
            "mskai version": prov["mskai_version"], "Run time": time}
    return key_value_table(info)


def render_report(document: dict[str, Any], colors: dict[str, tuple], time: str,
                  slices: list[Figure], surface: Figure | None,
                  figures: list[Figure]) -> str:
    """The report page for a ``measurements.json`` document and its figures."""
    extra = {k: v for k, v in document.items() if k not in RESERVED}
    extra_tables = "".join(
        f"<h3>{html.escape(k.replace('_', ' ').capitalize())}</h3>"
        + (table(v) if isinstance(v, list) and v and all(isinstance(r, dict) for r in v)
           else key_value_table(v) if isinstance(v, dict) else f"<p>{format_value(v)}</p>")
        for k, v in extra.items())
    warnings = "".join(f'<p class="warning">Warning: {html.escape(w)}</p>'
                       for w in document.get("warnings", []))
    extra_figures = ("<h2>Figures</h2><div class=\"figures\">"
                     + "".join(figure_html(f) for f in figures) + "</div>") if figures else ""
    template = Template(files("mskai.results").joinpath("report_template.html").read_text())
    return template.substitute(
        module=html.escape(document["module"]), time=html.escape(time),
        version=html.escape(document["provenance"]["mskai_version"]),
        info=_info_html(document, time), warnings=warnings,
        slices="".join(figure_html(f) for f in slices),
        surface=figure_html(surface) if surface else "<p>No surfaces (all segments empty).</p>",
        segments=_segments_html(document["segments"], colors), extra_tables=extra_tables,
        figures=extra_figures)
