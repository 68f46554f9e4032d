"""The second thread that the pipelines run independent steps on (mskai.background)."""

from __future__ import annotations

import threading

import pytest

from mskai.background import second_thread
from mskai.errors import CancelledError


def test_submitted_steps_have_finished_when_the_block_ends():
    done: list[int] = []
    with second_thread() as background:
        background.submit(lambda: done.append(1))
        background.submit(lambda: done.append(2))
    assert done == [1, 2]


def test_a_steps_error_reaches_the_caller_that_asks_for_its_result():
    with second_thread() as background:
        job = background.submit(lambda: 1 / 0)
    with pytest.raises(ZeroDivisionError):
        job.result()


def test_a_cancel_in_the_block_does_not_wait_for_the_running_step_and_drops_the_queued():
    """A cancelled task returns at once: the step already running finishes on its own, and
    the steps queued behind it never start."""
    release, started = threading.Event(), threading.Event()
    ran_after: list[str] = []

    def slow() -> None:
        started.set()
        release.wait(10)

    with pytest.raises(CancelledError), second_thread() as background:
        running = background.submit(slow)
        queued = background.submit(lambda: ran_after.append("queued"))
        assert started.wait(10)
        raise CancelledError("the user cancelled")
    assert not running.done()
    release.set()
    running.result(10)
    assert queued.cancelled() and ran_after == []


def test_a_second_thread_asked_for_while_one_is_at_work_runs_its_steps_inline():
    """Two cores, two threads of work: a nested request does not start a third thread."""
    threads: dict[str, str] = {}

    def nested() -> None:
        threads["step"] = threading.current_thread().name
        with second_thread() as inner:
            inner.submit(lambda: threads.setdefault("nested", threading.current_thread().name))

    with second_thread() as background:
        background.submit(nested).result()
    assert threads["step"].startswith("mskai-background")
    assert threads["nested"] == threads["step"]
