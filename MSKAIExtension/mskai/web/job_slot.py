"""One long job at a time for the web page: started on the job runner, polled from the
server's event loop, its progress and errors shown in the page, cancelled by a button.

The job runs on :class:`mskai.runner.inprocess.InProcessRunner` (a thread), so the page
keeps drawing; results are written to the scene only here, on the event loop's thread.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from mskai.runner.inprocess import InProcessRunner
from mskai.web import state as names

POLL_S = 0.02
Done = Callable[[dict[str, Any]], None]


class JobSlot:
    """Runs jobs one after another; ``state`` gets ``busy``, ``progress`` and ``message``."""

    def __init__(self, state: Any) -> None:
        self._state = state
        self._runner: InProcessRunner | None = None
        self._cancelled = False

    @property
    def busy(self) -> bool:
        return self._runner is not None

    def start(self, spec: dict[str, Any], on_done: Done, what: str,
              on_end: Callable[[], None] | None = None) -> bool:
        """Start ``spec``; ``on_done(outputs)`` runs on the event loop when it succeeds,
        ``on_end()`` after every ending. False when a job is already running."""
        if self._runner is not None:
            return False
        self._runner = InProcessRunner()
        self._cancelled = False
        self._show(True, 0.0, f"{what}: starting")
        self._runner.start(spec)
        asyncio.get_event_loop().create_task(self._watch(on_done, what, on_end))
        return True

    def cancel(self) -> None:
        """Stop the job; whatever it still returns is not written (the person cancelled)."""
        if self._runner is not None:
            self._cancelled = True
            self._runner.cancel()

    async def _watch(self, on_done: Done, what: str, on_end: Callable[[], None] | None) -> None:
        runner = self._runner
        try:
            while True:
                for event in runner.poll():
                    kind = event.get("event")
                    if kind == "progress":
                        self._show(True, float(event.get("fraction", 0.0)),
                                   f"{what}: {event.get('message', '')}")
                    elif kind in ("done", "error", "cancelled"):
                        self._runner = None
                        self._finish(event, on_done, what)
                        return
                await asyncio.sleep(POLL_S)
        finally:
            self._runner = None
            if on_end is not None:
                on_end()

    def _finish(self, event: dict[str, Any], on_done: Done, what: str) -> None:
        kind = event["event"]
        if kind == "cancelled" or self._cancelled:
            self._show(False, 0.0, f"{what}: cancelled")
            return
        if kind == "error":
            self._show(False, 0.0, f"{what}: {event.get('message', 'failed')}")
            return
        try:
            on_done(dict(event.get("outputs") or {}))
            self._show(False, 1.0, f"{what}: done")
        except Exception as exc:  # the page shows one line; the server keeps running
            self._show(False, 0.0, f"{what}: {exc}")

    def _show(self, busy: bool, fraction: float, message: str) -> None:
        with self._state:
            self._state[names.BUSY] = busy
            self._state[names.PROGRESS] = round(100.0 * fraction, 1)
            self._state[names.MESSAGE] = message
