"""``jupyter-workflows serve``: an address it cannot listen on is one line on stderr and exit 2;
it serves the workflows API and none of Jupyter's kernels, contents or files APIs."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
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


def test_serve_exposes_the_workflows_api_and_not_jupyters_own(tmp_path: Path) -> None:
    (tmp_path / "manual.yaml").write_text(WORKFLOW)
    (tmp_path / "secret.txt").write_text("not for the API")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = dict(os.environ)
    env.update(
        JUPYTER_TOKEN="audit-serve-token",
        JUPYTER_WORKFLOWS_EXECUTOR="inline",
        JUPYTER_WORKFLOWS_STORE=str(tmp_path / "state.db"),
        JUPYTER_CONFIG_DIR=str(tmp_path / "jupyter-config"),
        JUPYTER_RUNTIME_DIR=str(tmp_path / "jupyter-runtime"),
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "jupyter_workflows", "serve", "manual.yaml", "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        cwd=tmp_path,
        env=env,
    )
    base = f"http://127.0.0.1:{port}"
    auth = {"Authorization": "token audit-serve-token"}
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, f"serve exited with {proc.returncode}"
            try:
                if httpx.get(f"{base}/workflows/api/", headers=auth).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "serve did not answer in 60s"
            time.sleep(0.2)
        for method, path in [
            ("GET", "/api/kernels"),
            ("POST", "/api/kernels"),
            ("GET", "/api/contents"),
            ("GET", "/api/contents/secret.txt"),
            ("GET", "/files/secret.txt"),
            ("GET", "/view/secret.txt"),
            ("GET", "/api/sessions"),
            ("GET", "/api/kernelspecs"),
            ("GET", "/api/terminals"),
            ("GET", "/api/config/notebook"),
            ("GET", "/nbconvert/html/x.ipynb"),
            ("POST", "/api/shutdown"),
        ]:
            response = httpx.request(method, f"{base}{path}", headers=auth, json={})
            assert response.status_code == 404, (method, path, response.status_code)
            assert "not for the API" not in response.text
        assert httpx.get(f"{base}/workflows/api/runs", headers=auth).status_code == 200
        run = httpx.post(
            f"{base}/workflows/api/workflows/manual/runs?wait=true", headers=auth, timeout=60
        )
        assert run.status_code == 201 and run.json()["status"] == "succeeded", run.text
        assert httpx.get(f"{base}/workflows/api/runs").status_code == 403
    finally:
        proc.terminate()
        assert proc.wait(timeout=30) == 0
