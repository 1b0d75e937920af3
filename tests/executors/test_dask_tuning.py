"""The Dask settings the engine applies to a cluster it starts itself, and never to another;
the batching interval of a Dask client the engine connects itself, never of a user's client.

Real clusters: the embedded LocalCluster a ``DaskExecutor()`` starts, and the session's
LocalCluster that a test brings (as a user's ``scheduler=`` does).
"""

from __future__ import annotations

import math
import threading
import time

import dask
import pytest

import jupyter_workflows as jw
from jupyter_workflows.executors.dask import (
    CLIENT_SEND_INTERVAL_S,
    ENGINE_DASK_CONFIG,
    DaskExecutor,
    engine_dask_config,
    tune_client,
)

pytestmark = pytest.mark.timeout(180)

KEY = "distributed.scheduler.worker-saturation"


def _saturation(client) -> float:
    return client.run_on_scheduler(lambda dask_scheduler: dask_scheduler.WORKER_SATURATION)


def test_the_embedded_cluster_is_tuned_and_the_process_config_is_not() -> None:
    assert dask.config.get(KEY) == 1.1
    with DaskExecutor(n_workers=1, threads_per_worker=1) as executor:
        assert math.isinf(_saturation(executor.client))
        assert dask.config.get(KEY) == 1.1  # only the cluster we started saw it


def test_a_cluster_the_user_brought_is_left_alone(dask_engine, dask_cluster) -> None:
    wf = jw.load("name: t\ntasks:\n  a: {action: core.noop}\n")
    assert wf.run().status == "succeeded"
    client = dask_engine.executor.client
    assert client.scheduler.address == dask_cluster.scheduler_address
    assert _saturation(client) == 1.1


def test_tuning_yields_to_the_users_dask_config_and_can_be_turned_off(monkeypatch) -> None:
    assert engine_dask_config() == ENGINE_DASK_CONFIG
    with dask.config.set({KEY: 2.5}):
        assert engine_dask_config() == {}  # a setting of the user's own wins
    monkeypatch.setenv("JUPYTER_WORKFLOWS_DASK_TUNING", "0")
    assert engine_dask_config() == {}


def _interval(executor: DaskExecutor) -> float:
    return executor.client.scheduler_comm.interval


def negate(x: int) -> int:
    return -x


def _runs(executor: DaskExecutor) -> bool:
    from jupyter_workflows.executors.base import Submission

    done = threading.Event()
    got: list[object] = []

    def callback(outcome: object) -> None:
        got.append(outcome)
        done.set()

    key = f"tune.negate-abcdef12-{time.time_ns()}"
    executor.submit(Submission(key, negate, {"x": -3}), callback)
    assert done.wait(60), "no outcome"
    return got[0].ok and got[0].result == 3  # type: ignore[attr-defined]


def test_the_engines_own_client_sends_to_the_scheduler_sooner(dask_cluster) -> None:
    """A client the engine connects itself batches its messages for 2 ms, not Dask's 10 ms,
    also after its stream to the scheduler was made anew (a reconnect)."""
    with DaskExecutor(dask_cluster.scheduler_address) as executor:
        assert _interval(executor) == CLIENT_SEND_INTERVAL_S
        executor.client.scheduler_comm.interval = 0.01  # what a new stream starts with
        assert _runs(executor)
        assert _interval(executor) == CLIENT_SEND_INTERVAL_S


def test_a_client_the_user_passed_keeps_its_interval(dask_cluster) -> None:
    from distributed import Client

    with Client(dask_cluster.scheduler_address, set_as_default=False) as client:
        before = client.scheduler_comm.interval
        with DaskExecutor(client) as executor:
            assert _runs(executor)
            assert client.scheduler_comm.interval == before > CLIENT_SEND_INTERVAL_S


def test_the_client_interval_is_left_alone_when_tuning_is_off(dask_cluster, monkeypatch) -> None:
    monkeypatch.setenv("JUPYTER_WORKFLOWS_DASK_TUNING", "0")
    with DaskExecutor(dask_cluster.scheduler_address) as executor:
        assert _runs(executor)
        assert _interval(executor) > CLIENT_SEND_INTERVAL_S


def test_tune_client_without_a_stream_changes_nothing() -> None:
    class NoStream:
        scheduler_comm = None

    assert tune_client(NoStream()) is False  # type: ignore[arg-type]


def test_the_heap_is_frozen_while_the_embedded_cluster_runs(monkeypatch) -> None:
    """After starting its embedded cluster the engine hides the objects that exist then from
    the cyclic garbage collector (the in-process scheduler's and the modules'), and gives them
    back when the cluster closes; JUPYTER_WORKFLOWS_GC_TUNING=0 leaves the collector alone."""
    import gc

    assert gc.get_freeze_count() == 0
    with DaskExecutor(n_workers=1, threads_per_worker=1) as executor:
        executor.start()
        assert gc.get_freeze_count() > 10_000
        assert _runs(executor)
    assert gc.get_freeze_count() == 0
    monkeypatch.setenv("JUPYTER_WORKFLOWS_GC_TUNING", "0")
    with DaskExecutor(n_workers=1, threads_per_worker=1) as executor:
        executor.start()
        assert gc.get_freeze_count() == 0


def test_a_cluster_the_user_brought_leaves_the_heap_alone(dask_cluster) -> None:
    import gc

    with DaskExecutor(dask_cluster.scheduler_address) as executor:
        assert _runs(executor)
        assert gc.get_freeze_count() == 0
