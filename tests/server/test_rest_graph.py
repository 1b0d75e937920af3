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
