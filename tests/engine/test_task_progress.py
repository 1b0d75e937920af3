"""``context.progress(done, total)`` reaches the run: live in ``Run.live()``, in the store's task
record and in the trace (audit D5)."""

from __future__ import annotations

import threading
import time

import jupyter_workflows as jw
from jupyter_workflows.engine import events as E
from jupyter_workflows.engine.context import PROGRESS_INTERVAL, TaskContext, run_task
from jupyter_workflows.engine.state import RunState
from jupyter_workflows.executors.base import Outcome, Submission
from jupyter_workflows.executors.inline import InlineExecutor


def _wait_for(predicate, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def test_progress_is_live_then_final_and_in_the_trace(engine):
    reached, release = threading.Event(), threading.Event()

    @jw.task(name="audit_progress")
    def work(context) -> str:
        for i in range(3):
            context.progress(i + 1, 5)
        reached.set()
        release.wait(10)
        context.progress(5, 5)
        return "done"

    run = jw.load("name: pg\ntasks:\n  a: {action: audit_progress}\n").run(wait=False)
    assert reached.wait(10)
    # Reports inside the interval are held back, but the first one goes out at once.
    _wait_for(lambda: run.live()["tasks"].get("a", {}).get("done") is not None)
    live = run.live()["tasks"]["a"]
    assert live["status"] == "running" and live["total"] == 5 and 1 <= live["done"] <= 3
    release.set()
    run.wait(10)
    final = run.live()["tasks"]["a"]
    assert (final["done"], final["total"], final["status"]) == (5, 5, "succeeded")
    [record] = engine.store.get_tasks(run.run_id)
    assert (record["done"], record["total"]) == (5, 5)
    logs = run.trace()["tasks"][0]["logs"]
    assert logs[0] == "INFO jupyter_workflows.task: progress 1/5"
    assert logs[-1] == "INFO jupyter_workflows.task: progress 5/5"
    # Advisory: progress never goes to the event log; the final report rides on attempt_done.
    events = engine.store.load_events(run.run_id)
    assert not [e for e in events if e["type"] == "attempt_progress"]
    [done] = [e for e in events if e["type"] == "attempt_done"]
    assert list(done["progress"]) == [5, 5]


def test_the_last_report_held_back_by_the_interval_still_arrives(engine):
    @jw.task(name="audit_fast_progress")
    def fast(context) -> None:
        for i in range(1000):
            context.progress(i, 1000)  # never reaches total: the last one is held back

    run = jw.load("name: fp\ntasks:\n  a: {action: audit_fast_progress}\n").run()
    task = run.live()["tasks"]["a"]
    assert (task["done"], task["total"]) == (999, 1000)
    logs = run.trace()["tasks"][0]["logs"]
    assert logs == [
        "INFO jupyter_workflows.task: progress 0/1000",
        "INFO jupyter_workflows.task: progress 999/1000",
    ]


def test_task_context_throttles_reports():
    calls: list[tuple[int, int]] = []
    ctx = TaskContext(run_id="r", task="t", progress_hook=lambda d, t: calls.append((d, t)))
    for i in range(100):
        ctx.progress(i, 200)
    assert calls == [(0, 200)]
    time.sleep(PROGRESS_INTERVAL + 0.05)
    ctx.progress(150, 200)
    ctx.progress(160, 200)
    ctx.progress(200, 200)  # reaching the total always goes out
    assert calls == [(0, 200), (150, 200), (200, 200)]
    assert ctx.last_progress == (200, 200)


def test_a_failing_hook_or_bad_values_never_fail_the_task():
    def hook(done: int, total: int) -> None:
        raise RuntimeError("hook broke")

    def fn(context) -> int:
        context.progress(1, 2)
        context.progress("x", None)
        return 7

    envelope = run_task(fn, {}, {"run_id": "r", "task": "t"}, True, progress_hook=hook)
    assert envelope.ok and envelope.value == 7
    assert envelope.progress == (1, 2)
    assert any("done and total must be numbers" in line for line in envelope.logs)


def test_inline_executor_calls_on_progress_and_returns_the_last_report():
    reports: list[tuple[int, int]] = []
    outcomes: list[Outcome] = []
    got = threading.Event()

    def fn(context) -> str:
        context.progress(1, 3)
        context.progress(3, 3)
        return "ok"

    executor = InlineExecutor(max_workers=1)
    try:
        sub = Submission(
            key="k1",
            fn=fn,
            kwargs={},
            context={"run_id": "r", "task": "t"},
            wants_context=True,
            on_progress=lambda d, t: reports.append((d, t)),
        )
        executor.submit(sub, lambda o: (outcomes.append(o), got.set()))
        assert got.wait(10)
    finally:
        executor.close()
    assert reports == [(1, 3), (3, 3)]
    assert outcomes[0].ok and outcomes[0].progress == (3, 3)


# -- the state machine --------------------------------------------------------------------------
def _state(yaml: str) -> tuple[RunState, list]:
    wf = jw.load(yaml)
    state = RunState(wf.compiled, "run0000000", {})
    return state, state.handle(E.RunStarted(0.0))


def test_state_records_progress_of_the_running_attempt_only():
    state, cmds = _state("name: p\ntasks:\n  a: {action: core.noop, retry: 1}\n")
    [sub] = cmds
    state.handle(E.AttemptProgress(1.0, key=sub.key, done=2, total=4))
    assert state.executions["a"].progress() == (2, 4)
    assert state.task_view["a"]["done"] == 2 and state.task_view["a"]["total"] == 4
    state.handle(E.AttemptProgress(1.0, key="someone-else", done=9, total=9))
    assert state.executions["a"].progress() == (2, 4)
    # A failed attempt's progress does not carry over to the retry.
    cmds = state.handle(E.AttemptDone(2.0, key=sub.key, ok=False, error="RuntimeError: x"))
    [timer] = cmds
    [retry] = state.handle(E.TimerFired(3.0, timer=timer.timer))
    assert state.executions["a"].progress() == (None, None)
    state.handle(E.AttemptDone(4.0, key=retry.key, ok=True, progress=[4, 4]))
    assert state.executions["a"].progress() == (4, 4)
    # A late report after the end changes nothing.
    state.handle(E.AttemptProgress(5.0, key=retry.key, done=1, total=4))
    assert state.executions["a"].progress() == (4, 4)
    state.validate()


def test_with_items_tasks_keep_counting_items():
    state, cmds = _state(
        "name: p\ntasks:\n  a: {action: core.noop, with_items: '{{ [1, 2] }}', input: {x: 1}}\n"
    )
    first = cmds[0]
    state.handle(E.AttemptProgress(1.0, key=first.key, done=50, total=100))
    assert state.executions["a"].progress() == (0, 2)
    state.handle(E.AttemptDone(2.0, key=first.key, ok=True, progress=[100, 100]))
    assert state.executions["a"].progress() == (1, 2)


def test_attempt_progress_round_trips_as_a_dict():
    event = E.AttemptProgress(1.5, key="k", done=3, total=7)
    assert E.event_from_dict(event.to_dict()) == event
