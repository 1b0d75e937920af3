"""Task execution status ``scheduled``: submitted, waiting for a worker, where the executor says
when an attempt starts (audit D13; the statuses not used are in docs/deviations.md)."""

from __future__ import annotations

import threading
import time

import jupyter_workflows as jw
from jupyter_workflows.engine import api
from jupyter_workflows.engine import commands as C
from jupyter_workflows.engine import events as E
from jupyter_workflows.engine.state import RunState
from jupyter_workflows.executors.base import Executor, Outcome, Submission
from jupyter_workflows.executors.inline import InlineExecutor


def _wait_for(predicate, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def test_a_task_waiting_for_a_thread_is_scheduled(tmp_path):
    api.configure(store=str(tmp_path / "s.db"), executor=InlineExecutor(max_workers=1))
    gate = threading.Event()

    @jw.task(name="audit_gate")
    def blocked() -> str:
        gate.wait(10)
        return "ok"

    run = jw.load("name: sch\ntasks:\n  a: {action: audit_gate}\n  b: {action: audit_gate}\n").run(
        wait=False
    )
    _wait_for(lambda: {t["status"] for t in run.tasks} == {"running", "scheduled"})
    live = run.live()["tasks"]
    assert sorted(t["status"] for t in live.values()) == ["running", "scheduled"]
    gate.set()
    run.wait(10)
    assert [t["status"] for t in run.tasks] == ["succeeded", "succeeded"]
    events = api.get_orchestrator().store.load_events(run.run_id)
    assert not [e for e in events if e["type"] == "attempt_started"]  # advisory, not logged


class _Silent(Executor):
    """Runs nothing until told; reports no starts."""

    def __init__(self) -> None:
        self.pending: list[tuple[Submission, object]] = []

    def submit(self, submission, callback) -> None:
        self.pending.append((submission, callback))

    def cancel(self, key: str) -> None:
        pass

    def forget(self, keys) -> None:
        pass

    def finish_all(self) -> None:
        for sub, callback in self.pending:
            callback(Outcome(key=sub.key, ok=True, result=1))  # type: ignore[operator]


def test_an_executor_that_does_not_report_starts_shows_running(tmp_path):
    executor = _Silent()
    api.configure(store=str(tmp_path / "s.db"), executor=executor)
    run = jw.load("name: ns\ntasks:\n  a: {action: core.noop}\n").run(wait=False)
    _wait_for(lambda: bool(executor.pending))
    assert run.tasks[0]["status"] == "running"
    executor.finish_all()
    assert run.wait(10).status == "succeeded"


# -- the state machine --------------------------------------------------------------------------
def _state(yaml: str, track: bool = True) -> tuple[RunState, list[C.Command]]:
    wf = jw.load(yaml)
    state = RunState(wf.compiled, "run0000000", {})
    state.track_starts = track
    return state, state.handle(E.RunStarted(0.0))


def test_scheduled_until_the_executor_says_it_started():
    state, [sub] = _state("name: s\ntasks:\n  a: {action: core.noop, retry: 1}\n")
    assert state.executions["a"].status == "scheduled"
    assert state.task_view["a"]["status"] == "scheduled"
    state.validate()
    state.handle(E.AttemptStarted(0.5, key="nobody", worker="w1"))
    assert state.executions["a"].status == "scheduled"
    state.handle(E.AttemptStarted(0.5, key=sub.key, worker="w1"))
    assert (state.executions["a"].status, state.executions["a"].worker) == ("running", "w1")
    [timer] = state.handle(E.AttemptDone(1.0, key=sub.key, ok=False, error="RuntimeError: x"))
    assert state.executions["a"].status == "retrying"
    [again] = state.handle(E.TimerFired(2.0, timer=timer.timer))
    assert state.executions["a"].status == "scheduled"  # the next attempt waits again
    state.handle(E.AttemptDone(3.0, key=again.key, ok=True))  # done without a start report
    assert state.executions["a"].status == "succeeded"
    state.handle(E.AttemptStarted(3.5, key=again.key, worker="late"))
    assert state.executions["a"].status == "succeeded"
    state.validate()


def test_without_start_reports_a_submitted_task_is_running():
    state, _ = _state("name: s\ntasks:\n  a: {action: core.noop}\n", track=False)
    assert state.executions["a"].status == "running"


def test_a_scheduled_task_is_cancelled_with_the_run():
    state, _ = _state("name: s\ntasks:\n  a: {action: core.noop}\n")
    state.handle(E.CancelRequested(1.0))
    assert state.executions["a"].status == "cancelled"
    state.validate()


def test_with_items_tasks_stay_running_and_nested_runs_start_at_once(tmp_path):
    state, cmds = _state(
        "name: s\ntasks:\n  a: {action: core.noop, with_items: '{{ [1, 2] }}', input: {x: 1}}\n"
    )
    assert state.executions["a"].status == "running"
    state.handle(E.AttemptStarted(0.5, key=cmds[0].key, worker="w"))
    assert state.executions["a"].status == "running"
    (tmp_path / "child.yaml").write_text("name: child\ntasks:\n  t: {action: core.noop}\n")
    (tmp_path / "parent.yaml").write_text("name: parent\ntasks:\n  a: {workflow: child}\n")
    wf = jw.load(tmp_path / "parent.yaml")
    state = RunState(wf.compiled, "run0000001", {}, children={"a": "child"})
    state.track_starts = True
    state.handle(E.RunStarted(0.0))
    assert state.executions["a"].status == "running"


def test_attempt_started_round_trips_as_a_dict():
    event = E.AttemptStarted(1.0, key="k", worker="w")
    assert E.event_from_dict(event.to_dict()) == event
