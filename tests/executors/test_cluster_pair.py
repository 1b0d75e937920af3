"""DaskExecutor against real ``dask scheduler`` and ``dask worker`` processes on 127.0.0.1.

The workers run in an empty folder with no ``PYTHONPATH``: code from this test module or from a
temporary folder only gets there by travelling with the task.
"""

from __future__ import annotations

import importlib
import os
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import cloudpickle
import pytest

from jupyter_workflows.executors.base import Outcome, Submission
from jupyter_workflows.executors.dask import DaskExecutor
from jupyter_workflows.testing import RunningCluster, scheduler_and_workers

pytestmark = [pytest.mark.cluster, pytest.mark.timeout(90)]


class Collector:
    def __init__(self) -> None:
        self.outcomes: dict[str, Outcome] = {}
        self._cond = threading.Condition()

    def __call__(self, outcome: Outcome) -> None:
        with self._cond:
            assert outcome.key not in self.outcomes
            self.outcomes[outcome.key] = outcome
            self._cond.notify_all()

    def wait(self, *keys: str, timeout: float = 30) -> list[Outcome]:
        with self._cond:
            assert self._cond.wait_for(lambda: all(k in self.outcomes for k in keys), timeout), (
                f"no outcome for {[k for k in keys if k not in self.outcomes]}"
            )
            return [self.outcomes[k] for k in keys]


@pytest.fixture(scope="module", autouse=True)
def _ship_this_module_by_value() -> Iterator[None]:
    """This module is not importable on the workers: its functions travel by value."""
    module = sys.modules[__name__]
    cloudpickle.register_pickle_by_value(module)
    yield
    cloudpickle.unregister_pickle_by_value(module)


@pytest.fixture(scope="module")
def gpu_pair() -> Iterator[RunningCluster]:
    """w0 offers GPU=1, w1 offers nothing."""
    with scheduler_and_workers(
        2,
        resources_per_worker=[{"GPU": 1}, None],
        env=[{"JUPYTER_WORKFLOWS_WORKER": "gpu-box"}, {"JUPYTER_WORKFLOWS_WORKER": "cpu-box"}],
    ) as cluster:
        yield cluster


@pytest.fixture
def executor(gpu_pair: RunningCluster) -> Iterator[DaskExecutor]:
    with DaskExecutor(gpu_pair, resource_wait=3) as ex:
        yield ex


def worker_name(seconds: float = 0.0) -> str:
    from distributed import get_worker

    time.sleep(seconds)
    return str(get_worker().name)


def importable(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


def test_gpu_tasks_run_only_on_the_gpu_worker(executor: DaskExecutor) -> None:
    got = Collector()
    gpu = [f"pair.train-abcdef12-{i}" for i in range(6)]
    cpu = [f"pair.prep-abcdef12-{i}" for i in range(6)]
    for key in gpu:
        executor.submit(Submission(key, worker_name, {"seconds": 0.1}, resources={"GPU": 1}), got)
    for key in cpu:
        executor.submit(Submission(key, worker_name, {"seconds": 0.1}), got)
    gpu_outcomes = got.wait(*gpu)
    cpu_outcomes = got.wait(*cpu)
    assert all(o.ok for o in gpu_outcomes + cpu_outcomes), [
        o.error for o in gpu_outcomes + cpu_outcomes
    ]
    assert {o.result for o in gpu_outcomes} == {"w0"}
    assert {o.worker for o in gpu_outcomes} == {"gpu-box"}
    assert {o.worker for o in cpu_outcomes} <= {"gpu-box", "cpu-box"}


def test_code_never_installed_on_workers_travels_by_value(
    executor: DaskExecutor, tmp_path: Path
) -> None:
    name = f"jw_travel_{uuid.uuid4().hex[:8]}"
    (tmp_path / f"{name}.py").write_text(
        "import os\n\n\ndef where(x):\n    return {'pid': os.getpid(), 'double': 2 * x, 'module': __name__}\n"
    )
    sys.path.insert(0, str(tmp_path))
    try:
        module = importlib.import_module(name)
        got = Collector()
        executor.submit(Submission("travel.check-abcdef12-1", importable, {"module": name}), got)
        (check,) = got.wait("travel.check-abcdef12-1")
        assert check.ok and check.result is False, (
            "the module must not be importable on the workers"
        )

        # Pickled by reference, the function's module is shipped as a file and imported there.
        executor.submit(Submission("travel.where-abcdef12-2", module.where, {"x": 21}), got)
        (by_reference,) = got.wait("travel.where-abcdef12-2")
        assert by_reference.ok, by_reference.error
        assert by_reference.result["double"] == 42
        assert by_reference.result["pid"] != os.getpid()

        cloudpickle.register_pickle_by_value(module)
        try:
            executor.submit(Submission("travel.where-abcdef12-3", module.where, {"x": 21}), got)
            (by_value,) = got.wait("travel.where-abcdef12-3")
        finally:
            cloudpickle.unregister_pickle_by_value(module)
        assert by_value.ok, by_value.error
        assert by_value.result["double"] == 42
        assert by_value.result["module"] == name
        assert by_value.result["pid"] != os.getpid()
    finally:
        sys.path.remove(str(tmp_path))
        sys.modules.pop(name, None)


def test_worker_killed_mid_task_does_not_fail_the_attempt() -> None:
    with scheduler_and_workers(2) as cluster, DaskExecutor(cluster) as ex:
        got = Collector()
        key = "pair.long-abcdef12-1"
        started = time.monotonic()
        ex.submit(Submission(key, worker_name, {"seconds": 3.0}), got)
        where = None
        while where is None:
            assert time.monotonic() - started < 10, "the task never started"
            for address, keys in ex.client.processing().items():
                if key in keys:
                    where = address
            time.sleep(0.05)
        names = {
            addr: info["name"]
            for addr, info in ex.client.scheduler_info(n_workers=-1)["workers"].items()
        }
        victim = str(names[where])
        time.sleep(max(0.0, 1.0 - (time.monotonic() - started)))
        cluster.kill_worker(cluster.worker_names.index(victim))
        (outcome,) = got.wait(key, timeout=40)
        assert outcome.ok, outcome.error
        assert outcome.result != victim
        assert outcome.result in cluster.worker_names


def die() -> None:
    os._exit(1)


def test_a_task_that_kills_every_worker_it_runs_on_fails_with_killed_worker() -> None:
    no_retry = {"DASK_DISTRIBUTED__SCHEDULER__ALLOWED_FAILURES": "0"}
    with scheduler_and_workers(2, scheduler_env=no_retry) as cluster, DaskExecutor(cluster) as ex:
        got = Collector()
        ex.submit(Submission("pair.die-abcdef12-1", die, {}), got)
        ex.submit(Submission("pair.fine-abcdef12-2", worker_name, {}), got)
        died, fine = got.wait("pair.die-abcdef12-1", "pair.fine-abcdef12-2")
        assert not died.ok and died.error_type == "KilledWorker"
        assert died.error is not None and died.error.startswith("KilledWorker: ")
        assert "\n" not in died.error
        assert fine.ok


def test_task_waits_for_a_worker_that_offers_its_resource(gpu_pair: RunningCluster) -> None:
    with DaskExecutor(gpu_pair, resource_wait=60) as ex:
        got = Collector()
        ex.submit(Submission("pair.tpu-abcdef12-1", worker_name, {}, resources={"TPU": 1}), got)
        time.sleep(1.0)
        assert got.outcomes == {}, "it should wait, not fail, while resource_wait lasts"
        index = gpu_pair.add_worker(resources={"TPU": 1})
        (outcome,) = got.wait("pair.tpu-abcdef12-1", timeout=40)
        assert outcome.ok, outcome.error
        assert outcome.result == gpu_pair.worker_names[index]
