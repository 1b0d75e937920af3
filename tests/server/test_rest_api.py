"""The REST API on a real Jupyter server: a ``python -m jupyter_server`` subprocess on 127.0.0.1.

The server loads the extension from an explicit config file (``jupyter_workflows.server``), so the
test does not depend on the ``etc/jupyter`` file an editable install may not have placed; it
runs tasks in threads of the server process (``JUPYTER_WORKFLOWS_EXECUTOR=inline``) with a store
in the test's temporary folder. One server serves the whole module.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
from rest_helpers import Server, api_error

TOKEN = "rest-api-test-token"
RUN_KEYS = {"run_id", "workflow", "status", "outputs", "error", "tasks"}
TASK_KEYS = {"task", "status", "attempts", "result", "error", "started_at", "ended_at"}
SUMMARY_KEYS = {"run_id", "workflow", "status", "started_at", "ended_at"}

WORKFLOWS = {
    "hello.yaml": """\
name: hello
description: Say hello
parameters:
  who: {type: string, default: world}
tasks:
  greet:
    action: core.echo
    input: {text: "hello {{ parameters.who }}"}
output_map:
  text: "{{ task.greet.result.text }}"
""",
    "slow.yaml": """\
name: slow
tasks:
  first:
    action: core.sleep
    input: {seconds: 1}
    on_success: second
  second:
    action: core.sleep
    input: {seconds: 1.5}
    on_success: third
  third:
    action: core.sleep
    input: {seconds: 5}
""",
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
    decision:
      - when: "{{ result.approved }}"
        next: ship
      - default: stop
  ship: {action: core.echo, input: {shipped: true}}
  stop: {action: core.noop}
output_map:
  approved: "{{ task.ask.result.approved }}"
""",
    "broken.yaml": "name: broken\ntasks:\n  a: {action: core.noop, retrys: 2}\n",
    "notes.yaml": "title: not a workflow\nitems: [1, 2]\n",
}


@pytest.fixture(scope="module")
def server(start_jupyter_server: Any) -> Iterator[Server]:
    with start_jupyter_server(WORKFLOWS, TOKEN) as running:
        yield running


def _wait_for(server: Server, run_id: str, statuses: set[str], timeout: float = 30) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        run = server.client.get(f"/runs/{run_id}").json()
        if run["status"] in statuses:
            return run
        assert time.monotonic() < deadline, f"run still {run['status']}, wanted {statuses}"
        time.sleep(0.1)


# -- auth -----------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/"),
        ("GET", "/workflows"),
        ("POST", "/workflows/hello/runs"),
        ("GET", "/runs"),
        ("GET", "/runs/0123456789abcdef"),
        ("GET", "/runs/0123456789abcdef/trace"),
        ("POST", "/runs/0123456789abcdef/cancel"),
        ("POST", "/runs/0123456789abcdef/tasks/ask/respond"),
        ("GET", "/schedules"),
        ("GET", "/no/such/endpoint"),
    ],
)
def test_requests_without_a_token_get_403(server: Server, method: str, path: str) -> None:
    response = server.anonymous.request(method, path, json={})
    assert response.status_code == 403
    assert "token" in api_error(response)
    wrong = server.anonymous.request(method, path, json={}, headers={"Authorization": "token nope"})
    assert wrong.status_code == 403


def test_token_in_the_query_works_too(server: Server) -> None:
    response = server.anonymous.get("/runs", params={"token": TOKEN})
    assert response.status_code == 200
    assert isinstance(response.json(), list)


def test_index_lists_the_endpoints(server: Server) -> None:
    body = server.client.get("/").json()
    assert body["name"] == "jupyter_workflows"
    assert "POST workflows/{name}/runs" in body["endpoints"]


def test_unknown_endpoint_is_a_json_404(server: Server) -> None:
    response = server.client.get("/no/such/endpoint")
    assert response.status_code == 404
    assert "no endpoint" in api_error(response)


# -- workflows ------------------------------------------------------------------------------------
def test_list_workflows_finds_files_in_the_root_folder(server: Server) -> None:
    response = server.client.get("/workflows")
    assert response.status_code == 200
    by_name = {w["name"]: w for w in response.json()}
    assert {"hello", "slow", "approve", "broken"} <= set(by_name)
    assert "notes" not in by_name  # no `tasks`: not a workflow
    hello = by_name["hello"]
    assert hello == {
        "name": "hello",
        "description": "Say hello",
        "parameters": {"who": {"type": "string", "default": "world"}},
        "schedule": None,
        "tasks": ["greet"],
        "source": "file",
        "path": "hello.yaml",
        "error": None,
    }
    broken = by_name["broken"]
    assert broken["path"] == "broken.yaml"
    assert broken["error"].startswith("broken.yaml:3:")
    assert "retrys" in broken["error"]


def test_start_a_run_and_wait(server: Server) -> None:
    response = server.client.post(
        "/workflows/hello/runs", params={"wait": "true"}, json={"who": "api"}
    )
    assert response.status_code == 201, response.text
    run = response.json()
    assert set(run) == RUN_KEYS
    assert run["workflow"] == "hello"
    assert run["status"] == "succeeded"
    assert run["error"] is None
    assert run["outputs"] == {"text": "hello api"}
    assert len(run["tasks"]) == 1
    task = run["tasks"][0]
    assert set(task) == TASK_KEYS
    assert task["task"] == "greet" and task["status"] == "succeeded" and task["attempts"] == 1
    assert task["result"] == {"text": "hello api"}
    assert response.headers["location"].endswith(f"/workflows/api/runs/{run['run_id']}")

    # No body: the defaults. The file name works as well as the workflow's name.
    response = server.client.post("/workflows/hello.yaml/runs?wait=1")
    assert response.status_code == 201
    assert response.json()["outputs"] == {"text": "hello world"}


def test_start_errors(server: Server) -> None:
    bad = server.client.post("/workflows/hello/runs", json={"who": 5})
    assert bad.status_code == 400
    assert "who" in api_error(bad)
    unknown = server.client.post("/workflows/hello/runs", json={"whom": "x"})
    assert unknown.status_code == 400
    assert "whom" in api_error(unknown)
    not_json = server.client.post(
        "/workflows/hello/runs", content=b"{who: ", headers={"Content-Type": "application/json"}
    )
    assert not_json.status_code == 400
    assert "not valid JSON" in api_error(not_json)
    not_object = server.client.post("/workflows/hello/runs", json=["api"])
    assert not_object.status_code == 400
    assert "JSON object" in api_error(not_object)
    missing = server.client.post("/workflows/nope/runs", json={})
    assert missing.status_code == 404
    assert "nope" in api_error(missing)
    invalid = server.client.post("/workflows/broken/runs", json={})
    assert invalid.status_code == 400
    assert "retrys" in api_error(invalid)
    bad_flag = server.client.post("/workflows/hello/runs", params={"wait": "maybe"})
    assert bad_flag.status_code == 400
    api_error(bad_flag)


# -- runs -----------------------------------------------------------------------------------------
def test_list_and_get_runs(server: Server) -> None:
    started = server.client.post("/workflows/hello/runs?wait=true", json={"who": "list"}).json()
    runs = server.client.get("/runs").json()
    assert runs, runs
    assert all(set(r) == SUMMARY_KEYS for r in runs)
    assert runs[0]["run_id"] == started["run_id"]  # newest first
    assert runs[0]["status"] == "succeeded"
    assert runs[0]["started_at"].endswith("Z") and runs[0]["ended_at"].endswith("Z")

    limited = server.client.get(
        "/runs", params={"limit": 1, "workflow": "hello", "status": "succeeded"}
    ).json()
    assert [r["run_id"] for r in limited] == [started["run_id"]]
    assert server.client.get("/runs", params={"workflow": "no-such-workflow"}).json() == []

    one = server.client.get(f"/runs/{started['run_id']}")
    assert one.status_code == 200
    assert one.json() == started
    by_prefix = server.client.get(f"/runs/{started['run_id'][:10]}")
    assert by_prefix.status_code == 200
    assert by_prefix.json()["run_id"] == started["run_id"]


def test_unknown_run_is_404(server: Server) -> None:
    for path in (
        "/runs/0123456789abcdef0123",
        "/runs/nope/trace",
        "/runs/nope/pause",
        "/runs/nope/tasks/a/respond",
    ):
        method = "GET" if path.startswith("/runs/0") or path.endswith("trace") else "POST"
        response = server.client.request(method, path, json={})
        assert response.status_code == 404, (path, response.text)
        assert "nope" in api_error(response) or "0123456789abcdef0123" in api_error(response)


def test_trace_json_and_chrome(server: Server) -> None:
    run = server.client.post("/workflows/hello/runs?wait=true", json={}).json()
    trace = server.client.get(f"/runs/{run['run_id']}/trace")
    assert trace.status_code == 200
    body = trace.json()
    assert body["run_id"] == run["run_id"]
    assert body["status"] == "succeeded"
    assert [t["task"] for t in body["tasks"]] == ["greet"]
    assert isinstance(body["events"], list) and body["events"]

    chrome = server.client.get(f"/runs/{run['run_id']}/trace", params={"format": "chrome"})
    assert chrome.status_code == 200
    events = chrome.json()
    events = events["traceEvents"] if isinstance(events, dict) else events
    assert any(e.get("ph") == "X" and e.get("name", "").startswith("greet") for e in events), events

    bad = server.client.get(f"/runs/{run['run_id']}/trace", params={"format": "svg"})
    assert bad.status_code == 400
    assert "chrome" in api_error(bad)


def test_pause_resume_cancel(server: Server) -> None:
    started = server.client.post("/workflows/slow/runs", json={})
    assert started.status_code == 201
    run = started.json()
    assert run["status"] in ("pending", "running")
    run_id = run["run_id"]

    paused = server.client.post(f"/runs/{run_id}/pause", params={"wait": "true", "timeout": 20})
    assert paused.status_code == 200, paused.text
    body = paused.json()
    assert set(body) == RUN_KEYS
    assert body["status"] == "paused"
    assert "third" not in [t["task"] for t in body["tasks"] if t["status"] != "pending"]

    resumed = server.client.post(f"/runs/{run_id}/resume")
    assert resumed.status_code == 200
    assert resumed.json()["status"] in ("running", "pending")
    _wait_for(server, run_id, {"running"})
    # Let it reach the 5-second task, then cancel it.
    deadline = time.monotonic() + 20
    while not any(
        t["task"] == "third" for t in server.client.get(f"/runs/{run_id}").json()["tasks"]
    ):
        assert time.monotonic() < deadline
        time.sleep(0.1)

    cancelled = server.client.post(f"/runs/{run_id}/cancel", params={"wait": "true", "timeout": 20})
    assert cancelled.status_code == 200
    assert cancelled.json()["status"] == "cancelled"

    again = server.client.post(f"/runs/{run_id}/cancel")
    assert again.status_code == 409
    assert "cancelled" in api_error(again)
    pause_ended = server.client.post(f"/runs/{run_id}/pause")
    assert pause_ended.status_code == 409
    api_error(pause_ended)


# -- inquiries --------------------------------------------------------------------------------------
def test_answer_an_inquiry(server: Server) -> None:
    run = server.client.post("/workflows/approve/runs?wait=true", json={}).json()
    assert run["status"] == "waiting"
    run_id = run["run_id"]
    assert [t["status"] for t in run["tasks"] if t["task"] == "ask"] == ["waiting"]

    wrong_type = server.client.post(f"/runs/{run_id}/tasks/ask/respond", json={"approved": "yes"})
    assert wrong_type.status_code == 400
    assert "schema" in api_error(wrong_type)
    missing = server.client.post(f"/runs/{run_id}/tasks/ask/respond", json={})
    assert missing.status_code == 400
    assert "approved" in api_error(missing)
    no_body = server.client.post(f"/runs/{run_id}/tasks/ask/respond")
    assert no_body.status_code == 400
    api_error(no_body)
    other_task = server.client.post(f"/runs/{run_id}/tasks/ship/respond", json={"approved": True})
    assert other_task.status_code == 409
    assert "not waiting" in api_error(other_task)
    assert server.client.get(f"/runs/{run_id}").json()["status"] == "waiting"

    answered = server.client.post(
        f"/runs/{run_id}/tasks/ask/respond?wait=true", json={"approved": True}
    )
    assert answered.status_code == 200, answered.text
    body = answered.json()
    assert body["status"] == "succeeded"
    assert body["outputs"] == {"approved": True}
    statuses = {t["task"]: t["status"] for t in body["tasks"]}
    assert statuses == {"ask": "succeeded", "ship": "succeeded"}

    late = server.client.post(f"/runs/{run_id}/tasks/ask/respond", json={"approved": False})
    assert late.status_code in (400, 409)
    api_error(late)


def test_schedules_is_empty_in_a_plain_jupyter_server(server: Server) -> None:
    assert server.client.get("/schedules").json() == []


def test_the_server_log_names_the_api(server: Server) -> None:
    assert "jupyter_workflows | REST API at /workflows/api/" in server.log.read_text()
