"""How every MSK AI module widget runs a job: one runner fallback, one state machine (no Qt).

The widget hands :meth:`JobController.start` a ``prepare()`` call that reads its nodes and
writes the job's inputs on the GUI thread (a :class:`MSKAILib.job_bridge.PendingJob`). The
job then runs on a runner from :func:`runnerFactories` -- a child process on Slicer's
PythonSlicer, or when that cannot start, :class:`mskai.runner.inprocess.InProcessRunner` on a
worker thread -- and a repeating timer (``qt.QTimer`` in Slicer, a fake in the tests) calls
:meth:`JobController.poll`, which relays progress and, once the job has ended, completes the
pending job (the nodes are written on the GUI thread, in the timer's slot). Nothing blocks
or re-enters the GUI thread: no wait loop, no ``processEvents``.

States: idle -> running -> (cancelling ->) finished | failed | cancelled; a new start is
refused while running or cancelling. The actions the widget registers (every control that
touches the job's nodes) are disabled while a job is active, the Cancel action only enabled
while it runs.
"""

from __future__ import annotations

import contextlib
import enum
import logging
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from mskai.errors import CancelledError, InputError

POLL_INTERVAL_MS = 100
#: A cancelled job that has not ended after this long is left to end by itself.
CANCEL_TIMEOUT_S = 10.0
CANCEL_ACTION = "cancelButton"
TERMINAL_EVENTS = ("done", "error", "cancelled")

RunnerFactory = Callable[[], Any]
#: ``(interval ms, slot) -> timer`` with ``start()`` and ``stop()``; the slot runs repeatedly.
TimerFactory = Callable[[int, Callable[[], None]], Any]
Prepare = Callable[[], Any]

logger = logging.getLogger(__name__)


class JobState(enum.Enum):
    IDLE = "idle"
    RUNNING = "running"
    CANCELLING = "cancelling"
    FINISHED = "finished"
    FAILED = "failed"
    CANCELLED = "cancelled"


ACTIVE_STATES = frozenset({JobState.RUNNING, JobState.CANCELLING})


# --- the one runner fallback ---------------------------------------------------------------


def inProcessRunner() -> Any:
    """A runner on a worker thread of this process (the fallback)."""
    from mskai.runner.inprocess import InProcessRunner

    return InProcessRunner()


def runnerFactories(slicerHome: str | None = None,
                    executable: str | None = None) -> list[RunnerFactory]:
    """The runners every module tries, in order: a child process on PythonSlicer (when
    there is one, see :func:`MSKAILib.python_launcher.findPythonLauncher`), then an
    in-process runner on a worker thread. Never the GUI thread."""
    from MSKAILib.python_launcher import subprocessRunnerFactory

    subprocessFactory = subprocessRunnerFactory(slicerHome, executable)
    return [*([subprocessFactory] if subprocessFactory else []), inProcessRunner]


def startRunner(job: dict[str, Any], factories: Sequence[RunnerFactory]) -> Any:
    """The first runner of ``factories`` that starts ``job``; a runner that cannot start
    (its process cannot be created) gives way to the next. A bad job is not retried."""
    failures = []
    for factory in factories:
        try:
            runner = factory()
            runner.start(job)
            return runner
        except (OSError, subprocess.SubprocessError) as exc:
            logger.warning("MSK AI: %s could not start the job (%s); trying the next runner",
                           getattr(factory, "__name__", factory), exc)
            failures.append(f"{type(exc).__name__}: {exc}")
    raise RuntimeError("No job runner could start: " + ("; ".join(failures) or "none given"))


# --- the state machine -------------------------------------------------------------------


class JobController:
    """One job at a time for one module widget, polled by a timer."""

    def __init__(self, timerFactory: TimerFactory, factories: Sequence[RunnerFactory],
                 actions: Mapping[str, Callable[[], bool]] | None = None,
                 intervalMs: int = POLL_INTERVAL_MS, cancelTimeoutS: float = CANCEL_TIMEOUT_S,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.factories = list(factories)
        self.cancelTimeoutS = cancelTimeoutS
        self._clock = clock
        self._timer = timerFactory(intervalMs, self.poll)
        self._actions: dict[str, Callable[[], bool]] = dict(actions or {})
        self.state = JobState.IDLE
        self.fraction = 0.0
        self.message = ""
        self.error: BaseException | None = None
        self.result: Any = None
        self.runner: Any = None
        self._pending: Any = None
        self._onSuccess: Callable[[Any], None] | None = None
        self._completing: Callable[[], Any] = contextlib.nullcontext
        self._cancelDeadline = 0.0
        #: ``onProgress(fraction, message)`` and ``onStateChanged(state)``: the widget's view.
        self.onProgress: Callable[[float, str], None] | None = None
        self.onStateChanged: Callable[[JobState], None] | None = None

    # --- what the GUI shows ------------------------------------------------------------

    @property
    def running(self) -> bool:
        """A job is running or being cancelled: nothing may touch its nodes."""
        return self.state in ACTIVE_STATES

    @property
    def canCancel(self) -> bool:
        return self.state is JobState.RUNNING

    def setActions(self, actions: Mapping[str, Callable[[], bool]]) -> None:
        """``{action name: when it may be used}``: every control that touches the nodes."""
        self._actions = dict(actions)

    def actionStates(self) -> dict[str, bool]:
        """Which actions are enabled now: none of them while a job is active, each by its
        own condition otherwise; the Cancel action only while a job runs."""
        states = {name: not self.running and bool(condition())
                  for name, condition in self._actions.items()}
        states[CANCEL_ACTION] = self.canCancel
        return states

    @property
    def statusText(self) -> str:
        if self.state is JobState.FAILED:
            return "Check the inputs" if isinstance(self.error, InputError) else "Failed"
        return {JobState.IDLE: "", JobState.CANCELLING: "Cancelling...",
                JobState.FINISHED: "Done", JobState.CANCELLED: "Cancelled"}.get(
                    self.state, self.message)

    # --- control ---------------------------------------------------------------------

    def start(self, prepare: Prepare, onSuccess: Callable[[Any], None] | None = None,
              completing: Callable[[], Any] | None = None) -> bool:
        """Prepare a job (on this thread), start it on the first runner that can, and
        return True; False when refused (a job is already active) or it could not start
        (the state is then failed, or cancelled, with :attr:`error` saying why).

        ``completing()`` is a context manager around writing the results (the widget uses
        it to tell its own segment writes from hand edits); ``onSuccess(result)`` follows.
        """
        if self.running:
            logger.info("MSK AI: a job is running; the new one is refused")
            return False
        self.error, self.result, self.runner, self._pending = None, None, None, None
        self._onSuccess = onSuccess
        self._completing = completing or contextlib.nullcontext
        self.fraction, self.message = 0.0, "Starting"
        self._setState(JobState.RUNNING)
        try:
            self._pending = prepare()
            self.runner = startRunner(self._pending.job, self.factories)
        except CancelledError as exc:
            self._end(JobState.CANCELLED, exc)
            return False
        except Exception as exc:  # a GUI boundary: report, never leave the job half-started
            self._end(JobState.FAILED, exc)
            return False
        self._progress(0.0, "Starting")
        self._timer.start()
        return True

    def cancel(self) -> bool:
        """Ask the running job to stop; it is cancelled once the runner says so (or after
        :attr:`cancelTimeoutS`). False when no job runs."""
        if self.state is not JobState.RUNNING:
            return False
        self._cancelDeadline = self._clock() + self.cancelTimeoutS
        self._setState(JobState.CANCELLING)
        try:
            self.runner.cancel()
        except Exception:
            logger.exception("MSK AI: cancelling the job failed")
        return True

    def shutdown(self) -> None:
        """Stop at once (scene closed, module cleaned up): an active job is cancelled and
        its results are never written."""
        if not self.running:
            self._timer.stop()
            return
        if self.runner is not None:
            try:
                self.runner.cancel()
            except Exception:
                logger.exception("MSK AI: cancelling the job failed")
        self._end(JobState.CANCELLED, CancelledError("Cancelled: the scene was closed"))

    def poll(self) -> None:
        """The timer's slot: relay progress; complete the job once it has ended."""
        if not self.running or self.runner is None:
            self._timer.stop()
            return
        try:
            events = self.runner.poll()
        except Exception as exc:
            self._end(JobState.FAILED, exc)
            return
        for event in events:
            kind = event.get("event")
            if kind == "progress":
                self._progress(float(event.get("fraction", 0.0)), str(event.get("message", "")))
            elif kind in TERMINAL_EVENTS:
                self._ended(event)
                return
        if self.state is JobState.CANCELLING and self._clock() >= self._cancelDeadline:
            logger.warning("MSK AI: the cancelled job has not stopped yet; it is left to end "
                           "by itself and its results are discarded")
            self._end(JobState.CANCELLED, CancelledError("Cancelled"))

    # --- internals -------------------------------------------------------------------

    def _ended(self, event: Mapping[str, Any]) -> None:
        from MSKAILib.job_bridge import jobOutcome

        self._timer.stop()
        pending, self._pending = self._pending, None
        try:
            if self.state is JobState.CANCELLING:  # the user cancelled: results are discarded
                raise CancelledError(f"Cancelled: {pending.what}")
            outputs = jobOutcome(event, pending.what)
            with self._completing():
                result = pending.complete(outputs)
        except CancelledError as exc:
            self._end(JobState.CANCELLED, exc, pending)
            return
        except Exception as exc:  # a GUI boundary: report, never crash the application
            self._end(JobState.FAILED, exc, pending)
            return
        self.result = result
        self._progress(1.0, "Done")
        self._end(JobState.FINISHED, None, pending)
        if self._onSuccess is not None:
            try:
                self._onSuccess(result)
            except Exception as exc:
                logger.exception("MSK AI: showing the results failed")
                self.error = exc
                self._setState(JobState.FAILED)

    def _progress(self, fraction: float, message: str) -> None:
        start, stop = getattr(self._pending, "progressRange", (0.0, 1.0))
        scaled = start + (stop - start) * max(0.0, min(1.0, fraction))
        self.fraction = max(self.fraction, scaled)  # a task may restart a step at 0
        self.message = message or self.message
        if self.onProgress is not None:
            self.onProgress(self.fraction, self.message)

    def _end(self, state: JobState, error: BaseException | None,
             pending: Any = None) -> None:
        self._timer.stop()
        for job in (pending, self._pending):
            if job is not None:
                job.cleanup()
        self._pending = None
        self.error = error
        if state is JobState.FAILED and error is not None and not isinstance(error, InputError):
            logger.error("MSK AI job failed", exc_info=error)
        self._setState(state)

    def _setState(self, state: JobState) -> None:
        self.state = state
        if self.onStateChanged is not None:
            self.onStateChanged(state)
