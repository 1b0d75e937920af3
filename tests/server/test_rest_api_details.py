"""REST API details found by an audit, on a real Jupyter server (a subprocess on 127.0.0.1).

The server loads the extension from an explicit config file and runs tasks in threads of its own
process (``JUPYTER_WORKFLOWS_EXECUTOR=inline``), with a store in the test's temporary folder.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from rest_helpers import Server, api_error

TOKEN = "audit-rest-token"
POSITIONED = re.compile(r"^[^:]+:\d+:\d+: ")

WORKFLOWS = {
    "hello.yaml": "name: hello\ntasks:\n  greet: {action: core.echo, input: {x: 1}}\n",
    # Loads (it is YAML with known fields) but is not valid: a transition to an unknown task.
    "unknown_target.yaml": "name: s\ntasks:\n  a: {action: core.noop, on_success: zz}\n",
    # Loads, but its action does not resolve.
    "no_action.yaml": "name: noact\ntasks:\n  a: {action: no_such_module_xyz:nothing}\n",
    "approve.yaml": """\
name: approve
tasks:
  ask:
    action: core.inquiry
    input:
      prompt: Ship it?
      schema: {type: object, properties: {approved: {type: boolean}}, required: [approved]}
    on_success: ship
  ship: {action: core.echo, input: {shipped: true}, on_success: checks}
  checks:
    type: parallel
    tasks:
      inner: {action: core.noop}
""",
    # Does not load: an unknown field.
    "broken.yaml": "name: broken\ntasks:\n  a: {action: core.noop, retrys: 2}\n",
}


@pytest.fixture(scope="module")
def server(start_jupyter_server: Any) -> Iterator[Server]:
    with start_jupyter_server(WORKFLOWS, TOKEN) as running:
        yield running


# -- GET workflows: an invalid file is not shown as valid ----------------------------------------
def test_list_reports_a_workflow_that_loads_but_is_invalid(server: Server) -> None:
    listed = server.client.get("/workflows")
    assert listed.status_code == 200
    by_path = {w["path"]: w for w in listed.json()}

    unknown = by_path["unknown_target.yaml"]
    assert (
        unknown["error"] == "unknown_target.yaml:3:38: task 'a': on_success names unknown task 'zz'"
    )
    assert unknown["name"] == "s" and unknown["tasks"] == ["a"]  # it loads: details are kept

    no_action = by_path["no_action.yaml"]
    assert no_action["error"] and POSITIONED.match(no_action["error"]), no_action
    assert "no_such_module_xyz" in no_action["error"]

    broken = by_path["broken.yaml"]  # does not load: no details
    assert broken["error"].startswith("broken.yaml:3:") and broken["tasks"] is None

    assert by_path["hello.yaml"]["error"] is None

    # The error is the one a run gets.
    started = server.client.post("/workflows/s/runs", json={})
    assert started.status_code == 400
    assert api_error(started) == unknown["error"]


# -- respond: 404 for an unknown task, 409 for one not waiting, 400 for a bad answer -------------
def test_respond_status_codes(server: Server) -> None:
    run = server.client.post("/workflows/approve/runs?wait=true", json={}).json()
    assert run["status"] == "waiting", run
    run_id = run["run_id"]

    unknown = server.client.post(f"/runs/{run_id}/tasks/nosuch/respond", json={"approved": True})
    assert unknown.status_code == 404
    assert "no task 'nosuch'" in api_error(unknown)

    not_started = server.client.post(f"/runs/{run_id}/tasks/ship/respond", json={"approved": True})
    assert not_started.status_code == 409
    assert "'ship' is not waiting for a response (not started)" in api_error(not_started)
    # A member of a parallel group is a task of the run too, though nothing ran it yet.
    member = server.client.post(f"/runs/{run_id}/tasks/inner/respond", json={"approved": True})
    assert member.status_code == 409, member.text
    assert "'inner' is not waiting for a response (not started)" in api_error(member)

    bad_answer = server.client.post(f"/runs/{run_id}/tasks/ask/respond", json={"approved": "y"})
    assert bad_answer.status_code == 400
    assert "schema" in api_error(bad_answer)
    not_json = server.client.post(f"/runs/{run_id}/tasks/ask/respond", content=b"{nope")
    assert not_json.status_code == 400
    api_error(not_json)
    assert server.client.get(f"/runs/{run_id}").json()["status"] == "waiting"

    answered = server.client.post(
        f"/runs/{run_id}/tasks/ask/respond?wait=true", json={"approved": True}
    )
    assert answered.status_code == 200, answered.text
    assert answered.json()["status"] == "succeeded"

    again = server.client.post(f"/runs/{run_id}/tasks/ask/respond", json={"approved": True})
    assert again.status_code == 409
    assert "'ask' is not waiting for a response (succeeded)" in api_error(again)

    no_run = server.client.post("/runs/0123456789abcdef/tasks/ask/respond", json={})
    assert no_run.status_code == 404
    api_error(no_run)


# -- auth: every route, every method, without a valid token: 403 --------------------------------
ROUTES = [
    "/",
    "/workflows",
    "/workflows/hello/runs",
    "/runs",
    "/runs/0123456789abcdef",
    "/runs/0123456789abcdef/trace",
    "/runs/0123456789abcdef/pause",
    "/runs/0123456789abcdef/resume",
    "/runs/0123456789abcdef/cancel",
    "/runs/0123456789abcdef/tasks/ask/respond",
    "/schedules",
    "/no/such/endpoint",
]


@pytest.mark.parametrize("method", ["GET", "POST", "PUT", "DELETE", "PATCH"])
@pytest.mark.parametrize("path", ROUTES)
def test_every_route_and_method_needs_a_valid_token(server: Server, path: str, method: str) -> None:
    # GET on a POST-only route (and POST on a GET-only one) is 403 too, not 405: nothing about
    # the API is told to a client without a token.
    for headers, params in (
        ({}, {}),
        ({"Authorization": "token wrong"}, {}),
        ({}, {"token": "wrong"}),
    ):
        response = server.anonymous.request(method, path, json={}, headers=headers, params=params)
        assert response.status_code == 403, (headers, params, response.text)
        assert "token" in api_error(response)


def test_with_the_token_a_missing_method_is_405(server: Server) -> None:
    assert server.client.get("/workflows/hello/runs").status_code == 405
    assert server.client.post("/runs").status_code == 405
