"""The lifecycle-object and watched-file part of the store contract, for both stores."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from jupyter_workflows.exceptions import StoreError
from jupyter_workflows.store import MemoryStore, RunStore, SqliteStore


@pytest.fixture(params=["memory", "sqlite"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[RunStore]:
    made: RunStore = MemoryStore() if request.param == "memory" else SqliteStore(tmp_path / "s.db")
    with made:
        yield made


def _new(store: RunStore, object_id: str = "sales") -> bool:
    return store.object_create(
        {
            "object_id": object_id,
            "lifecycle": "dataset",
            "state": "draft",
            "definition": "lifecycle: dataset",
            "data": {"path": "sales.csv", "rows": 3, "nan": None},
        }
    )


def test_create_get_list(store: RunStore) -> None:
    assert store.object_get("sales") is None
    assert store.object_list() == []
    assert _new(store) is True
    assert _new(store) is False  # exists: not replaced
    got = store.object_get("sales")
    assert got is not None
    assert got["state"] == "draft" and got["version"] == 0 and got["lock_owner"] is None
    assert got["data"] == {"path": "sales.csv", "rows": 3, "nan": None}
    got["data"]["rows"] = 99  # a snapshot: the store is not changed
    assert store.object_get("sales")["data"]["rows"] == 3  # type: ignore[index]
    _new(store, "b")
    assert [o["object_id"] for o in store.object_list()] == ["sales", "b"]


def test_bad_records_are_refused_at_the_call(store: RunStore) -> None:
    with pytest.raises(ValueError, match="unknown lifecycle object field"):
        store.object_create(
            {"object_id": "x", "lifecycle": "l", "state": "s", "definition": "d", "colour": 1}
        )
    with pytest.raises(ValueError, match="non-empty 'state'"):
        store.object_create({"object_id": "x", "lifecycle": "l", "state": "", "definition": "d"})
    with pytest.raises(TypeError):
        store.object_create({"object_id": 5, "lifecycle": "l", "state": "s", "definition": "d"})
    assert store.object_list() == []


def test_lock_is_compare_and_set(store: RunStore) -> None:
    _new(store)
    assert store.object_lock("sales", "a") is True
    assert store.object_lock("sales", "a") is True  # re-entrant for its owner
    assert store.object_lock("sales", "b") is False
    assert store.object_lock("sales", "b", steal="someone-else") is False
    assert store.object_lock("sales", "b", steal="a") is True  # a dead owner's lock is taken over
    with pytest.raises(StoreError, match="lost its lock"):
        store.object_save("sales", "a", {"state": "published"})
    assert store.object_get("sales")["state"] == "draft"  # type: ignore[index]
    store.object_unlock("sales", "a")  # not the owner: nothing happens
    assert store.object_get("sales")["lock_owner"] == "b"  # type: ignore[index]
    store.object_unlock("sales", "b")
    assert store.object_get("sales")["lock_owner"] is None  # type: ignore[index]
    assert store.object_lock("nobody", "a") is False


def test_save_changes_state_history_and_version_at_once(store: RunStore) -> None:
    _new(store)
    store.object_note("sales", {"outcome": "created", "to_state": "draft"})
    assert store.object_lock("sales", "me")
    entry = store.object_save(
        "sales",
        "me",
        {"state": "published", "pending": {"run_id": "r1"}},
        {"outcome": "transitioned", "from_state": "draft", "to_state": "published", "runs": ["r0"]},
    )
    assert isinstance(entry, int)
    store.object_note_started(entry, ["r2", "r3"])
    got = store.object_get("sales")
    assert got is not None
    assert (got["state"], got["version"], got["lock_owner"]) == ("published", 1, None)
    assert got["pending"] == {"run_id": "r1"}
    history = store.object_history("sales")
    assert [h["outcome"] for h in history] == ["created", "transitioned"]
    assert history[1]["runs"] == ["r0"] and history[1]["started"] == ["r2", "r3"]
    assert history[1]["from_state"] == "draft" and history[1]["at"] > 0
    with pytest.raises(StoreError):
        store.object_note("nobody", {"outcome": "refused"})
    with pytest.raises(ValueError):
        store.object_save("sales", "me", {"version": 7})


def test_file_versions_are_claimed_once(store: RunStore) -> None:
    assert store.file_claim("/d/a.csv", "h1", np.int64(10), np.float64(1.5)) is True
    assert store.file_claim("/d/a.csv", "h1", 10, 2.5) is False  # same content, touched
    assert store.file_claim("/d/a.csv", "h2", 11, 3.0) is True  # a new version
    assert [f["digest"] for f in store.file_list(claimed_only=True)] == ["h1", "h2"]
    store.file_done("/d/a.csv", "h1", ["r1"])
    assert [f["digest"] for f in store.file_list(claimed_only=True)] == ["h2"]
    done = next(f for f in store.file_list() if f["digest"] == "h1")
    assert done["status"] == "started" and done["runs"] == ["r1"] and done["size"] == 10
    assert type(done["size"]) is int


def test_sqlite_lock_across_instances(tmp_path: Path) -> None:
    """Two store instances (as two processes have) see one lock: only one transition at a time."""
    with SqliteStore(tmp_path / "s.db") as one, SqliteStore(tmp_path / "s.db") as two:
        _new(one)
        assert one.object_lock("sales", "p1") is True
        assert two.object_lock("sales", "p2") is False
        with pytest.raises(StoreError):
            two.object_save("sales", "p2", {"state": "x"})
        one.object_save("sales", "p1", {"state": "review"}, {"outcome": "transitioned"})
        assert two.object_get("sales")["state"] == "review"  # type: ignore[index]
        assert two.object_lock("sales", "p2") is True


def test_sqlite_store_of_schema_1_is_migrated(tmp_path: Path) -> None:
    """A store written before lifecycles (schema 1) gains the new tables and keeps its runs."""
    import sqlite3

    from jupyter_workflows.store import sqlite as sqlite_module

    path = tmp_path / "old.db"
    conn = sqlite3.connect(path)
    for statement in sqlite_module.MIGRATIONS[0]:
        conn.execute(statement)
    conn.execute(f"PRAGMA application_id = {sqlite_module.APPLICATION_ID}")
    conn.execute("PRAGMA user_version = 1")
    conn.execute("INSERT INTO runs (run_id, status, created_at) VALUES ('old', 'succeeded', 1.0)")
    conn.commit()
    conn.close()
    with SqliteStore(path) as store:
        assert store.get_run("old")["status"] == "succeeded"  # type: ignore[index]
        assert _new(store) is True
        assert store.object_get("sales")["state"] == "draft"  # type: ignore[index]
