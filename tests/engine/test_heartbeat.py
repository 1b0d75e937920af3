"""The orchestrator's heartbeat with many runs in flight: one store write and one look for
requests for all of them, not a commit per run (a heartbeat of 1,000 runs held the loop, and
every new run's dispatch, for 50-160 ms), and requests from another process still reach the
right run (real orchestrator and SQLite store, in-process executor)."""

from __future__ import annotations

import threading

import pytest

import jupyter_workflows as jw
from jupyter_workflows.engine import api
from jupyter_workflows.engine.orchestrator import OWNER
from jupyter_workflows.store.sqlite import SqliteStore

pytestmark = pytest.mark.timeout(180)

APPROVAL = """
name: beat
tasks:
  approve: {action: core.inquiry, input: {prompt: "go?"}}
"""


def _traced_tick(orch) -> list[str]:
    """One heartbeat, on the orchestrator's loop as its timer runs it, and the SQL statements
    it sent through that thread's connection to the store."""
    statements: list[str] = []
    done = threading.Event()

    def beat() -> None:
        writer = orch.store._writer()  # this thread's connection: every write goes through it
        writer.set_trace_callback(statements.append)
        try:
            orch._tick()
        finally:
            writer.set_trace_callback(None)
            done.set()

    orch._loop.call_soon_threadsafe(beat)
    assert done.wait(60), "the heartbeat did not finish"
    return statements


def test_a_heartbeat_of_200_runs_is_one_commit_and_applies_requests(tmp_path) -> None:
    api.configure(store=str(tmp_path / "state.db"), executor="inline")
    orch = api.get_orchestrator()
    wf = jw.load(APPROVAL)
    runs = [wf.run(wait=False) for _ in range(200)]
    for run in runs:
        assert run.wait(60) and run.status == "waiting", run.status
    before = {run.run_id: orch.store.get_run(run.run_id)["heartbeat_at"] for run in runs}

    # Another process (the CLI) asks for two runs to be cancelled.
    other = SqliteStore(str(tmp_path / "state.db"))
    other.add_request(runs[7].run_id, "cancel")
    other.add_request(runs[150].run_id, "cancel")
    other.close()

    statements = _traced_tick(orch)
    commits = sum(sql.strip().upper().startswith("BEGIN") for sql in statements)
    # One for the heartbeat, one for taking each of the two runs' requests (it was one per
    # run in flight).
    assert 1 <= commits <= 3, statements

    for run in (runs[7], runs[150]):
        assert run.wait(60)
        assert run.status == "cancelled", run.status
    assert all(run.status == "waiting" for i, run in enumerate(runs) if i not in (7, 150))
    reader = SqliteStore(str(tmp_path / "state.db"))
    try:
        for run in runs:
            record = reader.get_run(run.run_id)
            assert record is not None
            assert record["heartbeat_at"] > before[run.run_id]
            assert record["owner"] == OWNER
    finally:
        reader.close()
    for run in runs[:3]:
        run.respond("approve", {"approved": True})
        assert run.wait(60) and run.status == "succeeded", run.error
