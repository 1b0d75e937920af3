"""Editing a workflow in the graph widget: the kernel side of the edit protocol.

The browser sends ``{"type": "edit", "id", "op", ...}`` on the widget's comm; the kernel applies
it, loads and validates the result with the project's loader and validator, and answers
``edit_ok`` (traits updated, workflow re-registered, file written) or ``edit_error`` (one
positioned line, nothing changed anywhere). These tests deliver the messages through a real
``comm`` object (as in ``test_widget.py``) to real widgets made by the magics' own path
(:func:`~jupyter_workflows.jupyter.live.widget_for_workflow`), and read the files back with
``jw.load``.
"""

from __future__ import annotations

import json
import re
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import comm
import pytest
import yaml
from IPython.core.error import UsageError
from IPython.core.interactiveshell import InteractiveShell
from IPython.utils.capture import capture_output
from recording_comm import RecordingComm

import jupyter_workflows as jw
from jupyter_workflows.definition import get_workflow
from jupyter_workflows.engine import api
from jupyter_workflows.exceptions import SpecError
from jupyter_workflows.jupyter.live import widget_for_workflow
from jupyter_workflows.jupyter.widget import GraphWidget

SOURCE = """\
name: edit_demo
description: a workflow to edit
tasks:
  fetch:
    action: core.echo
    input: {url: "https://example.invalid"}
    on_success: store
  store:
    action: core.noop
"""


@pytest.fixture(autouse=True)
def _recording_comm(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(comm, "create_comm", RecordingComm)


@pytest.fixture
def wf_file(tmp_path: Path) -> Path:
    path = tmp_path / "edit_demo.yaml"
    path.write_text(SOURCE)
    return path


@pytest.fixture
def file_widget(wf_file: Path) -> Iterator[GraphWidget]:
    workflow = jw.load(wf_file)
    widget = widget_for_workflow(workflow)
    widget.enable_editing(workflow)
    yield widget
    widget.close()


def send(widget: GraphWidget, op: str, request_id: int = 1, **fields: Any) -> dict:
    """Send an edit as the browser does; return the kernel's answer."""
    channel = widget.comm
    assert isinstance(channel, RecordingComm)
    before = len(channel.custom_messages())
    channel.from_front_end(
        {"method": "custom", "content": {"type": "edit", "id": request_id, "op": op, **fields}}
    )
    answers = channel.custom_messages()[before:]
    assert len(answers) == 1, answers
    return answers[0]


def edges(widget: GraphWidget) -> set[tuple[str, str, str]]:
    return {(e["source"], e["target"], e["kind"]) for e in widget.graph["edges"]}


def nodes(widget: GraphWidget) -> list[str]:
    return [n["id"] for n in widget.graph["nodes"]]


# -- the protocol --------------------------------------------------------------------------------


def test_a_file_workflow_is_editable_and_targets_its_file(
    file_widget: GraphWidget, wf_file: Path
) -> None:
    assert file_widget.editable
    assert file_widget.edit_target == "file"
    assert file_widget.edit_path == str(wf_file)
    assert file_widget.yaml == SOURCE


def test_add_task_redraws_registers_and_writes_the_file(
    file_widget: GraphWidget, wf_file: Path
) -> None:
    answer = send(file_widget, "add_task", request_id=7, name="report", action="core.echo")
    assert answer["type"] == "edit_ok" and answer["id"] == 7
    assert answer["target"] == "file" and answer["path"] == str(wf_file)
    assert nodes(file_widget) == ["fetch", "store", "report"]
    assert answer["yaml"] == file_widget.yaml == wf_file.read_text()
    assert "report" in file_widget.spec["tasks"]
    # What was written loads back, with the user's order and shapes kept.
    again = jw.load(wf_file)
    assert list(again.spec.tasks) == ["fetch", "store", "report"]
    assert again.spec.description == "a workflow to edit"
    document = yaml.safe_load(wf_file.read_text())
    assert list(document) == ["name", "description", "tasks"]
    assert document["tasks"]["fetch"]["on_success"] == "store"
    # `%workflow run edit_demo` finds the edited version.
    registered = get_workflow("edit_demo")
    assert registered is file_widget.workflow
    assert registered is not None and "report" in registered.spec.tasks


def test_add_task_after_another_connects_it(file_widget: GraphWidget) -> None:
    send(file_widget, "add_task", name="notify", action="core.noop", after="store")
    assert ("store", "notify", "success") in edges(file_widget)


@pytest.mark.parametrize("kind", ["success", "failure", "complete"])
def test_connect_adds_a_transition_of_the_chosen_kind(file_widget: GraphWidget, kind: str) -> None:
    send(file_widget, "add_task", name="tidy", action="core.noop")
    answer = send(file_widget, "connect", source="fetch", target="tidy", kind=kind)
    assert answer["type"] == "edit_ok"
    assert ("fetch", "tidy", kind) in edges(file_widget)
    task = yaml.safe_load(file_widget.yaml)["tasks"]["fetch"]
    assert task[f"on_{kind}"] == (["store", "tidy"] if kind == "success" else "tidy")


def test_disconnect_and_remove_task(file_widget: GraphWidget, wf_file: Path) -> None:
    send(file_widget, "add_task", name="tidy", action="core.noop", after="store")
    assert send(file_widget, "disconnect", source="fetch", target="store", kind="success")[
        "type"
    ] == ("edit_ok")
    assert ("fetch", "store", "success") not in edges(file_widget)
    assert "on_success" not in yaml.safe_load(wf_file.read_text())["tasks"]["fetch"]
    # Removing a task removes the transitions into it too: the result stays valid.
    assert send(file_widget, "remove_task", name="tidy")["type"] == "edit_ok"
    assert nodes(file_widget) == ["fetch", "store"]
    assert edges(file_widget) == set()
    jw.load(wf_file).validate()


def test_set_task_edits_fields_and_renames(file_widget: GraphWidget, wf_file: Path) -> None:
    file_widget.selected = "store"
    fields = "action: core.sleep\ninput: {seconds: 0}\nretry: 2\ntimeout: 30\n"
    answer = send(file_widget, "set_task", name="store", yaml=fields, rename="rest")
    assert answer["type"] == "edit_ok"
    assert nodes(file_widget) == ["fetch", "rest"]
    assert ("fetch", "rest", "success") in edges(file_widget)  # the reference followed
    assert file_widget.selected == "rest"
    task = jw.load(wf_file).spec.tasks["rest"]
    assert task.action == "core.sleep" and task.timeout == 30 and task.retry is not None


def test_whole_document_replace(file_widget: GraphWidget, wf_file: Path) -> None:
    text = SOURCE.replace("core.noop", "core.echo")
    assert send(file_widget, "replace", yaml=text)["type"] == "edit_ok"
    assert wf_file.read_text() == text
    assert jw.load(wf_file).spec.tasks["store"].action == "core.echo"


@pytest.mark.parametrize(
    ("op", "fields", "expected"),
    [
        # An unknown action is refused where it would have been written.
        (
            "add_task",
            {"name": "x", "action": "no_such_action_anywhere"},
            r"edit_demo\.yaml:\d+:\d+: .*no_such_action_anywhere",
        ),
        # A misspelled field, positioned in the document.
        ("set_task", {"name": "store", "yaml": "actoin: core.noop"}, r"edit_demo\.yaml:\d+:\d+: "),
        # Bad YAML typed into the task editor: positioned in what was typed.
        ("set_task", {"name": "store", "yaml": "action: [core.noop"}, r"^<task store>:\d+:\d+: "),
        ("add_task", {"name": "store", "action": "core.noop"}, "there is a task named 'store'"),
        ("add_task", {"name": "9lives", "action": "core.noop"}, "not a task name"),
        ("connect", {"source": "fetch", "target": "nope"}, "there is no task 'nope'"),
        ("connect", {"source": "fetch", "target": "store", "kind": "needs"}, "success, failure"),
        (
            "replace",
            {"yaml": "name: edit_demo\ntasks:\n  a: {action: core.noop, on_success: b}\n"},
            "",
        ),
        ("frobnicate", {}, "unknown edit 'frobnicate'"),
    ],
)
def test_invalid_edits_are_refused_and_change_nothing(
    file_widget: GraphWidget, wf_file: Path, op: str, fields: dict, expected: str
) -> None:
    graph, text, spec = file_widget.graph, file_widget.yaml, file_widget.spec
    registered = get_workflow("edit_demo")
    answer = send(file_widget, op, request_id=3, **fields)
    assert answer["type"] == "edit_error" and answer["id"] == 3
    assert "\n" not in answer["error"]
    assert re.search(expected, answer["error"]), answer["error"]
    assert file_widget.graph == graph and file_widget.yaml == text and file_widget.spec == spec
    assert wf_file.read_text() == SOURCE
    assert get_workflow("edit_demo") is registered


def test_a_file_changed_on_disk_is_not_overwritten(file_widget: GraphWidget, wf_file: Path) -> None:
    changed = SOURCE + "  extra: {action: core.noop}\n"
    wf_file.write_text(changed)
    answer = send(file_widget, "add_task", name="x", action="core.noop")
    assert answer["type"] == "edit_error"
    assert "changed on disk" in answer["error"]
    assert wf_file.read_text() == changed


def test_the_write_is_atomic_and_leaves_no_temporary_file(
    file_widget: GraphWidget, wf_file: Path
) -> None:
    send(file_widget, "add_task", name="x", action="core.noop")
    assert sorted(p.name for p in wf_file.parent.iterdir()) == [wf_file.name]


def test_a_json_file_stays_json(tmp_path: Path) -> None:
    path = tmp_path / "flow.json"
    path.write_text('{"name": "flow_json", "tasks": {"a": {"action": "core.noop"}}}')
    workflow = jw.load(path)
    widget = widget_for_workflow(workflow)
    widget.enable_editing(workflow)
    widget.edit("add_task", name="b", action="core.noop", after="a")
    assert json.loads(path.read_text())["tasks"]["a"]["on_success"] == "b"
    assert list(jw.load(path).spec.tasks) == ["a", "b"]


def test_no_edits_while_a_run_is_live(file_widget: GraphWidget, wf_file: Path) -> None:
    file_widget.set_run(run_id="r1", status="running")
    answer = send(file_widget, "add_task", name="x", action="core.noop")
    assert answer["type"] == "edit_error" and "once the run has ended" in answer["error"]
    file_widget.set_run(status="succeeded")
    file_widget.update_task("fetch", status="succeeded")
    assert send(file_widget, "add_task", name="x", action="core.noop")["type"] == "edit_ok"
    # The statuses drawn were of the old definition.
    assert file_widget.status == {} and file_widget.run["run_id"] is None


def test_a_widget_without_editing_refuses(tmp_path: Path) -> None:
    widget = GraphWidget({"name": "x", "nodes": [], "edges": []})
    answer = send(widget, "add_task", name="x", action="core.noop")
    assert answer["type"] == "edit_error" and "not editable" in answer["error"]


def test_a_python_workflow_targets_nothing_but_keeps_its_yaml() -> None:
    workflow = jw.load("name: py_flow\ntasks:\n  a: {action: core.noop}\n")
    widget = widget_for_workflow(workflow)
    widget.enable_editing(workflow)
    assert widget.edit_target == "none" and widget.edit_path == ""
    answer = send(widget, "add_task", name="b", action="core.noop", after="a")
    assert answer["type"] == "edit_ok" and answer["target"] == "none" and answer["path"] is None
    assert jw.load(widget.yaml).spec.tasks["a"].on_success == ["b"]


# -- the magics ----------------------------------------------------------------------------------


def _mime_views(cap: Any) -> list[str]:
    view = "application/vnd.jupyter.widget-view+json"
    return [out.data[view]["model_id"] for out in cap.outputs if view in out.data]


@pytest.fixture
def shown(monkeypatch: pytest.MonkeyPatch) -> list[GraphWidget]:
    """The widgets the magics make (they make them with ``live.widget_for_workflow``)."""
    from jupyter_workflows.jupyter import live

    made: list[GraphWidget] = []
    original = live.widget_for_workflow

    def recording(*args: Any, **kwargs: Any) -> GraphWidget:
        made.append(original(*args, **kwargs))
        return made[-1]

    monkeypatch.setattr(live, "widget_for_workflow", recording)
    return made


def test_a_workflow_cell_widget_targets_its_cell(
    ip: InteractiveShell, shown: list[GraphWidget]
) -> None:
    body = "tasks:\n  a: {action: core.noop}\n"
    with capture_output() as cap:
        ip.run_cell_magic("workflow", "cell_flow", body)
    [widget] = shown
    assert len(_mime_views(cap)) == 1
    assert widget.edit_target == "cell" and widget.yaml == body
    answer = send(widget, "add_task", name="b", action="core.noop", after="a")
    assert answer["type"] == "edit_ok" and answer["target"] == "cell"
    # The YAML for under the magic line: it may leave the name to the line, and the magic
    # reads it back to the same workflow.
    with capture_output():
        ip.run_cell_magic("workflow", "cell_flow", answer["yaml"])
    again = get_workflow("cell_flow")
    assert again is not None and again.spec.tasks["a"].on_success == ["b"]
    # A name other than the line's is refused, as the magic would refuse it.
    refused = send(widget, "replace", yaml="name: other\ntasks:\n  a: {action: core.noop}\n")
    assert refused["type"] == "edit_error" and "magic line names" in refused["error"]


def test_edit_command_shows_an_editable_graph_of_a_file(
    ip: InteractiveShell, wf_file: Path, shown: list[GraphWidget]
) -> None:
    with capture_output() as cap:
        assert ip.run_line_magic("workflow", f"edit {wf_file}") is None
    [widget] = shown
    assert _mime_views(cap) == [widget.model_id]
    assert widget.edit_target == "file"
    widget.edit("add_task", name="more", action="core.noop")
    assert "more" in jw.load(wf_file).spec.tasks
    assert "more" in get_workflow("edit_demo").spec.tasks  # type: ignore[union-attr]


def test_edit_via_python_raises_a_spec_error(file_widget: GraphWidget) -> None:
    with pytest.raises(SpecError, match=r"edit_demo\.yaml:\d+:\d+: "):
        file_widget.edit("set_task", name="store", yaml="action: core.noop\nbogus: 1")


def test_failed_cluster_keeps_the_previous_configuration(ip: InteractiveShell) -> None:
    dask = pytest.importorskip("dask")
    pytest.importorskip("distributed")
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    before = dict(api._config)
    with (
        dask.config.set({"distributed.comm.timeouts.connect": "2s"}),
        pytest.raises(UsageError, match="kept the previous configuration"),
    ):
        ip.run_line_magic("workflow", f"cluster tcp://127.0.0.1:{port}")
    assert api._config == before
    assert type(api.get_orchestrator().executor).__name__ == "InlineExecutor"
    # And runs still go where they went.
    run = jw.load("name: after_cluster\ntasks:\n  a: {action: core.noop}\n").run()
    assert run.status == "succeeded"


def test_an_edge_the_editor_cannot_remove_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "grouped.yaml"
    path.write_text(
        "name: grouped\ntasks:\n  a: {action: core.noop, group: 1}\n  b: {action: core.noop, group: 2}\n"
    )
    workflow = jw.load(path)
    widget = widget_for_workflow(workflow)
    widget.enable_editing(workflow)
    [edge] = widget.graph["edges"]
    answer = send(
        widget, "disconnect", source=edge["source"], target=edge["target"], kind=edge["kind"]
    )
    assert answer["type"] == "edit_error" and "does not change" in answer["error"]
    assert "group: 2" in path.read_text()
