"""``jupyter-workflows validate`` and ``graph`` through real subprocesses (CONTRACT §5).

Neither command runs anything, so these need no cluster and no store.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from jupyter_workflows.testing import run_cli

GOOD = textwrap.dedent(
    """\
    name: good
    parameters:
      who: {type: string, default: world}
    tasks:
      greet:
        action: core.echo
        input: {text: "hello {{ parameters.who }}"}
        on_success: [shout, check]
        on_failure: cleanup
      shout: {action: core.echo}
      check:
        decision:
          - when: "{{ task.greet.result.text }}"
            next: done
          - default: cleanup
      done: {action: core.noop, needs: shout}
      cleanup: {action: core.noop}
    """
)

WARNS = textwrap.dedent(
    """\
    name: warns
    tasks:
      a: {action: core.noop, on_success: b}
      b: {action: core.noop, on_complete: c}
      c: {action: core.noop, on_complete: b}
      orphan: {action: core.noop, needs: orphan_dep}
      orphan_dep: {action: core.noop, on_success: orphan_loop}
      orphan_loop: {action: core.noop, on_success: orphan_dep}
    """
)


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    (tmp_path / "good.yaml").write_text(GOOD)
    (tmp_path / "warns.yaml").write_text(WARNS)
    return tmp_path


# -- validate --------------------------------------------------------------------------------------


def test_validate_good_file(folder: Path) -> None:
    result = run_cli("validate", "good.yaml", cwd=folder)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "good.yaml: ok (5 tasks)\n"
    assert result.stderr == ""


def test_validate_json_and_yml(folder: Path) -> None:
    (folder / "j.json").write_text(
        json.dumps(
            {"name": "j", "tasks": {"a": {"action": "core.echo", "on_success": "b"}, "b": {}}}
        )
    )
    (folder / "y.yml").write_text("name: y\ntasks:\n  a: {action: core.noop}\n")
    for name in ("j.json", "y.yml"):
        result = run_cli("validate", name, cwd=folder)
        assert result.returncode == 0, result.stderr
        assert result.stdout.startswith(f"{name}: ok")


def test_validate_job_folder_and_nested_workflow(folder: Path) -> None:
    job = folder / "job"
    job.mkdir()
    (job / "workflow.yaml").write_text("name: parent\ntasks:\n  p: {workflow: child}\n")
    (job / "child.yaml").write_text("name: child\ntasks:\n  c: {action: core.noop}\n")
    result = run_cli("validate", "job", cwd=folder)
    assert result.returncode == 0, result.stderr
    assert "ok (1 tasks)" in result.stdout
    empty = folder / "empty_job"
    empty.mkdir()
    result = run_cli("validate", "empty_job", cwd=folder)
    assert result.returncode == 2
    assert result.stderr == "empty_job: not a job folder: no workflow.yaml inside\n"


def test_validate_file_name_is_its_default_name(folder: Path) -> None:
    (folder / "nameless.yaml").write_text("tasks:\n  a: {action: core.noop}\n")
    result = run_cli("validate", "nameless.yaml", cwd=folder)
    assert result.returncode == 0, result.stderr


def test_validate_warnings_go_to_stderr_with_exit_0(folder: Path) -> None:
    result = run_cli("validate", "warns.yaml", cwd=folder)
    assert result.returncode == 0
    assert result.stdout == "warns.yaml: ok (6 tasks)\n"
    lines = result.stderr.splitlines()
    assert lines == [
        "warns.yaml:6:3: warning: task 'orphan' is unreachable from the start tasks",
        "warns.yaml:7:3: warning: task 'orphan_dep' is unreachable from the start tasks",
        "warns.yaml:8:3: warning: task 'orphan_loop' is unreachable from the start tasks",
        "warns.yaml:4:3: warning: unconditional loop b -> c -> b runs until max_runs (1000);"
        " set max_runs to bound it",
    ]


def test_validate_error_is_one_line_exit_2(folder: Path) -> None:
    (folder / "bad.yaml").write_text(GOOD.replace("on_failure: cleanup", "on_failure: clean_up"))
    result = run_cli("validate", "bad.yaml", cwd=folder)
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr == (
        "bad.yaml:9:17: task 'greet': on_failure names unknown task 'clean_up'"
        " (did you mean 'cleanup'?)\n"
    )


def test_validate_debug_shows_the_traceback(folder: Path) -> None:
    (folder / "bad.yaml").write_text("name: bad\ntasks: {}\n")
    result = run_cli("validate", "bad.yaml", "--debug", cwd=folder)
    assert result.returncode != 0
    assert "Traceback" in result.stderr
    assert "SpecError" in result.stderr


@pytest.mark.parametrize(
    ("name", "says"),
    [
        ("missing.yaml", "missing.yaml: no such file"),
        ("notes.txt", "notes.txt: expected a .yaml, .yml, .json, .ipynb file or a job folder"),
    ],
)
def test_validate_unusable_paths(folder: Path, name: str, says: str) -> None:
    (folder / "notes.txt").write_text("hello")
    result = run_cli("validate", name, cwd=folder)
    assert result.returncode == 2
    assert result.stderr == says + "\n"


# -- graph -----------------------------------------------------------------------------------------


def test_graph_mermaid_is_the_default(folder: Path) -> None:
    result = run_cli("graph", "good.yaml", cwd=folder)
    assert result.returncode == 0, result.stderr
    assert result.stdout == run_cli("graph", "good.yaml", "--format", "mermaid", cwd=folder).stdout
    lines = result.stdout.splitlines()
    assert lines[0] == "flowchart TD"
    assert '    n_greet["greet<br/>core.echo"]' in lines
    assert '    n_check{{"check"}}' in lines
    assert "    n_greet --> n_shout" in lines
    assert '    n_greet -.->|"on failure"| n_cleanup' in lines
    assert '    n_shout -.->|"needs"| n_done' in lines


def test_graph_dot(folder: Path) -> None:
    result = run_cli("graph", "good.yaml", "--format", "dot", cwd=folder)
    assert result.returncode == 0, result.stderr
    text = result.stdout
    assert text.startswith('digraph "good" {')
    assert text.rstrip().endswith("}")
    assert text.count(" -> ") == 6
    assert '"check" [label="check", shape=diamond];' in text


def test_graph_json(folder: Path) -> None:
    result = run_cli("graph", "good.yaml", "--format", "json", cwd=folder)
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["name"] == "good"
    assert data["start"] == ["greet"]
    assert [n["id"] for n in data["nodes"]] == ["greet", "shout", "check", "done", "cleanup"]
    edges = {(e["source"], e["target"], e["kind"]) for e in data["edges"]}
    assert edges == {
        ("greet", "shout", "success"),
        ("greet", "check", "success"),
        ("greet", "cleanup", "failure"),
        ("check", "done", "decision"),
        ("check", "cleanup", "decision"),
        ("shout", "done", "needs"),
    }
    assert len(data["edges"]) == 6


def test_graph_of_invalid_file_is_refused(folder: Path) -> None:
    (folder / "bad.yaml").write_text("name: bad\ntasks:\n  a: {action: core.noop, needs: zzz}\n")
    result = run_cli("graph", "bad.yaml", "--format", "json", cwd=folder)
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.startswith("bad.yaml:3:33: ")
    assert len(result.stderr.splitlines()) == 1


def test_graph_bad_format(folder: Path) -> None:
    result = run_cli("graph", "good.yaml", "--format", "png", cwd=folder)
    assert result.returncode == 2
    assert len(result.stderr.splitlines()) == 1
    assert "invalid choice: 'png'" in result.stderr


# -- usage errors ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "says"),
    [
        ((), "the following arguments are required: COMMAND"),
        (("frobnicate",), "invalid choice: 'frobnicate'"),
        (("validate",), "the following arguments are required: FILE"),
        (("graph",), "the following arguments are required: FILE"),
        (("validate", "good.yaml", "--nope"), "unrecognized arguments: --nope"),
    ],
)
def test_usage_errors_are_one_line_exit_2(folder: Path, args: tuple[str, ...], says: str) -> None:
    result = run_cli(*args, cwd=folder)
    assert result.returncode == 2
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("jupyter-workflows")
    assert says in lines[0]


def test_help_and_version(folder: Path) -> None:
    result = run_cli("--help", cwd=folder)
    assert result.returncode == 0
    for command in (
        "run",
        "validate",
        "graph",
        "runs",
        "show",
        "resume",
        "respond",
        "export",
        "serve",
    ):
        assert command in result.stdout
    result = run_cli("--version", cwd=folder)
    assert result.returncode == 0
    assert result.stdout.startswith("jupyter-workflows ")


def test_console_script_and_jupyter_subcommand(folder: Path) -> None:
    bindir = Path(sys.executable).parent
    script = bindir / "jupyter-workflows"
    if not script.exists():
        pytest.skip("the package is not installed with its console script")
    result = subprocess.run(
        [str(script), "validate", "good.yaml"],
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == "good.yaml: ok (5 tasks)\n"
    jupyter = shutil.which("jupyter", path=str(bindir))
    if jupyter is None:
        pytest.skip("jupyter is not installed")
    env = dict(os.environ, PATH=f"{bindir}{os.pathsep}{os.environ.get('PATH', '')}")
    result = subprocess.run(
        [jupyter, "workflows", "validate", "good.yaml"],
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == "good.yaml: ok (5 tasks)\n"
