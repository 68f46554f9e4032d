"""``DIR/index.html`` of a batch: one self-contained page for the cohort.

It links each case's ``report.html``, lists the failures, and plots each key measure
across the cohort (matplotlib PNGs inlined as base64: no script, no stylesheet, nothing
fetched from the network).
"""

from __future__ import annotations

import base64
import html
import io
from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from mskai import __version__
from mskai.cohort.cohort_table import Row

KEY_MEASURES = ("volume_ml", "recist_long_axis_mm", "recist_short_axis_mm",
                "mean_thickness_mm", "joint_space_width_mm.min", "fracture_count",
                "margin.min_distance_to_bone_mm", "sphericity")
MAX_PLOTS = 16
MAX_BARS = 60  # more cases: a histogram instead of one bar per case

STYLE = """body{font-family:sans-serif;margin:2em;max-width:72em;color:#222}
table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:.3em .6em;
text-align:left;vertical-align:top}th{background:#f3f3f3}.failed{color:#a00}
.skipped{color:#666}figure{display:inline-block;margin:.5em}img{max-width:34em}"""


def key_series(rows: list[Row]) -> list[tuple[str, str, str, list[tuple[str, float]]]]:
    """``(segment, measure, unit, [(case, value)])`` of the key measures, in KEY order."""
    found: dict[tuple[str, str], list[tuple[str, float]]] = defaultdict(list)
    units: dict[tuple[str, str], str] = {}
    for case, segment, measure, value, unit in rows:
        if measure in KEY_MEASURES and "/" not in segment \
                and not segment.startswith("fracture_"):
            found[(segment, measure)].append((case, float(value)))
            units[(segment, measure)] = unit
    order = sorted(found, key=lambda k: (KEY_MEASURES.index(k[1]), k[0]))
    return [(s, m, units[(s, m)], found[(s, m)]) for s, m in order][:MAX_PLOTS]


def _plot(segment: str, measure: str, unit: str, values: list[tuple[str, float]]) -> str:
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib.figure import Figure

    label = f"{measure} ({unit})" if unit else measure
    if len(values) <= MAX_BARS:
        fig = Figure(figsize=(6, 0.8 + 0.28 * len(values)), dpi=90)
        ax = fig.subplots()
        ax.barh([c for c, _ in values][::-1], [v for _, v in values][::-1], color="#4a7ab5")
        ax.set_xlabel(label)
    else:
        fig = Figure(figsize=(6, 3.2), dpi=90)
        ax = fig.subplots()
        ax.hist([v for _, v in values], bins=30, color="#4a7ab5")
        ax.set_xlabel(label)
        ax.set_ylabel("cases")
    ax.set_title(f"{segment}: {measure}" if segment else measure, fontsize=10)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def write_index(path: Path, outcomes: list[dict[str, Any]], rows: list[Row],
                cohort_csv: str) -> None:
    e = html.escape
    failed = [o for o in outcomes if o["status"] == "failed"]
    ok = len(outcomes) - len(failed)
    parts = [f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>mskai batch: "
             f"{e(cohort_csv)}</title><style>{STYLE}</style></head><body>",
             f"<h1>Cohort {e(cohort_csv)}</h1>",
             f"<p>{ok} of {len(outcomes)} cases have results, {len(failed)} failed. "
             f"Tables: <a href='cohort_measurements.csv'>cohort_measurements.csv</a>, "
             f"<a href='failures.csv'>failures.csv</a>. mskai {e(__version__)}, "
             f"{datetime.now(UTC).isoformat(timespec='seconds')}.</p>",
             "<h2>Cases</h2><table><tr><th>case</th><th>task</th><th>status</th>"
             "<th>result</th><th>warnings</th></tr>"]
    for o in outcomes:
        case = e(o["case"])
        report = path.parent / o["case"] / "report.html"
        link = (f"<a href='{e(o['case'])}/report.html'>{case}</a>"
                if o["status"] != "failed" and report.is_file() else case)
        text = o["summary"] if o["status"] != "failed" else \
            f"{o['exit_class']}: {o['message']}"
        parts.append(f"<tr class='{e(o['status'])}'><td>{link}</td><td>{e(o['task'])}</td>"
                     f"<td>{e(o['status'])}</td><td>{e(text)}</td>"
                     f"<td>{len(o.get('warnings') or [])}</td></tr>")
    parts.append("</table>")
    parts.append("<h2>Failures</h2>")
    if failed:
        parts.append("<table><tr><th>case</th><th>task</th><th>exit class</th>"
                     "<th>message</th></tr>")
        parts += [f"<tr class='failed'><td>{e(o['case'])}</td><td>{e(o['task'])}</td>"
                  f"<td>{e(o['exit_class'])}</td><td>{e(o['message'])}</td></tr>"
                  for o in failed]
        parts.append("</table>")
    else:
        parts.append("<p>None.</p>")
    parts.append("<h2>Key measures across the cohort</h2>")
    series = key_series(rows)
    if not series:
        parts.append("<p>No key measure to plot.</p>")
    for segment, measure, unit, values in series:
        alt = e(f"{segment} {measure} per case")
        parts.append(f"<figure><img alt='{alt}' src='data:image/png;base64,"
                     f"{_plot(segment, measure, unit, values)}'></figure>")
    parts.append("</body></html>\n")
    path.write_text("\n".join(parts), encoding="utf-8")
