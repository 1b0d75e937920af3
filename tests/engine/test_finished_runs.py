"""A long-lived process (``serve``, a kernel used all day) does not keep every run it ever
drove: the orchestrator keeps the newest KEEP_FINISHED finished runs in memory and lets go of
older ones, which then read from the store like a run of another process. A ``Run`` handle
keeps its own run's live state while the handle lives (real orchestrator, SQLite store,
numpy results, in-process and on a real Dask LocalCluster)."""

from __future__ import annotations

import gc
import weakref

import numpy as np
import pytest

import jupyter_workflows as jw
from jupyter_workflows.engine import api
from jupyter_workflows.engine.orchestrator import KEEP_FINISHED

pytestmark = pytest.mark.timeout(300)

WF = """
name: keep
parameters:
  n: {type: integer, default: 3}
tasks:
  make: {action: keep_array, input: {n: "{{ parameters.n }}"}}
output_map:
  arr: "{{ task.make.result }}"
"""

FLAKY = """
name: keepflaky
tasks:
  first: {action: keep_array, input: {n: 2}, on_success: second}
  second: {action: keep_flaky}
"""

_BROKEN = {"on": True}


def keep_array(n: int) -> np.ndarray:
    out = np.arange(n, dtype=float)
    out[-1] = np.nan
    return out


def keep_flaky() -> str:
    if _BROKEN["on"]:
        raise RuntimeError("not fixed yet")
    return "fixed"


@pytest.fixture(autouse=True)
def _actions():
    jw.task(name="keep_array")(keep_array)
    jw.task(name="keep_flaky")(keep_flaky)
    _BROKEN["on"] = True


def _equal(a: np.ndarray, b: np.ndarray) -> bool:
    return np.array_equal(a, b, equal_nan=True)


@pytest.mark.parametrize("executor", ["inline", "dask"])
def test_old_finished_runs_are_let_go_and_read_from_the_store(tmp_path, executor) -> None:
    api.configure(store=str(tmp_path / "state.db"), executor=executor)
    orch = api.get_orchestrator()
    wf = jw.load(WF)
    first = wf.run({"n": 5})
    assert first.status == "succeeded", first.error
    first_id = first.run_id
    state = weakref.ref(orch.runs[first_id])
    for i in range(KEEP_FINISHED + 5):
        run = wf.run({"n": 3 + i % 4})
        assert run.status == "succeeded", run.error
    del run
    assert len(orch.runs) == KEEP_FINISHED, len(orch.runs)
    assert first_id not in orch.runs
    # The handle kept its run's live state: real values, as before.
    assert state() is not None
    assert _equal(first.outputs["arr"], keep_array(5))
    assert first.status == "succeeded" and first.tasks[0]["status"] == "succeeded"
    # A new handle reads it from the store, like a run of another process.
    again = jw.get_run(first_id)
    assert again.status == "succeeded"
    assert _equal(again.outputs["arr"], keep_array(5))
    assert _equal(again.tasks[0]["result"], keep_array(5))
    assert [r.run_id for r in jw.runs()][-1] == first_id  # still listed, oldest last
    # Once nobody holds it, its state (and its results) can be freed.
    del first, again
    gc.collect()
    assert state() is None, gc.get_referrers(state())


def test_a_failed_run_let_go_of_is_retried_from_the_store(tmp_path) -> None:
    api.configure(store=str(tmp_path / "state.db"), executor="inline")
    orch = api.get_orchestrator()
    failed = jw.load(FLAKY).run()
    assert failed.status == "failed", failed.status
    failed_id = failed.run_id
    del failed
    wf = jw.load(WF)
    for _ in range(KEEP_FINISHED + 1):
        assert wf.run().status == "succeeded"
    assert failed_id not in orch.runs
    _BROKEN["on"] = False  # the user fixed the task
    retried = jw.resume(failed_id, retry_failed=True, wait=True)
    assert retried.status == "succeeded", retried.error
    tasks = {t["task"]: t for t in retried.tasks}
    assert tasks["second"]["result"] == "fixed"
    assert tasks["first"]["attempts"] == 1  # what succeeded did not run again
    assert _equal(tasks["first"]["result"], keep_array(2))
