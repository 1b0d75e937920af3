"""Shared fixtures: a fresh engine per test, on in-process threads or on a real Dask cluster.

``engine`` runs tasks in threads of the test process (fast, no Dask) with a SQLite store in the
test's temporary folder. ``dask_engine`` runs them on a real LocalCluster (worker processes on
127.0.0.1) started once per test session.
"""

from __future__ import annotations

import os
import signal

import pytest

from jupyter_workflows.engine import api

# A suite started in the background of a shell without job control (`cmd &` in a script, nohup)
# inherits SIGINT ignored, and so would every process it starts: the Ctrl-C tests (which send
# SIGINT to a real CLI process) would see it ignored. Processes started from here get the
# default disposition back, as they have when a user starts them from a terminal.
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)


def _sqlite_or_memory(path):
    try:
        import jupyter_workflows.store.sqlite  # noqa: F401
    except ImportError:  # pragma: no cover - while the SQLite store is not there
        return ":memory:"
    return str(path)


@pytest.fixture(autouse=True)
def _isolated_engine(tmp_path, monkeypatch):
    """Every test starts with no configuration and its own working folder."""
    monkeypatch.chdir(tmp_path)
    for var in (
        "JUPYTER_WORKFLOWS_STORE",
        "JUPYTER_WORKFLOWS_SCHEDULER",
        "JUPYTER_WORKFLOWS_EXECUTOR",
        "JUPYTER_WORKFLOWS_ARTIFACTS",
        "JUPYTER_WORKFLOWS_ARTIFACT_THRESHOLD",
    ):
        monkeypatch.delenv(var, raising=False)
    api.reset()
    yield
    api.reset()


@pytest.fixture
def engine(tmp_path):
    """The orchestrator with in-process thread execution and a store in ``tmp_path``."""
    api.configure(store=_sqlite_or_memory(tmp_path / "state.db"), executor="inline")
    return api.get_orchestrator()


@pytest.fixture(scope="session")
def dask_cluster():
    """A real LocalCluster: 2 worker processes on 127.0.0.1, shared by the session."""
    distributed = pytest.importorskip("distributed")
    cluster = distributed.LocalCluster(
        n_workers=2,
        threads_per_worker=1,
        processes=True,
        host="127.0.0.1",
        dashboard_address="127.0.0.1:0",
        silence_logs=40,
    )
    yield cluster
    cluster.close()


@pytest.fixture
def dask_engine(tmp_path, dask_cluster):
    """The orchestrator running tasks on the session's LocalCluster."""
    api.configure(
        store=_sqlite_or_memory(tmp_path / "state.db"), scheduler=dask_cluster.scheduler_address
    )
    return api.get_orchestrator()


@pytest.fixture
def cli_env(tmp_path, dask_cluster):
    """Environment for CLI subprocesses: the session cluster and a store in ``tmp_path``."""
    env = dict(os.environ)
    env["JUPYTER_WORKFLOWS_SCHEDULER"] = dask_cluster.scheduler_address
    env["JUPYTER_WORKFLOWS_STORE"] = str(tmp_path / "state.db")
    return env
