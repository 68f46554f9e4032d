"""The completion record ``DIR/<case>/.mskai-batch.json``: a case that is done is skipped.

The record is written only after the case's command finished and sealed its folder. It
holds what the result depends on (task, option cells, the fingerprint of every input
file, the mskai version) and the sha256 of each result file, copied from the folder's
marker ``.mskai-result.json``. A case counts as complete, and is skipped on the next run,
only when all of these still agree: the same inputs and options, and result files that are
all there and unchanged. A run stopped half-way leaves the marker's hashes ``null`` (see
:meth:`mskai.results.out_folder.OutFolder.claim`) or no record, so the case runs again.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from mskai import __version__
from mskai.resources import sha256_file
from mskai.results.out_folder import read_marker

RECORD = ".mskai-batch.json"
SCHEMA = "mskai.batch-case/1"


def key(spec, inputs: dict[str, str]) -> dict[str, Any]:
    """What the result of a case depends on."""
    return {"task": spec.task, "options": dict(spec.options), "inputs": dict(inputs),
            "mskai_version": __version__}


def read_record(folder: Path) -> dict[str, Any] | None:
    try:
        document = json.loads((folder / RECORD).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return document if isinstance(document, dict) and document.get("schema") == SCHEMA \
        else None


def is_complete(folder: Path, spec, inputs: dict[str, str]) -> bool:
    """True when the folder holds this case's finished result for exactly these inputs."""
    record = read_record(folder)
    if record is None or record.get("key") != key(spec, inputs):
        return False
    marker = read_marker(folder)
    files = record.get("files")
    if marker is None or marker.get("command") != spec.task or not isinstance(files, dict) \
            or not files or marker.get("files") != files:
        return False
    for name, digest in files.items():
        path = folder / name
        if digest is None or not path.is_file() or sha256_file(path) != digest:
            return False
    return True


def write_record(folder: Path, spec, inputs: dict[str, str], summary: str,
                 seconds: float, warnings: list[str]) -> None:
    """Record the finished case (after its folder was sealed)."""
    marker = read_marker(folder) or {}
    document = {"schema": SCHEMA, "case": spec.case, "key": key(spec, inputs),
                "command": ["mskai", *spec.argv, "--out", str(folder)],
                "finished": datetime.now(UTC).isoformat(timespec="seconds"),
                "seconds": round(seconds, 3), "summary": summary, "warnings": warnings,
                "files": marker.get("files", {})}
    tmp = folder / (RECORD + ".tmp")
    tmp.write_text(json.dumps(document, indent=1) + "\n", encoding="utf-8")
    tmp.replace(folder / RECORD)
