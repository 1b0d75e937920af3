"""While a big ``with_items`` fan-out runs, Python's collector runs less often (its pauses hold
the GIL the engine, the Dask client and the embedded scheduler share); the thresholds come
back when the run ends, and a process that chose its own keeps them (docs/performance.md)."""

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


def gc_gen0(x: int) -> int:
    """What the collector's youngest-generation threshold is while this item runs."""
    return gc.get_threshold()[0]


@pytest.fixture
def fanout(tmp_path, monkeypatch):
    jw.task(name="gc_gen0")(gc_gen0)
    monkeypatch.delenv("JUPYTER_WORKFLOWS_GC_TUNING", raising=False)
    api.configure(store=str(tmp_path / "state.db"), executor="inline")
    before = gc.get_threshold()
    gc.set_threshold(*orchestrator._GC_STARTUP)
    yield jw.load(WORKFLOW)
    gc.set_threshold(*before)


def test_a_big_fanout_runs_with_fewer_collections_and_restores_them(fanout):
    run = fanout.run({"n": orchestrator.BIG_ITEMS + 200})
    assert run.status == "succeeded", run.error
    seen = run.outputs["seen"]
    assert len(seen) == orchestrator.BIG_ITEMS + 200
    # Every item ran while the thresholds were tuned (the first is submitted after the hold).
    assert set(seen) == {orchestrator.GC_FANOUT_GEN0}
    assert gc.get_threshold() == orchestrator._GC_STARTUP
    assert not orchestrator._GC.active


def test_a_small_fanout_leaves_the_collector_alone(fanout):
    run = fanout.run({"n": 20})
    assert run.status == "succeeded", run.error
    assert set(run.outputs["seen"]) == {orchestrator._GC_STARTUP[0]}
    assert gc.get_threshold() == orchestrator._GC_STARTUP


def test_thresholds_the_process_chose_are_kept(fanout):
    gc.set_threshold(1234, 11, 12)
    run = fanout.run({"n": orchestrator.BIG_ITEMS + 10})
    assert run.status == "succeeded", run.error
    assert set(run.outputs["seen"]) == {1234}
    assert gc.get_threshold() == (1234, 11, 12)


def test_the_environment_turns_it_off(fanout, monkeypatch):
    monkeypatch.setenv("JUPYTER_WORKFLOWS_GC_TUNING", "0")
    run = fanout.run({"n": orchestrator.BIG_ITEMS + 10})
    assert run.status == "succeeded", run.error
    assert set(run.outputs["seen"]) == {orchestrator._GC_STARTUP[0]}


def test_a_failing_fanout_restores_the_thresholds_too(fanout, tmp_path):
    jw.task(name="gc_fail")(_fail_at_500)
    wf = jw.load(WORKFLOW.replace("action: gc_gen0", "action: gc_fail"))
    run = wf.run({"n": orchestrator.BIG_ITEMS + 10})
    assert run.status == "failed"
    assert gc.get_threshold() == orchestrator._GC_STARTUP
    assert not orchestrator._GC.active


def _fail_at_500(x: int) -> int:
    if x == 500:
        raise ValueError("item 500 fails")
    return x


def test_on_a_dask_cluster_in_this_process_too(tmp_path, monkeypatch):
    """Chunked on a real LocalCluster (threads in this process, so items see the process's
    collector): tuned while the fan-out runs, restored after."""
    from distributed import LocalCluster

    jw.task(name="gc_gen0")(gc_gen0)
    monkeypatch.delenv("JUPYTER_WORKFLOWS_GC_TUNING", raising=False)
    before = gc.get_threshold()
    gc.set_threshold(*orchestrator._GC_STARTUP)
    with LocalCluster(
        n_workers=1, threads_per_worker=2, processes=False, dashboard_address=":0"
    ) as cluster:
        api.configure(store=str(tmp_path / "state.db"), scheduler=cluster.scheduler_address)
        try:
            run = jw.load(WORKFLOW).run({"n": 3000})
            assert run.status == "succeeded", run.error
            assert set(run.outputs["seen"]) == {orchestrator.GC_FANOUT_GEN0}
            assert gc.get_threshold() == orchestrator._GC_STARTUP
        finally:
            api.configure(scheduler=None)
            gc.set_threshold(*before)
