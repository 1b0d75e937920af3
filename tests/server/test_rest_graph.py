"""``GET /workflows/api/runs/{id}/graph``: what the JupyterLab runs panel draws (real server)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

TOKEN = "jw-rest-graph-token"
WORKFLOWS = {
    "approve.yaml": """\
name: approve
tasks:
  ask:
    action: core.inquiry
    input:
      prompt: Ship it?
      schema:
        type: object
        properties: {approved: {type: boolean}}
        required: [approved]
    on_success: ship
  ship: {action: core.echo, input: {shipped: true}}
""",
}


@pytest.fixture(scope="module")
def server(start_jupyter_server: Any) -> Iterator[Any]:
    with start_jupyter_server(WORKFLOWS, TOKEN) as running:
        yield running


def test_graph_of_a_waiting_run_has_states_and_the_open_inquiry(server: Any) -> None:
    run = server.client.post("/workflows/approve/runs?wait=true", json={}).json()
    assert run["status"] == "waiting"
    response = server.client.get(f"/runs/{run['run_id']}/graph")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["version"] == 1
    assert [n["id"] for n in body["graph"]["nodes"]] == ["ask", "ship"]
    assert {(e["source"], e["target"]) for e in body["graph"]["edges"]} == {("ask", "ship")}
    assert body["status"]["ask"]["status"] == "waiting"
    assert "ship" not in body["status"]
    assert body["run"] == {"run_id": run["run_id"], "status": "waiting", "error": None}
    (inquiry,) = body["inquiries"]
    assert inquiry["task"] == "ask" and inquiry["prompt"] == "Ship it?"
    assert inquiry["schema"]["required"] == ["approved"]

    answered = server.client.post(
        f"/runs/{run['run_id']}/tasks/ask/respond?wait=true", json={"approved": True}
    )
    assert answered.status_code == 200
    body = server.client.get(f"/runs/{run['run_id'][:8]}/graph").json()  # a prefix works too
    assert body["run"]["status"] == "succeeded"
    assert body["status"]["ship"]["status"] == "succeeded"
    assert body["inquiries"] == []


def test_graph_of_an_unknown_run_is_404_and_needs_a_token(server: Any) -> None:
    missing = server.client.get("/runs/0123456789abcdef/graph")
    assert missing.status_code == 404
    assert set(missing.json()) == {"error"}
    assert server.anonymous.get("/runs/0123456789abcdef/graph").status_code == 403


HELLO = """\
# keep me: a comment
name: hi
tasks:
  greet:
    action: core.echo
    input: {text: 'hello'}   # single quotes stay
"""


def test_validate_answers_graph_or_positioned_error(server: Any) -> None:
    good = server.client.post("/validate", json={"text": HELLO, "path": "hi.yaml"})
    assert good.status_code == 200
    body = good.json()
    assert body["ok"] is True and body["error"] is None
    assert [n["id"] for n in body["graph"]["graph"]["nodes"]] == ["greet"]

    bad = server.client.post(
        "/validate", json={"text": HELLO.replace("action:", "actoin:"), "path": "hi.yaml"}
    )
    assert bad.status_code == 200
    body = bad.json()
    assert body["ok"] is False and body["graph"] is None
    assert body["error"].startswith("hi.yaml:5:5: ") and "actoin" in body["error"]
    assert (body["line"], body["col"]) == (5, 5)

    outside = server.client.post("/validate", json={"text": HELLO, "path": "../x.yaml"})
    assert outside.status_code == 400
    assert server.client.post("/validate", content=b"not json").status_code == 400


def test_edit_returns_the_new_text_in_the_authors_style(server: Any) -> None:
    answer = server.client.post(
        "/edit",
        json={
            "text": HELLO,
            "path": "hi.yaml",
            "op": "add_task",
            "name": "bye",
            "action": "core.noop",
            "after": "greet",
        },
    )
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["ok"] is True
    text = body["text"]
    assert text.startswith("# keep me: a comment\n")
    assert "    input: {text: 'hello'}   # single quotes stay\n" in text
    assert "    on_success: bye\n" in text
    assert "  bye:\n    action: core.noop\n" in text
    assert {n["id"] for n in body["graph"]["graph"]["nodes"]} == {"greet", "bye"}

    refused = server.client.post(
        "/edit",
        json={"text": HELLO, "path": "hi.yaml", "op": "add_task", "name": "x", "action": "no.such"},
    )
    assert refused.status_code == 400
    assert "no.such" in refused.json()["error"]


def test_file_task_says_what_a_dropped_file_becomes(server: Any) -> None:
    """``POST file_task``: the Workflow Editor's drop of a notebook or a .py file."""
    root = server.root
    (root / "steps").mkdir(exist_ok=True)
    (root / "steps" / "clean.ipynb").write_text(
        '{"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}'
    )
    (root / "steps" / "jobs.py").write_text(
        "def _private():\n    pass\n\n\nasync def fetch(url):\n    return url\n\n\ndef store(x):\n    return x\n"
    )
    (root / "steps" / "broken.py").write_text("def oops(:\n    pass\n")
    (root / "steps" / "empty.py").write_text("X = 1\n")
    (root / "notes.txt").write_text("not code\n")
    text = "tasks:\n  fetch: {action: core.noop}\n"

    def ask(file: str) -> Any:
        return server.client.post(
            "/file_task", json={"text": text, "path": "hi.yaml", "file": file}
        )

    notebook = ask("steps/clean.ipynb")
    assert notebook.status_code == 200, notebook.text
    assert notebook.json() == {
        "name": "clean",
        "action": "core.notebook",
        "input": {"path": "steps/clean.ipynb"},
        "functions": [],
    }
    module = ask("steps/jobs.py").json()
    # Public functions first, in file order; the name is free (``fetch`` is taken).
    assert module["functions"] == ["fetch", "store", "_private"]
    assert module["action"] == "steps.jobs:fetch"
    assert module["name"] == "fetch_2"

    broken = ask("steps/broken.py")
    assert broken.status_code == 400
    assert broken.json()["error"].startswith("steps/broken.py:1:"), broken.json()
    assert (
        ask("steps/empty.py").json()["error"]
        == "steps/empty.py: no top-level function to run as a task"
    )
    assert "only a notebook" in ask("notes.txt").json()["error"]
    assert ask("../outside.py").status_code == 400
    assert ask("steps/missing.py").status_code == 400
