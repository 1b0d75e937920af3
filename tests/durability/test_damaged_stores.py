"""Damaged stores and special files as stores (issue 11): refused in one line, never hung on,
never written into."""

from __future__ import annotations

import os
import sqlite3
import subprocess
from pathlib import Path

import pytest

from jupyter_workflows.exceptions import StoreError
from jupyter_workflows.store import SqliteStore
from jupyter_workflows.testing import run_cli

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
    return run_cli(*args, env=env, cwd=tmp_path, timeout=timeout)


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


# -- jupyter-workflows store check / store backup -----------------------------------------------


def test_store_check_lists_the_damage_and_exits_1(tmp_path: Path) -> None:
    store = tmp_path / "state.db"
    real_store(store)
    sound = jw(tmp_path, "store", "check", "--store", str(store))
    assert sound.returncode == 0 and sound.stdout.strip() == f"{store}: ok", sound
    damage_a_page_past_the_first(store)
    before = store.read_bytes()
    result = jw(tmp_path, "store", "check", "--store", str(store))
    assert result.returncode == 1, (result.stdout, result.stderr)
    assert result.stdout.strip() and all(
        line.startswith(f"{store}: ") for line in result.stdout.splitlines()
    ), result.stdout
    assert ".recover" in result.stderr and "Traceback" not in result.stderr
    assert store.read_bytes() == before  # read only
    (tmp_path / "fine.yaml").write_text(WORKFLOW)
    refusal = jw(tmp_path, "run", "fine.yaml", "--store", str(store))
    assert refusal.returncode == 2 and "jupyter-workflows store check" in refusal.stderr


def test_store_check_reports_rows_with_null_status(tmp_path: Path) -> None:
    import json

    store = tmp_path / "state.db"
    (tmp_path / "fine.yaml").write_text(WORKFLOW)
    assert jw(tmp_path, "run", "fine.yaml", "--store", str(store)).returncode == 0
    conn = sqlite3.connect(store)
    conn.execute("UPDATE tasks SET status = NULL")
    conn.commit()
    conn.close()
    result = jw(tmp_path, "store", "check", "--store", str(store), "--json")
    assert result.returncode == 1, result.stderr
    report = json.loads(result.stdout)
    assert report["ok"] is False and report["store"] == str(store)
    assert any(f.startswith("tasks ") and f.endswith("status is NULL") for f in report["findings"])


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda p: None, "no store here"),
        (lambda p: p.write_text("not sqlite\n"), "not a jupyter_workflows store"),
        (lambda p: os.mkfifo(p), "not a regular file"),
    ],
    ids=["missing", "text file", "fifo"],
)
def test_store_check_refuses_what_is_not_a_store_in_one_line(
    tmp_path: Path, make: object, message: str
) -> None:
    path = tmp_path / "state.db"
    make(path)  # type: ignore[operator]
    result = jw(tmp_path, "store", "check", "--store", str(path), timeout=60)
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert message in result.stderr and result.stderr.count("\n") == 1, result.stderr


def test_store_backup_copies_a_store_in_use_with_its_artifacts(tmp_path: Path) -> None:
    import numpy as np

    from jupyter_workflows.store import artifacts

    store_path = tmp_path / "state.db"
    big = np.arange(300_000, dtype=np.float64)  # 2.4 MB: over the inline limit, an artifact file
    big[7] = np.nan
    with SqliteStore(store_path) as store:
        store.create_run({"run_id": "a" * 32, "workflow": "fine", "definition": WORKFLOW})
        store.update_run("a" * 32, outputs={"big": big}, status="succeeded")
        store.commit()
        assert any(store.artifact_dir.rglob("*")), "the array should be an artifact file"
        result = jw(tmp_path, "store", "backup", "copy.db", "--store", str(store_path))
        assert result.returncode == 0, result.stderr
    copy = SqliteStore(tmp_path / "copy.db")
    outputs = copy.get_run("a" * 32)["outputs"]
    np.testing.assert_array_equal(outputs["big"], big)
    again = jw(tmp_path, "store", "backup", "copy.db", "--store", str(store_path))
    assert again.returncode == 2 and "already exists" in again.stderr
    assert artifacts  # the module that wrote the file
