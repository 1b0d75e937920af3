"""While runs are in flight, Python's collector runs less often (its pauses hold the GIL the
engine, the Dask client and the embedded scheduler share); the thresholds come back when the
last run ends, and a process that chose its own keeps them (docs/performance.md)."""

from __future__ import annotations

import gc

import pytest

import jupyter_workflows as jw
from jupyter_workflows.engine import api, orchestrator

WORKFLOW = """
name: gcfan
parameters:
  n: {type: integer}
tasks:
  fan:
    action: gc_gen0
    with_items: "{{ range(parameters.n) | list }}"
    input: {x: "{{ item }}"}
output_map:
  seen: "{{ task.fan.result }}"
"""

APPROVAL = """
name: gcwait
tasks:
  approve: {action: core.inquiry, input: {prompt: "go?"}}
"""

TUNED = orchestrator.GC_RUNS_GEN0
STARTUP = orchestrator._GC_STARTUP


def gc_gen0(x: int) -> int:
    """What the collector's youngest-generation threshold is while this item runs."""
    return gc.get_threshold()[0]


def _fail_at_500(x: int) -> int:
    if x == 500:
        raise ValueError("item 500 fails")
    return x


@pytest.fixture
def engine(tmp_path, monkeypatch):
    jw.task(name="gc_gen0")(gc_gen0)
    jw.task(name="gc_fail")(_fail_at_500)
    monkeypatch.delenv("JUPYTER_WORKFLOWS_GC_TUNING", raising=False)
    api.configure(store=str(tmp_path / "state.db"), executor="inline")
    before = gc.get_threshold()
    gc.set_threshold(*STARTUP)
    yield
    gc.set_threshold(*before)


@pytest.mark.parametrize("n", [20, 1200])
def test_a_run_runs_with_fewer_collections_and_restores_them(engine, n):
    run = jw.load(WORKFLOW).run({"n": n})
    assert run.status == "succeeded", run.error
    assert len(run.outputs["seen"]) == n
    assert set(run.outputs["seen"]) == {TUNED}
    assert gc.get_threshold() == STARTUP
    assert not orchestrator._GC.active


def test_thresholds_the_process_chose_are_kept(engine):
    gc.set_threshold(1234, 11, 12)
    run = jw.load(WORKFLOW).run({"n": 30})
    assert run.status == "succeeded", run.error
    assert set(run.outputs["seen"]) == {1234}
    assert gc.get_threshold() == (1234, 11, 12)


def test_the_environment_turns_it_off(engine, monkeypatch):
    monkeypatch.setenv("JUPYTER_WORKFLOWS_GC_TUNING", "0")
    run = jw.load(WORKFLOW).run({"n": 30})
    assert run.status == "succeeded", run.error
    assert set(run.outputs["seen"]) == {STARTUP[0]}


def test_a_failing_run_restores_the_thresholds_too(engine):
    wf = jw.load(WORKFLOW.replace("action: gc_gen0", "action: gc_fail"))
    run = wf.run({"n": 1010})
    assert run.status == "failed"
    assert gc.get_threshold() == STARTUP
    assert not orchestrator._GC.active


def test_restored_only_when_the_last_run_in_flight_ends(engine):
    waiting = jw.load(APPROVAL).run(wait=False).wait(30)  # quiescent: waiting for an answer
    assert waiting.status == "waiting", waiting.status
    assert gc.get_threshold()[0] == TUNED
    other = jw.load(WORKFLOW).run({"n": 5})  # starts and ends while the first one waits
    assert other.status == "succeeded", other.error
    assert gc.get_threshold()[0] == TUNED
    waiting.respond("approve", {"approved": True})
    waiting.wait(30)
    assert waiting.status == "succeeded", waiting.error
    assert gc.get_threshold() == STARTUP


def test_on_a_dask_cluster_in_this_process_too(tmp_path, monkeypatch):
    """Chunked on a real LocalCluster (threads in this process, so items see the process's
    collector): tuned while the fan-out runs, restored after."""
    from distributed import LocalCluster

    jw.task(name="gc_gen0")(gc_gen0)
    monkeypatch.delenv("JUPYTER_WORKFLOWS_GC_TUNING", raising=False)
    before = gc.get_threshold()
    gc.set_threshold(*STARTUP)
    with LocalCluster(
        n_workers=1, threads_per_worker=2, processes=False, dashboard_address=":0"
    ) as cluster:
        api.configure(store=str(tmp_path / "state.db"), scheduler=cluster.scheduler_address)
        try:
            run = jw.load(WORKFLOW).run({"n": 3000})
            assert run.status == "succeeded", run.error
            assert set(run.outputs["seen"]) == {TUNED}
            assert gc.get_threshold() == STARTUP
        finally:
            api.configure(scheduler=None)
            gc.set_threshold(*before)
