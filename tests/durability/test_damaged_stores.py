"""Damaged stores and special files as stores (issue 11): refused in one line, never hung on,
never written into."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from jupyter_workflows.exceptions import StoreError
from jupyter_workflows.store import SqliteStore

WORKFLOW = "name: fine\ntasks:\n  a: {action: core.noop}\n"


def real_store(path: Path, runs: int = 40) -> None:
    with SqliteStore(path) as store:
        for n in range(runs):
            run_id = f"{n:032x}"
            store.create_run({"run_id": run_id, "workflow": "fine", "definition": WORKFLOW})
            store.append_events(
                run_id, [{"type": "x", "pad": "p" * 1000, "n": i} for i in range(5)]
            )
            store.commit()


def damage_a_page_past_the_first(path: Path) -> None:
    """Garbage in the middle of a b-tree page: the header and first page are still fine."""
    data = bytearray(path.read_bytes())
    page = int.from_bytes(data[16:18], "big") or 65536
    assert len(data) > page * 8
    for offset in range(page * 4 + 8, page * 4 + 200):
        data[offset] = 0xA5
    path.write_bytes(bytes(data))


def jw(tmp_path: Path, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    env.pop("JUPYTER_WORKFLOWS_SCHEDULER", None)
    env["JUPYTER_WORKFLOWS_EXECUTOR"] = "inline"
    env.pop("JUPYTER_WORKFLOWS_STORE", None)
    return subprocess.run(
        [sys.executable, "-m", "jupyter_workflows", *args],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_a_damaged_store_is_not_written_into(tmp_path: Path) -> None:
    store = tmp_path / "state.db"
    real_store(store)
    damage_a_page_past_the_first(store)
    check = sqlite3.connect(store).execute("PRAGMA quick_check").fetchall()
    assert check != [("ok",)], check  # the damage is real
    before = store.read_bytes()
    (tmp_path / "fine.yaml").write_text(WORKFLOW)
    result = jw(tmp_path, "run", "fine.yaml", "--store", str(store))
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr, result.stderr
    assert "the store is damaged" in result.stderr and ".recover" in result.stderr
    assert store.read_bytes() == before
    direct = SqliteStore(store)
    with pytest.raises(StoreError, match="the store is damaged"):
        direct.create_run({"run_id": "f" * 32, "workflow": "fine", "definition": WORKFLOW})
        direct.commit()
    assert store.read_bytes() == before


def test_a_sound_store_is_still_written(tmp_path: Path) -> None:
    store = tmp_path / "state.db"
    real_store(store, runs=3)
    (tmp_path / "fine.yaml").write_text(WORKFLOW)
    result = jw(tmp_path, "run", "fine.yaml", "--store", str(store))
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("command", [["runs"], ["run", "fine.yaml"], ["show", "0" * 16]])
def test_a_fifo_as_store_is_refused_not_hung_on(tmp_path: Path, command: list[str]) -> None:
    fifo = tmp_path / "state.db"
    os.mkfifo(fifo)
    (tmp_path / "fine.yaml").write_text(WORKFLOW)
    result = jw(tmp_path, *command, "--store", str(fifo), timeout=60)  # used to hang for ever
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert "not a regular file" in result.stderr and "Traceback" not in result.stderr


@pytest.mark.parametrize("column", ["workflow", "status", "started_at", "definition", "options"])
def test_null_columns_are_shown_not_crashed_on(tmp_path: Path, column: str) -> None:
    store = tmp_path / "state.db"
    (tmp_path / "fine.yaml").write_text(WORKFLOW)
    assert jw(tmp_path, "run", "fine.yaml", "--store", str(store)).returncode == 0
    conn = sqlite3.connect(store)
    conn.execute(f"UPDATE runs SET {column} = NULL")
    conn.commit()
    conn.close()
    for command in (["runs"], ["runs", "--json"]):
        result = jw(tmp_path, *command, "--store", str(store))
        assert "internal error" not in result.stderr and "Traceback" not in result.stderr, (
            command,
            result.stderr,
        )
        assert result.returncode == 0, result.stderr
    if column == "workflow":
        assert "(missing)" in jw(tmp_path, "runs", "--store", str(store)).stdout
