"""``validate`` reports every error it finds, one ``FILE:LINE:COL: message`` line each (CONTRACT §5).

Field and type errors of the document come together; so do the graph errors of a document whose
fields are right. ``run`` still refuses with one line (the first of them) and creates no run.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from jupyter_workflows.exceptions import SpecError
from jupyter_workflows.spec.loader import SpecErrors
from jupyter_workflows.testing import inline_env
from jupyter_workflows.testing import run_cli as jw

FIELDS = textwrap.dedent(
    """\
    name: multi
    tasks:
      a: {action: core.noop, on_sucess: b, timeot: 5}
      b: {action: core.noop, timeout: abc, retry: {count: x}}
    """
)

GRAPH = textwrap.dedent(
    """\
    name: multig
    parameters:
      n: {type: integer, default: "x"}
    tasks:
      a: {action: core.noop, on_success: zz, input: {x: "{{ bad( }}"}}
      b: {action: core.nosuch, needs: [qq]}
      c: {action: core.noop, join: 5}
    """
)


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    (tmp_path / "fields.yaml").write_text(FIELDS)
    (tmp_path / "graph.yaml").write_text(GRAPH)
    return tmp_path


def test_all_field_and_type_errors(folder: Path) -> None:
    result = jw("validate", "fields.yaml", env=inline_env(folder), cwd=folder)
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.splitlines() == [
        "fields.yaml:3:26: unknown field 'on_sucess' in task 'a' (did you mean 'on_success'?)",
        "fields.yaml:3:40: unknown field 'timeot' in task 'a' (did you mean 'timeout'?)",
        "fields.yaml:4:35: task 'b' field 'timeout': Input should be a valid number,"
        " unable to parse string as a number (got 'abc')",
        "fields.yaml:4:55: task 'b' field 'retry.count': Input should be a valid integer,"
        " unable to parse string as an integer (got 'x')",
    ]


def test_all_graph_errors(folder: Path) -> None:
    result = jw("validate", "graph.yaml", env=inline_env(folder), cwd=folder)
    assert result.returncode == 2
    lines = result.stderr.splitlines()
    assert lines == [
        "graph.yaml:5:53: template error: unexpected '}', expected ')'",
        "graph.yaml:5:38: task 'a': on_success names unknown task 'zz'",
        "graph.yaml:6:36: task 'b': needs names unknown task 'qq'",
        "graph.yaml:7:32: task 'c' joins on 5 inbound transitions but only 0 task(s) lead to it",
        "graph.yaml:6:15: task 'b': unknown action 'core.nosuch' (did you mean 'core.noop'?)",
        "graph.yaml:3:31: parameter 'n': default must be of type integer, got str 'x'",
    ]


@pytest.mark.parametrize(
    ("name", "first"),
    [
        ("fields.yaml", "fields.yaml:3:26: unknown field 'on_sucess'"),
        ("graph.yaml", "graph.yaml:5:53: template error: unexpected '}', expected ')'"),
    ],
)
def test_run_and_graph_refuse_with_the_first_error(folder: Path, name: str, first: str) -> None:
    env = inline_env(folder)
    for command in ("run", "graph"):
        result = jw(command, name, env=env, cwd=folder)
        assert result.returncode == 2
        assert result.stderr.startswith(first)
        assert len(result.stderr.splitlines()) == 1
    assert not (folder / "state.db").exists()  # no run was created


def test_debug_shows_the_traceback(folder: Path) -> None:
    result = jw("validate", "graph.yaml", "--debug", env=inline_env(folder), cwd=folder)
    assert result.returncode != 0
    assert "Traceback" in result.stderr


def test_the_python_api_reads_as_the_first_error(folder: Path) -> None:
    import jupyter_workflows as jw_api

    with pytest.raises(SpecError) as info:
        jw_api.load(folder / "graph.yaml").validate()
    assert isinstance(info.value, SpecErrors)
    assert str(info.value) == str(info.value.errors[0])
    assert (info.value.line, info.value.col) == (5, 53)
    assert len(info.value.errors) == 6
