"""``resume --retry-failed``: a failure, a fix, a resume; succeeded tasks are not run again."""

from __future__ import annotations

import json

import jupyter_workflows as jw
from jupyter_workflows.engine import events as E
from jupyter_workflows.engine.rehearsal import Fail, rehearse
from jupyter_workflows.testing import run_cli

FLOW = """
name: etl
tasks:
  extract: {action: core.echo, input: {rows: 3}, on_success: [transform, audit]}
  transform: {action: core.echo, input: {n: 1}, on_success: load}
  audit: {action: core.sleep, input: {seconds: 0}, on_success: report}
  report: {action: core.noop}
  load: {action: core.noop}
output_map:
  loaded: "{{ task.load.status }}"
"""


def test_rehearsed_retry_reruns_only_what_failed_and_what_fail_fast_dropped():
    def transform(submit):  # the first execution fails; the retried one (a fix) succeeds
        return Fail("ValueError: bad row") if submit.exec_id == "transform" else {"ok": True}

    r = rehearse(FLOW, {"transform": transform}, durations={"audit": 2})
    assert r.status == "failed"
    assert "transform" in r.error
    assert r.sequence == ["extract", "transform", "audit"]  # report dropped by fail-fast
    r.send(E.RetryRequested(r.time + 1))
    assert r.status == "succeeded"
    assert r.sequence == ["extract", "transform", "audit", "transform#2", "report", "load"]
    assert r.outputs == {"loaded": "succeeded"}
    assert r.state.executions["extract"].attempts == 1


def test_retry_requested_on_a_succeeded_run_changes_nothing():
    r = rehearse(FLOW)
    assert r.status == "succeeded"
    before = list(r.sequence)
    r.send(E.RetryRequested(r.time + 1))
    assert r.status == "succeeded" and r.sequence == before


def test_python_api_fix_then_resume(engine):
    calls = []

    @jw.task(name="etl_step")
    def broken(x: int) -> int:
        calls.append(("broken", x))
        raise ValueError("bug")

    @jw.task(name="etl_source")
    def source() -> int:
        calls.append(("source", 0))
        return 20

    wf = jw.load(
        """
name: fixme
tasks:
  src: {action: etl_source, on_success: step}
  step: {action: etl_step, input: {x: "{{ task.src.result }}"}}
output_map: {out: "{{ task.step.result }}"}
"""
    )
    run = wf.run()
    assert run.status == "failed"
    assert run.resume(wait=True).status == "failed"  # an ended run is returned as it is

    @jw.task(name="etl_step")
    def fixed(x: int) -> int:
        calls.append(("fixed", x))
        return x + 1

    again = run.resume(wait=True, retry_failed=True)
    assert again.status == "succeeded", again.error
    assert again.outputs == {"out": 21}
    assert calls == [("source", 0), ("broken", 20), ("fixed", 20)]
    assert [(t["task"], t["status"]) for t in again.tasks] == [
        ("src", "succeeded"),
        ("step", "failed"),
        ("step", "succeeded"),
    ]


def test_cli_retry_failed_in_another_process(tmp_path):
    (tmp_path / "steps.py").write_text(
        "import os\n"
        "def step():\n"
        "    if not os.path.exists('fixed'):\n"
        "        raise RuntimeError('not fixed yet')\n"
        "    return 'ok'\n"
    )
    (tmp_path / "wf.yaml").write_text(
        "name: wf\ntasks:\n  a: {action: core.echo, input: {v: 1}, on_success: b}\n  b: {action: steps:step}\n"
    )
    import os

    env = {**os.environ, "JUPYTER_WORKFLOWS_EXECUTOR": "inline"}
    first = run_cli("run", "wf.yaml", "--json", env=env, cwd=tmp_path)
    assert first.returncode == 1, first.stderr
    run_id = json.loads(first.stdout)["run_id"]
    plain = run_cli("resume", run_id, "--json", env=env, cwd=tmp_path)
    assert plain.returncode == 1  # ended: printed with its exit code
    (tmp_path / "fixed").write_text("")
    retried = run_cli("resume", run_id, "--retry-failed", "--json", env=env, cwd=tmp_path)
    assert retried.returncode == 0, retried.stderr
    data = json.loads(retried.stdout)
    assert data["status"] == "succeeded"
    assert [(t["task"], t["status"]) for t in data["tasks"]] == [
        ("a", "succeeded"),
        ("b", "failed"),
        ("b", "succeeded"),
    ]
