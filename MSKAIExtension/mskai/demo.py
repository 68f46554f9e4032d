"""``mskai demo``: every module on sample data, with an index page of the reports.

Each demo calls its task (:mod:`mskai.tasks`) and the result writer
(:func:`mskai.results.write_results`) directly; nothing here goes back through the command
line (``mskai.cli`` / ``mskai.commands``). The synthetic inputs come from
:mod:`mskai.phantoms`, which ships with the package. The real sample images live in the
source checkout (``Testing/Data``, with attribution); without them the demos that need them
are listed as not run and the others still run.
"""

from __future__ import annotations

import html
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from mskai.errors import InputError, ModelError
from mskai.segments import Result
from mskai.terminology import (
    FEMORAL_CARTILAGE,
    FEMUR,
    LATERAL_TIBIAL_CARTILAGE,
    MEDIAL_TIBIAL_CARTILAGE,
    PATELLA,
    PATELLAR_CARTILAGE,
    TIBIA,
    TUMOR,
)
from mskai.volume import Volume

REPO = Path(__file__).resolve().parents[2]
DATA = REPO / "Testing" / "Data"
Figures = list[tuple[str, bytes]]
Demo = Callable[[Path], tuple[Result, Figures]]

# Values of the pymskt knee label map (Testing/Data/knee, see its ATTRIBUTION.md line).
KNEE_LABELS = {FEMORAL_CARTILAGE: 1, MEDIAL_TIBIAL_CARTILAGE: 2, LATERAL_TIBIAL_CARTILAGE: 3,
               PATELLAR_CARTILAGE: 4, FEMUR: 5, TIBIA: 6, PATELLA: 7}


def _sample(*parts: str) -> Path:
    """A file of the checkout's sample data, or InputError (the demo is then not run)."""
    path = DATA.joinpath(*parts)
    if not path.is_file():
        raise InputError(f"needs the sample data of the source checkout ({path}); "
                         "run it from a clone of the repository with 'make demo'")
    return path


def _read(path: Path) -> Volume:
    """Read and check an image exactly as the ``mskai`` command does."""
    from mskai.image import read_image
    from mskai.validate import validate_image

    image = read_image(path)
    validate_image(image)
    return image


def _write_input(volume: Volume, out: Path, name: str) -> Volume:
    """Save a generated input next to the results (so it can be opened) and read it back."""
    from mskai.image import write_image

    path = out.parent / "inputs" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    write_image(volume, path)
    return _read(path)


def _tumor_demo(out: Path) -> tuple[Result, Figures]:
    """Soft-tissue sarcoma CT (TCIA STS_002): one click at the tumour's most interior point."""
    from mskai.interactive.clicks import deepest_voxel
    from mskai.interactive.prompts import Prompts
    from mskai.labels import read_labels
    from mskai.tasks.tumor import run_tumor

    volume = _read(_sample("sts_sarcoma", "STS_002_CT_image.nii.gz"))
    expert = _sample("sts_sarcoma", "STS_002_CT_mask.nii.gz")
    mask = read_labels(expert, volume, {TUMOR: 1})[TUMOR]
    kji = deepest_voxel(mask, tuple(reversed(volume.spacing)))
    seed = tuple(round(float(v), 1) for v in volume.index_to_ras(kji[::-1].astype(float)))
    return run_tumor(volume, Prompts(positive_ras=[seed]), margin_mm=10.0), []


def _cartilage_demo(out: Path) -> tuple[Result, Figures]:
    """The real pymskt knee segmentation, measured as a user-given segmentation."""
    from mskai.labels import read_labels
    from mskai.tasks.cartilage import run_cartilage

    path = _sample("knee", "SAG_3D_DESS_RIGHT_bones_cart_men_fib-label.nrrd")
    image = _read(path)
    return run_cartilage(image, labels=read_labels(path, image, KNEE_LABELS))


def _knee_ai_demo(out: Path) -> tuple[Result, Figures]:
    """A synthetic DESS knee (:mod:`mskai.phantoms.knee_mr`, a seed training never used)
    segmented by the shipped knee model, then measured. Synthetic: it shows the pipeline,
    not real accuracy."""
    from mskai.tasks.cartilage import run_cartilage

    volume, _ = synthetic_dess_knee()
    image = _write_input(volume, out, "synthetic_dess_knee.nrrd")
    return run_cartilage(image, knee_side="right")


def synthetic_dess_knee() -> tuple[Volume, Any]:
    """The AI knee demo's input: a synthetic DESS knee built from the sample knee's label map
    with a seed training never used, scaled to scanner-like values, and the phantom case
    (its ``labels`` and ``spacing`` are the truth)."""
    from mskai.phantoms.knee_anatomy import REFERENCE_NAME, build_anatomy
    from mskai.phantoms.knee_mr import TEST_SEED, synthesize, to_volume

    case = synthesize(build_anatomy(_sample("knee", REFERENCE_NAME)), TEST_SEED, "DESS")
    volume = to_volume(case)
    volume.array = (volume.array * 1000.0).astype("float32")
    return volume, case


def _fracture_demo(out: Path) -> tuple[Result, Figures]:
    """A CT phantom of a long bone with a displaced, angulated fracture (known truth).

    Air around a 30 mm body (the CT check wants air below -500 HU) and a 6 mm gap: the
    default 4 mm gap is bridged by partial volume at 0.7x0.7x1.25 mm and not found.
    """
    from mskai.phantoms.long_bone import fractured_long_bone
    from mskai.results.fracture_figures import candidate_figures
    from mskai.tasks.fracture import run_fracture

    phantom = fractured_long_bone(translation_mm=(4.0, 2.0, 0.0), angulation_deg=12.0,
                                  gap_mm=6.0, body_radius_mm=30.0, noise_sd=15.0)
    image = _write_input(phantom.image, out, "fractured_long_bone.nrrd")
    result = run_fracture(image)
    return result, candidate_figures(result)


DEMOS: dict[str, Demo] = {
    "TumorSeg": _tumor_demo,
    "CartilageQuant": _cartilage_demo,
    "CartilageQuant-AI": _knee_ai_demo,
    "FractureDetect": _fracture_demo,
}


def run_demo(out: Path) -> Path:
    """Run each module's task and write its output folder; write ``index.html``; return it."""
    from mskai.results import write_results

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    rows = []
    for module, demo in DEMOS.items():
        folder = out / module
        try:
            result, figures = demo(folder)
            write_results(result, folder, figures=figures)
            for warning in result.warnings:
                sys.stderr.write(f"{module}: warning: {warning}\n")
            status = "ok"
        except (InputError, ModelError) as exc:
            status = f"not run: {exc}"
        except Exception as exc:  # one broken demo must not hide the others
            status = f"failed: {type(exc).__name__}: {exc}"
        rows.append((module, folder, status))
    index = out / "index.html"
    index.write_text(_index_html(rows), encoding="utf-8")
    return index.resolve()


def _index_html(rows: list[tuple[str, Path, str]]) -> str:
    items = []
    for module, folder, status in rows:
        summary = ""
        measurements = folder / "measurements.json"
        if measurements.is_file():
            data = json.loads(measurements.read_text())
            summary = ", ".join(f"{s['id']}: {s.get('volume_ml', 0):.1f} mL"
                                for s in data.get("segments", [])[:6])
        link = f'<a href="{module}/report.html">report</a>' if (
            folder / "report.html").is_file() else ""
        items.append(f"<tr><td>{module}</td><td>{html.escape(status)}</td>"
                     f"<td>{html.escape(summary)}</td><td>{link}</td></tr>")
    return ("<!doctype html><meta charset='utf-8'><title>MSK AI demo</title>"
            "<h1>MSK AI demo</h1><table border=1 cellpadding=4>"
            "<tr><th>module</th><th>status</th><th>segments</th><th></th></tr>"
            + "".join(items) + "</table>")
