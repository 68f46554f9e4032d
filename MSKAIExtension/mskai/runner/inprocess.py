"""Run a job on a thread of this process (tests, the CLI)."""

from __future__ import annotations

import threading
from typing import Any

from mskai.runner.base import QueuedRunner, execute


class InProcessRunner(QueuedRunner):
    """Cancel is cooperative: the task sees the event and raises CancelledError."""

    def __init__(self) -> None:
        super().__init__()
        self._cancel = threading.Event()
        self._thread: threading.Thread | None = None
        self.exit_code: int | None = None

    def start(self, job: dict[str, Any]) -> None:
        if self._thread is not None:
            raise RuntimeError("this runner already ran a job; create a new one")
        self._thread = threading.Thread(target=self._run, args=(job,), daemon=True,
                                        name="mskai-job")
        self._thread.start()

    def _run(self, job: dict[str, Any]) -> None:
        self.exit_code = execute(job, self._events.put, self._cancel)

    def cancel(self) -> None:
        self._cancel.set()

    def wait(self, timeout: float | None = None) -> bool:
        if self._thread is None:
            return True
        self._thread.join(timeout)
        return not self._thread.is_alive()
