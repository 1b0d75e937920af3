"""The engine never hangs on an internal error (issue 9, point 1).

Whatever raises while the orchestrator handles events, writes projections or commits ends the
affected run ``failed`` with one ``InternalError: ...`` line naming what failed; ``wait()``, the
CLI and listeners return within seconds, and other runs go on. Each test injects a real failure
at one of those places: a store that refuses a write or a commit, a state machine handler that
raises, a value whose pickling breaks the second time.
"""

from __future__ import annotations

import json
import os
import sys
import textwrap

import pandas as pd
import pytest

import jupyter_workflows as jw
from jupyter_workflows.engine import api
from jupyter_workflows.engine.state import RunState
from jupyter_workflows.store.sqlite import SqliteStore
from jupyter_workflows.testing import run_cli

CHAIN = """
name: chain
tasks:
  a: {action: ie_make, input: {n: 1}, on_success: b}
  b: {action: ie_make, input: {n: 2}, on_success: c}
  c: {action: ie_make, input: {n: 3}}
output_map:
  c: "{{ task.c.result }}"
"""

#: Generous: the machine is shared; a hang is what these tests catch, not slowness.
ENDS_WITHIN = 60.0


@jw.task(name="ie_make")
def _make(n: int) -> int:
    return n


class _RefusingStore(SqliteStore):
    """A SQLite store that raises when told to: on a task record with a result, or on
    committing."""

    def __init__(self, path, *, refuse_task: str | None = None, refuse_commits: int = 0) -> None:
        super().__init__(path)
        self.refuse_task = refuse_task
        self.refuse_commits = refuse_commits

    def upsert_tasks(self, run_id, records):
        for record in records:
            if record.get("task") == self.refuse_task and record.get("result") is not None:
                raise RuntimeError(f"disk says no to task {self.refuse_task}")
        super().upsert_tasks(run_id, records)

    def commit(self):
        logs_events = any(sql.startswith("INSERT INTO events") for sql, _rows in self._pending)
        if self.refuse_commits > 0 and logs_events:
            self.refuse_commits -= 1
            raise OSError("simulated: the disk went away")
        super().commit()


def _ends(run) -> None:
    run.wait(timeout=ENDS_WITHIN)  # raises TimeoutError when the run hangs


def test_a_store_refusing_a_projection_fails_the_run_with_one_line(tmp_path):
    store = _RefusingStore(tmp_path / "state.db", refuse_task="b")
    api.configure(store=store, executor="inline")
    run = jw.load(CHAIN).run(wait=False)
    _ends(run)
    assert run.status == "failed"
    assert run.error.startswith(
        "InternalError: writing the run's records to the store failed: RuntimeError: disk says no"
    ), run.error
    assert "\n" not in run.error
    # What another process reads says so too, and no task is left running.
    fresh = SqliteStore(tmp_path / "state.db")
    record = fresh.get_run(run.run_id)
    assert record["status"] == "failed" and record["error"] == run.error
    assert all(t["status"] != "running" for t in fresh.get_tasks(run.run_id))


def test_a_commit_that_fails_ends_the_run_instead_of_hanging(tmp_path):
    store = _RefusingStore(tmp_path / "state.db")
    api.configure(store=store, executor="inline")
    wf = jw.load(CHAIN)
    store.refuse_commits = 1  # the first commit of a batch of events
    run = wf.run(wait=False)
    _ends(run)
    assert run.status == "failed"
    assert run.error.startswith(
        "InternalError: committing to the store failed: OSError: simulated"
    ), run.error


def test_a_state_machine_bug_fails_only_its_run(engine, monkeypatch):
    original = RunState._on_attempt_done

    def broken(self, event):
        if self.wf.name == "victim":
            raise ZeroDivisionError("a bug in the state machine")
        return original(self, event)

    monkeypatch.setattr(RunState, "_on_attempt_done", broken)
    victim = jw.load(CHAIN.replace("name: chain", "name: victim")).run(wait=False)
    bystander = jw.load(CHAIN.replace("name: chain", "name: bystander")).run(wait=False)
    _ends(victim)
    _ends(bystander)
    assert victim.status == "failed"
    assert victim.error == (
        "InternalError: handling event 'attempt_done' failed: "
        "ZeroDivisionError: a bug in the state machine"
    )
    task = victim.tasks[0]
    assert task["status"] == "failed" and task["error"] == victim.error
    assert bystander.status == "succeeded" and bystander.outputs == {"c": 3}


def test_retry_failed_after_an_internal_error_runs_what_was_left(tmp_path):
    store = _RefusingStore(tmp_path / "state.db", refuse_task="b")
    api.configure(store=store, executor="inline")
    run = jw.load(CHAIN).run(wait=False)
    _ends(run)
    assert run.status == "failed"
    store.refuse_task = None
    run = run.resume(wait=True, retry_failed=True)
    assert run.status == "succeeded", run.error
    assert run.outputs == {"c": 3}


def test_dataframe_results_do_not_hang_the_engine(engine):
    @jw.task(name="ie_frame")
    def frame() -> pd.DataFrame:
        return pd.DataFrame({"a": [1.0, float("nan")], "b": ["x", None]})

    @jw.task(name="ie_rows")
    def rows(df: pd.DataFrame) -> int:
        return len(df)

    wf = jw.load(
        """
name: frames
tasks:
  make: {action: ie_frame, on_success: use}
  use: {action: ie_rows, input: {df: "{{ task.make.result }}"}}
output_map:
  n: "{{ task.use.result }}"
  df: "{{ task.make.result }}"
"""
    )
    run = wf.run(wait=False)
    _ends(run)
    assert run.status == "succeeded", run.error
    assert run.outputs["n"] == 2
    assert isinstance(run.outputs["df"], pd.DataFrame)


FLAKY = textwrap.dedent(
    """\
    import threading


    class Flaky:
        '''Pickles once in the engine's thread, then refuses: the event log takes it, the
        task record not.'''

        pickled = 0

        def __reduce__(self):
            if threading.current_thread().name == "jupyter-workflows-orchestrator":
                type(self).pickled += 1
                if type(self).pickled == 2:
                    raise RuntimeError("refusing to be pickled twice")
            return (Flaky, ())


    def make():
        return Flaky()
    """
)


def test_the_cli_ends_with_one_line_on_an_internal_error(tmp_path):
    (tmp_path / "flaky.py").write_text(FLAKY)
    (tmp_path / "wf.yaml").write_text(
        "name: flaky\ntasks:\n  make: {action: 'flaky:make', on_success: after}\n"
        "  after: {action: core.noop}\n"
    )
    env = dict(os.environ)
    env["JUPYTER_WORKFLOWS_EXECUTOR"] = "inline"
    env["JUPYTER_WORKFLOWS_STORE"] = str(tmp_path / "state.db")
    env.pop("JUPYTER_WORKFLOWS_SCHEDULER", None)
    proc = run_cli("run", "wf.yaml", "--json", cwd=tmp_path, env=env)
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr, proc.stderr
    out = json.loads(proc.stdout)
    assert out["status"] == "failed"
    assert out["error"].startswith(
        "InternalError: writing the run's records to the store failed: StoreError: "
    ), out["error"]
    assert "refusing to be pickled twice" in out["error"]
    shown = run_cli("show", out["run_id"], "--json", cwd=tmp_path, env=env, timeout=60)
    assert json.loads(shown.stdout)["status"] == "failed", shown.stdout + shown.stderr


if __name__ == "__main__":  # pragma: no cover
    sys.exit(pytest.main([__file__, "-q"]))


def test_an_executor_that_cannot_read_an_outcome_fails_the_attempt(dask_engine, monkeypatch):
    """On Dask: building an outcome raises (a bug) -> the attempt fails with one line, the
    executor's outcome thread lives on, and the next run is fine."""
    from jupyter_workflows.executors.dask import DaskExecutor

    original = DaskExecutor._outcome

    def broken(self, future, envelope):
        if ".b-" in future.key:
            raise RuntimeError("could not read it")
        return original(self, future, envelope)

    monkeypatch.setattr(DaskExecutor, "_outcome", broken)
    wf = jw.load(CHAIN)
    run = wf.run(wait=False)
    _ends(run)
    assert run.status == "failed"
    b = next(t for t in run.tasks if t["task"] == "b")
    assert b["error"].startswith("InternalError: reading the outcome of chain.b-"), b["error"]
    assert b["error"].endswith("failed: RuntimeError: could not read it")
    monkeypatch.setattr(DaskExecutor, "_outcome", original)
    again = wf.run(wait=False)
    _ends(again)
    assert again.status == "succeeded" and again.outputs == {"c": 3}
