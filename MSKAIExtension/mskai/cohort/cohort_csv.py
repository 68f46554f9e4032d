"""The cohort table of ``mskai batch``: one row per case, checked completely before any work.

Columns: ``case`` (the name of the case's result folder), ``task`` (tumor, cartilage,
fracture, radiomics), ``image`` (a file or DICOM folder), then optional columns named after
the task's command-line options with ``_`` for ``-`` (``seed_ras``, ``labels``, ``mask``,
``margin_mm``, ...). A point option that may be repeated takes several points separated by
``;``. Paths are relative to the CSV's folder (absolute paths are taken as they are); a
relative path may not lead out of that folder.

Each row becomes the argument list of the single-case command, parsed by the very parser
of ``mskai <task>``, so a cohort row means exactly what the same options mean on the
command line. Anything wrong with the table is one :class:`InputError` line naming the row.
"""

from __future__ import annotations

import argparse
import csv
import io
import re
from contextlib import redirect_stderr
from dataclasses import dataclass, field
from pathlib import Path

from mskai.errors import InputError
from mskai.results.out_folder import IMAGE_COMMANDS

TASKS = IMAGE_COMMANDS
REQUIRED = ("case", "task", "image")
# not cohort columns: the batch gives each case its own --out, and --overwrite to all cases
NOT_COLUMNS = {"help", "out", "overwrite"}
# names the batch folder uses itself; a case may not be called so
RESERVED_NAMES = {"cohort_measurements.csv", "failures.csv", "index.html", ".mskai-result.json"}
_SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")
ROW_SEPARATOR = ";"


@dataclass(frozen=True)
class CaseSpec:
    """One case: what to run and on which inputs (all paths absolute)."""

    case: str
    task: str
    line: int
    argv: tuple[str, ...]  # ``mskai <task> ...`` without --out
    options: dict[str, str] = field(default_factory=dict)  # non-path cells, as written
    inputs: dict[str, str] = field(default_factory=dict)  # path cells -> absolute path


def task_actions(task: str) -> dict[str, argparse.Action]:
    """The options of ``mskai <task>`` by column name (argparse ``dest``), in parser order."""
    from mskai.cli import build_parser

    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return {a.dest: a for a in sub.choices[task]._actions if a.dest not in NOT_COLUMNS}


def read_cohort(csv_path: str | Path) -> list[CaseSpec]:
    """Every case of the cohort table, or InputError (one line) for the first problem."""
    csv_path = Path(csv_path)
    rows, header = _read_rows(csv_path)
    actions = {task: task_actions(task) for task in TASKS}
    known = set(REQUIRED).union(*(set(a) for a in actions.values()))
    unknown = [c for c in header if c not in known]
    if unknown:
        raise InputError(f"{csv_path}: unknown column {unknown[0]!r}; the columns are case, "
                         f"task, image and the task options with _ for -, e.g. seed_ras, "
                         f"labels, mask ({', '.join(sorted(known - set(REQUIRED)))})")
    missing = [c for c in REQUIRED if c not in header]
    if missing:
        raise InputError(f"{csv_path}: the column {missing[0]!r} is missing; the first line "
                         "must name at least the columns case,task,image")
    base = csv_path.resolve().parent
    specs: list[CaseSpec] = []
    seen: dict[str, int] = {}
    for line, row in rows:
        spec = _case(csv_path, base, line, row, actions)
        other = seen.get(spec.case.lower())
        if other is not None:
            raise InputError(f"{csv_path} line {line}: the case name {spec.case!r} is used "
                             f"again (first on line {other}); give every row its own case name")
        seen[spec.case.lower()] = line
        specs.append(spec)
    if not specs:
        raise InputError(f"{csv_path} has no cases; add one row per case under the header "
                         "case,task,image,...")
    return specs


def _read_rows(csv_path: Path) -> tuple[list[tuple[int, dict[str, str]]], list[str]]:
    try:
        text = csv_path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise InputError(f"the cohort table {csv_path} does not exist; give a CSV file with "
                         "one row per case") from None
    except IsADirectoryError:
        raise InputError(f"{csv_path} is a folder; give the cohort CSV file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"the cohort table {csv_path} cannot be read ({exc}); save it as "
                         "UTF-8 CSV") from None
    reader = csv.reader(io.StringIO(text))
    try:
        records = [(reader.line_num, r) for r in reader]
    except csv.Error as exc:
        raise InputError(f"{csv_path} is not a valid CSV file ({exc})") from None
    records = [(n, r) for n, r in records if any(cell.strip() for cell in r)]
    if not records:
        raise InputError(f"{csv_path} is empty; its first line must be the header "
                         "case,task,image,...")
    header = [c.strip().lower().replace("-", "_") for c in records[0][1]]
    doubled = sorted({c for c in header if header.count(c) > 1})
    if doubled or "" in header:
        what = f"the column {doubled[0]!r} twice" if doubled else "a column without a name"
        raise InputError(f"{csv_path}: the header has {what}; name every column once")
    rows = []
    for line, record in records[1:]:
        if len(record) > len(header):
            raise InputError(f"{csv_path} line {line} has {len(record)} cells but the header "
                             f"names {len(header)} columns; quote cells that contain commas")
        cells = [c.strip() for c in record] + [""] * (len(header) - len(record))
        rows.append((line, dict(zip(header, cells, strict=True))))
    return rows, header


def _case(csv_path: Path, base: Path, line: int, row: dict[str, str],
          actions: dict[str, dict[str, argparse.Action]]) -> CaseSpec:
    where = f"{csv_path} line {line}"
    case, task = row["case"], row["task"].lower()
    if not _SAFE_NAME.match(case) or case.lower() in RESERVED_NAMES:
        raise InputError(f"{where}: the case name {case!r} cannot be a folder name; use "
                         "letters, digits, '_', '-' and '.', starting with a letter or digit")
    where = f"{where} (case {case})"
    if task not in TASKS:
        raise InputError(f"{where}: unknown task {row['task']!r}; use one of "
                         f"{', '.join(TASKS)}")
    if not row["image"]:
        raise InputError(f"{where}: the image cell is empty; give the image file or DICOM "
                         "folder, relative to the CSV's folder")
    own = actions[task]
    argv: list[str] = [task]
    options: dict[str, str] = {}
    inputs: dict[str, str] = {}
    for column, value in row.items():
        if column in ("case", "task") or not value:
            continue
        action = own.get(column)
        if action is None:
            raise InputError(f"{where}: the column {column} is not an option of 'mskai {task}'"
                             f"; leave it empty for this row")
        if action.type is Path:
            inputs[column] = str(_path(where, base, column, value))
        else:
            options[column] = value
    for column, action in own.items():  # parser order: positionals first, as the CLI has them
        if column in inputs:
            value = inputs[column]
        elif column in options:
            value = options[column]
        else:
            continue
        if not action.option_strings:
            argv.append(value)
            continue
        flag = action.option_strings[-1]
        if isinstance(action, argparse._AppendAction):
            argv += [f"{flag}={v.strip()}" for v in value.split(ROW_SEPARATOR) if v.strip()]
        elif action.nargs == 0:
            if value.lower() in ("1", "true", "yes", "y"):
                argv.append(flag)
            elif value.lower() not in ("0", "false", "no", "n"):
                raise InputError(f"{where}: {column} is {value!r}; write true or false")
        else:
            argv.append(f"{flag}={value}")
    _check_parses(where, argv)
    return CaseSpec(case=case, task=task, line=line, argv=tuple(argv),
                    options=dict(sorted(options.items())), inputs=dict(sorted(inputs.items())))


def _path(where: str, base: Path, column: str, value: str) -> Path:
    given = Path(value).expanduser()
    if given.is_absolute():
        return given
    path = Path(_normalise(base / given))
    if not path.is_relative_to(base):
        raise InputError(f"{where}: the {column} path {value!r} leads out of the CSV's folder "
                         f"{base}; keep relative paths inside it, or write an absolute path")
    return path


def _normalise(path: Path) -> str:
    import os

    return os.path.normpath(path)


def _check_parses(where: str, argv: list[str]) -> None:
    """The row's options as ``mskai <task>`` would parse them: same types, same choices."""
    from mskai.cli import build_parser

    message = io.StringIO()
    try:
        with redirect_stderr(message):
            build_parser().parse_args([*argv, "--out", "unused"])
    except SystemExit:
        text = message.getvalue().strip().splitlines()
        reason = text[-1] if text else "the options do not parse"
        reason = re.sub(r"^mskai \w+: error: ", "", reason)
        reason = re.sub(r" \(see 'mskai \w+ --help'\)$", "", reason)
        raise InputError(f"{where}: {reason} (the columns mean the options of "
                         f"'mskai {argv[0]} --help')") from None
