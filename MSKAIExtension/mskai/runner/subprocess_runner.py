"""Run a job in a child Python process that streams JSON-line events on its stdout.

The child starts its own session (POSIX) or process group (Windows), so cancel can end
the worker together with every process it started: SIGTERM to the group, a short grace,
then SIGKILL to the group; on Windows ``taskkill /T /F``, falling back to killing the
worker alone. (A grandchild that deliberately leaves the session escapes; none of ours do.)
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections import deque
from pathlib import Path
from typing import Any

from mskai.runner.base import QueuedRunner, check_job

TERMINAL = ("done", "error", "cancelled")


class SubprocessRunner(QueuedRunner):
    """``python -m mskai.runner.worker`` with the job on stdin."""

    def __init__(self, python: str | None = None, grace_s: float = 0.3) -> None:
        self.python = python or sys.executable
        self.grace_s = grace_s
        self.process: subprocess.Popen | None = None
        super().__init__()
        self._stderr: deque[str] = deque(maxlen=20)
        self._cancelled = threading.Event()
        self._finished = False
        self._readers: list[threading.Thread] = []
        self._killer: threading.Thread | None = None

    # ----- ProcessRunner ---------------------------------------------------------------
    def start(self, job: dict[str, Any]) -> None:
        if self.process is not None:
            raise RuntimeError("this runner already ran a job; create a new one")
        check_job(job)
        self.process = subprocess.Popen(
            [self.python, "-m", "mskai.runner.worker"], stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=_child_env(),
            **_new_group_kwargs())
        self._readers = [threading.Thread(target=self._read_events, daemon=True),
                         threading.Thread(target=self._read_stderr, daemon=True)]
        for reader in self._readers:
            reader.start()
        try:
            self.process.stdin.write(json.dumps(job).encode("utf-8"))
            self.process.stdin.close()
        except BrokenPipeError:  # the child died at once; the reader reports why
            pass

    def cancel(self) -> None:
        """Returns at once (a GUI thread calls it): the process tree is ended on a thread of
        its own, then a ``cancelled`` event follows."""
        if self.process is None or self._cancelled.is_set() or (
                self.process.poll() is not None and self._finished):
            return
        self._cancelled.set()
        self._killer = threading.Thread(target=kill_process_tree,
                                        args=(self.process, self.grace_s), daemon=True,
                                        name="mskai-job-cancel")
        self._killer.start()

    def wait(self, timeout: float | None = None) -> bool:
        if self.process is None:
            return True
        deadline = None if timeout is None else time.monotonic() + timeout
        for thread in (self._readers[0], self._killer):
            if thread is not None:
                thread.join(None if deadline is None else max(0.0, deadline - time.monotonic()))
        return not self._readers[0].is_alive()

    @property
    def pid(self) -> int | None:
        return None if self.process is None else self.process.pid

    # ----- stream readers --------------------------------------------------------------
    def _read_events(self) -> None:
        seen_terminal = False
        for raw in self.process.stdout:
            event = _parse(raw)
            if event is None:
                self._stderr.append(raw.decode("utf-8", "replace").rstrip())
                continue
            seen_terminal = seen_terminal or event.get("event") in TERMINAL
            self._events.put(event)
        code = self.process.wait()
        self._readers[1].join(5)
        if not seen_terminal:
            self._events.put(self._ending(code))
        self._finished = True

    def _ending(self, code: int) -> dict[str, Any]:
        if self._cancelled.is_set():
            return {"event": "cancelled"}
        tail = " | ".join(list(self._stderr)[-5:])
        return {"event": "error", "kind": "internal",
                "message": f"the worker process exited with code {code}: {tail}"}

    def _read_stderr(self) -> None:
        for raw in self.process.stderr:
            self._stderr.append(raw.decode("utf-8", "replace").rstrip())


def _parse(raw: bytes) -> dict[str, Any] | None:
    try:
        event = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError):
        return None
    return event if isinstance(event, dict) and "event" in event else None


def _child_env() -> dict[str, str]:
    """This environment, with the folder holding the mskai package first on PYTHONPATH."""
    env = dict(os.environ)
    package_parent = str(Path(__file__).resolve().parents[2])
    env["PYTHONPATH"] = os.pathsep.join(p for p in (package_parent, env.get("PYTHONPATH"))
                                        if p)
    env["PYTHONUNBUFFERED"] = "1"
    return env


def _new_group_kwargs() -> dict[str, Any]:
    if os.name == "nt":
        return {"creationflags": subprocess.CREATE_NEW_PROCESS_GROUP}
    return {"start_new_session": True}


def kill_process_tree(process: subprocess.Popen, grace_s: float = 0.3) -> None:
    """End ``process`` and all its descendants that stayed in its process group."""
    if os.name == "nt":
        _kill_tree_windows(process)
        return
    for sig, wait_s in ((signal.SIGTERM, grace_s), (signal.SIGKILL, None)):
        try:
            os.killpg(process.pid, sig)  # pgid == pid: the worker leads its own session
        except ProcessLookupError:
            break
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(wait_s)
    process.wait()


def _kill_tree_windows(process: subprocess.Popen) -> None:
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        subprocess.run(["taskkill", "/T", "/F", "/PID", str(process.pid)],
                       capture_output=True, timeout=10, check=False)
    if process.poll() is None:
        process.kill()
    process.wait()
