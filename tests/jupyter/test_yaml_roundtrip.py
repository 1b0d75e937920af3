"""Graph edits keep the author's YAML: comments, key order, quoting, flow/block style.

Edits go through the widget as the browser sends them (a real comm object, the file written
by the kernel), one at a time; the file on disk is then read back with ``jw.load`` (valid) and
compared line by line with what the author wrote (untouched lines unchanged).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import comm
import pytest
import yaml
from comm.base_comm import BaseComm

import jupyter_workflows as jw
from jupyter_workflows.jupyter.live import widget_for_workflow
from jupyter_workflows.spec.edits import apply_edit
from jupyter_workflows.spec.yaml_roundtrip import round_trip

REPO = Path(__file__).resolve().parents[2]

AUTHOR = """\
# Nightly report.   (a comment the author wants to keep)
name: nightly
description: 'fetch, clean, report'
parameters:
  day: {type: string, default: "2024-01-01"}   # ISO date
tasks:
  # first, get the data
  fetch:
    action: core.echo
    input:
      url: "https://example.invalid/{{ parameters.day }}"
      retries: 3
    on_success: [clean]
  clean:
    action: core.noop   # placeholder
    on_success:
      - report
  report:
    action: core.echo
    input: {message: 'done'}
"""


class _Comm(BaseComm):
    def publish_msg(self, msg_type: str, data: Any = None, *args: Any, **kw: Any) -> None:
        pass


@pytest.fixture(autouse=True)
def _quiet_comm(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(comm, "create_comm", _Comm)


def _widget(path: Path) -> Any:
    workflow = jw.load(path)
    widget = widget_for_workflow(workflow)
    widget.enable_editing(workflow)
    return widget


def _kept(before: str, after: str, *, except_lines: tuple[str, ...] = ()) -> None:
    """Every line of ``before`` (bar the ones named) is in ``after``, in the same order."""
    remaining = after.splitlines()
    for line in before.splitlines():
        if any(marker in line for marker in except_lines):
            continue
        assert line in remaining, f"lost or changed: {line!r}\n---\n{after}"
        remaining = remaining[remaining.index(line) + 1 :]


def test_add_task_keeps_everything_else(tmp_path: Path) -> None:
    path = tmp_path / "nightly.yaml"
    path.write_text(AUTHOR)
    widget = _widget(path)
    widget.edit("add_task", name="notify", action="core.echo", after="report")
    text = path.read_text()
    _kept(AUTHOR, text)
    assert "  notify:\n    action: core.echo\n" in text  # block style, like its siblings
    assert "    on_success: notify\n" in text
    assert jw.load(path).compiled.tasks.keys() >= {"fetch", "clean", "report", "notify"}
    widget.close()


def test_connect_remove_and_rename_touch_only_their_lines(tmp_path: Path) -> None:
    path = tmp_path / "nightly.yaml"
    path.write_text(AUTHOR)
    widget = _widget(path)
    widget.edit("connect", source="fetch", target="report", kind="failure")
    text = path.read_text()
    _kept(AUTHOR, text)
    assert "    on_failure: report\n" in text

    widget.edit("remove_task", name="clean")
    text = path.read_text()
    _kept(AUTHOR, text, except_lines=("clean", "on_success", "- report", "placeholder"))
    assert "clean" not in yaml.safe_load(text)["tasks"]

    widget.edit(
        "set_task",
        name="report",
        rename="summary",
        yaml="action: core.echo\ninput: {message: 'done'}",
    )
    text = path.read_text()
    assert "  summary:\n    action: core.echo\n    input: {message: 'done'}\n" in text
    assert "# first, get the data" in text and "# ISO date" in text
    assert "description: 'fetch, clean, report'" in text
    assert 'url: "https://example.invalid/{{ parameters.day }}"' in text
    loaded = jw.load(path)
    assert set(loaded.compiled.tasks) == {"fetch", "summary"}
    widget.close()


def test_hello_yaml_comments_survive_an_edit(tmp_path: Path) -> None:
    """The repository's own example: its header comment and quoting stay."""
    original = (REPO / "notebooks" / "hello.yaml").read_text()
    path = tmp_path / "hello.yaml"
    path.write_text(original)
    (tmp_path / "hello_tasks.py").write_text((REPO / "notebooks" / "hello_tasks.py").read_text())
    widget = _widget(path)
    widget.edit("add_task", name="report", action="core.echo", after="gather")
    text = path.read_text()
    _kept(original, text)
    assert jw.load(path).compiled.tasks["gather"] is not None
    widget.close()


def test_cell_yaml_keeps_its_style() -> None:
    """The text written back into a %%workflow cell (``widget.yaml``) is merged the same way."""
    workflow = jw.load(AUTHOR, name="nightly")
    widget = widget_for_workflow(workflow)
    widget.enable_editing(workflow, target="cell", name="nightly")
    widget.edit("add_task", name="extra", action="core.noop")
    _kept(AUTHOR, widget.yaml)
    assert "  extra:\n    action: core.noop\n" in widget.yaml
    widget.close()


def test_round_trip_refuses_what_it_cannot_reproduce() -> None:
    """Whatever the merge gives must load to the edited data, else None (the plain dump)."""
    document = yaml.safe_load(AUTHOR)
    edited = apply_edit(document, {"op": "add_task", "name": "x", "action": "core.noop"})
    assert yaml.safe_load(round_trip(AUTHOR, edited) or "") == edited
    assert round_trip("- a list, not a workflow\n", edited) is None
    assert round_trip("tasks: [unclosed\n", edited) is None
