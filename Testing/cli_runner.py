"""Running the ``mskai`` command in-process, as the tests of the command-line contract do."""

from __future__ import annotations

from pathlib import Path

from mskai.cli import main


def run_cli(capsys, *argv: str | Path) -> tuple[int, str, str]:
    """``mskai ARGV...``: (exit code, stdout, stderr). argparse usage errors count as exit
    codes too, as they do for a user at the shell."""
    try:
        code = main([str(a) for a in argv])
    except SystemExit as exc:
        code = int(exc.code)
    out, err = capsys.readouterr()
    return code, out, err
