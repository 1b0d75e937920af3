"""A ``--scheduler`` that cannot be used is bad usage: one line, exit 2, no run (CONTRACT §5).

``run`` and ``resume`` connect to an external scheduler before they create or continue a run;
a malformed address is refused before any connection, an unreachable one after a bounded wait.
"""

from __future__ import annotations

import json
import os
import socket
import time
from pathlib import Path

import pytest

from jupyter_workflows.testing import run_cli as jw

HELLO = "name: hello\ntasks:\n  greet: {action: core.echo, input: {text: hi}}\n"


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    """Dask (not inline), so that --scheduler is used; a store in ``tmp_path``."""
    (tmp_path / "hello.yaml").write_text(HELLO)
    env = dict(os.environ)
    for var in ("JUPYTER_WORKFLOWS_SCHEDULER", "JUPYTER_WORKFLOWS_EXECUTOR"):
        env.pop(var, None)
    env["JUPYTER_WORKFLOWS_STORE"] = str(tmp_path / "state.db")
    return env


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _runs(tmp_path: Path) -> list[dict]:
    env = dict(os.environ, JUPYTER_WORKFLOWS_EXECUTOR="inline")
    env["JUPYTER_WORKFLOWS_STORE"] = str(tmp_path / "state.db")
    result = jw("runs", "--json", env=env, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


@pytest.mark.parametrize(
    ("address", "message"),
    [
        ("notanaddress", "--scheduler 'notanaddress': not a Dask scheduler address"),
        ("tcp://127.0.0.1", "--scheduler 'tcp://127.0.0.1': not a Dask scheduler address"),
        ("foo://127.0.0.1:8786", "--scheduler 'foo://127.0.0.1:8786': not a Dask scheduler"),
        ("tcp://127.0.0.1:CLOSED", "--scheduler tcp://127.0.0.1:CLOSED: cannot connect"),
        ("127.0.0.1:CLOSED", "--scheduler 127.0.0.1:CLOSED: cannot connect"),
    ],
)
def test_bad_scheduler_is_exit_2_and_no_run(
    tmp_path: Path, env: dict[str, str], address: str, message: str
) -> None:
    port = str(_closed_port())
    address, message = address.replace("CLOSED", port), message.replace("CLOSED", port)
    started = time.monotonic()
    result = jw("run", "hello.yaml", "--scheduler", address, env=env, cwd=tmp_path)
    elapsed = time.monotonic() - started
    assert result.returncode == 2, result.stderr
    assert result.stdout == ""
    assert result.stderr.startswith(message), result.stderr
    assert len(result.stderr.splitlines()) == 1, result.stderr  # no Client.__del__ traceback
    assert elapsed < 20
    assert _runs(tmp_path) == []


def test_bad_scheduler_in_the_environment_and_before_the_subcommand(
    tmp_path: Path, env: dict[str, str]
) -> None:
    result = jw(
        "run", "hello.yaml", env={**env, "JUPYTER_WORKFLOWS_SCHEDULER": "nope"}, cwd=tmp_path
    )
    assert result.returncode == 2
    assert result.stderr.startswith("--scheduler 'nope': not a Dask scheduler address")
    result = jw("--scheduler", "nope", "run", "hello.yaml", env=env, cwd=tmp_path)
    assert result.returncode == 2
    assert _runs(tmp_path) == []


def test_resume_with_a_bad_scheduler(tmp_path: Path, env: dict[str, str]) -> None:
    inline = {**env, "JUPYTER_WORKFLOWS_EXECUTOR": "inline"}
    (tmp_path / "waits.yaml").write_text(
        "name: waits\ntasks:\n  ask: {action: core.inquiry, input: {prompt: 'go?'}}\n"
    )
    done = jw("run", "hello.yaml", "--json", env=inline, cwd=tmp_path)
    waiting = jw("run", "waits.yaml", "--json", env=inline, cwd=tmp_path)
    assert (done.returncode, waiting.returncode) == (0, 3)
    done_id = json.loads(done.stdout)["run_id"]
    waiting_id = json.loads(waiting.stdout)["run_id"]
    bad = f"tcp://127.0.0.1:{_closed_port()}"
    # a run that is to continue needs the scheduler: refused, and left as it was
    result = jw("resume", waiting_id, "--scheduler", bad, env=env, cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.startswith(f"--scheduler {bad}: cannot connect")
    assert {r["run_id"]: r["status"] for r in _runs(tmp_path)}[waiting_id] == "waiting"
    # an ended run is only printed
    result = jw("resume", done_id, "--json", "--scheduler", bad, env=env, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["status"] == "succeeded"


def test_a_real_scheduler_through_the_flag(
    tmp_path: Path, env: dict[str, str], dask_cluster
) -> None:
    address = dask_cluster.scheduler_address
    result = jw("run", "hello.yaml", "--json", "--scheduler", address, env=env, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["status"] == "succeeded"
