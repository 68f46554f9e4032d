"""Running long jobs with progress events and cancellation, in-process or in a child process.

A job is JSON: ``{"task": "mskai.runner.jobs:sleep_steps", "args": {...}}``. The task is a
function in the ``mskai`` package marked with :func:`job`; nothing else can be named, so a
job file can never import or call arbitrary code. The task is called as
``task(**args, progress=progress, cancel=cancel)`` and returns a JSON-able dict of outputs.

Events (dicts, JSON lines between processes)::

    {"event": "progress", "fraction": 0.4, "message": "window 4 of 10"}
    {"event": "done", "outputs": {...}}
    {"event": "error", "kind": "input" | "internal", "message": "..."}
    {"event": "cancelled"}
"""

from __future__ import annotations

import importlib
import queue
import re
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import Any

from mskai.errors import CancelledError, InputError, ModelError

_TASK_NAME = re.compile(r"^mskai(\.[A-Za-z_][A-Za-z0-9_]*)*:[A-Za-z_][A-Za-z0-9_]*$")
JOB_MARK = "__mskai_job__"


def job(function: Callable) -> Callable:
    """Mark a function as runnable by name from a job (the whitelist is opt-in)."""
    setattr(function, JOB_MARK, True)
    return function


def check_job(spec: Any) -> tuple[str, dict[str, Any]]:
    """``(task name, args)`` of a job dict; InputError if it is malformed."""
    if not isinstance(spec, dict) or not isinstance(spec.get("task"), str):
        raise InputError("a job must be a JSON object with a 'task' name; fix the job.")
    if not _TASK_NAME.match(spec["task"]):
        raise InputError(f"task {spec['task']!r} is not of the form 'mskai.module:function'; "
                         "only mskai tasks can be run.")
    args = spec.get("args", {})
    if not isinstance(args, dict):
        raise InputError("job 'args' must be a JSON object; fix the job.")
    return spec["task"], args


def resolve_task(name: str) -> Callable:
    """The function a task name refers to, only if it lives in mskai and is marked a job."""
    module_name, _, function_name = name.partition(":")
    if not _TASK_NAME.match(name):
        raise InputError(f"task {name!r} is not of the form 'mskai.module:function'; only "
                         "mskai tasks can be run.")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise InputError(f"task module {module_name!r} does not exist; check the job's "
                         "task name.") from exc
    function = getattr(module, function_name, None)
    if not callable(function) or not getattr(function, JOB_MARK, False):
        raise InputError(f"{name!r} is not a registered mskai job; check the job's task "
                         "name.")
    return function


def progress_event(fraction: float, message: str = "") -> dict[str, Any]:
    return {"event": "progress", "fraction": float(fraction), "message": str(message)}


def execute(spec: dict[str, Any], emit: Callable[[dict[str, Any]], None],
            cancel: threading.Event) -> int:
    """Run a job, sending its events to ``emit``; returns an exit code (0, 1, 2)."""
    try:
        name, args = check_job(spec)
        outputs = resolve_task(name)(**args, progress=lambda f, m="": emit(
            progress_event(f, m)), cancel=cancel)
        emit({"event": "done", "outputs": outputs if outputs is not None else {}})
        return 0
    except CancelledError:
        emit({"event": "cancelled"})
        return 1
    except (InputError, ModelError) as exc:
        emit({"event": "error", "kind": "input", "message": str(exc)})
        return 2
    except Exception as exc:  # a job boundary: report, never crash the host application
        emit({"event": "error", "kind": "internal",
              "message": f"{type(exc).__name__}: {exc}"})
        return 1


class ProcessRunner(ABC):
    """Start one job, collect its events, cancel it, wait for it."""

    @abstractmethod
    def start(self, job: dict[str, Any]) -> None:
        """Begin running ``job``; returns at once."""

    @abstractmethod
    def poll(self) -> list[dict[str, Any]]:
        """Events received since the last call, oldest first."""

    @abstractmethod
    def cancel(self) -> None:
        """Stop the job; a ``cancelled`` event follows."""

    @abstractmethod
    def wait(self, timeout: float | None = None) -> bool:
        """Block until the job has ended (True) or ``timeout`` seconds passed (False)."""

    def run(self, job: dict[str, Any], timeout: float | None = None) -> list[dict[str, Any]]:
        """Start, wait and return all events (convenience for scripts and tests)."""
        self.start(job)
        self.wait(timeout)
        return self.poll()


class QueuedRunner(ProcessRunner):
    """A runner whose events arrive on a queue, put there by a thread of its own."""

    def __init__(self) -> None:
        self._events: queue.Queue[dict[str, Any]] = queue.Queue()

    def poll(self) -> list[dict[str, Any]]:
        events = []
        while True:
            try:
                events.append(self._events.get_nowait())
            except queue.Empty:
                return events
