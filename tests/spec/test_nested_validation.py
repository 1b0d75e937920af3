"""``validate`` (and ``run``, before a run exists) checks nested workflows too (audit D1, D2).

A nested workflow that resolves is validated like its parent; its error keeps its own
``FILE:LINE:COL`` and says which task runs it. Nesting that comes back to a workflow is refused
at the task where the cycle starts.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

import jupyter_workflows as jw
from jupyter_workflows import definition, sources
from jupyter_workflows.exceptions import SpecError
from jupyter_workflows.testing import run_cli


@pytest.fixture(autouse=True)
def _own_workflow_registry(monkeypatch):
    monkeypatch.setattr(sources, "_WORKFLOWS", dict(sources._WORKFLOWS))


def _env() -> dict[str, str]:
    return {**os.environ, "JUPYTER_WORKFLOWS_EXECUTOR": "inline"}


def _write(folder: Path, name: str, text: str) -> Path:
    path = folder / f"{name}.yaml"
    path.write_text(text)
    return path


PARENT = "name: parent\ntasks:\n  a: {workflow: child, on_failure: h}\n  h: {action: core.noop}\n"


@pytest.mark.parametrize(
    ("child", "where", "says"),
    [
        (
            "name: child\ntasks:\n  t: {action: core.nope}\n",
            "3:15",
            "task 't': unknown action 'core.nope' (did you mean 'core.noop'?)",
        ),
        (
            "name: child\ntasks:\n  t: {action: 'nomod_audit_xyz:f'}\n",
            "3:15",
            "task 't': action 'nomod_audit_xyz:f': cannot import module 'nomod_audit_xyz'",
        ),
        (
            "name: child\ntasks:\n  t: {action: core.noop, on_success: zz}\n",
            "3:38",
            "task 't': on_success names unknown task 'zz'",
        ),
        (
            "name: child\ntasks:\n  a: {action: core.noop, on_success: b}\n"
            "  b: {action: core.noop, on_success: a}\n",
            "2:1",
            "the workflow has no start task",
        ),
        (
            "name: child\ntasks:\n  t: {action: core.noop, input: {x: '{{ nope( }}'}}\n",
            "3:37",
            "template error:",
        ),
        ("name: child\ntasks: {a: {\n", "3:1", "YAML syntax error:"),
    ],
    ids=["unknown_action", "missing_module", "unknown_target", "no_start", "template", "syntax"],
)
def test_child_errors_keep_the_childs_position(tmp_path, child, where, says) -> None:
    parent = _write(tmp_path, "parent", PARENT)
    _write(tmp_path, "child", child)
    with pytest.raises(SpecError) as info:
        jw.load(parent).validate()
    text = str(info.value)
    assert text.startswith(f"{tmp_path / 'child.yaml'}:{where}: "), text
    assert says in text
    assert text.endswith(f"(in nested workflow 'child', run by {parent}:3:17 task 'a')")
    assert "\n" not in text


def test_a_valid_child_still_validates(tmp_path) -> None:
    _write(tmp_path, "child", "name: child\ntasks:\n  t: {action: core.echo}\n")
    assert jw.load(_write(tmp_path, "parent", PARENT)).validate() == []


def test_action_naming_a_workflow_is_checked_too(tmp_path) -> None:
    _write(tmp_path, "child", "name: child\ntasks:\n  t: {action: core.nope}\n")
    parent = _write(tmp_path, "parent", "name: parent\ntasks:\n  a: {action: child}\n")
    with pytest.raises(SpecError, match=r"child\.yaml:3:15: task 't': unknown action") as info:
        jw.load(parent).validate()
    assert str(info.value).endswith(f"run by {parent}:3:15 task 'a')")


def test_deeper_nesting_names_every_hop(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    _write(tmp_path, "top", "name: top\ntasks:\n  y: {workflow: mid}\n")
    _write(tmp_path, "mid", "name: mid\ntasks:\n  x: {action: leaf}\n")
    _write(tmp_path, "leaf", "name: leaf\ntasks:\n  t: {action: core.nope}\n")
    with pytest.raises(SpecError) as info:
        jw.load("top.yaml").validate()
    assert str(info.value) == (
        "leaf.yaml:3:15: task 't': unknown action 'core.nope' (did you mean 'core.noop'?) "
        "(in nested workflow 'leaf', run by top.yaml:3:17 task 'y' -> mid.yaml:3:15 task 'x')"
    )


def test_registered_child_given_as_text(tmp_path) -> None:
    definition.register_workflow(jw.load("name: kid\ntasks:\n  t: {action: core.nope}\n"))
    with pytest.raises(SpecError) as info:
        jw.load("name: p\ntasks:\n  a: {workflow: kid}\n").validate()
    assert str(info.value) == (
        "<string>:3:17: line 3, column 15: task 't': unknown action 'core.nope' "
        "(did you mean 'core.noop'?) (in nested workflow 'kid', run by <string>:3:17 task 'a')"
    )


@pytest.mark.parametrize(
    ("files", "validate", "message"),
    [
        (
            {"mutual_a": "mutual_b", "mutual_b": "mutual_a"},
            "mutual_a",
            "mutual_a.yaml:3:17: task 'a': nested workflow cycle: mutual_a -> mutual_b -> mutual_a",
        ),
        (
            {"one": "two", "two": "three", "three": "one"},
            "two",
            "two.yaml:3:17: task 'a': nested workflow cycle: two -> three -> one -> two",
        ),
    ],
)
def test_nesting_cycles_are_refused_where_they_start(
    tmp_path, monkeypatch, files, validate, message
):
    monkeypatch.chdir(tmp_path)
    for name, child in files.items():
        _write(tmp_path, name, f"name: {name}\ntasks:\n  a: {{workflow: {child}}}\n")
    with pytest.raises(SpecError) as info:
        jw.load(f"{validate}.yaml").validate()
    assert str(info.value) == message


def test_a_cycle_below_is_reported_in_the_child(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    _write(tmp_path, "top", "name: top\ntasks:\n  a: {workflow: b}\n")
    _write(tmp_path, "b", "name: b\ntasks:\n  a: {workflow: c}\n")
    _write(tmp_path, "c", "name: c\ntasks:\n  a: {action: b}\n")
    with pytest.raises(SpecError) as info:
        jw.load("top.yaml").validate()
    assert str(info.value) == (
        "b.yaml:3:17: task 'a': nested workflow cycle: b -> c -> b "
        "(in nested workflow 'b', run by top.yaml:3:17 task 'a')"
    )


def test_a_cycle_through_registered_workflows(tmp_path) -> None:
    definition.register_workflow(jw.load("name: ra\ntasks:\n  a: {workflow: rb}\n"))
    definition.register_workflow(jw.load("name: rb\ntasks:\n  a: {action: ra}\n"))
    with pytest.raises(SpecError, match="nested workflow cycle: ra -> rb -> ra"):
        definition.get_workflow("ra").validate()


def test_the_same_child_twice_is_no_cycle(tmp_path) -> None:
    _write(tmp_path, "child", "name: child\ntasks:\n  t: {action: core.noop}\n")
    _write(tmp_path, "mid", "name: mid\ntasks:\n  m: {workflow: child}\n")
    parent = _write(
        tmp_path,
        "parent",
        "name: parent\ntasks:\n  a: {workflow: child, on_success: b}\n"
        "  b: {workflow: mid, on_success: c}\n  c: {action: child}\n",
    )
    assert jw.load(parent).validate() == []


def test_cli_validate_and_run_refuse_a_broken_child(tmp_path) -> None:
    _write(tmp_path, "p_bc", "name: p_bc\ntasks:\n  a: {workflow: brokenchild}\n")
    _write(tmp_path, "brokenchild", "name: brokenchild\ntasks:\n  t: {action: core.nope}\n")
    expected = (
        "brokenchild.yaml:3:15: task 't': unknown action 'core.nope' (did you mean 'core.noop'?) "
        "(in nested workflow 'brokenchild', run by p_bc.yaml:3:17 task 'a')\n"
    )
    for command in ("validate", "run"):
        done = run_cli(
            command, "p_bc.yaml", "--store", "s.db", env=_env(), cwd=tmp_path, timeout=60
        )
        assert (done.returncode, done.stdout, done.stderr) == (2, "", expected)
    assert not (tmp_path / "s.db").exists()


def test_cli_validate_and_run_refuse_mutual_nesting(tmp_path) -> None:
    _write(tmp_path, "mutual_a", "name: mutual_a\ntasks:\n  a: {workflow: mutual_b}\n")
    _write(tmp_path, "mutual_b", "name: mutual_b\ntasks:\n  a: {workflow: mutual_a}\n")
    expected = (
        "mutual_a.yaml:3:17: task 'a': nested workflow cycle: mutual_a -> mutual_b -> mutual_a\n"
    )
    for command in ("validate", "run"):
        done = run_cli(
            command, "mutual_a.yaml", "--store", "s.db", env=_env(), cwd=tmp_path, timeout=60
        )
        assert (done.returncode, done.stdout, done.stderr) == (2, "", expected)
    assert not (tmp_path / "s.db").exists()


def test_api_run_refuses_before_a_run_exists(tmp_path, engine) -> None:
    _write(tmp_path, "child", "name: child\ntasks:\n  t: {action: core.nope}\n")
    with pytest.raises(SpecError, match=r"unknown action 'core\.nope'"):
        jw.load(_write(tmp_path, "parent", PARENT)).run()
    assert jw.runs() == []
