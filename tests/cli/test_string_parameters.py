"""``-p KEY=VALUE`` for a parameter declared ``type: string`` keeps the text as typed."""

from __future__ import annotations

import json
import os
import textwrap

import pytest

import jupyter_workflows as jw
from jupyter_workflows.exceptions import ParameterError
from jupyter_workflows.spec.params import parse_assignments, resolve_parameters
from jupyter_workflows.testing import run_cli

WF = textwrap.dedent(
    """\
    name: s
    parameters:
      name: {type: string, required: true}
      n: {type: integer, default: 1}
      tag: {type: string, enum: ["1.10", "yes"], default: "yes"}
      extra: {type: any, default: null}
    tasks:
      a:
        action: core.echo
        input: {name: "{{ parameters.name }}", n: "{{ parameters.n }}", tag: "{{ parameters.tag }}"}
    output_map:
      name: "{{ task.a.result.name }}"
      n: "{{ task.a.result.n }}"
      tag: "{{ task.a.result.tag }}"
    """
)


@pytest.mark.parametrize(
    ("typed", "value"),
    [
        ("5", "5"),
        ("yes", "yes"),
        ("true", "true"),
        ("1.10", "1.10"),
        ("2024-01-01", "2024-01-01"),
        ("null", "null"),
        (" 7 ", "7"),
        ("'\"quoted\"'", '"quoted"'),
        ('"5"', "5"),
        ("shop", "shop"),
    ],
)
def test_string_parameter_keeps_the_text(typed: str, value: str) -> None:
    spec = jw.load(WF).spec
    assert resolve_parameters(spec, parse_assignments([f"name={typed}"]))["name"] == value


def test_other_types_stay_yaml_typed() -> None:
    spec = jw.load(WF).spec
    params = resolve_parameters(spec, parse_assignments(["name=x", "n=5", "extra=yes"]))
    assert params == {"name": "x", "n": 5, "tag": "yes", "extra": True}
    with pytest.raises(ParameterError, match="must be of type integer"):
        resolve_parameters(spec, parse_assignments(["name=x", "n=abc"]))
    with pytest.raises(ParameterError, match="must be of type string, got list"):
        resolve_parameters(spec, parse_assignments(["name=[a, b]"]))
    with pytest.raises(ParameterError, match="must be one of"):
        resolve_parameters(spec, parse_assignments(["name=x", "tag=1.1"]))


def test_python_values_are_not_coerced() -> None:
    with pytest.raises(ParameterError, match="must be of type string, got int 5"):
        resolve_parameters(jw.load(WF).spec, {"name": 5})


def test_cli_run_passes_the_text(tmp_path) -> None:
    (tmp_path / "s.yaml").write_text(WF)
    env = {**os.environ, "JUPYTER_WORKFLOWS_EXECUTOR": "inline"}
    done = run_cli(
        "run", "s.yaml", "-p", "name=yes", "-p", "n=5", "-p", "tag=1.10", "--json",
        env=env, cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["outputs"] == {"name": "yes", "n": 5, "tag": "1.10"}
    done = run_cli("run", "s.yaml", "-p", "name=[a]", env=env, cwd=tmp_path)
    assert done.returncode == 2
    assert done.stderr == "parameter 'name' must be of type string, got list ['a']\n"
