"""``context.secret()`` reads the store's secrets on every executor (issue 11)."""

from __future__ import annotations

from pathlib import Path

import pytest

from jupyter_workflows.engine.context import run_task, secret_source
from jupyter_workflows.store import SqliteStore

VALUE = "store-only-9c1e77-secret"


def uses_a_store_secret(context):  # a task function, importable by Dask workers (pickled by ref)
    value = context.secret("JW_STORE_ONLY_SECRET")
    print("token", value)
    return {"echo": value, "length": len(value)}


@pytest.fixture
def store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> SqliteStore:
    monkeypatch.delenv("JW_STORE_ONLY_SECRET", raising=False)
    store = SqliteStore(tmp_path / "state.db")
    store.secret_set("JW_STORE_ONLY_SECRET", VALUE)
    store.commit()
    return store


def test_in_the_engines_process(store: SqliteStore) -> None:
    envelope = run_task(
        uses_a_store_secret,
        {},
        {"run_id": "r", "task": "t", "secrets": secret_source(store)},
        wants_context=True,
    )
    assert envelope.ok, envelope.error
    assert envelope.value == {"echo": "***", "length": len(VALUE)}  # read, and masked
    assert envelope.logs == ["token ***"]


def test_in_another_process_through_the_file(store: SqliteStore) -> None:
    source = {"token": "another-process:1", "path": str(store.path)}  # not registered here
    envelope = run_task(
        uses_a_store_secret, {}, {"run_id": "r", "task": "t", "secrets": source}, True
    )
    assert envelope.ok, envelope.error
    assert envelope.value["length"] == len(VALUE)


def test_a_missing_secret_is_one_line(store: SqliteStore) -> None:
    def wants_nothing_there(context):
        return context.secret("JW_NOT_ANYWHERE_SECRET")

    envelope = run_task(
        wants_nothing_there, {}, {"run_id": "r", "task": "t", "secrets": secret_source(store)}, True
    )
    assert not envelope.ok and "is not set" in (envelope.error or "")


@pytest.mark.cluster
def test_on_a_dask_worker_process(store: SqliteStore, dask_cluster) -> None:
    distributed = pytest.importorskip("distributed")
    with distributed.Client(dask_cluster) as client:
        source = secret_source(store)
        future = client.submit(
            run_task,
            uses_a_store_secret,
            {},
            {"run_id": "r", "task": "t", "secrets": source},
            True,
            pure=False,
        )
        envelope = future.result(timeout=120)
    assert envelope.ok, envelope.error
    assert envelope.value == {"echo": "***", "length": len(VALUE)}
