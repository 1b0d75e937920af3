"""Nested runs that cannot start fail their parent's task with one line (audit D1, D2).

The parent is started with :meth:`Orchestrator.start`, which does not validate, so these tests
exercise the run-time path whatever ``validate`` checks up front: a child whose file changed
after the parent was checked, a child that does not resolve, and nesting without end.
"""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest

import jupyter_workflows as jw
from jupyter_workflows.engine.orchestrator import MAX_NESTING
from jupyter_workflows.engine.run import Run

ERROR_LINE = re.compile(r"^[A-Za-z_][A-Za-z0-9_.]*: [^\n]+$")


def _run(engine, folder: Path, name: str, timeout: float = 30.0) -> Run:
    wf = jw.load(folder / f"{name}.yaml")
    run = Run(engine.start(wf, {}), engine)
    run.wait(timeout)
    return run


def _write(folder: Path, name: str, text: str) -> None:
    (folder / f"{name}.yaml").write_text(text)


@pytest.mark.parametrize(
    ("child", "says"),
    [
        ("name: child\ntasks:\n  t: {action: core.nope}\n", "core.nope"),
        ("name: child\ntasks:\n  t: {action: 'nomod_xyz:f'}\n", "nomod_xyz"),
        ("name: child\ntasks:\n  t: {action: core.noop, on_success: zz}\n", "zz"),
        (
            "name: child\ntasks:\n  a: {action: core.noop, on_success: b}\n"
            "  b: {action: core.noop, on_success: a}\n",
            "start task",
        ),
        ("name: child\ntasks: [\n", "child.yaml"),
        (None, "unknown workflow 'child'"),
    ],
    ids=["unknown_action", "missing_module", "unknown_target", "no_start", "bad_yaml", "missing"],
)
def test_a_child_that_cannot_start_fails_the_parent_task(engine, tmp_path, child, says):
    """The child is fine when the parent starts, and broken (or gone) when its task starts."""
    _write(
        tmp_path,
        "parent",
        "name: parent\ntasks:\n"
        "  wait: {action: core.sleep, input: {seconds: 0.3}, on_success: a}\n"
        "  a: {workflow: child}\n",
    )
    _write(tmp_path, "child", "name: child\ntasks:\n  t: {action: core.noop}\n")
    run = Run(engine.start(jw.load(tmp_path / "parent.yaml"), {}), engine)
    if child is None:
        (tmp_path / "child.yaml").unlink()
    else:
        _write(tmp_path, "child", child)
    run.wait(30)
    assert run.status == "failed"
    task = run.tasks[-1]
    assert task["task"] == "a" and task["status"] == "failed"
    assert ERROR_LINE.match(task["error"]), task["error"]
    assert "nested workflow 'child'" in task["error"] and says in task["error"]
    assert ERROR_LINE.match(run.error) and "task 'a'" in run.error
    assert [r.run_id for r in jw.runs()] == [run.run_id]  # no child run was created


def test_a_child_that_cannot_start_is_a_failure_like_any_other(engine, tmp_path):
    """``on_failure`` remediates it, and the rest of the run goes on."""
    _write(tmp_path, "child", "name: child\ntasks:\n  t: {action: core.noop}\n")
    _write(
        tmp_path,
        "parent",
        "name: parent\ntasks:\n"
        "  wait: {action: core.sleep, input: {seconds: 0.3}, on_success: a}\n"
        "  a: {workflow: child, on_failure: fix}\n"
        "  fix: {action: core.echo, input: {error: '{{ task.a.error }}'}}\n",
    )
    run = jw.load(tmp_path / "parent.yaml").run(wait=False)
    _write(tmp_path, "child", "name: child\ntasks:\n  t: {action: core.nope}\n")
    run.wait(30)
    assert run.status == "succeeded"
    assert [t["task"] for t in run.tasks] == ["wait", "a", "fix"]
    assert "core.nope" in run.tasks[-1]["result"]["error"]


def test_an_error_while_starting_a_child_never_stops_the_loop(engine, tmp_path, monkeypatch):
    _write(tmp_path, "child", "name: child\ntasks:\n  t: {action: core.noop}\n")
    _write(tmp_path, "parent", "name: parent\ntasks:\n  a: {workflow: child}\n")
    real_start = engine.start

    def start(workflow, parameters, **kwargs):
        if kwargs.get("parent") is not None:
            raise RuntimeError("store is on fire")
        return real_start(workflow, parameters, **kwargs)

    monkeypatch.setattr(engine, "start", start)
    run = _run(engine, tmp_path, "parent")
    assert run.status == "failed"
    assert run.tasks[0]["error"] == "RuntimeError: nested workflow 'child': store is on fire"
    # The loop still serves other runs.
    other = Run(real_start(jw.load("name: other\ntasks: {t: {action: core.noop}}"), {}), engine)
    other.wait(10)
    assert other.status == "succeeded"


def test_nesting_deeper_than_the_limit_fails_the_task(engine, tmp_path):
    depth = MAX_NESTING + 2
    for i in range(depth):
        _write(tmp_path, f"w{i}", f"name: w{i}\ntasks:\n  a: {{workflow: w{i + 1}}}\n")
    _write(tmp_path, f"w{depth}", f"name: w{depth}\ntasks:\n  a: {{action: core.noop}}\n")
    run = _run(engine, tmp_path, "w0", timeout=60)
    assert run.status == "failed"
    assert ERROR_LINE.match(run.error)
    assert "NestingError" in run.error
    assert f"level {MAX_NESTING + 1} of nesting" in run.error
    assert len(jw.runs()) == MAX_NESTING + 1  # w0 and its 32 nested runs, no more


def test_a_shallower_chain_runs(engine, tmp_path):
    for i in range(5):
        _write(tmp_path, f"w{i}", f"name: w{i}\ntasks:\n  a: {{workflow: w{i + 1}}}\n")
    _write(tmp_path, "w5", "name: w5\ntasks:\n  a: {action: core.echo, input: {x: 1}}\n")
    assert _run(engine, tmp_path, "w0").status == "succeeded"


def test_mutually_recursive_children_end_with_a_clear_error(engine, tmp_path):
    _write(tmp_path, "mutual_a", "name: mutual_a\ntasks:\n  a: {workflow: mutual_b}\n")
    _write(tmp_path, "mutual_b", "name: mutual_b\ntasks:\n  a: {workflow: mutual_a}\n")
    began = time.monotonic()
    run = _run(engine, tmp_path, "mutual_a", timeout=60)
    assert time.monotonic() - began < 60
    assert run.status == "failed"
    assert ERROR_LINE.match(run.error)
    # The depth limit stops it (or, if validation learns to see cycles, the child's check).
    assert "NestingError" in run.error or "nest" in run.error
    assert len(jw.runs()) <= MAX_NESTING + 1
