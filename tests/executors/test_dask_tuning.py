"""The Dask settings the engine applies to a cluster it starts itself, and never to another.

Real clusters: the embedded LocalCluster a ``DaskExecutor()`` starts, and the session's
LocalCluster that a test brings (as a user's ``scheduler=`` does).
"""

from __future__ import annotations

import math

import dask
import pytest

import jupyter_workflows as jw
from jupyter_workflows.executors.dask import (
    ENGINE_DASK_CONFIG,
    DaskExecutor,
    engine_dask_config,
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
