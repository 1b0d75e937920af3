"""``--store`` (or ``JUPYTER_WORKFLOWS_STORE``) pointing at something that is not a usable store.

Every command refuses it the same way: exit 2, one line on stderr naming the file, nothing on
stdout, and the file (and its folder) exactly as it was: no WAL or shared-memory file beside it,
no artifacts folder, no "repair". ``tests/store/test_sqlite_specific.py`` checks the store class;
this checks what a user of the CLI sees.
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from jupyter_workflows.store import SqliteStore
from jupyter_workflows.testing import run_cli

WORKFLOW = "name: fine\ntasks:\n  a: {action: core.noop}\n"
COMMANDS = [
    ["runs", "--json"],
    ["show", "0123456789abcdef"],
    ["run", "fine.yaml", "--json"],
    ["resume", "0123456789abcdef"],
    ["pause", "0123456789abcdef"],
]


def real_store(path: Path, runs: int = 40) -> None:
    """A store with enough rows to span many pages."""
    with SqliteStore(path) as store:
        for n in range(runs):
            run_id = f"{n:032x}"
            store.create_run({"run_id": run_id, "workflow": "fine", "definition": WORKFLOW})
            store.append_events(
                run_id, [{"type": "x", "pad": "p" * 1000, "n": i} for i in range(5)]
            )
            store.commit()


def text_file(path: Path) -> None:
    path.write_text("these are my notes, not a database\n")


def truncated_in_the_header(path: Path) -> None:
    real_store(path)
    path.write_bytes(path.read_bytes()[:3000])


def truncated_in_the_middle(path: Path) -> None:
    real_store(path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2 // 4096 * 4096])  # whole pages: a plausible crash


def truncated_mid_page(path: Path) -> None:
    real_store(path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 3])


def newer_schema(path: Path) -> None:
    real_store(path, runs=2)
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA user_version = 999")
    conn.commit()
    conn.close()


def another_programs_database(path: Path) -> None:
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE notes (body TEXT)")
    conn.execute("INSERT INTO notes VALUES ('hello')")
    conn.commit()
    conn.close()


def a_folder(path: Path) -> None:
    path.mkdir()
    (path / "inside.txt").write_text("x")


KINDS: dict[str, tuple[Callable[[Path], None], str]] = {
    "text file": (text_file, "not a jupyter_workflows store"),
    "truncated in the header": (truncated_in_the_header, "store is corrupt"),
    "truncated at a page": (truncated_in_the_middle, "store is corrupt"),
    "truncated mid-page": (truncated_mid_page, "store is corrupt"),
    "newer schema": (newer_schema, "newer than this jupyter_workflows supports"),
    "another program's database": (another_programs_database, "SQLite database of another program"),
    "a folder": (a_folder, "it is a folder"),
}


def snapshot(folder: Path) -> dict[str, bytes | None]:
    return {
        str(p.relative_to(folder)): (p.read_bytes() if p.is_file() else None)
        for p in sorted(folder.rglob("*"))
    }


@pytest.mark.parametrize("kind", list(KINDS))
def test_every_command_refuses_a_bad_store_and_leaves_it_alone(tmp_path: Path, kind: str) -> None:
    make, message = KINDS[kind]
    store = tmp_path / "state.db"
    make(store)
    (tmp_path / "fine.yaml").write_text(WORKFLOW)
    before = snapshot(tmp_path)

    env = dict(os.environ)
    env.pop("JUPYTER_WORKFLOWS_SCHEDULER", None)
    env["JUPYTER_WORKFLOWS_EXECUTOR"] = "inline"
    procs = []
    for i, command in enumerate(COMMANDS):
        if i % 2:  # half through --store, half through the environment
            args, cmd_env = (
                [*command, "--store", str(store)],
                {**env, "JUPYTER_WORKFLOWS_STORE": "elsewhere.db"},
            )
        else:
            args, cmd_env = command, {**env, "JUPYTER_WORKFLOWS_STORE": str(store)}
        procs.append(
            (
                command,
                subprocess.Popen(
                    [sys.executable, "-m", "jupyter_workflows", *args],
                    cwd=tmp_path,
                    env=cmd_env,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                    text=True,
                ),
            )
        )
    for command, proc in procs:
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 2, (command, proc.returncode, out, err)
        assert out == "", (command, out)
        assert err.count("\n") == 1 and "Traceback" not in err, (command, err)
        assert str(store) in err and message in err, (command, err)
    assert snapshot(tmp_path) == before  # same bytes, and nothing created beside them


def test_a_store_in_a_folder_that_cannot_exist(tmp_path: Path) -> None:
    """The store's parent is a file: reading shows no runs, writing is one clear error."""
    (tmp_path / "notes.txt").write_text("x")
    (tmp_path / "fine.yaml").write_text(WORKFLOW)
    env = {**os.environ, "JUPYTER_WORKFLOWS_EXECUTOR": "inline"}
    store = str(tmp_path / "notes.txt" / "state.db")
    before = snapshot(tmp_path)

    def jw(*args: str) -> subprocess.CompletedProcess[str]:
        return run_cli(*args, "--store", store, env=env, cwd=tmp_path)

    listed = jw("runs", "--json")
    assert listed.returncode == 0 and listed.stdout == "[]\n"
    ran = jw("run", "fine.yaml")
    assert ran.returncode == 2 and ran.stdout == ""
    assert ran.stderr.count("\n") == 1 and "cannot open the store" in ran.stderr, ran.stderr
    assert snapshot(tmp_path) == before
