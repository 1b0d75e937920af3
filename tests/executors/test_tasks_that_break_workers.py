"""Tasks that break the worker they run on, or whose outcome cannot travel back.

Real ``dask scheduler`` and ``dask worker`` processes on 127.0.0.1 (with nannies, as
``dask worker`` runs by default), the Python API in this process. Each run must end ``failed``
with one line in bounded time: a task that runs the worker out of memory (its nanny kills and
restarts it, again and again), a task that segfaults, a result whose class only the workers can
import, and an exception that cannot be pickled.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

import jupyter_workflows as jw
from jupyter_workflows.engine.run import Run
from jupyter_workflows.testing import RunningCluster, scheduler_and_workers

pytestmark = [pytest.mark.cluster, pytest.mark.timeout(300)]

TASKS = """
import ctypes
import threading


def fine():
    return "ok"


def hog():
    import numpy as np

    blocks = []
    while True:  # far past the worker's memory limit: its nanny kills it
        blocks.append(np.ones(50_000_000 // 8))


def segfault():
    return ctypes.string_at(0)


def worker_only():
    import worker_only_module

    return worker_only_module.Thing(3)


def worker_only_big():
    import worker_only_module

    return worker_only_module.Thing(b"x" * 100_000)  # gathered, not published


def made_here():
    cls = type("MadeHere", (), {"x": 1})
    return cls()


class Unpicklable(Exception):
    def __init__(self):
        super().__init__("it holds a lock")
        self.lock = threading.Lock()


def raises_unpicklable():
    raise Unpicklable()


class NeedsTwo(Exception):
    def __init__(self, a, b):  # pickles, but cannot be unpickled: Exception keeps only (a,)
        super().__init__(f"{a} and {b}")


def raises_needs_two():
    raise NeedsTwo("one", "two")
"""

WORKER_ONLY = """
class Thing:
    def __init__(self, n):
        self.n = n
"""


def _workflow(tmp_path: Path, action: str) -> jw.Workflow:
    (tmp_path / "tasks.py").write_text(TASKS)
    path = tmp_path / f"{action}.yaml"
    path.write_text(
        f"name: {action}\ntasks:\n  t: {{action: 'tasks:{action}'}}\n"
        "  after: {action: 'tasks:fine', needs: [t]}\n"
    )
    return jw.load(str(path))


def _run(tmp_path: Path, cluster: RunningCluster, action: str, timeout: float = 180) -> Run:
    jw.configure(store=str(tmp_path / "state.db"), scheduler=str(cluster))
    run = _workflow(tmp_path, action).run(wait=False)
    waiter = threading.Thread(target=run.wait, daemon=True)
    waiter.start()
    waiter.join(timeout=timeout)
    assert not waiter.is_alive(), f"{action}: the run still waits: {run.status} {run.tasks}"
    return run


def _failed_with(run: Run, error_type: str) -> str:
    assert run.status == "failed", (run.status, run.tasks)
    task = next(t for t in run.tasks if t["task"] == "t")
    error = task["error"]
    assert error is not None and error.startswith(f"{error_type}: "), error
    assert "\n" not in error, error
    assert run.error is not None and run.error.startswith(f"{error_type}: task 't' failed: ")
    assert "\n" not in run.error
    return str(error)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningCluster]:
    """Two workers that can import ``worker_only_module``, which this process cannot."""
    extra = tmp_path_factory.mktemp("worker-only")
    (extra / "worker_only_module.py").write_text(WORKER_ONLY)
    path = os.pathsep.join([str(Path(jw.__file__).resolve().parent.parent), str(extra)])
    with scheduler_and_workers(2, env={"PYTHONPATH": path}) as running:
        yield running


def test_a_task_past_the_memory_limit_fails_with_killed_worker(tmp_path: Path) -> None:
    with scheduler_and_workers(1, memory_limit="300MB") as small:
        run = _run(tmp_path, small, "hog")
    assert "on 4 different workers" in _failed_with(run, "KilledWorker")


def test_a_segfaulting_task_fails_with_killed_worker(tmp_path: Path) -> None:
    with scheduler_and_workers(1) as one:
        run = _run(tmp_path, one, "segfault")
    assert "on 4 different workers" in _failed_with(run, "KilledWorker")


@pytest.mark.parametrize("action", ["worker_only", "worker_only_big"])
def test_a_result_whose_class_only_the_workers_have(
    tmp_path: Path, cluster: RunningCluster, action: str
) -> None:
    run = _run(tmp_path, cluster, action)
    error = _failed_with(run, "ModuleNotFoundError")
    assert "worker_only_module" in error
    assert "cannot be unpickled here" in error and "install it here too" in error, error


def test_a_result_of_a_class_made_in_the_task_comes_back(
    tmp_path: Path, cluster: RunningCluster
) -> None:
    run = _run(tmp_path, cluster, "made_here")
    assert run.status == "succeeded", run.error
    made = next(t for t in run.tasks if t["task"] == "t")["result"]
    assert type(made).__name__ == "MadeHere" and made.x == 1


@pytest.mark.parametrize(
    ("action", "line"),
    [
        ("raises_unpicklable", "Unpicklable: it holds a lock"),
        ("raises_needs_two", "NeedsTwo: one and two"),
    ],
)
def test_an_exception_that_cannot_travel_still_fails_with_its_line(
    tmp_path: Path, cluster: RunningCluster, action: str, line: str
) -> None:
    run = _run(tmp_path, cluster, action)
    assert _failed_with(run, line.split(":")[0]) == line
