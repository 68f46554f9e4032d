"""Fingerprints of a case's inputs: what must be unchanged for a finished case to be skipped.

A file: the sha256 of its content. A folder (a DICOM series): the sha256 of its listing,
every file below it with its size and modification time, so that a resumed cohort of
large DICOM studies does not re-read them all; copying or touching a file re-runs the case.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from mskai.errors import InputError
from mskai.resources import sha256_file


def fingerprint(path: str | Path, role: str = "input") -> str:
    """``sha256:<hex>`` of a file's content or ``listing-sha256:<hex>`` of a folder."""
    path = Path(path)
    try:
        if path.is_dir():
            return "listing-sha256:" + _listing_sha256(path)
        return "sha256:" + sha256_file(path)
    except FileNotFoundError:
        raise InputError(f"the {role} {path} does not exist; fix the path in the cohort "
                         "table (relative to the CSV's folder)") from None
    except OSError as exc:
        raise InputError(f"the {role} {path} cannot be read ({exc.strerror or exc}); check "
                         "its permissions") from None


def _listing_sha256(folder: Path) -> str:
    digest = hashlib.sha256()
    entries = []
    for root, dirs, files in os.walk(folder):
        dirs.sort()
        for name in files:
            full = Path(root) / name
            stat = full.stat()
            entries.append(f"{full.relative_to(folder).as_posix()}\t{stat.st_size}\t"
                           f"{stat.st_mtime_ns}")
    for entry in sorted(entries):
        digest.update(entry.encode("utf-8") + b"\n")
    return digest.hexdigest()


def fingerprints(inputs: dict[str, str]) -> dict[str, str]:
    """The fingerprint of every path cell of a case (``{column: fingerprint}``)."""
    return {column: fingerprint(path, column.replace("_", " ")) for column, path
            in sorted(inputs.items())}
