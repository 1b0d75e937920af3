"""The scheduler of a user's cluster dies (``SIGKILL``) while a run is in flight.

Real ``dask scheduler`` and ``dask worker`` processes on 127.0.0.1, the real CLI in a
subprocess and the Python API in this process. The run must end (``failed``, one
``SchedulerLost`` line naming the task and the scheduler) in bounded time, whatever the task's
retry policy, and ``resume --retry-failed --scheduler NEW`` continues it on a new cluster without
running the finished task again.

Before: the CLI's run failed with ``CancelledError: ... was cancelled`` under a screen of Dask
tracebacks, and a task with ``retry`` hung for ever: its retry went to a client that was
reconnecting, whose future Dask never finished.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

import jupyter_workflows as jw
from jupyter_workflows.testing import RunningCluster, run_cli, scheduler_and_workers

pytestmark = [pytest.mark.cluster, pytest.mark.timeout(300)]

TASKS = """
import time
from pathlib import Path


def first(log):
    with open(log, "a") as out:
        out.write("first\\n")
    return "done"


def long(marker, seconds):
    if Path(marker).exists():  # a later attempt, on a new cluster: quick
        return "slept"
    Path(marker).write_text("started")
    time.sleep(seconds)
    return "slept"
"""


def _workflow(tmp_path: Path, retry: str = "") -> Path:
    (tmp_path / "tasks.py").write_text(TASKS)
    path = tmp_path / "slow.yaml"
    path.write_text(
        textwrap.dedent(
            f"""
            name: slow
            tasks:
              first:
                action: tasks:first
                input: {{log: "{tmp_path / "first.log"}"}}
              long:
                action: tasks:long
                needs: [first]
                input: {{marker: "{tmp_path / "long.started"}", seconds: 60}}
                {retry}
            """
        )
    )
    return path


def _env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("JUPYTER_WORKFLOWS_")}
    env["JUPYTER_WORKFLOWS_STORE"] = str(tmp_path / "state.db")
    return env


def _wait_for(path: Path, what: subprocess.Popen[str] | None = None, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        if what is not None and what.poll() is not None:
            raise AssertionError(f"the run ended first: {what.communicate()}")
        assert time.monotonic() < deadline, f"{path.name} never appeared"
        time.sleep(0.1)


def _kill_scheduler(cluster: RunningCluster) -> None:
    os.killpg(cluster.scheduler_process.pid, signal.SIGKILL)
    cluster.scheduler_process.wait(timeout=30)


def test_cli_run_fails_with_one_line_and_resumes_on_a_new_cluster(tmp_path: Path) -> None:
    _workflow(tmp_path)
    env = _env(tmp_path)
    with scheduler_and_workers(1) as cluster:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "jupyter_workflows",
                "run",
                "slow.yaml",
                "--json",
                "--scheduler",
                str(cluster),
            ],
            cwd=tmp_path,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            _wait_for(tmp_path / "long.started", proc)
            _kill_scheduler(cluster)
            out, err = proc.communicate(timeout=120)  # it must end, not wait for ever
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
    assert proc.returncode == 1, err
    assert "Traceback" not in err, err
    data = json.loads(out)
    assert data["status"] == "failed"
    assert data["error"].startswith(
        f"SchedulerLost: task 'long' failed: lost the connection to the Dask scheduler at {cluster}"
    ), data["error"]
    assert "\n" not in data["error"]
    tasks = {t["task"]: t for t in data["tasks"]}
    assert tasks["first"]["status"] == "succeeded"
    assert tasks["long"]["status"] == "failed"

    with scheduler_and_workers(1) as new:
        resumed = run_cli(
            "resume",
            data["run_id"],
            "--retry-failed",
            "--json",
            "--scheduler",
            str(new),
            env=env,
            cwd=tmp_path,
            timeout=180,
        )
    assert resumed.returncode == 0, resumed.stderr
    again = json.loads(resumed.stdout)
    assert again["status"] == "succeeded", again
    assert {t["task"]: t["result"] for t in again["tasks"]} == {"first": "done", "long": "slept"}
    # The finished task was not run again on the new cluster.
    assert (tmp_path / "first.log").read_text() == "first\n"


def test_python_api_wait_ends_even_when_the_task_retries(tmp_path: Path) -> None:
    """``retry`` sends a new attempt while Dask reconnects: it must fail, not hang."""
    wf = jw.load(str(_workflow(tmp_path, retry="retry: {count: 2, delay: 1}")))
    with scheduler_and_workers(1) as cluster:
        jw.configure(store=str(tmp_path / "state.db"), scheduler=str(cluster))
        run = wf.run(wait=False)
        _wait_for(tmp_path / "long.started")
        _kill_scheduler(cluster)
        waiter = threading.Thread(target=run.wait, daemon=True)
        waiter.start()
        waiter.join(timeout=120)
        assert not waiter.is_alive(), f"run.wait() still waits: {run.status}, {run.tasks}"
        assert run.status == "failed"
        assert run.error is not None
        assert run.error.startswith(
            f"SchedulerLost: task 'long' failed: lost the connection to the Dask scheduler at {cluster}"
        ), run.error
        long = next(t for t in run.tasks if t["task"] == "long")
        assert long["attempts"] == 3, long  # the first try and both retries, each one line
        assert long["error"].startswith("SchedulerLost: "), long

        # A new run on the same configuration fails at once too (Dask gave up reconnecting or
        # is still trying), with one line that says how to connect again.
        later = wf.run(wait=False)
        waiter = threading.Thread(target=later.wait, daemon=True)
        waiter.start()
        waiter.join(timeout=120)
        assert not waiter.is_alive(), f"the next run waits: {later.status}"
        assert later.status == "failed"
        assert later.error is not None and "SchedulerLost: " in later.error, later.error

    with scheduler_and_workers(1) as new:
        jw.configure(scheduler=str(new))
        resumed = jw.resume(run.run_id, retry_failed=True, timeout=120)
        assert resumed.status == "succeeded", resumed.error
    assert (tmp_path / "first.log").read_text() == "first\n"


@pytest.mark.parametrize("gap", [0.5, 12.0], ids=["dask-reconnects", "client-replaced"])
def test_a_long_lived_process_works_again_with_a_scheduler_back_at_the_address(
    tmp_path: Path, gap: float
) -> None:
    """A kernel or ``serve`` keeps its executor: once a scheduler answers at the address
    again, its next runs work, with code from the user's folder shipped to the new cluster.

    Within 10 s Dask's client reconnects by itself (before, every later run then failed with
    ``ModuleNotFoundError``: the code was shipped to the old scheduler only); later it has
    closed, and the executor connects a new one (before: ``SchedulerLost`` for ever)."""
    (tmp_path / "tasks.py").write_text(TASKS)
    (tmp_path / "quick.yaml").write_text(
        f"name: quick\ntasks:\n  first: {{action: 'tasks:first', input: {{log: '{tmp_path / 'q.log'}'}}}}\n"
    )
    wf = jw.load(str(tmp_path / "quick.yaml"))
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with scheduler_and_workers(1, port=port) as old:
        jw.configure(store=str(tmp_path / "state.db"), scheduler=str(old))
        assert wf.run(timeout=120).status == "succeeded"
        _kill_scheduler(old)
    time.sleep(gap)
    with scheduler_and_workers(1, port=port) as new:
        assert str(new) == str(old)
        for _ in range(2):
            run = wf.run(timeout=120)
            assert run.status == "succeeded", run.error
    assert (tmp_path / "q.log").read_text() == "first\n" * 3
