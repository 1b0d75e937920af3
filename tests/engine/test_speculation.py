"""Speculative starts: a chain step is queued behind its predecessor, gated on its success.

What must hold, whatever the timing: a successor never runs when its predecessor failed, runs
exactly once when it succeeded, and a pause withdraws it.
"""

from __future__ import annotations

from pathlib import Path

import pytest

import jupyter_workflows as jw
from jupyter_workflows.engine import commands as C
from jupyter_workflows.engine.rehearsal import Fail, rehearse

CHAIN = """
name: chain
tasks:
  a: {action: x, on_success: b, on_failure: cleanup}
  b: {action: x, input: {v: "{{ task.a.result }}", k: 1}}
  cleanup: {action: x}
"""


def test_successor_is_submitted_behind_its_gate():
    r = rehearse(CHAIN, {"a": "A", "b": lambda s: s.input})
    assert r.status == "succeeded"
    a, b = r.submits[:2]
    assert (a.task, b.task) == ("a", "b") and b.after == a.key and b.refs == {"v": a.key}
    assert r.sequence == ["a", "b"]
    # b's execution starts when a's success is known, and b's input is recorded rendered.
    assert r.state.executions["b"].input == {"v": "A", "k": 1}
    assert r.state.executions["b"].started_at == 1.0 and r.state.executions["b"].ended_at == 2.0


def test_a_failed_gate_never_starts_the_successor():
    r = rehearse(CHAIN, {"a": Fail("ValueError: no")})
    assert r.status == "succeeded"  # remediated by cleanup
    assert r.sequence == ["a", "cleanup"]
    assert "b" not in r.state.executions


def test_no_speculation_past_conditions_publish_or_joins():
    r = rehearse(
        """
name: w
tasks:
  a: {action: x, publish: {v: "{{ result }}"}, on_success: b}
  b: {action: x, on_success: c}
  c: {action: x, input: {v: "{{ vars.v }}"}}
"""
    )
    assert r.status == "succeeded"
    assert [s.after for s in r.submits] == [None, None, None]


@pytest.mark.parametrize("fixture", ["engine", "dask_engine"])
def test_successor_of_a_failed_task_never_runs_for_real(fixture, request, tmp_path):
    request.getfixturevalue(fixture)
    marks = tmp_path / "marks"
    marks.mkdir()
    path = str(marks)

    @jw.task(name="spec_mark")
    def mark(name: str, fail: bool = False) -> str:
        Path(path, name).write_text(name)
        if fail:
            raise RuntimeError(f"{name} failed")
        return name

    wf = jw.load(
        """
name: gate
tasks:
  first: {action: spec_mark, input: {name: first, fail: true}, on_success: second}
  second: {action: spec_mark, input: {name: second}}
"""
    )
    run = wf.run()
    assert run.status == "failed"
    assert sorted(p.name for p in marks.iterdir()) == ["first"]
    assert [t["task"] for t in run.tasks] == ["first"]

    ok = jw.load(
        """
name: gate_ok
tasks:
  one: {action: spec_mark, input: {name: one}, on_success: two}
  two: {action: spec_mark, input: {name: "{{ task.one.result }}-two"}}
"""
    )
    run = ok.run()
    assert run.status == "succeeded", run.error
    assert [(t["task"], t["result"]) for t in run.tasks] == [("one", "one"), ("two", "one-two")]
    assert sorted(p.name for p in marks.iterdir()) == ["first", "one", "one-two"]


def test_pause_withdraws_the_speculative_start():
    from jupyter_workflows.engine import events as E

    r = rehearse(
        "name: w\ntasks:\n  a: {action: x, on_success: b}\n  b: {action: x}\n",
        events=[(0.5, E.PauseRequested(0.5)), (5.0, E.ResumeRequested(5.0))],
    )
    assert r.status == "succeeded"
    cancels = [c for c in r.commands if isinstance(c, C.CancelAttempt)]
    assert len(cancels) == 1
    assert r.state.executions["b"].started_at == 5.0  # started only after the resume
