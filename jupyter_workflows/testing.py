"""Helpers for testing workflows against real Dask clusters on this machine.

Users can import these too (``from jupyter_workflows.testing import scheduler_and_workers``).

* :func:`local_cluster` starts a :class:`~distributed.LocalCluster` (worker processes by default)
  bound to 127.0.0.1 and yields a client of it.
* :func:`scheduler_and_workers` starts what a real deployment runs: a ``dask scheduler`` process
  and ``dask worker`` processes, each in its own process group, so a test can kill a worker the
  way a machine dies (``SIGKILL`` to the whole group) and teardown can never leave one behind.
  Workers run in an empty folder of their own, so nothing of the test's code is importable
  there unless it travels with the task.

This module does not import :mod:`distributed` itself (only the Dask executor does); it starts
clusters through :mod:`jupyter_workflows.executors.dask` and the ``dask`` command line.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from distributed import Client

__all__ = ["RunningCluster", "local_cluster", "scheduler_and_workers"]


@contextmanager
def local_cluster(
    n_workers: int = 2,
    threads_per_worker: int = 1,
    *,
    processes: bool = True,
    resources: dict[str, float] | None = None,
    **kwargs: Any,
) -> Iterator[Client]:
    """A started LocalCluster on 127.0.0.1 and a client of it, both closed on exit.

    The client is not made Dask's default client. ``client.cluster`` is the cluster.
    """
    from .executors.dask import start_local_cluster

    cluster, client = start_local_cluster(
        n_workers, threads_per_worker, processes=processes, resources=resources, **kwargs
    )
    try:
        yield client
    finally:
        try:
            client.close()
        finally:
            cluster.close()


class RunningCluster(str):
    """The scheduler's address (a ``str``), carrying the processes behind it.

    It can be passed wherever an address goes (``DaskExecutor(cluster)``, ``--scheduler``).
    """

    scheduler_process: subprocess.Popen[bytes]
    #: One per worker started, in order; a killed worker keeps its place.
    worker_processes: list[subprocess.Popen[bytes]]
    #: The workers' names, ``"w0"``, ``"w1"``, ... (``--name``), in the same order.
    worker_names: list[str]
    folder: Path
    environment: dict[str, str]

    @property
    def address(self) -> str:
        return str(self)

    def add_worker(
        self,
        *,
        resources: Mapping[str, float] | None = None,
        env: Mapping[str, str] | None = None,
        nthreads: int = 1,
        nanny: bool = True,
        wait: bool = True,
        timeout: float = 60.0,
        memory_limit: str | None = None,
    ) -> int:
        """Start one more ``dask worker``; return its index (wait until it registered).

        ``memory_limit`` is its ``--memory-limit`` (``"400MB"``; default: Dask's, ``auto``)."""
        name = f"w{len(self.worker_processes)}"
        args = [
            sys.executable,
            "-m",
            "distributed.cli.dask_worker",
            self.address,
            "--host",
            "127.0.0.1",
            "--name",
            name,
            "--nthreads",
            str(nthreads),
            "--nworkers",
            "1",
            "--no-dashboard",
            "--nanny" if nanny else "--no-nanny",
            "--death-timeout",
            "60",
        ]
        if resources:
            args += ["--resources", ",".join(f"{k}={v:g}" for k, v in resources.items())]
        if memory_limit is not None:
            args += ["--memory-limit", memory_limit]
        worker_env = dict(self.environment)
        worker_env.update(env or {})
        self.worker_processes.append(
            _spawn(args, self.folder / f"{name}.log", worker_env, self.folder)
        )
        self.worker_names.append(name)
        if wait:
            self.wait_for_workers(timeout=timeout)
        return len(self.worker_processes) - 1

    def wait_for_workers(self, n: int | None = None, timeout: float = 60.0) -> None:
        """Block until ``n`` workers (default: every live one started) are registered."""
        from .executors.dask import wait_for_workers

        if n is None:
            n = sum(1 for p in self.worker_processes if p.poll() is None)
        if n <= 0:  # a scheduler without workers (``scheduler_and_workers(0)``)
            return
        try:
            wait_for_workers(self.address, n, timeout=timeout)
        except Exception as exc:
            raise RuntimeError(
                f"{n} dask workers did not register within {timeout:g}s: {exc}\n{self.logs()}"
            ) from exc

    def kill_worker(self, index: int, sig: int = signal.SIGKILL) -> None:
        """Kill worker ``index`` and everything it started (its process group)."""
        _kill_group(self.worker_processes[index], sig)

    def logs(self) -> str:
        """The scheduler's and workers' output so far (for failure messages)."""
        parts = []
        for path in sorted(self.folder.glob("*.log")):
            text = path.read_text(errors="replace")
            parts.append(f"--- {path.name}\n{text[-4000:]}")
        return "\n".join(parts)

    def _stop(self) -> None:
        processes = [*self.worker_processes, self.scheduler_process]
        for process in processes:
            _kill_group(process)
        for process in processes:
            with suppress(subprocess.TimeoutExpired):
                process.wait(timeout=10)


def _kill_group(process: subprocess.Popen[bytes], sig: int = signal.SIGKILL) -> None:
    with suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, sig)


def _spawn(
    args: list[str], log: Path, env: Mapping[str, str], cwd: Path
) -> subprocess.Popen[bytes]:
    with open(log, "wb") as out:
        return subprocess.Popen(
            args,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=dict(env),
            cwd=cwd,
            start_new_session=True,  # its own process group, killed as one
        )


@contextmanager
def scheduler_and_workers(
    n: int = 2,
    *,
    resources_per_worker: Sequence[Mapping[str, float] | None] | None = None,
    env: Mapping[str, str] | Sequence[Mapping[str, str] | None] | None = None,
    nthreads: int = 1,
    nanny: bool = True,
    scheduler_env: Mapping[str, str] | None = None,
    timeout: float = 60.0,
    memory_limit: str | None = None,
    port: int = 0,
) -> Iterator[RunningCluster]:
    """Run ``dask scheduler`` and ``n`` ``dask worker`` processes on 127.0.0.1 with free ports.

    Waits until every worker has registered, yields the scheduler address as a
    :class:`RunningCluster`, and on exit kills every process group.

    Parameters
    ----------
    n
        Number of workers, named ``w0`` ... ``w{n-1}``.
    resources_per_worker
        One mapping (or ``None``) per worker: its ``--resources``, e.g. ``[{"GPU": 1}, None]``.
    env
        Extra environment variables: one mapping for every worker, or one per worker.
    nthreads
        Threads per worker.
    nanny
        Run each worker under a nanny (as ``dask worker`` does by default).
    scheduler_env
        Extra environment variables for the scheduler (Dask config such as
        ``DASK_DISTRIBUTED__SCHEDULER__ALLOWED_FAILURES``).
    timeout
        Seconds to wait for the scheduler and the workers to come up.
    memory_limit
        Each worker's ``--memory-limit`` (``"400MB"``): its nanny restarts it past 95 % of that.
    port
        The scheduler's port (default: a free one), e.g. to start a scheduler again at the
        address of one that died.
    """
    if resources_per_worker is not None and len(resources_per_worker) != n:
        raise ValueError(
            f"resources_per_worker has {len(resources_per_worker)} entries for {n} workers"
        )
    if env is None or isinstance(env, Mapping):
        envs: list[Mapping[str, str] | None] = [env] * n
    else:
        envs = list(env)
        if len(envs) != n:
            raise ValueError(f"env has {len(envs)} entries for {n} workers")
    folder = Path(tempfile.mkdtemp(prefix="jw-cluster-"))
    environment = dict(os.environ)
    # The workers see the installed packages, nothing else: no PYTHONPATH but the folder of the
    # jupyter_workflows this process imports (the same one, in a development checkout too).
    environment["PYTHONPATH"] = str(Path(__file__).resolve().parent.parent)
    environment["PYTHONUNBUFFERED"] = "1"
    scheduler_file = folder / "scheduler.json"
    scheduler = _spawn(
        [
            sys.executable,
            "-m",
            "distributed.cli.dask_scheduler",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--no-dashboard",
            "--scheduler-file",
            str(scheduler_file),
        ],
        folder / "scheduler.log",
        {**environment, **(scheduler_env or {})},
        folder,
    )
    cluster: RunningCluster | None = None
    try:
        cluster = RunningCluster(_wait_for_address(scheduler, scheduler_file, folder, timeout))
        cluster.scheduler_process = scheduler
        cluster.worker_processes = []
        cluster.worker_names = []
        cluster.folder = folder
        cluster.environment = environment
        for i in range(n):
            wanted = resources_per_worker[i] if resources_per_worker else None
            cluster.add_worker(
                resources=wanted,
                env=envs[i],
                nthreads=nthreads,
                nanny=nanny,
                wait=False,
                memory_limit=memory_limit,
            )
        cluster.wait_for_workers(n, timeout=timeout)
        yield cluster
    finally:
        if cluster is not None:
            cluster._stop()
        else:
            _kill_group(scheduler)
            scheduler.wait(timeout=10)
        _remove(folder)


def _wait_for_address(
    scheduler: subprocess.Popen[bytes], scheduler_file: Path, folder: Path, timeout: float
) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if scheduler.poll() is not None:
            log = (folder / "scheduler.log").read_text(errors="replace")
            raise RuntimeError(f"dask scheduler exited with {scheduler.returncode}:\n{log[-4000:]}")
        try:
            return str(json.loads(scheduler_file.read_text())["address"])
        except (FileNotFoundError, ValueError, KeyError):
            time.sleep(0.05)
    raise RuntimeError(f"dask scheduler did not start within {timeout:g}s")


def _remove(folder: Path) -> None:
    import shutil

    shutil.rmtree(folder, ignore_errors=True)


def inline_env(folder) -> dict[str, str]:
    """Environment for ``jupyter-workflows`` subprocesses: tasks in threads of the CLI process
    (no Dask) and a store in ``folder``."""
    import os
    from pathlib import Path

    env = dict(os.environ)
    env.pop("JUPYTER_WORKFLOWS_SCHEDULER", None)
    env["JUPYTER_WORKFLOWS_EXECUTOR"] = "inline"
    env["JUPYTER_WORKFLOWS_STORE"] = str(Path(folder) / "state.db")
    return env


def run_cli(
    *args: str,
    env: Mapping[str, str] | None = None,
    cwd: str | os.PathLike[str] | None = None,
    timeout: float = 120,
) -> subprocess.CompletedProcess[str]:
    """Run ``python -m jupyter_workflows ARGS`` and return the completed process (text).

    Output is captured; ``env`` and ``cwd`` default to this process's (``inline_env`` makes an
    environment with tasks on threads and a store in a folder). A run past ``timeout`` seconds
    raises :class:`subprocess.TimeoutExpired`.
    """
    import subprocess
    import sys

    return subprocess.run(
        [sys.executable, "-m", "jupyter_workflows", *args],
        cwd=cwd,
        env=None if env is None else dict(env),
        capture_output=True,
        text=True,
        timeout=timeout,
    )
