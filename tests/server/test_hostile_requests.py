"""Hostile requests and hostile files under the REST API (issue 11): 4xx with a JSON error, never
a 5xx; one bad file in the root folder is listed with its error and takes nothing else down.

A real Jupyter server with the extension (a subprocess on 127.0.0.1), and a hypothesis fuzz test
over every route that asserts no 5xx (bounded: a few hundred requests).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rest_helpers import Server, api_error

TOKEN = "hostile-rest-token"

LAUGHS = (
    "name: laughs\nl0: &l0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n"
    + "".join(f"l{i}: &l{i} [" + ", ".join([f"*l{i - 1}"] * 9) + "]\n" for i in range(1, 10))
    + "tasks: {t: {action: core.noop}}\n"
)

FILES = {
    "hello.yaml": "name: hello\ntasks:\n  greet: {action: core.echo, input: {x: 1}}\n",
    # spun GET workflows at 100% CPU for good: ~36 such requests took the whole API down
    "spin.yaml": (
        'name: spin\nschedule: "RRULE:FREQ=MINUTELY;INTERVAL=0"\ntasks: {t: {action: core.noop}}\n'
    ),
    "laughs.yaml": LAUGHS,
    "deep.yaml": "name: deep\nx: " + "[" * 50_000 + "]" * 50_000 + "\ntasks: {t: {}}\n",
    "tags.yaml": "name: tags\ntasks:\n  t: {action: core.noop, retry: !!int x}\n",
    "fold.yaml": (
        "name: fold\ntasks:\n  t:\n    action: core.echo\n"
        "    input: {x: \"{{ '%03000000000d' | format(1) }}\"}\n"
    ),
}


@pytest.fixture(scope="module")
def server(start_jupyter_server: Any) -> Iterator[Server]:
    with start_jupyter_server(FILES, TOKEN) as running:
        yield running


def test_bad_files_are_listed_with_their_error_and_nothing_else_breaks(server: Server) -> None:
    start = time.monotonic()
    for _ in range(40):  # 36 of these once left every thread pinned
        response = server.client.get(f"{server.url}/workflows", timeout=60)
        assert response.status_code == 200, response.text
    listed = {entry["path"]: entry for entry in response.json()}
    assert listed["hello.yaml"]["error"] is None
    assert "INTERVAL must be at least 1" in listed["spin.yaml"]["error"]
    assert "aliases expand" in listed["laughs.yaml"]["error"]
    assert "nests too deeply" in listed["deep.yaml"]["error"]
    assert "not a valid !!int" in listed["tags.yaml"]["error"]
    assert listed["fold.yaml"]["error"] is None  # validate never evaluates a template
    assert time.monotonic() - start < 120
    assert server.client.get(f"{server.url}/runs", timeout=60).status_code == 200
    run = server.client.post(f"{server.url}/workflows/hello/runs?wait=true", timeout=120)
    assert run.status_code in (200, 201), run.text
    assert run.json()["status"] == "succeeded"


def test_a_run_whose_template_is_too_large_fails_in_one_line(server: Server) -> None:
    run = server.client.post(f"{server.url}/workflows/fold/runs?wait=true", timeout=120)
    assert run.status_code in (200, 201), run.text
    body = run.json()
    assert body["status"] == "failed"
    assert "TemplateLimitError" in str(body.get("error")), body


@pytest.mark.parametrize("limit", ["inf", "nan", "1e400", "-1", "abc", "1.5", "-inf", "9" * 40])
def test_runs_limit_must_be_a_whole_number(server: Server, limit: str) -> None:
    response = server.client.get(f"{server.url}/runs", params={"limit": limit})
    assert response.status_code == 400, response.text
    assert "limit" in api_error(response)


def test_runs_limit_zero_is_no_runs(server: Server) -> None:
    server.client.post(f"{server.url}/workflows/hello/runs?wait=true", timeout=120)
    assert server.client.get(f"{server.url}/runs", params={"limit": "0"}).json() == []
    assert len(server.client.get(f"{server.url}/runs", params={"limit": "1"}).json()) == 1


@pytest.mark.parametrize("timeout", ["inf", "nan", "1e400"])
def test_timeout_must_be_finite(server: Server, timeout: str) -> None:
    response = server.client.post(
        f"{server.url}/workflows/hello/runs", params={"wait": "true", "timeout": timeout}
    )
    assert response.status_code == 400, response.text


@pytest.mark.parametrize(
    "path",
    ["/workflows/hello/runs", "/runs/nope/tasks/t/respond"],
)
@pytest.mark.parametrize(
    "body",
    ["[" * 100_000, "[" * 5_000 + "]" * 5_000, '{"a":' * 200 + "1" + "}" * 200],
    ids=["unclosed", "deep", "deep-object"],
)
def test_deeply_nested_bodies_are_400(server: Server, path: str, body: str) -> None:
    response = server.client.post(f"{server.url}{path}", content=body, timeout=60)
    assert response.status_code in (400, 404), response.text
    api_error(response)


# -- fuzz: every route, any method, odd segments, query arguments and bodies: never a 5xx ------

ROUTES = [
    "",
    "/workflows",
    "/workflows/{a}/runs",
    "/runs",
    "/runs/{a}",
    "/runs/{a}/trace",
    "/runs/{a}/graph",
    "/runs/{a}/pause",
    "/runs/{a}/resume",
    "/runs/{a}/cancel",
    "/runs/{a}/tasks/{b}/respond",
    "/schedules",
    "/{a}",
]
SEGMENTS = st.one_of(
    st.sampled_from(["hello", "spin", "laughs", "hello.yaml", "..", "%2e%2e", "t", "x" * 300]),
    st.text(
        alphabet=st.characters(min_codepoint=33, max_codepoint=0x2FF, exclude_characters="/?#%"),
        min_size=1,
        max_size=20,
    ),
)
QUERY_VALUES = st.one_of(
    st.sampled_from(["inf", "nan", "1e400", "-1", "0", "true", "false", "", "x", "9" * 30]),
    st.text(max_size=10),
)
BODIES = st.one_of(
    st.none(),
    st.sampled_from(
        ["[" * 20_000, "{", "null", "[]", "1e400", '"x"', '{"x": NaN}', "\xff\xfe", "{}" * 3]
    ),
    st.recursive(
        st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=8)),
        lambda inner: (
            st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
        ),
        max_leaves=10,
    ).map(lambda v: __import__("json").dumps(v)),
)


@settings(
    max_examples=250,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    route=st.sampled_from(ROUTES),
    a=SEGMENTS,
    b=SEGMENTS,
    method=st.sampled_from(["GET", "POST", "PUT", "DELETE"]),
    query=st.dictionaries(
        st.sampled_from(["limit", "timeout", "wait", "format", "status", "workflow", "no_cache"]),
        QUERY_VALUES,
        max_size=3,
    ),
    body=BODIES,
)
def test_fuzz_every_route_never_5xx(
    server: Server, route: str, a: str, b: str, method: str, query: dict[str, str], body: Any
) -> None:
    if route == "/workflows/{a}/runs" and a in ("hello", "hello.yaml") and method == "POST":
        query = {k: v for k, v in query.items() if k != "wait"}  # don't wait on runs
    path = route.format(a=quote(a, safe=""), b=quote(b, safe=""))
    content = None if body is None or method == "GET" else body.encode("utf-8", "surrogatepass")
    response = server.client.request(
        method, f"{server.url}{path}", params=query, content=content, timeout=60
    )
    assert response.status_code < 500, (method, path, query, body, response.text[:300])
