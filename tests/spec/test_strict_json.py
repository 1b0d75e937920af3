"""A ``.json`` file is strict JSON: what ``json.loads`` refuses is a positioned syntax error."""

from __future__ import annotations

import json
import os

import pytest

import jupyter_workflows as jw
from jupyter_workflows.exceptions import SpecError
from jupyter_workflows.testing import run_cli

GOOD = {"name": "x", "tasks": {"a": {"action": "core.echo", "input": {"v": 1e-5, "s": "NaN"}}}}


@pytest.mark.parametrize(
    ("text", "where", "says"),
    [
        ('{"name": "x", "tasks": {"a": {"action": "core.noop",}}}', (1, 53), "property name"),
        ("{'name': 'x', 'tasks': {'a': {'action': 'core.noop'}}}", (1, 2), "property name"),
        ("{name: x, tasks: {a: {action: core.noop}}}", (1, 2), "property name"),
        (
            '{"name": "x", "tasks": {"a": {"action": "core.echo", "input": {"v": .inf}}}}',
            (1, 69),
            "Expecting value",
        ),
        (
            '{"name": "x",\n "tasks": {"a": {"input": {"v": NaN}}}}',
            (2, 33),
            "NaN is not a JSON value",
        ),
        ('{"name": "x", "tasks": {"a": {"input": {"v": -Infinity}}}}', (1, 46), "-Infinity is not"),
        ("name: x\ntasks:\n  a: {action: core.noop}\n", (1, 1), "write YAML in a .yaml file"),
    ],
)
def test_non_json_is_refused_with_a_position(tmp_path, text, where, says) -> None:
    path = tmp_path / "wf.json"
    path.write_text(text)
    with pytest.raises(SpecError) as info:
        jw.load(path)
    assert info.value.message.startswith("JSON syntax error: ")
    assert says in info.value.message
    assert (info.value.line, info.value.col) == where
    assert "\n" not in str(info.value)


def test_json_file_still_loads_and_keeps_positions(tmp_path) -> None:
    path = tmp_path / "wf.json"
    path.write_text("\ufeff" + json.dumps(GOOD, indent=2).replace("  ", "\t"))
    wf = jw.load(path)
    assert wf.spec.tasks["a"].input == {"v": 1e-5, "s": "NaN"}
    assert wf.source_map.values[("tasks", "a", "action")][0] == 5


def test_duplicate_json_keys_stay_refused(tmp_path) -> None:
    path = tmp_path / "wf.json"
    path.write_text('{"name": "x", "name": "y", "tasks": {"a": {}}}')
    with pytest.raises(SpecError, match="duplicate key 'name'"):
        jw.load(path)


def test_yaml_text_given_directly_is_still_yaml() -> None:
    assert jw.load("{name: x, tasks: {a: {action: core.noop,}}}").name == "x"


def test_cli_validate_refuses_a_trailing_comma(tmp_path) -> None:
    (tmp_path / "wf.json").write_text('{"name": "x",\n "tasks": {"a": {"action": "core.noop"},}}')
    env = {**os.environ, "JUPYTER_WORKFLOWS_EXECUTOR": "inline"}
    done = run_cli("validate", "wf.json", env=env, cwd=tmp_path)
    assert done.returncode == 2
    assert done.stderr == (
        "wf.json:2:41: JSON syntax error: Expecting property name enclosed in double quotes\n"
    )
    assert not (tmp_path / ".jupyter_workflows").exists()
