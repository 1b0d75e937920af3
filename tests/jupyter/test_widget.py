"""The live graph widget: its bundle, its traits, its messages and its static picture.

Messages go through a real ``comm`` object: ``comm.create_comm`` is the hook
kernels themselves install (ipykernel does), so replacing it with a comm that
records what it publishes exercises the same path as in a notebook, from
``GraphWidget`` through ipywidgets' message handling down to the wire.
"""

from __future__ import annotations

import functools
import http.server
import json
import pathlib
import re
import shutil
import subprocess
import threading
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from typing import Any

import comm
import pytest
from recording_comm import RecordingComm

from jupyter_workflows.jupyter.picture import graph_svg
from jupyter_workflows.jupyter.widget import MAX_LOG_LINES, GraphWidget
from jupyter_workflows.jupyter.wire import STATUS_COLORS, TASK_STATES

STATIC = pathlib.Path(__file__).parents[2] / "jupyter_workflows" / "static"
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"


def node(id: str, kind: str = "action", action: str | None = "core.noop", **extra: Any) -> dict:
    return {
        "id": id,
        "label": id,
        "kind": kind,
        "action": action,
        "with_items": False,
        "group": None,
    } | extra


def edge(source: str, target: str, kind: str = "success", label: str | None = None) -> dict:
    return {"source": source, "target": target, "kind": kind, "label": label}


GRAPH = {
    "name": "deploy",
    "nodes": [
        node("create", action="deploy_actions:create"),
        node("deploy_regions", action="cloud_deploy", with_items=True),
        node("checks", kind="parallel", action=None),
        node("check_db", action="db_health", group="checks"),
        node("check_cache", action="cache_ping", group="checks"),
        node("decide", kind="routing", action=None),
        node("approve", action="core.inquiry"),
        node("finish", kind="workflow", action="notify"),
        node("cleanup"),
    ],
    "edges": [
        edge("create", "deploy_regions"),
        edge("create", "cleanup", "failure"),
        edge("deploy_regions", "checks"),
        edge("checks", "decide"),
        edge("decide", "approve", "decision", "production"),
        edge("decide", "finish", "decision", "default"),
        edge("approve", "finish", "when", "approved"),
        edge("approve", "approve", "when", "again"),
        edge("cleanup", "create", "complete"),
        edge("check_db", "check_cache", "needs"),
    ],
}


@pytest.fixture
def widget(monkeypatch: pytest.MonkeyPatch) -> Iterator[GraphWidget]:
    monkeypatch.setattr(comm, "create_comm", RecordingComm)
    w = GraphWidget(GRAPH, spec={"name": "deploy"})
    assert isinstance(w.comm, RecordingComm)
    yield w
    w.close()


# -- the bundle --------------------------------------------------------------------


def test_bundle_is_an_es_module_exporting_render() -> None:
    js = STATIC / "widget.js"
    assert js.is_file(), "build labextension/ (npm run build) to create static/widget.js"
    text = js.read_text(encoding="utf-8")
    assert re.search(r"export\s*\{[^}]*\bas default\b[^}]*\}", text), "no `export default`"
    node_exe = shutil.which("node")
    if node_exe is None:
        pytest.skip("node is not installed; the export was only checked textually")
    # Importing evaluates the whole bundle (React, React Flow, elkjs): it must
    # load without a DOM and export { render }.
    script = (
        f"const m = await import({json.dumps(js.as_uri())}); console.log(typeof m.default?.render);"
    )
    out = subprocess.run(
        [node_exe, "--input-type=module", "-e", script],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert out.stdout.strip() == "function"


def test_css_bundle_holds_react_flow_and_widget_styles() -> None:
    css = (STATIC / "widget.css").read_text(encoding="utf-8")
    assert ".react-flow" in css
    assert ".jw-root" in css
    assert "height: 420px" in css or "height:420px" in css


def test_widget_ships_a_small_stub_and_the_bundle_on_request(widget: GraphWidget) -> None:
    """Each widget carries a stub of a few hundred bytes, not the 2 MB front end.

    The stub uses the JupyterLab extension's copy of the front end when it has the same
    build id, else asks the kernel once for the bundle: the answer is the built files.
    """
    build_id = (STATIC / "build_id.txt").read_text(encoding="utf-8").strip()
    assert build_id
    assert len(widget._esm) < 4000
    assert json.dumps(build_id) in widget._esm
    assert "export default" in widget._esm
    assert widget._css == ""
    sent = widget.comm
    assert isinstance(sent, RecordingComm)
    sent.from_front_end({"method": "custom", "content": {"type": "bundle"}})
    (answer,) = [m for m in sent.custom_messages() if m.get("type") == "bundle"]
    assert answer["js"] == (STATIC / "widget.js").read_text(encoding="utf-8")
    assert answer["css"] == (STATIC / "widget.css").read_text(encoding="utf-8")


def test_typescript_wire_types_mirror_python() -> None:
    types_ts = pathlib.Path(__file__).parents[2] / "labextension" / "src" / "types.ts"
    if not types_ts.is_file():
        pytest.skip("labextension sources are not part of this install")
    text = types_ts.read_text(encoding="utf-8")
    for state in TASK_STATES:
        assert f'"{state}"' in text
    for state, color in STATUS_COLORS.items():
        assert f"{state}: {json.dumps(color)}" in text, state


# -- traits ------------------------------------------------------------------------


def test_initial_state(widget: GraphWidget) -> None:
    assert widget.graph == GRAPH
    assert widget.spec == {"name": "deploy"}
    assert widget.status == {}
    assert widget.run == {"run_id": None, "status": None, "error": None}
    assert widget.inquiries == []
    assert widget.dashboard_link == ""
    assert widget.selected == ""


def test_update_task_merges_and_syncs(widget: GraphWidget) -> None:
    sent = widget.comm
    assert isinstance(sent, RecordingComm)
    widget.update_task("create", status="running", attempts=1, started_at=10.0)
    widget.update_task("create", status="succeeded", ended_at=12.5, result="{'id': 7}")
    entry = widget.status["create"]
    assert entry["status"] == "succeeded"
    assert entry["attempts"] == 1
    assert entry["started_at"] == 10.0
    assert entry["ended_at"] == 12.5
    assert entry["result"] == "{'id': 7}"
    assert entry["logs"] == []
    assert entry["done"] is None
    # Each update reached the wire as a whole new `status` value.
    updates = [state["status"] for state in sent.state_updates() if "status" in state]
    assert [u["create"]["status"] for u in updates] == ["running", "succeeded"]


def test_update_task_validates_fields(widget: GraphWidget) -> None:
    with pytest.raises(TypeError, match="colour"):
        widget.update_task("create", colour="red")
    with pytest.raises(ValueError, match="exploded"):
        widget.update_task("create", status="exploded")
    assert widget.status == {}


def test_update_task_keeps_the_wire_json(widget: GraphWidget) -> None:
    class Thing:
        def __repr__(self) -> str:
            return "Thing()"

    widget.update_task(
        "create",
        inputs={"when": Thing(), "n": 1},
        result={"big": list(range(1000))},
        logs=[f"line {i}" for i in range(MAX_LOG_LINES + 5)],
    )
    entry = widget.status["create"]
    assert entry["inputs"] == {"when": "Thing()", "n": 1}
    assert isinstance(entry["result"], str) and entry["result"].startswith("{'big': [0, 1,")
    assert len(entry["result"]) < 300
    assert len(entry["logs"]) == MAX_LOG_LINES
    assert entry["logs"][-1] == f"line {MAX_LOG_LINES + 4}"
    json.dumps(widget.status)


def test_progress_fields(widget: GraphWidget) -> None:
    widget.update_task("deploy_regions", status="running", done=2, total=5)
    assert widget.status["deploy_regions"]["done"] == 2
    assert widget.status["deploy_regions"]["total"] == 5


def test_set_run_and_inquiries(widget: GraphWidget) -> None:
    widget.set_run(run_id="r1", status="running")
    widget.set_run(status="waiting")
    assert widget.run == {"run_id": "r1", "status": "waiting", "error": None}
    with pytest.raises(ValueError, match="done"):
        widget.set_run(status="done")
    with pytest.raises(TypeError):
        widget.set_run(colour="red")

    widget.set_inquiries(
        [{"task": "approve", "prompt": "Ship it?", "schema": {"type": "object"}}, {"task": "other"}]
    )
    assert widget.inquiries == [
        {"task": "approve", "prompt": "Ship it?", "schema": {"type": "object"}},
        {"task": "other", "prompt": "", "schema": {}},
    ]
    with pytest.raises(ValueError, match="task"):
        widget.set_inquiries([{"prompt": "who?"}])


def test_selected_syncs_from_the_front_end(widget: GraphWidget) -> None:
    assert isinstance(widget.comm, RecordingComm)
    widget.comm.from_front_end(
        {"method": "update", "state": {"selected": "check_db"}, "buffer_paths": []}
    )
    assert widget.selected == "check_db"


# -- answers to inquiries ---------------------------------------------------------------


def test_respond_message_calls_the_callback_and_acknowledges(widget: GraphWidget) -> None:
    assert isinstance(widget.comm, RecordingComm)
    calls: list[tuple[str, Any]] = []
    widget.on_respond(lambda task, data: calls.append((task, data)))
    widget.comm.from_front_end(
        {
            "method": "custom",
            "content": {"type": "respond", "task": "approve", "data": {"approved": True}},
        }
    )
    assert calls == [("approve", {"approved": True})]
    assert widget.comm.custom_messages() == [{"type": "respond_ok", "task": "approve"}]


def test_an_error_from_the_callback_goes_back_to_the_form(widget: GraphWidget) -> None:
    assert isinstance(widget.comm, RecordingComm)

    def refuse(task: str, data: Any) -> None:
        raise ValueError(f"{task}: 'approved' is a required property")

    widget.on_respond(refuse)
    widget._handle_custom_msg({"type": "respond", "task": "approve", "data": {}}, [])
    assert widget.comm.custom_messages() == [
        {
            "type": "respond_error",
            "task": "approve",
            "error": "approve: 'approved' is a required property",
        }
    ]


def test_respond_without_a_callback_says_so(widget: GraphWidget) -> None:
    assert isinstance(widget.comm, RecordingComm)
    widget._handle_custom_msg({"type": "respond", "task": "approve", "data": {}}, [])
    [message] = widget.comm.custom_messages()
    assert message["type"] == "respond_error"
    assert "not connected to a run" in message["error"]


def test_on_respond_remove_and_foreign_messages(widget: GraphWidget) -> None:
    assert isinstance(widget.comm, RecordingComm)
    calls: list[str] = []

    def callback(task: str, data: Any) -> None:
        calls.append(task)

    assert widget.on_respond(callback) is callback
    widget._handle_custom_msg({"kind": "anywidget-command", "name": "x"}, [])
    widget._handle_custom_msg("not a dict", [])
    assert calls == []
    assert widget.comm.custom_messages() == []
    widget.on_respond(callback, remove=True)
    widget._handle_custom_msg({"type": "respond", "task": "approve", "data": 1}, [])
    assert calls == []


# -- the static picture ------------------------------------------------------------------


def test_repr_mimebundle_has_the_widget_view_an_svg_and_text(widget: GraphWidget) -> None:
    widget.update_task("create", status="succeeded")
    widget.update_task("deploy_regions", status="running", done=3, total=5)
    widget.update_task("check_db", status="failed")
    widget.set_run(run_id="r-42", status="running")
    data, _metadata = widget._repr_mimebundle_()
    assert data[WIDGET_VIEW]["model_id"] == widget.model_id
    svg = data["text/html"]
    assert "<svg" in svg
    for n in GRAPH["nodes"]:
        assert f">{n['label']}<" in svg, n["label"]
    assert STATUS_COLORS["succeeded"] in svg
    assert STATUS_COLORS["failed"] in svg
    assert STATUS_COLORS["none"] in svg  # tasks not started are grey
    assert "running 3/5" in svg
    assert "r-42" in svg
    assert data["text/plain"].startswith(
        "GraphWidget: workflow 'deploy', 9 tasks; run r-42 running"
    )
    assert "1 succeeded" in data["text/plain"]


def test_svg_is_well_formed_and_escapes_labels() -> None:
    graph = {
        "name": "a<b>&c",
        "nodes": [node("x", label='<script>alert("x")</script>'), node("y", action="m:f")],
        "edges": [edge("x", "y", "when", "{{ a < b }}")],
    }
    svg = graph_svg(graph, {"x": {"status": "running"}})
    assert "<script>" not in svg
    root = ET.fromstring(svg)
    assert root.tag == "{http://www.w3.org/2000/svg}svg"
    texts = ["".join(t.itertext()) for t in root.iter("{http://www.w3.org/2000/svg}text")]
    assert '<script>alert("x")</script>' in texts
    assert "{{ a < b }}" in texts


@pytest.mark.parametrize(
    "graph",
    [
        {"name": "empty", "nodes": [], "edges": []},
        {
            "name": "loop",
            "nodes": [node("a"), node("b")],
            "edges": [edge("a", "b"), edge("b", "a"), edge("b", "b")],
        },
        {
            "name": "dangling",
            "nodes": [node("a")],
            "edges": [edge("a", "ghost"), edge("ghost", "a")],
        },
        {
            "name": "groups",
            "nodes": [node("p", kind="parallel", group="p"), node("c", group="p")],
            "edges": [],
        },
    ],
    ids=lambda g: g["name"],
)
def test_svg_handles_odd_graphs(graph: dict) -> None:
    svg = graph_svg(graph, {})
    ET.fromstring(svg)
    for n in graph["nodes"]:
        assert f">{n['label']}<" in svg


def test_svg_lays_out_rows_top_to_bottom() -> None:
    graph = {
        "name": "chain",
        "nodes": [node("c"), node("b"), node("a")],
        "edges": [edge("a", "b"), edge("b", "c")],
    }
    root = ET.fromstring(graph_svg(graph))
    ys = {}
    for group in root.iter("{http://www.w3.org/2000/svg}g"):
        rect = group.find("{http://www.w3.org/2000/svg}rect")
        assert rect is not None
        ys[group.get("data-task")] = float(rect.get("y", "0"))
    assert ys["a"] < ys["b"] < ys["c"]


# -- the bundle in a real browser --------------------------------------------------------

_PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><link rel="stylesheet" href="widget.css"></head>
<body style="margin:0;padding:8px;width:1000px"><div id="host"></div>
<script type="module">
// Stands in for the widget manager's model: the anywidget model API, nothing else.
class Model {
  constructor(state) { this.state = state; this.handlers = {}; this.sent = []; }
  get(k) { return this.state[k]; }
  set(k, v) { this.state[k] = v; this.emit("change:" + k); }
  save_changes() {}
  send(msg) { this.sent.push(msg); }
  on(name, cb) { (this.handlers[name] ||= []).push(cb); }
  off(name, cb) { this.handlers[name] = (this.handlers[name] || []).filter((h) => cb && h !== cb); }
  emit(name, ...args) { for (const h of this.handlers[name] || []) h(...args); }
}
window.model = new Model(await (await fetch("state.json")).json());
const widget = (await import("./widget.js")).default;
await widget.render({ model: window.model, el: document.getElementById("host") });
</script></body></html>
"""


def _chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        if found := shutil.which(name):
            return found
    return None


@pytest.mark.browser
def test_bundle_renders_nodes_panel_and_inquiry_form(tmp_path: pathlib.Path) -> None:
    """The built bundle in Chromium, without JupyterLab: a page plays the widget manager.

    Checks the DOM hooks (``data-testid``, ``data-status``) that the
    JupyterLab browser tests rely on, and both directions of the wire.
    """
    sync_api = pytest.importorskip("playwright.sync_api")
    executable = _chromium()
    w = GraphWidget(GRAPH)
    w.update_task(
        "create", status="succeeded", result="{'id': 7}", inputs={"app": "shop"}, logs=["made it"]
    )
    w.update_task("deploy_regions", status="running", done=1, total=2)
    w.set_inquiries(
        [
            {
                "task": "approve",
                "prompt": "Ship it?",
                "schema": {"type": "object", "properties": {"approved": {"type": "boolean"}}},
            }
        ]
    )
    state = {
        k: getattr(w, k)
        for k in ("graph", "spec", "status", "run", "inquiries", "dashboard_link", "selected")
    }
    w.close()
    (tmp_path / "state.json").write_text(json.dumps(state))
    (tmp_path / "index.html").write_text(_PAGE)
    for name in ("widget.js", "widget.css"):
        shutil.copy(STATIC / name, tmp_path / name)

    class Handler(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(Handler, directory=str(tmp_path))
    )
    threading.Thread(target=server.serve_forever, daemon=True).start()
    errors: list[str] = []
    try:
        with sync_api.sync_playwright() as p:
            try:
                browser = p.chromium.launch(executable_path=executable, args=["--no-sandbox"])
            except Exception as exc:  # no browser at all on this machine
                pytest.skip(f"no Chromium to run: {exc}")
            page = browser.new_page(viewport={"width": 1040, "height": 600})
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            page.goto(f"http://127.0.0.1:{server.server_port}/index.html")
            page.wait_for_selector('[data-testid="jw-node-create"]', timeout=30_000)
            for n in GRAPH["nodes"]:
                assert page.locator(f'[data-testid="jw-node-{n["id"]}"]').count() == 1
            assert (
                page.get_attribute('[data-testid="jw-node-create"]', "data-status") == "succeeded"
            )
            assert page.get_attribute('[data-testid="jw-node-cleanup"]', "data-status") == "none"
            assert "1/2" in page.inner_text('[data-testid="jw-node-deploy_regions"]')

            # A status pushed from Python repaints the node.
            page.evaluate(
                "model.set('status', {...model.get('status'), cleanup: {status: 'failed'}})"
            )
            page.wait_for_selector('[data-testid="jw-node-cleanup"][data-status="failed"]')

            page.click('[data-testid="jw-node-create"]')
            page.wait_for_selector('[data-testid="jw-panel"]')
            assert page.evaluate("model.get('selected')") == "create"
            assert page.inner_text('[data-testid="jw-result"]') == "{'id': 7}"

            page.check('[data-testid="jw-inquiry-approve"] input[type="checkbox"]')
            page.click('[data-testid="jw-inquiry-submit-approve"]')
            assert page.evaluate("model.sent") == [
                {"type": "respond", "task": "approve", "data": {"approved": True}}
            ]
            page.evaluate(
                "model.emit('msg:custom', {type: 'respond_error', task: 'approve', error: 'nope'}, [])"
            )
            assert page.inner_text('[data-testid="jw-inquiry-error-approve"]') == "nope"
            browser.close()
    finally:
        server.shutdown()
    assert errors == []
