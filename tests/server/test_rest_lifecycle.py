"""Lifecycle objects through the REST API of a real Jupyter server on 127.0.0.1.

``GET objects``, ``GET|POST objects/{id}/state``: 200 for a transition done, 409 for a refused
one (the object unchanged, the reason one line), 400 for an unknown state or a bad body, 404 for
an unknown object, 403 without a token; an approval answered through ``respond`` moves the
object on.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

TOKEN = "lifecycle-rest-token"

FILES = {
    "check.yaml": """\
name: check
parameters:
  rows: {type: integer}
tasks:
  look:
    action: core.echo
    input: {rows: "{{ parameters.rows }}"}
""",
    "dataset.yaml": """\
lifecycle: dataset
states:
  draft: {type: draft}
  checked: {type: processing, entry: check}
  review:
    type: approval
    approval: {approved: published, rejected: draft}
  published: {type: published}
transitions:
  - {from: draft, to: checked, when: "{{ data.rows > 0 }}"}
  - {from: checked, to: review}
  - {from: "*", to: draft}
""",
}


@pytest.fixture(scope="module")
def server(start_jupyter_server: Any) -> Iterator[Any]:
    with start_jupyter_server(FILES, TOKEN) as running:
        yield running


def test_create_transition_refuse_and_approve(server: Any) -> None:
    api = server.client
    assert api.get("/objects").json() == []
    assert api.get("/objects/ds/state").status_code == 404
    assert "POST objects/{id}/state" in api.get("/").json()["endpoints"]

    made = api.post(
        "/objects/ds/state",
        json={"to": "checked", "lifecycle": "dataset.yaml", "data": {"rows": 3}},
    )
    assert made.status_code == 200, made.text
    body = made.json()
    assert body["state"] == "checked" and body["data"] == {"rows": 3}
    assert (
        body["history"][-1]["outcome"] == "transitioned" and len(body["history"][-1]["runs"]) == 1
    )
    run = api.get(f"/runs/{body['history'][-1]['runs'][0]}").json()
    assert run["workflow"] == "check" and run["status"] == "succeeded"

    refused = api.post("/objects/ds/state", json={"to": "published"})
    assert refused.status_code == 409
    assert refused.json()["error"].startswith("ds: checked -> published refused: no transition")
    assert refused.json()["object"]["state"] == "checked"

    assert api.post("/objects/ds/state", json={"to": "nowhere"}).status_code == 400
    assert api.post("/objects/ds/state", json={"state": "x"}).status_code == 400
    assert api.post("/objects/ds/state", content=b"not json").status_code == 400
    assert api.post("/objects/nobody/state", json={"to": "draft"}).status_code == 404
    assert server.anonymous.get("/objects/ds/state").status_code == 403
    assert server.anonymous.post("/objects/ds/state", json={"to": "draft"}).status_code == 403

    assert api.post("/objects/ds/state", json={"to": "review"}).status_code == 200
    pending = api.get("/objects/ds/state").json()["pending"]
    answered = api.post(f"/runs/{pending['run_id']}/tasks/approve/respond", json={"approved": True})
    assert answered.status_code == 200, answered.text
    deadline = time.monotonic() + 60
    while api.get("/objects/ds/state").json()["state"] != "published":
        assert time.monotonic() < deadline, api.get("/objects/ds/state").json()
        time.sleep(0.2)
    assert api.get("/objects").json() == [
        {"object": "ds", "lifecycle": "dataset", "state": "published", "pending": None}
    ]


def test_a_false_guard_is_409_and_changes_nothing(server: Any) -> None:
    api = server.client
    refused = api.post(
        "/objects/zero/state",
        json={"to": "checked", "lifecycle": "dataset.yaml", "data": {"rows": 0}},
    )
    assert refused.status_code == 409
    assert "guard '{{ data.rows > 0 }}' is false" in refused.json()["error"]
    state = api.get("/objects/zero/state").json()
    assert state["state"] == "draft" and state["version"] == 0
    bad = api.post("/objects/zero/state", json={"to": "checked", "lifecycle": "../etc/passwd"})
    assert bad.status_code == 400
