"""The ``--out`` folder of a command: checked before any work, never taking a user's file.

Rules (docs/contract.md, "Output folder"):

- ``--out`` may be missing (it is created), empty, or an earlier mskai result of the same
  command, recognised by the marker file ``.mskai-result.json`` that mskai writes into every
  output folder. Anything else is refused unless ``--overwrite`` is given.
- The marker records the sha256 of every file mskai wrote. A result file that the user changed
  since, or that mskai did not write, is never replaced without ``--overwrite``.
- Even with ``--overwrite``, mskai only writes its own output file names; it never deletes.
- ``--out`` must not be a file, lie under a file, be a broken or looping symbolic link, be
  read-only, be (or contain) an input, or sit on a disk without room for the result.

:func:`check_out` does all of this before any computation and raises
:class:`~mskai.errors.InputError` with one line; :meth:`OutFolder.claim` and
:meth:`OutFolder.seal` write the marker around the writing of the results.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from mskai import __version__
from mskai.errors import InputError
from mskai.resources import sha256_file

MARKER = ".mskai-result.json"
MARKER_SCHEMA = "mskai.result-marker/1"
RESULT_FILES = ("segmentation.seg.nrrd", "measurements.json", "measurements.csv",
                "measurement_units.csv", "report.html")
RESPONSE_FILES = ("response.json", "response.html")
DEMO_FILES = ("index.html",)
# the commands that analyse one image: each writes a result folder, takes --dicom-out and
# can be a row of a `mskai batch` cohort
IMAGE_COMMANDS = ("tumor", "cartilage", "fracture", "radiomics")
OUTPUT_FILES: dict[str, tuple[str, ...]] = {
    **dict.fromkeys(IMAGE_COMMANDS, RESULT_FILES), "response": RESPONSE_FILES,
    "demo": DEMO_FILES,
}
MIN_FREE_BYTES = 64 * 2**20  # the report and the segmentation of a typical study, with room


def output_files(command: str, dicom_out: bool = False) -> tuple[str, ...]:
    """The files ``mskai COMMAND`` writes; ``--dicom-out`` adds ``segmentation.dcm`` (and
    ``measurements_sr.dcm`` when the SR writer is installed), recorded in the marker too."""
    names = OUTPUT_FILES.get(command, ())
    if dicom_out and command in IMAGE_COMMANDS:
        from mskai.results.dicom_seg import dicom_output_files

        names = (*names, *dicom_output_files())
    return names


Input = tuple[str, "str | Path | None"]


@dataclass
class OutFolder:
    """A checked ``--out`` folder of one command (``path`` exactly as the user gave it)."""

    path: Path
    command: str
    files: tuple[str, ...] = ()
    previous: dict[str, str | None] = field(default_factory=dict)
    created: str = field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="seconds"))

    def claim(self, names: Iterable[str] | None = None) -> Path:
        """Create the folder and mark it before writing: ``names`` are about to be written.

        A run that stops half-way leaves its files recorded as mskai's (hash ``null``), so
        the next run of the same command may replace them.
        """
        self.path.resolve().mkdir(parents=True, exist_ok=True)
        pending = {n: None for n in (self.files if names is None else names)}
        self._write_marker({**self.previous, **pending})
        return self.path

    def seal(self, names: Iterable[str] | None = None) -> None:
        """Record the sha256 of the files just written (relative names under the folder)."""
        files = dict(self.previous)
        for name in self.files if names is None else names:
            path = self.path / name
            files[name] = sha256_file(path) if path.is_file() else None
        self._write_marker(files)

    def _write_marker(self, files: dict[str, str | None]) -> None:
        document = {"schema": MARKER_SCHEMA, "command": self.command,
                    "mskai_version": __version__,
                    "created": self.created,
                    "updated": datetime.now(UTC).isoformat(timespec="seconds"),
                    "files": dict(sorted(files.items()))}
        (self.path / MARKER).write_text(json.dumps(document, indent=1) + "\n",
                                        encoding="utf-8")


def check_out(out: str | Path, command: str, inputs: Sequence[Input] = (), *,
              overwrite: bool = False, files: Sequence[str] | None = None,
              needed_bytes: int = MIN_FREE_BYTES) -> OutFolder:
    """Check ``--out`` for ``mskai COMMAND`` before any work; returns the folder to write.

    ``inputs`` are ``(role, path)`` pairs such as ``("image", args.image)``; ``None`` paths
    are skipped. Raises :class:`InputError` (one line: what is wrong and what to do).
    """
    out = Path(out)
    names = tuple(OUTPUT_FILES.get(command, ()) if files is None else files)
    resolved = _resolve(out)
    _refuse_inputs(out, resolved, inputs)
    existing = _existing_folder(out, resolved)
    _probe_writable(out, existing, resolved)
    _check_free_space(out, existing, needed_bytes)
    folder = OutFolder(out, command, names)
    if existing == resolved:
        folder.previous = _check_contents(out, resolved, command, names, overwrite)
        marker = read_marker(resolved)
        if folder.previous and marker and isinstance(marker.get("created"), str):
            folder.created = marker["created"]
    return folder


def read_marker(folder: str | Path) -> dict[str, Any] | None:
    """The marker of an mskai output folder, or ``None`` (missing or unreadable)."""
    try:
        document = json.loads((Path(folder) / MARKER).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(document, dict) or not isinstance(document.get("command"), str):
        return None
    if not isinstance(document.get("files"), dict):
        document["files"] = {}
    return document


# ----- the checks -------------------------------------------------------------------------
def _resolve(out: Path) -> Path:
    try:
        resolved = out.resolve()
    except (RuntimeError, OSError) as exc:  # RuntimeError: symlink loop (Python < 3.13)
        if "loop" in str(exc).lower() or getattr(exc, "errno", None) == errno.ELOOP:
            raise InputError(f"--out {out} is a symbolic link loop; remove the link or give "
                             "another folder path") from None
        raise InputError(f"--out {out} cannot be used: {_reason(exc)}; give a plain folder "
                         "path (created if missing)") from None
    if out.is_symlink() and not os.path.lexists(resolved):
        raise InputError(f"--out {out} is a symbolic link to {resolved}, which does not "
                         "exist; create that folder or give another --out") from None
    return resolved


def _refuse_inputs(out: Path, resolved: Path, inputs: Sequence[Input]) -> None:
    for role, path in inputs:
        if path is None:
            continue
        try:
            source = Path(path).resolve()
        except (RuntimeError, OSError):
            continue  # the reader reports a broken input path itself
        if source == resolved:
            raise InputError(f"--out {out} is the input {role} itself; give a separate "
                             "output folder, e.g. --out results")
        if source.is_relative_to(resolved):
            raise InputError(f"--out {out} contains the input {role} {path}; give an output "
                             "folder that holds none of the inputs, e.g. a new folder")


def _existing_folder(out: Path, resolved: Path) -> Path:
    """The folder itself when it exists, else the nearest existing folder above it."""
    try:
        if resolved.exists():
            if not resolved.is_dir():
                raise InputError(f"--out {out} is a file, not a folder; give a folder path "
                                 "(created if missing)")
            return resolved
        ancestor = next(p for p in resolved.parents if p.exists())
    except OSError as exc:
        raise InputError(f"--out {out} cannot be used: {_reason(exc)}; give a folder you "
                         "can write to") from None
    if not ancestor.is_dir():
        raise InputError(f"--out {out} lies under the file {ancestor}, which is not a folder; "
                         "give a folder path (created if missing)")
    return ancestor


def _probe_writable(out: Path, folder: Path, resolved: Path) -> None:
    try:
        handle, probe = tempfile.mkstemp(prefix=".mskai-probe-", dir=folder)
        os.close(handle)
        os.unlink(probe)
    except OSError as exc:
        where = "" if folder == resolved else f" (its parent {folder} is read-only)"
        raise InputError(f"--out {out} is not writable{where}: {_reason(exc)}; give a folder "
                         "you can write to") from None


def _check_free_space(out: Path, folder: Path, needed: int) -> None:
    try:
        free = shutil.disk_usage(folder).free
    except OSError:
        return  # cannot tell: the writers report a full disk themselves
    if free < needed:
        raise InputError(f"--out {out} is on a disk with only {free / 2**20:.0f} MB free and "
                         f"the result needs about {needed / 2**20:.0f} MB; free some space or "
                         "give --out on another disk")


def _check_contents(out: Path, folder: Path, command: str, names: Sequence[str],
                    overwrite: bool) -> dict[str, str | None]:
    """The files the marker already records; refuses a folder that is not ours to write."""
    try:
        entries = sorted(p.name for p in folder.iterdir())
    except OSError as exc:
        raise InputError(f"--out {out} cannot be listed: {_reason(exc)}; give a folder you "
                         "can read and write") from None
    if not entries:
        return {}
    marker = read_marker(folder)
    recorded: dict[str, str | None] = dict(marker["files"]) if marker else {}
    if overwrite:
        return recorded if marker and marker["command"] == command else {}
    again = f"give a new or empty folder, or add --overwrite to replace mskai's {command} files"
    if marker is None:
        shown = ", ".join(entries[:3]) + (", ..." if len(entries) > 3 else "")
        raise InputError(f"--out {out} already holds files mskai did not write ({shown}); "
                         f"{again} there (other files are kept)")
    if marker["command"] != command:
        raise InputError(f"--out {out} holds the result of 'mskai {marker['command']}', not "
                         f"'mskai {command}'; {again} there")
    for name in names:
        path = folder / name
        if not (path.exists() or path.is_symlink()):
            continue
        if name not in recorded:
            raise InputError(f"--out {out} holds a {name} that mskai did not write; move it "
                             f"away or add --overwrite to replace it")
        expected = recorded[name]
        if expected is not None and (not path.is_file() or sha256_file(path) != expected):
            raise InputError(f"--out {out}: {name} was changed after mskai wrote it; move it "
                             f"away or add --overwrite to replace it")
    return recorded


def _reason(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__
