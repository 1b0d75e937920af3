"""Command-line plumbing through real ``jupyter-workflows`` subprocesses (CONTRACT §5).

The common options before or after the subcommand, a reader of stdout that goes away
(``| head``), upper-case file extensions and ``--workflow`` on a single-workflow file.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from jupyter_workflows.testing import inline_env
from jupyter_workflows.testing import run_cli as jw

HELLO = "name: hello\ntasks:\n  greet: {action: core.echo, input: {text: hi}}\n"


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    (tmp_path / "hello.yaml").write_text(HELLO)
    env = inline_env(tmp_path)
    del env["JUPYTER_WORKFLOWS_STORE"]  # the tests below pick the store with --store
    return env


def _run_ids(tmp_path: Path, env: dict[str, str], store: str) -> list[str]:
    result = jw("runs", "--json", "--store", store, env=env, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    return [r["run_id"] for r in json.loads(result.stdout)]


# -- #5: --store, --scheduler, --debug before the subcommand ----------------------------------------


def test_store_before_the_subcommand(tmp_path: Path, env: dict[str, str]) -> None:
    result = jw("--store", "before.db", "run", "hello.yaml", "--json", env=env, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    run_id = json.loads(result.stdout)["run_id"]
    assert (tmp_path / "before.db").is_file()
    assert _run_ids(tmp_path, env, "before.db") == [run_id]
    listed = jw("--store", "before.db", "runs", env=env, cwd=tmp_path)
    assert listed.returncode == 0, listed.stderr
    assert run_id in listed.stdout


def test_the_option_after_the_subcommand_wins(tmp_path: Path, env: dict[str, str]) -> None:
    result = jw("--store", "a.db", "run", "hello.yaml", "--store", "b.db", env=env, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "b.db").is_file()
    assert not (tmp_path / "a.db").exists()


def test_debug_and_scheduler_before_the_subcommand(tmp_path: Path, env: dict[str, str]) -> None:
    result = jw("--debug", "validate", "hello.yaml", env=env, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("hello.yaml: ok")
    # --debug before the subcommand shows the traceback of a user error
    (tmp_path / "bad.yaml").write_text("name: bad\ntasks:\n  a: {action: core.noop, nxt: b}\n")
    result = jw("--debug", "validate", "bad.yaml", env=env, cwd=tmp_path)
    assert result.returncode != 0
    assert "Traceback" in result.stderr
    # --scheduler is accepted there too (parsing only: validate connects to nothing)
    result = jw(
        "--scheduler", "tcp://127.0.0.1:8786", "validate", "hello.yaml", env=env, cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr


# -- #9: | head ------------------------------------------------------------------------------------


def _with_closed_stdout(tmp_path: Path, env: dict[str, str], *args: str) -> tuple[int, str]:
    """Run the CLI with a stdout pipe whose reader has already gone (as ``| head`` leaves it)."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "jupyter_workflows", *args],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.close()
    stderr = proc.stderr.read()
    return proc.wait(timeout=120), stderr


def test_a_closed_stdout_is_not_an_error(tmp_path: Path, env: dict[str, str]) -> None:
    for _ in range(3):
        assert jw("run", "hello.yaml", "--store", "s.db", env=env, cwd=tmp_path).returncode == 0
    run_id = _run_ids(tmp_path, env, "s.db")[0]
    for args in (
        ("runs", "--store", "s.db"),
        ("runs", "--json", "--store", "s.db"),
        ("show", run_id, "--store", "s.db"),
        ("trace", run_id, "--store", "s.db"),
        ("graph", "hello.yaml"),
    ):
        rc, stderr = _with_closed_stdout(tmp_path, env, *args)
        assert (rc, stderr) == (0, ""), args
    # run and resume still exit with the run's code; progress lines on stderr are fine
    rc, stderr = _with_closed_stdout(tmp_path, env, "resume", run_id, "--json", "--store", "s.db")
    assert rc == 0
    assert "BrokenPipe" not in stderr and "Traceback" not in stderr
    (tmp_path / "fails.yaml").write_text("name: fails\ntasks:\n  a: {action: core.fail}\n")
    rc, stderr = _with_closed_stdout(tmp_path, env, "run", "fails.yaml", "--store", "s.db")
    assert rc == 1
    assert "BrokenPipe" not in stderr and "Traceback" not in stderr


def test_head_in_a_shell_pipeline(tmp_path: Path, env: dict[str, str]) -> None:
    for _ in range(3):
        assert jw("run", "hello.yaml", "--store", "s.db", env=env, cwd=tmp_path).returncode == 0
    cmd = f"{sys.executable} -m jupyter_workflows runs --store s.db | head -c 10"
    result = subprocess.run(
        ["bash", "-c", cmd + "; echo rc=${PIPESTATUS[0]} >&2"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.stdout == "RUN ID    "
    assert result.stderr == "rc=0\n"


# -- #19: --workflow on a file that holds another workflow ----------------------------------------


def test_workflow_flag_must_name_the_files_workflow(tmp_path: Path, env: dict[str, str]) -> None:
    for command in ("run", "validate", "graph"):
        result = jw(
            command, "hello.yaml", "--workflow", "zzz", "--store", "s.db", env=env, cwd=tmp_path
        )
        assert result.returncode == 2, (command, result.stderr)
        assert result.stdout == ""
        assert result.stderr == (
            "hello.yaml: the file defines workflow 'hello', not 'zzz'"
            " (--workflow chooses among a notebook's workflows)\n"
        )
    assert not (tmp_path / "s.db").exists()  # no run was created
    result = jw(
        "run", "hello.yaml", "--workflow", "hello", "--store", "s.db", env=env, cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr
    job = tmp_path / "job"
    job.mkdir()
    (job / "workflow.yaml").write_text(HELLO)
    result = jw("run", "job", "--workflow", "other", "--store", "s.db", env=env, cwd=tmp_path)
    assert result.returncode == 2
    assert "not 'other'" in result.stderr


# -- #20: upper-case extensions ---------------------------------------------------------------------


@pytest.mark.parametrize("name", ["HELLO.YAML", "hello.YML", "Hello.Yaml", "HELLO.JSON"])
def test_upper_case_extensions(tmp_path: Path, env: dict[str, str], name: str) -> None:
    if name.lower().endswith(".json"):
        doc = {
            "name": "hello",
            "tasks": {"greet": {"action": "core.echo", "input": {"text": "hi"}}},
        }
        (tmp_path / name).write_text(json.dumps(doc))
    else:
        (tmp_path / name).write_text(HELLO)
    result = jw("validate", name, env=env, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    result = jw("run", name, "--json", "--store", "s.db", env=env, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["workflow"] == "hello"


def test_upper_case_notebook_extension(tmp_path: Path, env: dict[str, str]) -> None:
    import nbformat
    from nbformat import v4

    nb = v4.new_notebook()
    nb.cells = [
        v4.new_code_cell("%load_ext jupyter_workflows"),
        v4.new_code_cell("%%workflow nbwf\ntasks:\n  a: {action: core.echo, input: {text: hi}}\n"),
    ]
    nbformat.write(nb, str(tmp_path / "NB.IPYNB"))
    result = jw("run", "NB.IPYNB", "--json", "--store", "s.db", env=env, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["workflow"] == "nbwf"
