"""Response assessment between two tumour result folders: response.json and response.html."""

from __future__ import annotations

import html
import json
from pathlib import Path
from typing import Any

from mskai import __version__
from mskai.response.compare import Assessment, compare_folders

SCHEMA = "mskai.response/1"
CRITERIA = {
    "recist": "RECIST 1.1 target lesions: CR sum 0; PR <= -30 % vs baseline; PD >= +20 % "
              "and >= +5 mm vs nadir; else SD. Two time points: nadir = baseline.",
    "volumetric": "mskai convention: CR volume 0; PR <= -65 % vs baseline (0.7^3); "
                  "PD >= +73 % vs nadir (1.2^3); else SD.",
}
CATEGORY_NAMES = {"CR": "complete response", "PR": "partial response",
                  "SD": "stable disease", "PD": "progressive disease"}


def run_response(baseline_dir: str | Path, followup_dir: str | Path,
                 out_dir: str | Path) -> str:
    """Compare the folders, write ``response.json`` and ``response.html``; a summary line."""
    assessment = compare_folders(baseline_dir, followup_dir)
    document = response_document(assessment)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "response.json").write_text(json.dumps(document, indent=1, allow_nan=False) + "\n",
                                       encoding="utf-8")
    (out / "response.html").write_text(response_html(document), encoding="utf-8")
    return summary_line(document, out)


def response_document(assessment: Assessment) -> dict[str, Any]:
    """The ``mskai.response/1`` document."""
    return {
        "schema": SCHEMA,
        "mskai_version": __version__,
        "baseline": assessment.baseline.to_json(),
        "followup": assessment.followup.to_json(),
        "nadir": {"source": "baseline",
                  "sum_diameters_mm": assessment.nadir.sum_diameters_mm,
                  "volume_ml": assessment.nadir.volume_ml},
        "changes": assessment.changes(),
        "recist_category": assessment.recist_category,
        "volumetric_category": assessment.volumetric_category,
        "criteria": dict(CRITERIA),
    }


def summary_line(document: dict[str, Any], out: Path) -> str:
    base, follow, change = document["baseline"], document["followup"], document["changes"]
    return (f"Response: RECIST {document['recist_category']} (sum of diameters "
            f"{base['sum_diameters_mm']:.1f} -> {follow['sum_diameters_mm']:.1f} mm, "
            f"{change['sum_diameters_pct']:+.1f} %), volumetric "
            f"{document['volumetric_category']} ({change['volume_pct']:+.1f} %); "
            f"results in {out}")


def response_html(document: dict[str, Any]) -> str:
    """A small self-contained page: categories, then the two time points side by side."""
    base, follow, change = document["baseline"], document["followup"], document["changes"]
    rows = [
        ("Sum of longest diameters (mm)", f"{base['sum_diameters_mm']:.1f}",
         f"{follow['sum_diameters_mm']:.1f}",
         f"{change['sum_diameters_mm']:+.1f} mm ({change['sum_diameters_pct']:+.1f} %)"),
        ("Tumour volume (mL)", f"{base['volume_ml']:.2f}", f"{follow['volume_ml']:.2f}",
         f"{change['volume_ml']:+.2f} mL ({change['volume_pct']:+.1f} %)"),
        ("Result folder", base["folder"], follow["folder"], ""),
    ]
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in row) + "</tr>"
                   for row in rows)
    verdicts = "".join(
        f"<li><b>{html.escape(kind)}: {html.escape(document[key])}</b> "
        f"({CATEGORY_NAMES[document[key]]}) &mdash; {html.escape(CRITERIA[crit])}</li>"
        for kind, key, crit in (("RECIST 1.1", "recist_category", "recist"),
                                ("Volumetric", "volumetric_category", "volumetric")))
    return (
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
        "<title>MSK AI response assessment</title><style>"
        "body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}"
        "td,th{border:1px solid #999;padding:4px 8px;text-align:left}</style></head><body>"
        "<h1>Response assessment</h1>"
        f"<ul>{verdicts}</ul>"
        "<table><tr><th></th><th>Baseline</th><th>Follow-up</th><th>Change</th></tr>"
        f"{body}</table>"
        f"<p>mskai {html.escape(document['mskai_version'])}, schema "
        f"{html.escape(document['schema'])}. New and non-target lesions are not assessed."
        "</p></body></html>\n")
