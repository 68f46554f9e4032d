"""``mskai demo`` runs every module end to end on the bundled sample data."""

import json

from mskai.cli import main


def test_demo_runs_every_module_and_links_the_reports(tmp_path, capsys):
    assert main(["demo", "--out", str(tmp_path)]) == 0
    assert "index.html" in capsys.readouterr().out
    index = (tmp_path / "index.html").read_text()
    for module in ("TumorSeg", "CartilageQuant", "CartilageQuant-AI", "FractureDetect"):
        assert (tmp_path / module / "report.html").is_file(), module
        assert f'href="{module}/report.html"' in index
    fracture = json.loads((tmp_path / "FractureDetect" / "measurements.json").read_text())
    assert len(fracture["fractures"]) == 1  # the demo phantom has exactly one fracture
    knee = json.loads((tmp_path / "CartilageQuant" / "measurements.json").read_text())
    femoral = next(s for s in knee["segments"] if s["id"] == "femoral_cartilage")
    assert 1.5 < femoral["mean_thickness_mm"] < 3.0
