"""A misspelled top-level ``tasks`` key is an unknown field at its position, not a missing one."""

from __future__ import annotations

import pytest

import jupyter_workflows as jw
from jupyter_workflows.exceptions import SpecError
from jupyter_workflows.testing import run_cli


@pytest.mark.parametrize("key", ["task", "Tasks", "taks"])
def test_misspelled_tasks_is_an_unknown_field(key: str) -> None:
    with pytest.raises(SpecError) as info:
        jw.load(f"name: x\n{key}:\n  a: {{action: core.noop}}\n")
    assert str(info.value) == (
        f"<string>:2:1: unknown field {key!r} in the workflow (did you mean 'tasks'?)"
    )


def test_no_tasks_and_an_unrelated_field_still_says_tasks_are_missing() -> None:
    with pytest.raises(SpecError, match="missing required field 'tasks'"):
        jw.load("name: x\ncolour: blue\n")


def test_misspelled_field_hint_ignores_case() -> None:
    with pytest.raises(SpecError, match=r"unknown field 'Action' .*did you mean 'action'"):
        jw.load("name: x\ntasks:\n  a: {Action: core.noop}\n")


def test_cli_validate_reports_the_misspelled_key(tmp_path) -> None:
    (tmp_path / "wf.yaml").write_text("name: x\ntask:\n  a: {action: core.noop}\n")
    done = run_cli("validate", "wf.yaml", env=_env(), cwd=tmp_path)
    assert done.returncode == 2
    assert (
        done.stderr == "wf.yaml:2:1: unknown field 'task' in the workflow (did you mean 'tasks'?)\n"
    )


def _env() -> dict[str, str]:
    import os

    return {**os.environ, "JUPYTER_WORKFLOWS_EXECUTOR": "inline"}
