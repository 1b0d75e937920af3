"""The server extension, configured with ``c.JupyterWorkflows.triggers`` and ``.watch``: a real
``python -m jupyter_server`` on 127.0.0.1 watches a folder of its root for trait files and serves
the trigger file's webhooks."""

from __future__ import annotations

import time

TOKEN = "extension-triggers-token"


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


def test_the_extension_watches_and_serves_hooks(start_jupyter_server) -> None:
    files = {
        "rows.yaml": ROWS,
        "triggers.yaml": TRIGGERS,
        "incoming/early.csv": "a\n1\n2\n",
    }
    config = {"triggers": ["triggers.yaml"], "watch": ["incoming"]}
    with start_jupyter_server(files, TOKEN, workflows_config=config) as server:
        root, client, log = server.root, server.client, server.log
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
