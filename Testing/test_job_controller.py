"""No frozen or re-entrant UI: every module widget runs its jobs through one controller
(:mod:`MSKAILib.job_controller`) with one runner fallback, polled by a timer.

Plain pytest, no Qt: fake timers and fake runners drive the state machine; the module
sources are scanned for what must (and must not) be there.
"""

from __future__ import annotations

import ast
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from mskai.errors import CancelledError, InputError

REPO = Path(__file__).resolve().parent.parent
FEATURE_MODULES = ("FractureDetect", "CartilageQuant", "TumorSeg")
SLEEP = "mskai.runner.jobs:sleep_steps"


# --- fakes -----------------------------------------------------------------------------------


class FakeTimer:
    """Stands in for qt.QTimer: the test fires it by hand."""

    def __init__(self, interval_ms, slot):
        self.interval_ms, self.slot, self.active, self.starts = interval_ms, slot, False, 0

    def start(self):
        self.active, self.starts = True, self.starts + 1

    def stop(self):
        self.active = False

    def fire(self):
        assert self.active, "the timer fired while stopped"
        self.slot()


class FakeRunner:
    """Ends after ``polls`` polls with ``ending`` (an event dict); progress before that."""

    def __init__(self, polls=3, ending=None, cancellable=True):
        self.polls, self.ending, self.cancellable = polls, ending, cancellable
        self.job, self.polled, self.cancelled = None, 0, False

    def start(self, job):
        self.job = job

    def poll(self):
        self.polled += 1
        if self.cancelled and self.cancellable:
            return [{"event": "cancelled"}]
        if self.polled >= self.polls:
            return [{"event": "progress", "fraction": 1.0, "message": "last"},
                    self.ending or {"event": "done", "outputs": {"answer": 42}}]
        return [{"event": "progress", "fraction": self.polled / self.polls,
                 "message": f"step {self.polled}"}]

    def cancel(self):
        self.cancelled = True

    def wait(self, timeout=None):
        return True


class FakePending:
    """A PendingJob stand-in: records completion and cleanup."""

    def __init__(self, complete=None):
        self.job = {"task": SLEEP, "args": {}}
        self.what = "fake job"
        self.progressRange = (0.0, 1.0)
        self.completed, self.cleaned = None, 0
        self._complete = complete or (lambda outputs: ("result", outputs))

    def complete(self, outputs):
        self.completed = outputs
        try:
            return self._complete(outputs)
        finally:
            self.cleanup()

    def cleanup(self):
        self.cleaned += 1


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


ACTIONS = ("applyButton", "remeasureButton", "acceptButton", "exportButton")


def make(runner, actions=None, **kw):
    from MSKAILib.job_controller import JobController

    timers = []

    def timer_factory(interval_ms, slot):
        timers.append(FakeTimer(interval_ms, slot))
        return timers[-1]

    controller = JobController(timer_factory, [lambda: runner], **kw)
    controller.setActions(actions or {name: (lambda: True) for name in ACTIONS})
    states, progress = [], []
    controller.onStateChanged = states.append
    controller.onProgress = lambda f, m: progress.append((f, m))
    (timer,) = timers
    return controller, timer, states, progress


def enabled(controller):
    return {name for name, on in controller.actionStates().items() if on}


def run_until_idle(controller, timer, limit=100):
    for _ in range(limit):
        if not timer.active:
            return
        timer.fire()
    raise AssertionError("the job never ended")


# --- the state machine -----------------------------------------------------------------------


def test_a_job_that_finishes_after_n_polls():
    from MSKAILib.job_controller import CANCEL_ACTION, JobState

    runner = FakeRunner(polls=3)
    controller, timer, states, progress = make(runner)
    assert controller.state is JobState.IDLE and not controller.running
    assert enabled(controller) == set(ACTIONS)  # idle: everything but Cancel
    pending, shown = FakePending(), []
    assert controller.start(lambda: pending, shown.append)
    assert runner.job == pending.job and timer.active and timer.interval_ms > 0
    assert controller.state is JobState.RUNNING
    assert enabled(controller) == {CANCEL_ACTION}  # running: only Cancel
    timer.fire()
    timer.fire()
    assert controller.state is JobState.RUNNING and pending.completed is None
    timer.fire()  # the third poll ends it
    assert controller.state is JobState.FINISHED and not timer.active
    assert pending.completed == {"answer": 42} and pending.cleaned >= 1
    assert shown == [("result", {"answer": 42})] and controller.result == shown[0]
    assert states == [JobState.RUNNING, JobState.FINISHED]
    fractions = [f for f, _ in progress]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0
    assert enabled(controller) == set(ACTIONS)  # re-enabled
    assert controller.statusText == "Done"


def test_progress_is_scaled_into_the_jobs_share_of_the_run():
    runner = FakeRunner(polls=2)
    controller, timer, _, progress = make(runner)
    pending = FakePending()
    pending.progressRange = (0.05, 0.85)
    controller.start(lambda: pending)
    timer.fire()
    assert progress[-1] == (pytest.approx(0.05 + 0.8 * 0.5), "step 1")
    run_until_idle(controller, timer)
    assert progress[-1][0] == 1.0


def test_a_failing_job_reports_and_re_enables_everything():
    from MSKAILib.job_controller import JobState

    runner = FakeRunner(polls=2, ending={"event": "error", "kind": "internal",
                                         "message": "out of memory"})
    controller, timer, states, _ = make(runner)
    pending, shown = FakePending(), []
    controller.start(lambda: pending, shown.append)
    run_until_idle(controller, timer)
    assert controller.state is JobState.FAILED and states[-1] is JobState.FAILED
    assert isinstance(controller.error, RuntimeError) and "out of memory" in str(controller.error)
    assert controller.statusText == "Failed"
    assert shown == [] and pending.completed is None and pending.cleaned >= 1
    assert enabled(controller) == set(ACTIONS)


def test_an_input_error_of_the_job_says_check_the_inputs():
    from MSKAILib.job_controller import JobState

    runner = FakeRunner(polls=1, ending={"event": "error", "kind": "input",
                                         "message": "the image is 2D"})
    controller, timer, _, _ = make(runner)
    controller.start(FakePending)
    run_until_idle(controller, timer)
    assert controller.state is JobState.FAILED and isinstance(controller.error, InputError)
    assert str(controller.error) == "The image is 2D"
    assert controller.statusText == "Check the inputs"


def test_writing_the_results_can_fail_too():
    from MSKAILib.job_controller import JobState

    def boom(outputs):
        raise InputError("Tumour was removed while the job ran: run it again.")

    controller, timer, _, _ = make(FakeRunner(polls=1))
    pending, shown = FakePending(boom), []
    controller.start(lambda: pending, shown.append)
    run_until_idle(controller, timer)
    assert controller.state is JobState.FAILED and shown == [] and pending.cleaned >= 1
    assert enabled(controller) == set(ACTIONS)


def test_bad_input_fails_before_any_runner_starts():
    from MSKAILib.job_controller import JobState

    runner = FakeRunner()
    controller, timer, states, _ = make(runner)

    def prepare():
        raise InputError("Select an input volume.")

    assert controller.start(prepare) is False
    assert runner.job is None and not timer.active
    assert controller.state is JobState.FAILED and states == [JobState.RUNNING, JobState.FAILED]
    assert enabled(controller) == set(ACTIONS)


def test_a_cancelled_job():
    from MSKAILib.job_controller import CANCEL_ACTION, JobState

    runner = FakeRunner(polls=100)
    controller, timer, states, _ = make(runner)
    pending, shown = FakePending(), []
    controller.start(lambda: pending, shown.append)
    timer.fire()
    assert controller.cancel() is True and runner.cancelled
    assert controller.state is JobState.CANCELLING and controller.running
    assert enabled(controller) == set()  # nothing, not even Cancel again
    assert controller.cancel() is False
    timer.fire()
    assert controller.state is JobState.CANCELLED and not timer.active
    assert isinstance(controller.error, CancelledError)
    assert states == [JobState.RUNNING, JobState.CANCELLING, JobState.CANCELLED]
    assert shown == [] and pending.completed is None and pending.cleaned >= 1
    assert enabled(controller) == set(ACTIONS) and CANCEL_ACTION not in enabled(controller)
    assert controller.statusText == "Cancelled"


def test_results_that_arrive_after_cancel_are_discarded():
    from MSKAILib.job_controller import JobState

    runner = FakeRunner(polls=2, cancellable=False)  # finishes although cancelled
    controller, timer, _, _ = make(runner)
    pending, shown = FakePending(), []
    controller.start(lambda: pending, shown.append)
    controller.cancel()
    run_until_idle(controller, timer)
    assert controller.state is JobState.CANCELLED and shown == [] and pending.completed is None


def test_a_job_that_ignores_cancel_is_let_go_after_the_timeout():
    from MSKAILib.job_controller import JobState

    clock = Clock()
    runner = FakeRunner(polls=10**6, cancellable=False)
    controller, timer, _, _ = make(runner, cancelTimeoutS=5.0, clock=clock)
    controller.start(FakePending)
    controller.cancel()
    timer.fire()
    assert controller.state is JobState.CANCELLING
    clock.now = 5.0
    timer.fire()
    assert controller.state is JobState.CANCELLED and not timer.active


def test_a_second_start_while_running_is_refused():
    from MSKAILib.job_controller import JobState

    runner = FakeRunner(polls=3)
    controller, timer, _, _ = make(runner)
    first = FakePending()
    assert controller.start(lambda: first)
    prepared = []
    assert controller.start(lambda: prepared.append(1) or FakePending()) is False
    assert prepared == []  # not even prepared: no node was read
    assert controller.state is JobState.RUNNING and runner.job is first.job
    controller.cancel()
    assert controller.start(FakePending) is False  # cancelling is still busy
    run_until_idle(controller, timer)
    second = FakeRunner(polls=1)
    controller.factories = [lambda: second]
    assert controller.start(FakePending)  # once ended, a new job may start
    run_until_idle(controller, timer)
    assert controller.state is JobState.FINISHED


def test_each_action_keeps_its_own_condition_when_idle():
    from MSKAILib.job_controller import CANCEL_ACTION

    row = {"selected": False}
    actions = {"applyButton": lambda: True, "acceptButton": lambda: row["selected"]}
    controller, timer, _, _ = make(FakeRunner(polls=2), actions)
    assert controller.actionStates() == {"applyButton": True, "acceptButton": False,
                                         CANCEL_ACTION: False}
    row["selected"] = True
    controller.start(FakePending)
    assert controller.actionStates() == {"applyButton": False, "acceptButton": False,
                                         CANCEL_ACTION: True}
    run_until_idle(controller, timer)
    assert controller.actionStates() == {"applyButton": True, "acceptButton": True,
                                         CANCEL_ACTION: False}


def test_shutdown_cancels_and_never_writes():
    from MSKAILib.job_controller import JobState

    runner = FakeRunner(polls=3)
    controller, timer, _, _ = make(runner)
    pending, shown = FakePending(), []
    controller.start(lambda: pending, shown.append)
    controller.shutdown()
    assert runner.cancelled and controller.state is JobState.CANCELLED and not timer.active
    assert shown == [] and pending.completed is None and pending.cleaned >= 1


def test_results_are_written_inside_the_completing_context():
    inside = []

    class Writing:
        def __enter__(self):
            inside.append("enter")

        def __exit__(self, *exc):
            inside.append("exit")

    controller, timer, _, _ = make(FakeRunner(polls=1))
    pending = FakePending(lambda outputs: inside.append("write"))
    controller.start(lambda: pending, lambda result: inside.append("show"),
                     completing=Writing)
    run_until_idle(controller, timer)
    assert inside == ["enter", "write", "exit", "show"]


# --- the one runner fallback -----------------------------------------------------------------


def test_runner_fallback_is_subprocess_then_a_worker_thread(monkeypatch):
    from MSKAILib.job_controller import inProcessRunner, runnerFactories

    from mskai.runner.subprocess_runner import SubprocessRunner

    factories = runnerFactories(None, executable=sys.executable)
    assert len(factories) == 2 and factories[-1] is inProcessRunner
    assert isinstance(factories[0](), SubprocessRunner)
    monkeypatch.setenv("PATH", "")
    assert runnerFactories(None, executable="/nowhere/Slicer") == [inProcessRunner]


def test_a_runner_that_cannot_start_gives_way_to_the_next():
    from MSKAILib.job_controller import startRunner

    class Unstartable(FakeRunner):
        def start(self, job):
            raise FileNotFoundError("PythonSlicer is gone")

    fallback = FakeRunner()
    job = {"task": SLEEP, "args": {}}
    assert startRunner(job, [Unstartable, lambda: fallback]) is fallback
    assert fallback.job is job
    with pytest.raises(RuntimeError, match="PythonSlicer is gone"):
        startRunner(job, [Unstartable])

    class BadJob(FakeRunner):
        def start(self, job):
            raise InputError("not a job")

    with pytest.raises(InputError):  # a bad job is not retried elsewhere
        startRunner(job, [BadJob, lambda: fallback])


def test_missing_python_falls_back_to_a_real_worker_thread():
    """The real fallback: the subprocess runner cannot start, the job runs on a thread of
    this process while the (fake) timer polls it; the poll never waits."""
    from MSKAILib.job_controller import JobController, JobState, inProcessRunner

    from mskai.runner.inprocess import InProcessRunner
    from mskai.runner.subprocess_runner import SubprocessRunner

    timers = []
    controller = JobController(lambda ms, slot: timers.append(FakeTimer(ms, slot)) or timers[-1],
                               [lambda: SubprocessRunner("/nowhere/python"), inProcessRunner])
    pending = FakePending(lambda outputs: outputs)
    pending.job = {"task": SLEEP, "args": {"steps": 3, "delay_s": 0.02}}
    assert controller.start(lambda: pending)
    assert isinstance(controller.runner, InProcessRunner)
    end = time.monotonic() + 10
    while controller.running and time.monotonic() < end:
        started = time.monotonic()
        timers[0].fire()
        assert time.monotonic() - started < 0.5  # a poll returns at once
        time.sleep(0.01)
    assert controller.state is JobState.FINISHED and controller.result == {"steps": 3}


def test_the_real_subprocess_runner_can_be_cancelled_from_the_timer():
    from MSKAILib.job_controller import JobController, JobState

    from mskai.runner.subprocess_runner import SubprocessRunner

    timers = []
    controller = JobController(lambda ms, slot: timers.append(FakeTimer(ms, slot)) or timers[-1],
                               [lambda: SubprocessRunner(sys.executable)])
    pending = FakePending()
    pending.job = {"task": SLEEP, "args": {"steps": 200, "delay_s": 0.05}}
    controller.start(lambda: pending)
    timers[0].fire()
    controller.cancel()
    end = time.monotonic() + 20
    while controller.running and time.monotonic() < end:
        timers[0].fire()
        time.sleep(0.02)
    assert controller.state is JobState.CANCELLED and pending.completed is None


# --- pending jobs of the shared bridge -------------------------------------------------------


def test_prepared_job_writes_inputs_and_cleans_up(tmp_path):
    import numpy as np
    from MSKAILib.job_bridge import prepareJob

    from mskai.volume import Volume

    volume = Volume(np.zeros((4, 5, 6), dtype=np.int16), spacing=(1.0, 1.0, 1.0))
    pending = prepareJob(volume, lambda work, image: {"task": SLEEP, "args": {"image": image}},
                         lambda outputs: outputs["n"] + 1, "test job")
    work = pending.work
    assert Path(pending.job["args"]["image"]).is_file()
    pending.then(lambda n: n * 10).scaleProgress(0.1, 0.9)
    assert pending.progressRange == (0.1, 0.9)
    assert pending.complete({"n": 1}) == 20
    assert not work.exists() and pending.work is None


def test_job_outcome_is_shared_by_the_blocking_and_the_polled_paths():
    from MSKAILib.job_bridge import jobOutcome

    assert jobOutcome({"event": "done", "outputs": {"a": 1}}) == {"a": 1}
    with pytest.raises(CancelledError):
        jobOutcome({"event": "cancelled"})
    with pytest.raises(InputError, match="^Bad"):
        jobOutcome({"event": "error", "kind": "input", "message": "bad"})
    with pytest.raises(RuntimeError, match="Segmentation failed: boom"):
        jobOutcome({"event": "error", "message": "boom"}, "segmentation")


# --- the module sources ----------------------------------------------------------------------


def slicer_side_sources() -> list[Path]:
    files = [REPO / "MSKAIExtension/MSKAI.py", *(REPO / "MSKAIExtension/MSKAILib").glob("*.py")]
    for module in FEATURE_MODULES:
        files += [REPO / module / f"{module}.py", *(REPO / module / f"{module}Lib").glob("*.py")]
    return files


def code_of(path: Path) -> str:
    """The source without docstrings and comments (names in prose do not count)."""
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if isinstance(body, list) and body and isinstance(body[0], ast.Expr) and isinstance(
                body[0].value, ast.Constant) and isinstance(body[0].value.value, str):
            body[0] = ast.Pass()
    return ast.unparse(tree)


@pytest.mark.parametrize("path", slicer_side_sources(),
                         ids=lambda p: p.relative_to(REPO).as_posix())
def test_nothing_processes_events_by_hand(path):
    code = code_of(path)
    assert "processEvents" not in code, f"{path.name} calls processEvents"


@pytest.mark.parametrize("module", FEATURE_MODULES)
def test_every_module_uses_the_shared_controller_and_fallback(module):
    """No module picks a runner, loops over a job or runs it on the GUI thread: they only
    prepare a job (``prepareRun``) and hand it to the shared widget base."""
    code = code_of(REPO / module / f"{module}.py")
    widget = next(node for node in ast.walk(ast.parse(code))
                  if isinstance(node, ast.ClassDef) and node.name == f"{module}Widget")
    source = ast.unparse(widget)
    for forbidden in ("Runner", "runnerFactory", "runner=", "self.runner", ".run(", "wait("):
        assert forbidden not in source, f"{module}Widget uses {forbidden!r}"
    assert "prepareJob" in source and "self.logic.prepareRun(" in source
    assert ast.unparse(widget.bases[0]) == "MSKAIModuleWidget"


def test_the_widget_base_polls_with_a_timer_through_the_controller():
    code = code_of(REPO / "MSKAIExtension/MSKAILib/module_widget.py")
    assert "JobController(repeatingTimer, runnerFactories(" in code
    assert "qt.QTimer()" in code
    assert "self.jobs.running" in code  # Apply refused while a job runs


def action_names(path: Path) -> set[str]:
    """String keys of the dicts returned by ``actionConditions`` in a widget file."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.FunctionDef) and node.name == "actionConditions":
            for inner in ast.walk(node):
                if isinstance(inner, ast.Dict):
                    names |= {k.value for k in inner.keys if isinstance(k, ast.Constant)}
    return names


@pytest.mark.parametrize("module", FEATURE_MODULES)
def test_every_button_is_locked_while_a_job_runs(module):
    """Every push button of the panel but Cancel is a registered action (disabled while a
    job runs), and every registered action exists in the .ui file."""
    base = action_names(REPO / "MSKAIExtension/MSKAILib/module_widget.py")
    actions = base | action_names(REPO / module / f"{module}.py")
    assert {"applyButton", "remeasureButton"} <= base
    root = ET.parse(REPO / module / "Resources" / "UI" / f"{module}.ui").getroot()
    widgets = {w.get("name"): w.get("class") for w in root.iter("widget")}
    buttons = {name for name, cls in widgets.items() if cls == "QPushButton"}
    assert buttons - {"cancelButton"} <= actions, sorted(buttons - actions - {"cancelButton"})
    assert actions <= set(widgets), sorted(actions - set(widgets))
    assert "cancelButton" in buttons and "cancelButton" not in actions


# --- the real module widgets, on stand-ins for Qt and the Slicer application -----------------


@pytest.fixture
def widget_module(monkeypatch):
    """``load(module)``: the module's widget class, imported with stand-in ``qt`` and
    ``slicer.ScriptedLoadableModule`` modules (no Qt is needed or started)."""
    import importlib.util
    import types
    from unittest import mock

    pytest.importorskip("slicer", reason="slicer-core is not installed")
    import slicer

    scripted = types.ModuleType("slicer.ScriptedLoadableModule")
    for name in ("ScriptedLoadableModule", "ScriptedLoadableModuleWidget",
                 "ScriptedLoadableModuleTest"):
        setattr(scripted, name, type(name, (), {"__init__": lambda self, parent=None: None}))
    monkeypatch.setitem(sys.modules, "slicer.ScriptedLoadableModule", scripted)
    monkeypatch.setitem(sys.modules, "qt", mock.MagicMock(name="qt"))
    monkeypatch.setattr(slicer, "ScriptedLoadableModule", scripted, raising=False)
    for module in FEATURE_MODULES:
        monkeypatch.syspath_prepend(str(REPO / module))
    import MSKAILib.dependencies

    monkeypatch.setattr(MSKAILib.dependencies, "ensureDependenciesInSlicer", lambda: True)
    monkeypatch.delitem(sys.modules, "MSKAILib.module_widget", raising=False)

    def load(module):
        spec = importlib.util.spec_from_file_location(f"_widget_{module}",
                                                      REPO / module / f"{module}.py")
        code = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(code)
        return getattr(code, f"{module}Widget")

    yield load
    sys.modules.pop("MSKAILib.module_widget", None)  # it was imported with the stand-in qt


class FakeButton:
    def __init__(self):
        self.enabled, self.toolTip, self.text = True, "", ""

    def connect(self, *args):
        pass


def fake_widget(cls, module, runner, prepared):
    """The widget with its UI, parameter node and logic replaced by stand-ins and a
    controller on a fake timer and ``runner`` (what ``setup()`` builds inside Slicer)."""
    from unittest import mock

    from MSKAILib.job_controller import JobController

    widget = cls.__new__(cls)
    cls.__init__(widget)
    root = ET.parse(REPO / module / "Resources" / "UI" / f"{module}.ui").getroot()
    ui = mock.MagicMock(name="ui")
    for w in root.iter("widget"):
        if w.get("class") in ("QPushButton", "QCheckBox"):
            setattr(ui, w.get("name"), FakeButton())
    ui.candidateList.currentRow = 0
    ui.profilePlateComboBox.currentText = ""
    widget.ui = ui
    node = mock.MagicMock(name="parameterNode")
    node.positiveClicks.GetNumberOfDefinedControlPoints.return_value = 1
    widget._parameterNode = node
    widget.logic = mock.MagicMock(name="logic")
    widget.logic.lastWarnings, widget.logic.lastActions = [], []
    widget.logic.lastOutputs.surfaces = {}
    result = {"FractureDetect": (node.outputSegmentation, node.candidates, None),
              "CartilageQuant": (node.outputSegmentation, None, None),
              "TumorSeg": node.outputSegmentation}[module]
    widget.logic.prepareRun.side_effect = lambda *a, **k: prepared.append(1) or FakePending(
        lambda outputs: result)
    timers = []
    widget.jobs = JobController(
        lambda ms, slot: timers.append(FakeTimer(ms, slot)) or timers[-1], [lambda: runner])
    widget.jobs.onProgress = widget.onJobProgress
    widget.jobs.onStateChanged = widget.onJobStateChanged
    widget.jobs.setActions(widget.actionConditions())
    widget._remeasureTimer = FakeTimer(500, lambda: None)
    if module == "TumorSeg":
        widget._refineTimer = FakeTimer(300, lambda: None)
    widget.refreshActions()
    return widget, timers[0]


def buttons_of(widget, module):
    root = ET.parse(REPO / module / "Resources" / "UI" / f"{module}.ui").getroot()
    names = [w.get("name") for w in root.iter("widget") if w.get("class") == "QPushButton"]
    return {name: getattr(widget.ui, name).enabled for name in names}


@pytest.mark.parametrize("ending", ["done", "error", "cancel"])
@pytest.mark.parametrize("module", FEATURE_MODULES)
def test_the_module_widget_locks_its_actions_while_a_job_runs(widget_module, module, ending):
    from MSKAILib.job_controller import JobState

    cls = widget_module(module)
    runner = FakeRunner(polls=3, ending={"event": "error", "message": "boom"}
                        if ending == "error" else None)
    prepared = []
    widget, timer = fake_widget(cls, module, runner, prepared)
    assert buttons_of(widget, module)["applyButton"] is True
    assert buttons_of(widget, module)["cancelButton"] is False

    widget.onApplyButton()
    assert prepared == [1] and widget.jobs.state is JobState.RUNNING and timer.active
    states = buttons_of(widget, module)
    assert states.pop("cancelButton") is True
    assert not any(states.values()), sorted(n for n, on in states.items() if on)

    widget.onApplyButton()  # a second Apply while running is refused
    widget.onRemeasure()
    assert prepared == [1] and runner.job is not None
    widget._onParameterNodeModified()  # a node change while running re-enables nothing
    assert not any(v for n, v in buttons_of(widget, module).items() if n != "cancelButton")

    if ending == "cancel":
        widget.jobs.cancel()
    if ending == "error":
        import slicer.util

        with pytest.MonkeyPatch.context() as patch:
            shown = []
            patch.setattr(slicer.util, "errorDisplay", lambda *a, **k: shown.append(a))
            run_until_idle(widget.jobs, timer)
        assert shown and widget.jobs.state is JobState.FAILED
    else:
        run_until_idle(widget.jobs, timer)
    expected = {"done": JobState.FINISHED, "cancel": JobState.CANCELLED}.get(ending)
    if expected:
        assert widget.jobs.state is expected
    after = buttons_of(widget, module)
    assert after["applyButton"] is True and after["cancelButton"] is False
    assert widget.ui.progressBar.format == widget.jobs.statusText or ending == "done"
