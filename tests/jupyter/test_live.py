"""The live binding of a run to the graph widget: state follows the run, answers flow back.

Runs are real (the ``engine`` fixture: orchestrator, store, tasks on in-process threads); the
widget is real, and talks through a comm that records what it would send to the browser, so
the respond path is the one a click in the browser takes.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import comm
import pytest
from recording_comm import RecordingComm

import jupyter_workflows as jw
from jupyter_workflows.engine import api
from jupyter_workflows.executors.base import Executor, Outcome, ResultRef, Submission
from jupyter_workflows.jupyter.live import bind_run, widget_for_run, widget_for_workflow
from jupyter_workflows.jupyter.widget import GraphWidget


@pytest.fixture(autouse=True)
def _recording_comm(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(comm, "create_comm", RecordingComm)


def _wait_for(predicate: Callable[[], Any], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out waiting"
        time.sleep(0.02)


CHAIN = """\
name: chain
tasks:
  a: {action: core.echo, input: {n: 1}, on_success: b}
  b: {action: core.echo, input: {n: 2}, on_success: c}
  c: {action: core.echo, input: {n: 3}}
"""

APPROVAL = """\
name: approval
tasks:
  ask:
    action: core.inquiry
    input:
      prompt: Ship it?
      schema: {type: object, properties: {approved: {type: boolean}}, required: [approved]}
    decision:
      - when: "{{ result.approved }}"
        next: ship
      - default: stop
  ship: {action: core.echo, input: {shipped: true}}
  stop: {action: core.noop}
"""


def test_widget_follows_a_run_to_succeeded(engine: Any) -> None:
    workflow = jw.load(CHAIN)
    run = workflow.run(wait=False)
    binding = bind_run(run, widget_for_workflow(workflow))
    widget = binding.widget
    run.wait(10)
    _wait_for(lambda: widget.run.get("status") == "succeeded")
    assert widget.run == {"run_id": run.run_id, "status": "succeeded", "error": None}
    assert {name: s["status"] for name, s in widget.status.items()} == {
        "a": "succeeded",
        "b": "succeeded",
        "c": "succeeded",
    }
    assert widget.status["c"]["inputs"] == {"n": 3}
    assert widget.status["c"]["result"] == "{'n': 3}"  # a short repr, as the wire format says
    assert widget.status["c"]["attempts"] == 1
    assert widget.inquiries == []
    assert [n["id"] for n in widget.graph["nodes"]] == ["a", "b", "c"]


def test_failure_is_shown_with_its_error(engine: Any) -> None:
    workflow = jw.load("name: boom\ntasks:\n  bad: {action: core.fail, input: {message: kaput}}\n")
    run = workflow.run(wait=False)
    widget = bind_run(run).widget
    run.wait(10)
    _wait_for(lambda: widget.run.get("status") == "failed")
    assert widget.status["bad"]["status"] == "failed"
    assert "kaput" in widget.status["bad"]["error"]
    assert "kaput" in widget.run["error"]


def test_updates_are_throttled_and_the_final_state_always_arrives(engine: Any) -> None:
    names = [f"t{i}" for i in range(40)]
    tasks = "\n".join(
        f"  {n}: {{action: core.noop{', on_success: ' + names[i + 1] if i + 1 < len(names) else ''}}}"
        for i, n in enumerate(names)
    )
    workflow = jw.load(f"name: many\ntasks:\n{tasks}\n")
    run = workflow.run(wait=False)
    batches: list[int] = []
    run.on_change(lambda _run: batches.append(1))
    binding = bind_run(run, widget_for_workflow(workflow), interval=5.0)
    run.wait(20)
    widget = binding.widget
    _wait_for(lambda: widget.run.get("status") == "succeeded")
    assert len(batches) >= 10  # the run changed many times...
    assert binding.pushes <= 3  # ...but the widget was told only at the start and the end
    assert all(widget.status[n]["status"] == "succeeded" for n in names)
    assert isinstance(widget.comm, RecordingComm)
    # One comm message per push, not one per task.
    assert widget.comm.status_updates() <= binding.pushes


def test_a_change_held_back_by_the_throttle_is_pushed_later(engine: Any) -> None:
    gate = threading.Event()

    @jw.task
    def slow_step() -> str:
        assert gate.wait(30)
        return "done"

    workflow = jw.load(
        "name: slow\ntasks:\n  quick: {action: core.noop, on_success: slow}\n  slow: {action: slow_step}\n"
    )
    run = workflow.run(wait=False)
    binding = bind_run(run, widget_for_workflow(workflow), interval=0.4)
    widget = binding.widget
    try:
        # Nothing else happens while `slow` runs: only the trailing push can show it running.
        _wait_for(lambda: (widget.status.get("slow") or {}).get("status") == "running", timeout=5)
    finally:
        gate.set()
    run.wait(10)
    _wait_for(lambda: widget.status["slow"]["status"] == "succeeded")


def test_an_inquiry_answered_through_the_widget_continues_the_run(engine: Any) -> None:
    workflow = jw.load(APPROVAL)
    run = workflow.run(wait=False)
    binding = bind_run(run, widget_for_workflow(workflow))
    widget = binding.widget
    run.wait(10)
    assert run.status == "waiting"
    _wait_for(lambda: widget.inquiries)
    [inquiry] = widget.inquiries
    assert inquiry["task"] == "ask" and inquiry["prompt"] == "Ship it?"
    assert inquiry["schema"]["required"] == ["approved"]
    assert widget.run["status"] == "waiting"
    assert isinstance(widget.comm, RecordingComm)

    # An answer that does not fit the schema goes back to the form; the run keeps waiting.
    widget.comm.from_front_end(
        {"method": "custom", "content": {"type": "respond", "task": "ask", "data": {}}}
    )
    [refused] = widget.comm.custom_messages()
    assert refused["type"] == "respond_error" and "approved" in refused["error"]
    assert run.status == "waiting"

    widget.comm.from_front_end(
        {
            "method": "custom",
            "content": {"type": "respond", "task": "ask", "data": {"approved": True}},
        }
    )
    assert widget.comm.custom_messages()[-1] == {"type": "respond_ok", "task": "ask"}
    run.wait(10)
    assert run.status == "succeeded"
    assert [t["task"] for t in run.tasks] == ["ask", "ship"]
    _wait_for(lambda: widget.run["status"] == "succeeded")
    assert widget.inquiries == []
    assert widget.status["ask"]["result"] == "{'approved': True}"


class _DashboardExecutor(Executor):
    """Runs submissions in threads and reports a dashboard URL, like a Dask executor would."""

    dashboard = "http://127.0.0.1:8787/status"

    def __init__(self) -> None:
        from jupyter_workflows.engine.context import run_task

        self._run_task = run_task
        self._results: dict[str, Any] = {}

    def submit(self, submission: Submission, callback: Callable[[Outcome], None]) -> None:
        def work() -> None:
            kwargs = {
                k: self._results.get(v.key) if isinstance(v, ResultRef) else v
                for k, v in submission.kwargs.items()
            }
            env = self._run_task(
                submission.fn, kwargs, submission.context, submission.wants_context
            )
            if env.ok:
                self._results[submission.key] = env.value
            callback(
                Outcome(
                    submission.key,
                    env.ok,
                    env.value,
                    env.error,
                    env.logs,
                    env.started_at,
                    env.ended_at,
                    env.worker,
                    env.error_type,
                )
            )

        threading.Thread(target=work, daemon=True).start()

    def cancel(self, key: str) -> None:
        pass

    def forget(self, keys: list[str]) -> None:
        for key in keys:
            self._results.pop(key, None)

    @property
    def dashboard_link(self) -> str | None:
        return self.dashboard


def test_dashboard_link_comes_from_the_executor() -> None:
    api.configure(store=":memory:", executor=_DashboardExecutor())
    workflow = jw.load(CHAIN)
    run = workflow.run(wait=False)
    widget = bind_run(run, widget_for_workflow(workflow)).widget
    run.wait(10)
    _wait_for(lambda: widget.run.get("status") == "succeeded")
    assert widget.dashboard_link == _DashboardExecutor.dashboard


def test_a_stored_run_shows_as_a_snapshot(engine: Any, tmp_path: Any) -> None:
    pytest.importorskip("jupyter_workflows.store.sqlite")
    run = jw.load(CHAIN).run()
    assert run.status == "succeeded"
    # A new orchestrator on the same store: the run is no longer driven by this process.
    api.configure(store=str(tmp_path / "state.db"), executor="inline")
    stored = api.get_run(run.run_id)
    binding = bind_run(stored)
    widget = binding.widget
    assert [n["id"] for n in widget.graph["nodes"]] == ["a", "b", "c"]  # rebuilt from the store
    assert widget.run["status"] == "succeeded"
    assert widget.status["b"]["status"] == "succeeded"


def test_rebinding_a_widget_shows_only_the_new_run(engine: Any) -> None:
    workflow = jw.load(APPROVAL)
    first = workflow.run(wait=True)
    widget = widget_for_run(first)
    binding = bind_run(first, widget)
    assert widget.inquiries and widget.status["ask"]["status"] == "waiting"
    first.cancel()
    first.wait(10)
    second = jw.load(CHAIN).run()
    bind_run(second, widget)
    assert binding.closed
    assert set(widget.status) == {"a", "b", "c"}
    assert widget.inquiries == []


@pytest.fixture
def plain_widget() -> Iterator[GraphWidget]:
    w = GraphWidget({"name": "x", "nodes": [], "edges": []})
    yield w
    w.close()


def test_closed_binding_stops_answering(engine: Any, plain_widget: GraphWidget) -> None:
    run = jw.load(APPROVAL).run()
    binding = bind_run(run, plain_widget)
    binding.close()
    assert isinstance(plain_widget.comm, RecordingComm)
    plain_widget.comm.from_front_end(
        {
            "method": "custom",
            "content": {"type": "respond", "task": "ask", "data": {"approved": True}},
        }
    )
    [message] = plain_widget.comm.custom_messages()
    assert message["type"] == "respond_error"
    assert run.status == "waiting"
    run.cancel()
