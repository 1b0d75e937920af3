"""``jupyter-workflows serve`` on an address it cannot listen on: one line on stderr, exit 2."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from jupyter_workflows.exceptions import WorkflowError
from jupyter_workflows.server.serve import check_address

WORKFLOW = "name: manual\ntasks:\n  a: {action: core.noop}\n"


def _serve(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    env.update(
        JUPYTER_TOKEN="audit-serve-token",
        JUPYTER_WORKFLOWS_EXECUTOR="inline",
        JUPYTER_WORKFLOWS_STORE=str(tmp_path / "state.db"),
        JUPYTER_CONFIG_DIR=str(tmp_path / "jupyter-config"),
        JUPYTER_RUNTIME_DIR=str(tmp_path / "jupyter-runtime"),
    )
    return subprocess.run(
        [sys.executable, "-m", "jupyter_workflows", "serve", *args],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
        timeout=120,
    )


def test_serve_on_a_busy_port_exits_2_with_one_line(tmp_path: Path) -> None:
    (tmp_path / "manual.yaml").write_text(WORKFLOW)
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        done = _serve(tmp_path, "manual.yaml", "--port", str(port))
    assert done.returncode == 2
    assert done.stderr == (
        f"cannot listen on 127.0.0.1:{port}: the port is already in use "
        "(choose another with --port)\n"
    )
    assert done.stdout == ""


def test_serve_on_an_address_of_no_interface_exits_2(tmp_path: Path) -> None:
    done = _serve(tmp_path, "--ip", "192.0.2.1", "--port", "8899")  # TEST-NET-1: never local
    assert done.returncode == 2
    assert done.stderr.strip() == (
        "cannot listen on 192.0.2.1:8899: no network interface of this machine has that "
        "address (see --ip)"
    )


def test_check_address_accepts_a_free_port_and_refuses_a_busy_one() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        free = probe.getsockname()[1]
    check_address("127.0.0.1", free)
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        with pytest.raises(WorkflowError, match="already in use"):
            check_address("127.0.0.1", busy.getsockname()[1])
