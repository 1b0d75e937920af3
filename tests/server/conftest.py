"""A real Jupyter server with the workflows extension, on 127.0.0.1, for the REST tests."""

from __future__ import annotations

import contextlib
import functools
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest


@dataclass
class RunningServer:
    url: str
    """The API root, ``http://127.0.0.1:PORT/workflows/api``."""
    client: httpx.Client
    """Sends the token."""
    anonymous: httpx.Client
    """Sends no token."""
    log: Path
    root: Path


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=15)


@contextlib.contextmanager
def jupyter_server(
    tmp_path_factory: pytest.TempPathFactory,
    files: dict[str, str],
    token: str,
    workflows_config: dict[str, Any] | None = None,
) -> Iterator[RunningServer]:
    """Serve ``files`` (relative path -> text) from a fresh root folder, with the inline
    executor and a SQLite store of its own; stop the server afterwards.

    ``workflows_config`` is the server extension's ``JupyterWorkflows`` section of the
    server's config file (``triggers``, ``watch``, ...).
    """
    root = tmp_path_factory.mktemp("root")
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    config_dir = tmp_path_factory.mktemp("config")
    config = config_dir / "jupyter_server_config.json"
    settings: dict[str, Any] = {
        "ServerApp": {"jpserver_extensions": {"jupyter_workflows.server": True}}
    }
    if workflows_config:
        settings["JupyterWorkflows"] = workflows_config
    config.write_text(json.dumps(settings))
    port = _free_port()
    env = dict(os.environ)
    env.update(
        JUPYTER_WORKFLOWS_EXECUTOR="inline",
        JUPYTER_WORKFLOWS_STORE=str(tmp_path_factory.mktemp("store") / "state.db"),
        JUPYTER_CONFIG_DIR=str(config_dir),
        JUPYTER_RUNTIME_DIR=str(tmp_path_factory.mktemp("runtime")),
    )
    env.pop("JUPYTER_TOKEN", None)
    env.pop("JUPYTER_WORKFLOWS_SCHEDULER", None)
    log = root.parent / "server.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "jupyter_server",
                f"--config={config}",
                "--ServerApp.ip=127.0.0.1",
                f"--ServerApp.port={port}",
                "--ServerApp.port_retries=0",
                f"--ServerApp.root_dir={root}",
                f"--IdentityProvider.token={token}",
                "--ServerApp.open_browser=False",
                "--ServerApp.allow_root=True",
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=root,
            env=env,
        )
    url = f"http://127.0.0.1:{port}/workflows/api"
    client = httpx.Client(base_url=url, headers={"Authorization": f"token {token}"}, timeout=60)
    anonymous = httpx.Client(base_url=url, timeout=60)
    try:
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                pytest.fail(f"jupyter server exited with {proc.returncode}:\n{log.read_text()}")
            try:
                if client.get("/").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"jupyter server did not answer in 60s:\n{log.read_text()}")
            time.sleep(0.2)
        yield RunningServer(url, client, anonymous, log, root)
    finally:
        client.close()
        anonymous.close()
        _stop(proc)


@pytest.fixture(scope="module")
def start_jupyter_server(tmp_path_factory: pytest.TempPathFactory):
    """``start_jupyter_server(files, token)``: the :func:`jupyter_server` context manager."""
    return functools.partial(jupyter_server, tmp_path_factory)
