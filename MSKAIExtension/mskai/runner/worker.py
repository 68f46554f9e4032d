"""``python -m mskai.runner.worker``: run the job read as JSON from stdin.

Events go to stdout as JSON lines and nothing else does: file descriptor 1 is pointed at
stderr before the task runs, so prints of the task or of native libraries cannot corrupt
the stream. Exit code: 0 done, 2 bad input, 1 internal error.
"""

from __future__ import annotations

import json
import os
import sys
import threading
from pathlib import Path
from typing import Any, TextIO

from mskai.runner.base import execute


def _jsonable(value: Any) -> Any:
    """JSON fallback for numpy scalars/arrays and paths in task outputs."""
    if hasattr(value, "tolist"):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def event_writer(stream: TextIO):
    """A thread-safe ``emit(event)`` writing one flushed JSON line per event."""
    lock = threading.Lock()

    def emit(event: dict[str, Any]) -> None:
        line = json.dumps(event, default=_jsonable)
        with lock:
            stream.write(line + "\n")
            stream.flush()

    return emit


def _private_stdout() -> TextIO:
    """A handle on the real stdout for events, with fd 1 and sys.stdout sent to stderr."""
    events = os.fdopen(os.dup(sys.stdout.fileno()), "w", encoding="utf-8", buffering=1)
    sys.stdout.flush()
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    sys.stdout = sys.stderr
    return events


def main() -> int:
    emit = event_writer(_private_stdout())
    try:
        spec = json.loads(sys.stdin.read())
    except json.JSONDecodeError as exc:
        emit({"event": "error", "kind": "input",
              "message": f"the job on stdin is not valid JSON ({exc}); send one JSON object."})
        return 2
    return execute(spec, emit, threading.Event())


if __name__ == "__main__":
    raise SystemExit(main())
