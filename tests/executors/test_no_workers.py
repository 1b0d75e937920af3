"""A scheduler of the user's with no workers at all: none started, or all died mid-run.

Real ``dask scheduler`` and ``dask worker`` processes on 127.0.0.1, the real CLI and the Python
API. Dask keeps such tasks for ever; the engine fails the attempts in flight with one
``NoWorkers`` line once the scheduler has had no workers for ``JUPYTER_WORKFLOWS_WORKER_WAIT``
seconds (60 by default), and a worker that comes within that time runs them.

Before: the run, ``jupyter-workflows run --scheduler ADDR`` and ``run.wait()`` waited for ever.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

import jupyter_workflows as jw
from jupyter_workflows.testing import run_cli, scheduler_and_workers

pytestmark = [pytest.mark.cluster, pytest.mark.timeout(300)]

HELLO = "name: hello\ntasks:\n  greet: {action: core.echo, input: {text: hi}}\n"

TASKS = """
import time
from pathlib import Path


def long(marker):
    Path(marker).write_text("started")
    time.sleep(120)
    return "slept"
"""


def _env(tmp_path: Path, wait: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("JUPYTER_WORKFLOWS_")}
    env["JUPYTER_WORKFLOWS_STORE"] = str(tmp_path / "state.db")
    env["JUPYTER_WORKFLOWS_WORKER_WAIT"] = wait
    return env


def test_cli_run_on_a_scheduler_without_workers_fails_with_one_line(tmp_path: Path) -> None:
    (tmp_path / "hello.yaml").write_text(HELLO)
    with scheduler_and_workers(0) as cluster:
        done = run_cli(
            "run",
            "hello.yaml",
            "--json",
            "--scheduler",
            str(cluster),
            env=_env(tmp_path, "3"),
            cwd=tmp_path,
            timeout=120,  # it waited for ever before
        )
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr, done.stderr
    data = json.loads(done.stdout)
    assert data["status"] == "failed"
    assert data["error"].startswith(
        f"NoWorkers: task 'greet' failed: the Dask scheduler at {cluster} has had no workers "
        "for 3 s (start some: `dask worker"
    ), data["error"]
    assert "\n" not in data["error"]


def test_cli_run_waits_for_a_worker_that_comes_in_time(tmp_path: Path) -> None:
    (tmp_path / "hello.yaml").write_text(HELLO)
    with scheduler_and_workers(0) as cluster:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "jupyter_workflows",
                "run",
                "hello.yaml",
                "--json",
                "--scheduler",
                str(cluster),
            ],
            cwd=tmp_path,
            env=_env(tmp_path, "120"),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            time.sleep(3)
            assert proc.poll() is None, proc.communicate()
            cluster.add_worker()
            out, err = proc.communicate(timeout=120)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
    assert proc.returncode == 0, err
    assert json.loads(out)["status"] == "succeeded"


def test_python_api_run_ends_when_every_worker_died(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("JUPYTER_WORKFLOWS_WORKER_WAIT", "3")
    (tmp_path / "tasks.py").write_text(TASKS)
    marker = tmp_path / "long.started"
    (tmp_path / "slow.yaml").write_text(
        f"name: slow\ntasks:\n  long: {{action: 'tasks:long', input: {{marker: '{marker}'}}}}\n"
    )
    wf = jw.load(str(tmp_path / "slow.yaml"))
    with scheduler_and_workers(1) as cluster:
        jw.configure(store=str(tmp_path / "state.db"), scheduler=str(cluster))
        run = wf.run(wait=False)
        deadline = time.monotonic() + 120
        while not marker.exists():
            assert time.monotonic() < deadline, f"the task never started: {run.status}"
            time.sleep(0.1)
        cluster.kill_worker(0)  # the worker and its nanny: nothing restarts it
        waiter = threading.Thread(target=run.wait, daemon=True)
        waiter.start()
        waiter.join(timeout=120)
        assert not waiter.is_alive(), f"run.wait() still waits: {run.status} {run.tasks}"
    assert run.status == "failed"
    assert run.error is not None
    assert run.error.startswith(
        f"NoWorkers: task 'long' failed: the Dask scheduler at {cluster} has had no workers"
    ), run.error


def test_a_bad_worker_wait_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "hello.yaml").write_text(HELLO)
    with scheduler_and_workers(0) as cluster:
        done = run_cli(
            "run",
            "hello.yaml",
            "--scheduler",
            str(cluster),
            env=_env(tmp_path, "soon"),
            cwd=tmp_path,
            timeout=120,
        )
    assert done.returncode == 2, done.stderr
    assert done.stderr.strip().splitlines() == [
        "JUPYTER_WORKFLOWS_WORKER_WAIT='soon': expected seconds (a number >= 0) or 'none'"
    ], done.stderr
