"""Job runners: event streaming, cancellation of a child process tree, the task whitelist."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from mskai.errors import InputError
from mskai.runner.base import resolve_task
from mskai.runner.inprocess import InProcessRunner
from mskai.runner.subprocess_runner import SubprocessRunner

SLEEP = "mskai.runner.jobs:sleep_steps"


def alive(pid: int) -> bool:
    """True while ``pid`` runs; a zombie (dead, not yet reaped by init) counts as dead."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    stat = Path(f"/proc/{pid}/stat")
    if stat.exists():
        try:
            return stat.read_text().rsplit(")", 1)[1].split()[0] != "Z"
        except (OSError, IndexError):
            return False
    return True


def wait_until(condition, timeout: float = 10.0) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if condition():
            return True
        time.sleep(0.02)
    return condition()


def kinds(events: list[dict]) -> list[str]:
    return [e["event"] for e in events]


# ----- the whitelist ----------------------------------------------------------------------

@pytest.mark.parametrize("name", ["os:system", "builtins:eval", "mskaix.evil:run",
                                  "mskai.runner.jobs:subprocess", "mskai.errors:InputError",
                                  "mskai.nothing_here:job"])
def test_only_marked_mskai_jobs_can_be_named(name):
    with pytest.raises(InputError):
        resolve_task(name)


def test_a_marked_job_resolves():
    from mskai.runner.jobs import sleep_steps

    assert resolve_task(SLEEP) is sleep_steps


# ----- in-process -------------------------------------------------------------------------

def test_in_process_runner_streams_progress_in_order_then_done():
    events = InProcessRunner().run({"task": SLEEP, "args": {"steps": 4, "delay_s": 0.0}},
                                   timeout=10)
    assert kinds(events) == ["progress"] * 4 + ["done"]
    assert [e["fraction"] for e in events[:4]] == [0.25, 0.5, 0.75, 1.0]
    assert events[-1]["outputs"] == {"steps": 4}


def test_in_process_cancel_ends_with_a_cancelled_event():
    runner = InProcessRunner()
    runner.start({"task": SLEEP, "args": {"steps": 1000, "delay_s": 0.01}})
    events: list[dict] = []
    assert wait_until(lambda: bool(events.extend(runner.poll()) or events))
    runner.cancel()
    assert runner.wait(5)
    events += runner.poll()
    assert kinds(events[:-1]) == ["progress"] * (len(events) - 1)
    assert events[-1] == {"event": "cancelled"}
    assert len(events) < 1000


def test_bad_jobs_report_input_errors_and_failures_report_internal_errors():
    refused = InProcessRunner().run({"task": "os:system", "args": {"command": "true"}}, 5)
    assert refused[-1]["event"] == "error" and refused[-1]["kind"] == "input"
    failed = InProcessRunner().run({"task": SLEEP, "args": {"steps": "many"}}, 5)
    assert failed[-1]["event"] == "error" and failed[-1]["kind"] == "internal"
    assert "TypeError" in failed[-1]["message"]


# ----- child process ----------------------------------------------------------------------

def test_subprocess_events_arrive_while_the_child_still_runs():
    runner = SubprocessRunner()
    runner.start({"task": SLEEP, "args": {"steps": 6, "delay_s": 0.15}})
    early: list[dict] = []
    assert wait_until(lambda: bool(early.extend(runner.poll()) or early))
    assert runner.process.poll() is None, "the first event came only after the child ended"
    assert runner.wait(20)
    events = early + runner.poll()
    assert kinds(events) == ["progress"] * 6 + ["done"]
    fractions = [e["fraction"] for e in events[:-1]]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0
    assert runner.process.returncode == 0


def test_subprocess_cancel_kills_the_worker_and_its_children(tmp_path):
    pid_file = tmp_path / "child.pid"
    runner = SubprocessRunner()
    runner.start({"task": SLEEP, "args": {"steps": 10000, "delay_s": 0.05,
                                          "child_pid_file": str(pid_file)}})
    assert wait_until(lambda: pid_file.exists() and pid_file.read_text().strip() != "")
    child, worker = int(pid_file.read_text()), runner.pid
    assert alive(child) and alive(worker)
    started = time.monotonic()
    runner.cancel()
    assert runner.wait(5)
    assert wait_until(lambda: not alive(child) and not alive(worker), timeout=5)
    assert time.monotonic() - started < 5
    assert runner.poll()[-1] == {"event": "cancelled"}


def test_subprocess_reports_bad_jobs_as_input_errors():
    events = SubprocessRunner().run({"task": "mskai.errors:InputError"}, timeout=20)
    assert kinds(events) == ["error"] and events[0]["kind"] == "input"


def test_subprocess_refuses_malformed_jobs_before_starting():
    with pytest.raises(InputError):
        SubprocessRunner().start({"task": "os:system"})
