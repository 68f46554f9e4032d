"""``mskai demo``: every module on the bundled sample data, with an index page of the reports.

The sample data lives in the source checkout (``Testing/Data``, with attribution) and the
phantom generators in ``Testing/phantoms``; the demo therefore runs from a checkout.
"""

from __future__ import annotations

import html
import json
import sys
from collections.abc import Callable
from pathlib import Path

from mskai.errors import InputError

REPO = Path(__file__).resolve().parents[2]
DATA = REPO / "Testing" / "Data"


def _require_checkout() -> None:
    if not DATA.is_dir():
        raise InputError("the demo needs the sample data of the source checkout (Testing/Data); "
                         "run it from a clone of the repository with 'make demo'")
    if str(REPO / "Testing") not in sys.path:
        sys.path.insert(0, str(REPO / "Testing"))


def _tumor_demo(out: Path) -> list[str]:
    """Soft-tissue sarcoma CT (TCIA STS_002): one click at the tumour's most interior point."""
    from mskai.image import read_image
    from mskai.interactive.clicks import deepest_voxel
    from mskai.labels import read_labels

    image = DATA / "sts_sarcoma" / "STS_002_CT_image.nii.gz"
    expert = DATA / "sts_sarcoma" / "STS_002_CT_mask.nii.gz"
    volume = read_image(image)
    mask = read_labels(expert, volume, {"tumor": 1})["tumor"]
    kji = deepest_voxel(mask, tuple(reversed(volume.spacing)))
    seed = ",".join(f"{v:.1f}" for v in volume.index_to_ras(kji[::-1].astype(float)))
    return ["tumor", str(image), "--seed-ras", seed, "--margin-mm", "10", "--out", str(out)]


def _cartilage_demo(out: Path) -> list[str]:
    """The real pymskt knee segmentation, measured as a user-given segmentation."""
    labels = DATA / "knee" / "SAG_3D_DESS_RIGHT_bones_cart_men_fib-label.nrrd"
    names = ("femoral_cartilage=1,medial_tibial_cartilage=2,lateral_tibial_cartilage=3,"
             "patellar_cartilage=4,femur=5,tibia=6,patella=7")
    return ["cartilage", str(labels), "--labels", str(labels), "--label-names", names,
            "--out", str(out)]


def _knee_ai_demo(out: Path) -> list[str]:
    """A synthetic DESS knee (training/knee/synthesize.py, a held-out seed) segmented by the
    shipped knee model, then measured. Synthetic: it shows the pipeline, not real accuracy."""
    training = REPO / "training" / "knee"
    if str(training) not in sys.path:
        sys.path.insert(0, str(training))
    import anatomy
    import cases
    import synthesize

    from mskai.image import write_image

    case = synthesize.synthesize(anatomy.build_anatomy(), cases.TEST_SEED, "DESS")
    volume = synthesize.to_volume(case)
    volume.array = (volume.array * 1000.0).astype("float32")
    path = out.parent / "inputs" / "synthetic_dess_knee.nrrd"
    path.parent.mkdir(parents=True, exist_ok=True)
    write_image(volume, path)
    return ["cartilage", str(path), "--knee-side", "right", "--out", str(out)]


def _fracture_demo(out: Path) -> list[str]:
    """A CT phantom of a long bone with a displaced, angulated fracture (known truth).

    Air around a 30 mm body (the CT check wants air below -500 HU) and a 6 mm gap: the
    default 4 mm gap is bridged by partial volume at 0.7x0.7x1.25 mm and not found.
    """
    from mskai.image import write_image
    from phantoms.long_bone import fractured_long_bone

    phantom = fractured_long_bone(translation_mm=(4.0, 2.0, 0.0), angulation_deg=12.0,
                                  gap_mm=6.0, body_radius_mm=30.0, noise_sd=15.0)
    path = out.parent / "inputs" / "fractured_long_bone.nrrd"
    path.parent.mkdir(parents=True, exist_ok=True)
    write_image(phantom.image, path)
    return ["fracture", str(path), "--out", str(out)]


DEMOS: dict[str, Callable[[Path], list[str]]] = {
    "TumorSeg": _tumor_demo,
    "CartilageQuant": _cartilage_demo,
    "CartilageQuant-AI": _knee_ai_demo,
    "FractureDetect": _fracture_demo,
}


def run_demo(out: Path) -> Path:
    """Run each module through the ``mskai`` command; write ``index.html``; return its path."""
    from mskai.cli import main

    _require_checkout()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    rows = []
    for module, make_args in DEMOS.items():
        folder = out / module
        try:
            code = main(make_args(folder))
            status = "ok" if code == 0 else f"failed (exit {code})"
        except InputError as exc:
            status = f"not run: {exc}"
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
