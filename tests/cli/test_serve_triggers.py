"""``jupyter-workflows serve TRIGGERS.yaml --watch DIR``: traits start workflows for dropped
files exactly once per file version, across a restart of serve; webhooks start runs with the
payload as parameters, with Jupyter's token or the hook's secret. A real ``serve`` subprocess on
127.0.0.1, tasks inline, one SQLite store shared by both lives of the server.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pandas as pd
import pytest

from jupyter_workflows.testing import inline_env
from jupyter_workflows.testing import run_cli as jw

TOKEN = "triggers-test-token"
SECRET = "s3cret-hook-value"

FILES = {
    "rows.yaml": """\
name: rows
parameters:
  path: {type: string}
  name: {type: string}
tasks:
  count:
    action: core.shell
    input: {command: "wc -l < '{{ parameters.path }}'"}
output_map:
  lines: "{{ task.count.result.stdout | trim | int }}"
  name: "{{ parameters.name }}"
""",
    "deploy.yaml": """\
name: deploy
parameters:
  branch: {type: string}
  sha: {type: string, default: none}
tasks:
  go: {action: core.echo, input: {branch: "{{ parameters.branch }}", sha: "{{ parameters.sha }}"}}
""",
    "nightly.yaml": """\
name: nightly
schedule: "0 3 * * *"
tasks:
  a: {action: core.noop}
""",
    "triggers.yaml": """\
traits:
  tables:
    description: CSV files
    patterns: ["*.csv"]
    workflows: [rows]
hooks:
  push:
    workflow: deploy
    secret: PUSH_HOOK_SECRET
    when: "{{ payload.ref == 'refs/heads/main' }}"
    parameters: {branch: "{{ payload.ref }}", sha: "{{ payload.after | default('none') }}"}
  plain:
    workflow: deploy
""",
}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def _serve(folder: Path) -> Iterator[httpx.Client]:
    env = inline_env(folder)
    env.update(
        JUPYTER_TOKEN=TOKEN,
        PUSH_HOOK_SECRET=SECRET,
        JUPYTER_CONFIG_DIR=str(folder / "jupyter-config"),
        JUPYTER_RUNTIME_DIR=str(folder / "jupyter-runtime"),
    )
    port = _free_port()
    err = open(folder / "serve.err", "ab")  # noqa: SIM115 - closed below
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "jupyter_workflows",
            "serve",
            "triggers.yaml",
            "nightly.yaml",
            "--watch",
            "incoming",
            "--port",
            str(port),
        ],
        cwd=folder,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=err,
    )
    err.close()
    client = httpx.Client(
        base_url=f"http://127.0.0.1:{port}/workflows/api",
        headers={"Authorization": f"token {TOKEN}"},
        timeout=60,
    )
    try:
        deadline = time.monotonic() + 90
        while True:
            assert proc.poll() is None, (folder / "serve.err").read_text()
            try:
                if client.get("/").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, (folder / "serve.err").read_text()
            time.sleep(0.2)
        yield client
    finally:
        client.close()
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(30)


def _rows_runs(client: httpx.Client, count: int, timeout: float = 90) -> list[dict]:
    """Wait for ``count`` finished runs of ``rows``; their outputs, by file name."""
    deadline = time.monotonic() + timeout
    while True:
        runs = [r for r in client.get("/runs", params={"workflow": "rows"}).json()]
        done = [
            client.get(f"/runs/{r['run_id']}").json() for r in runs if r["status"] == "succeeded"
        ]
        if len(done) >= count or time.monotonic() > deadline:
            return sorted((d["outputs"] for d in done), key=lambda o: (o["name"], o["lines"]))
        time.sleep(0.3)


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    for name, text in FILES.items():
        (tmp_path / name).write_text(text)
    (tmp_path / "incoming").mkdir()
    return tmp_path


def test_dropped_files_run_once_per_version_across_a_restart(folder: Path) -> None:
    incoming = folder / "incoming"
    frame = pd.DataFrame({"city": ["Oslo", "Lima", None], "temp": [3.5, float("nan"), 21.0]})
    frame.to_csv(incoming / "before.csv", index=False)  # there before serve starts
    (incoming / "notes.txt").write_text("not a table\n")
    with _serve(folder) as client:
        assert _rows_runs(client, 1) == [{"lines": 4, "name": "before.csv"}]
        frame.head(1).to_csv(incoming / "dropped.csv", index=False)
        assert _rows_runs(client, 2) == [
            {"lines": 4, "name": "before.csv"},
            {"lines": 2, "name": "dropped.csv"},
        ]
        os.utime(incoming / "before.csv")  # touched, same content: the same version
        frame.to_csv(incoming / "dropped.csv", index=False)  # changed: a new version
        assert len(_rows_runs(client, 3)) == 3
        time.sleep(2.5)  # a touch would have been reported by now
    frame.tail(2).to_csv(incoming / "while_down.csv", index=False)
    with _serve(folder) as client:
        outputs = _rows_runs(client, 4)
        assert outputs == [
            {"lines": 4, "name": "before.csv"},
            {"lines": 2, "name": "dropped.csv"},
            {"lines": 4, "name": "dropped.csv"},
            {"lines": 3, "name": "while_down.csv"},
        ]
        time.sleep(2)
        assert len(_rows_runs(client, 5, timeout=1)) == 4  # nothing ran twice after the restart


def test_webhooks_with_token_or_secret(folder: Path) -> None:
    with _serve(folder) as client:
        anonymous = httpx.Client(base_url=str(client.base_url), timeout=60)
        body = json.dumps({"ref": "refs/heads/main", "after": "abc123"}).encode()
        assert anonymous.post("/hooks/push", content=body).status_code == 403
        assert (
            anonymous.post(
                "/hooks/push", content=body, headers={"X-Hook-Secret": "wrong"}
            ).status_code
            == 403
        )
        assert (
            anonymous.post("/hooks/plain", json={"branch": "x"}).status_code == 403
        )  # no secret: token only

        by_secret = anonymous.post("/hooks/push", content=body, headers={"X-Hook-Secret": SECRET})
        assert by_secret.status_code == 201, by_secret.text
        run = client.get(f"/runs/{by_secret.json()['run_id']}", params={}).json()
        signature = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
        by_signature = anonymous.post(
            "/hooks/push", content=body, headers={"X-Hub-Signature-256": signature}
        )
        assert by_signature.status_code == 201
        skipped = client.post("/hooks/push", json={"ref": "refs/heads/dev"})
        assert skipped.status_code == 200 and skipped.json()["run_id"] is None
        plain = client.post("/hooks/plain", json={"branch": "feature", "ignored": 1})
        assert plain.status_code == 201
        assert client.post("/hooks/plain", json={"sha": 5}).status_code == 400  # branch missing
        assert client.post("/hooks/plain", content=b"[1, 2]").status_code == 400
        assert client.post("/hooks/nope", json={}).status_code == 404
        listed = client.get("/hooks").json()
        assert [h["name"] for h in listed] == ["push", "plain"]
        deadline = time.monotonic() + 60
        while client.get(f"/runs/{plain.json()['run_id']}").json()["status"] != "succeeded":
            assert time.monotonic() < deadline
            time.sleep(0.2)
        done = client.get(f"/runs/{by_secret.json()['run_id']}").json()
        assert done["tasks"][0]["result"] == {"branch": "refs/heads/main", "sha": "abc123"}
        assert run["workflow"] == "deploy"
        anonymous.close()


def test_triggers_lists_schedules_hooks_and_traits(folder: Path) -> None:
    env = inline_env(folder)
    done = jw("triggers", "nightly.yaml", "triggers.yaml", "--json", env=env, cwd=folder)
    assert done.returncode == 0, done.stderr
    rows = json.loads(done.stdout)
    assert [(r["kind"], r["name"], r["workflow"]) for r in rows] == [
        ("schedule", "nightly", "nightly"),
        ("trait", "tables", "rows"),
        ("hook", "push", "deploy"),
        ("hook", "plain", "deploy"),
    ]
    assert rows[0]["when"].startswith("0 3 * * * (next ")
    assert "(secret)" in rows[2]["when"] and "(Jupyter auth)" in rows[3]["when"]
    bad = jw("serve", "nightly.yaml", "--watch", "incoming", env=env, cwd=folder)
    assert bad.returncode == 2 and "--watch needs a trigger file with traits" in bad.stderr
