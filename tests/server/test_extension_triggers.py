"""The server extension, configured with ``c.JupyterWorkflows.triggers`` and ``.watch``: a real
``python -m jupyter_server`` on 127.0.0.1 watches a folder of its root for trait files and serves
the trigger file's webhooks."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import httpx
import pytest

TOKEN = "extension-triggers-token"


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=15)


ROWS = """\
name: rows
parameters:
  path: {type: string}
  name: {type: string}
tasks:
  count: {action: core.shell, input: {command: "wc -l < '{{ parameters.path }}'"}}
output_map:
  name: "{{ parameters.name }}"
  lines: "{{ task.count.result.stdout | trim | int }}"
"""

TRIGGERS = """\
traits:
  tables: {patterns: "*.csv", workflows: [rows]}
hooks:
  count: {workflow: rows}
"""


def test_the_extension_watches_and_serves_hooks(tmp_path_factory: pytest.TempPathFactory) -> None:
    root = tmp_path_factory.mktemp("root")
    (root / "rows.yaml").write_text(ROWS)
    (root / "triggers.yaml").write_text(TRIGGERS)
    (root / "incoming").mkdir()
    (root / "incoming" / "early.csv").write_text("a\n1\n2\n")
    config_dir = tmp_path_factory.mktemp("config")
    config = config_dir / "jupyter_server_config.json"
    config.write_text(
        json.dumps(
            {
                "ServerApp": {"jpserver_extensions": {"jupyter_workflows.server": True}},
                "JupyterWorkflows": {"triggers": ["triggers.yaml"], "watch": ["incoming"]},
            }
        )
    )
    port = _free_port()
    env = dict(os.environ)
    env.update(
        JUPYTER_WORKFLOWS_EXECUTOR="inline",
        JUPYTER_WORKFLOWS_STORE=str(tmp_path_factory.mktemp("store") / "state.db"),
        JUPYTER_CONFIG_DIR=str(config_dir),
        JUPYTER_RUNTIME_DIR=str(tmp_path_factory.mktemp("runtime")),
    )
    env.pop("JUPYTER_WORKFLOWS_SCHEDULER", None)
    log = root.parent / "extension.log"
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
                f"--IdentityProvider.token={TOKEN}",
                "--ServerApp.open_browser=False",
                "--ServerApp.allow_root=True",
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=root,
            env=env,
        )
    client = httpx.Client(
        base_url=f"http://127.0.0.1:{port}/workflows/api",
        headers={"Authorization": f"token {TOKEN}"},
        timeout=60,
    )
    try:
        deadline = time.monotonic() + 90
        while True:
            assert proc.poll() is None, log.read_text()
            try:
                if client.get("/").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.2)
        (root / "incoming" / "late.csv").write_text("a\n1\n")
        hook = client.post(
            "/hooks/count", json={"path": str(root / "rows.yaml"), "name": "by-hook"}
        )
        assert hook.status_code == 201, hook.text
        deadline = time.monotonic() + 90
        while True:
            runs = [client.get(f"/runs/{r['run_id']}").json() for r in client.get("/runs").json()]
            outputs = sorted(
                (r["outputs"]["name"], r["outputs"]["lines"])
                for r in runs
                if r["status"] == "succeeded"
            )
            if len(outputs) >= 3 or time.monotonic() > deadline:
                break
            time.sleep(0.3)
        assert outputs == [("by-hook", 9), ("early.csv", 3), ("late.csv", 2)], log.read_text()[
            -3000:
        ]
        assert "watching incoming for traits tables" in log.read_text()
    finally:
        client.close()
        _stop(proc)
