"""Command-line plumbing through real ``jupyter-workflows`` subprocesses (CONTRACT §5).

The common options before or after the subcommand, a reader of stdout that goes away
(``| head``), upper-case file extensions and ``--workflow`` on a single-workflow file.
"""

from __future__ import annotations

import json
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
