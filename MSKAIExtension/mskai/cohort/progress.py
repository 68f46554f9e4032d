"""Progress of a batch on stderr: a rich progress bar on a terminal, plain lines otherwise.

Plain lines (a log file, a batch job's output) read ``[3/6] case X done (4.2 s)``.
"""

from __future__ import annotations

import sys
from typing import Any, TextIO


class BatchProgress:
    def __init__(self, total: int, stream: TextIO | None = None) -> None:
        self.total, self.count = total, 0
        self.stream = stream or sys.stderr
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self._bar = None
        self._task = None

    def __enter__(self) -> BatchProgress:
        if self.tty:
            from rich.console import Console
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TextColumn,
                TimeElapsedColumn,
                TimeRemainingColumn,
            )

            self._bar = Progress(TextColumn("{task.description}"), BarColumn(),
                                 MofNCompleteColumn(), TimeElapsedColumn(),
                                 TimeRemainingColumn(),
                                 console=Console(file=self.stream), transient=False)
            self._bar.__enter__()
            self._task = self._bar.add_task("mskai batch", total=self.total)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._bar is not None:
            self._bar.__exit__(None, None, None)
            self._bar = None

    def say(self, text: str) -> None:
        if self._bar is not None:
            self._bar.console.print(text, markup=False, highlight=False)
        else:
            self.stream.write(text + "\n")
            self.stream.flush()

    def case_finished(self, outcome: dict[str, Any]) -> None:
        self.count += 1
        line = f"[{self.count}/{self.total}] case {outcome['case']} {describe(outcome)}"
        if self._bar is not None:
            self._bar.update(self._task, advance=1,
                             description=f"mskai batch: {outcome['case']} {outcome['status']}")
            if outcome["status"] == "failed":
                self.say(line)
        else:
            self.say(line)


def describe(outcome: dict[str, Any]) -> str:
    status = outcome["status"]
    if status == "failed":
        return f"failed ({outcome['exit_class']}): {outcome['message']}"
    if status == "skipped":
        return "skipped (done before with the same inputs and options)"
    return f"done ({outcome.get('seconds', 0.0):.1f} s)"
