"""The RunStore contract, run against every store implementation (MemoryStore, SqliteStore).

What one store does, the other must do too: the engine is tested mostly on MemoryStore and runs
for real on SqliteStore. Store-specific behaviour (files, processes, crashes) lives in
``test_sqlite_specific.py``.
"""

from __future__ import annotations

import datetime
import threading
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path
from typing import Any

import pytest

from jupyter_workflows.exceptions import RunNotFound, StoreError
from jupyter_workflows.store import MemoryStore, RunStore, SqliteStore, open_store
from jupyter_workflows.store.base import (
    RUN_COLUMNS,
    RUN_FIELDS,
    TASK_COLUMNS,
    TASK_FIELDS,
    RunRecord,
    TaskRecord,
)


class Point:
    """A user class defined at module level: it pickles by reference."""

    def __init__(self, x: int, y: int) -> None:
        self.x, self.y = x, y

    def __eq__(self, other: object) -> bool:
        return type(other) is Point and (self.x, self.y) == (other.x, other.y)

    def __hash__(self) -> int:
        return hash((self.x, self.y))


def assert_same(actual: Any, expected: Any) -> None:
    """Equal, and of the same types all the way down (a tuple is not a list)."""
    assert type(actual) is type(expected), (actual, expected)
    if isinstance(expected, dict):
        assert list(actual) == list(expected)
        for key in expected:
            assert_same(actual[key], expected[key])
    elif isinstance(expected, list | tuple):
        assert len(actual) == len(expected)
        for a, e in zip(actual, expected, strict=True):
            assert_same(a, e)
    else:
        assert actual == expected


@pytest.fixture(params=["memory", "sqlite"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[RunStore]:
    made: RunStore = MemoryStore() if request.param == "memory" else SqliteStore(tmp_path / "s.db")
    with made:
        yield made


def make_run(store: RunStore, run_id: str = "r1", **fields: Any) -> None:
    record: RunRecord = {"run_id": run_id, "workflow": "wf", "status": "running"}
    record.update(fields)  # type: ignore[typeddict-item]
    store.create_run(record)


# -- records ---------------------------------------------------------------------------------


def test_record_fields_match_the_typed_dicts() -> None:
    assert RunRecord.__required_keys__ | RunRecord.__optional_keys__ == RUN_FIELDS
    assert TaskRecord.__required_keys__ | TaskRecord.__optional_keys__ == TASK_FIELDS
    assert set(RUN_COLUMNS) == RUN_FIELDS and set(TASK_COLUMNS) == TASK_FIELDS


def test_create_and_get_run_round_trips_every_field(store: RunStore) -> None:
    record: RunRecord = {
        "run_id": "r1",
        "workflow": "deploy",
        "status": "running",
        "parameters": {"app": "shop", "regions": ["eu", "us"], "pair": (1, 2)},
        "outputs": {"n": 1.5},
        "error": None,
        "created_at": 100.0,
        "started_at": 101.25,
        "ended_at": None,
        "definition": "name: deploy\ntasks: {}\n",
        "base_dir": "/tmp/x",
        "code": b"\x80\x05code",
        "parent_run_id": "p1",
        "parent_task": "child",
        "owner": "host:123",
        "heartbeat_at": 102.0,
        "options": {"no_cache": True},
    }
    store.create_run(record)
    store.commit()
    got = store.get_run("r1")
    assert got is not None
    assert_same(got, {name: record[name] for name in RUN_COLUMNS})  # type: ignore[literal-required]


def test_get_run_fills_defaults(store: RunStore) -> None:
    store.create_run({"run_id": "r1"})
    got = store.get_run("r1")
    assert got is not None
    assert set(got) == RUN_FIELDS
    assert got["status"] == "pending"
    assert got["parameters"] == {} and got["options"] == {}
    assert isinstance(got["created_at"], float)
    assert got["outputs"] is None and got["code"] is None


def test_get_run_of_unknown_id_is_none(store: RunStore) -> None:
    assert store.get_run("nope") is None
    make_run(store)
    assert store.get_run("nope") is None


def test_list_runs_on_empty_store_is_empty(store: RunStore) -> None:
    assert store.list_runs() == []
    assert store.list_runs(limit=5) == []


def test_list_runs_newest_first(store: RunStore) -> None:
    make_run(store, "old", created_at=10.0)
    make_run(store, "new", created_at=30.0)
    make_run(store, "mid", created_at=20.0)
    make_run(store, "mid2", created_at=20.0)  # a tie: the later insert is newer
    store.commit()
    assert [r["run_id"] for r in store.list_runs()] == ["new", "mid2", "mid", "old"]
    assert [r["run_id"] for r in store.list_runs(limit=2)] == ["new", "mid2"]
    assert store.list_runs(limit=0) == []


def test_duplicate_run_is_refused(store: RunStore) -> None:
    make_run(store)
    with pytest.raises(StoreError, match="already exists"):
        make_run(store)
    store.commit()
    with pytest.raises(StoreError, match="already exists"):
        make_run(store)


def test_update_run(store: RunStore) -> None:
    make_run(store, parameters={"a": 1})
    store.update_run("r1", status="succeeded", outputs={"x": {1, 2}}, ended_at=5)
    store.commit()
    got = store.get_run("r1")
    assert got is not None
    assert got["status"] == "succeeded"
    assert_same(got["outputs"], {"x": {1, 2}})
    assert got["ended_at"] == 5
    assert got["parameters"] == {"a": 1}  # untouched fields stay
    store.update_run("r1")  # nothing to change is fine


def test_update_unknown_run_raises(store: RunStore) -> None:
    with pytest.raises(RunNotFound, match="nope"):
        store.update_run("nope", status="failed")


@pytest.mark.parametrize(
    ("fields", "error", "match"),
    [
        ({"stauts": "x"}, ValueError, "unknown run field.*'stauts'"),
        ({"status": 3}, TypeError, "'status' must be str"),
        ({"ended_at": "soon"}, TypeError, "'ended_at' must be float"),
        ({"code": "text"}, TypeError, "'code' must be bytes"),
        ({"created_at": None}, ValueError, "created_at"),
    ],
)
def test_update_run_checks_fields_at_the_call(
    store: RunStore, fields: dict[str, Any], error: type[Exception], match: str
) -> None:
    make_run(store)
    with pytest.raises(error, match=match):
        store.update_run("r1", **fields)
    store.commit()  # nothing bad was buffered
    assert store.get_run("r1")["status"] == "running"  # type: ignore[index]


def test_create_run_checks_fields(store: RunStore) -> None:
    with pytest.raises(ValueError, match="'bogus'"):
        store.create_run({"run_id": "r1", "bogus": 1})  # type: ignore[typeddict-unknown-key]
    with pytest.raises(ValueError, match="run_id"):
        store.create_run({"workflow": "w"})
    with pytest.raises(TypeError, match="'created_at' must be float"):
        store.create_run({"run_id": "r1", "created_at": True})  # type: ignore[typeddict-item]
    store.commit()
    assert store.list_runs() == []


# -- task executions -------------------------------------------------------------------------


def test_upsert_tasks_replaces_by_exec_id_and_orders_by_seq(store: RunStore) -> None:
    make_run(store)
    store.upsert_tasks(
        "r1",
        [
            {"exec_id": "b", "task": "b", "seq": 2, "status": "running"},
            {"exec_id": "a", "task": "a", "seq": 1, "status": "running", "logs": ["hi"]},
        ],
    )
    store.commit()
    store.upsert_tasks(
        "r1",
        [
            {"exec_id": "a", "task": "a", "seq": 1, "status": "succeeded", "result": (1, "x")},
            {"exec_id": "c", "task": "c", "seq": 3, "status": "pending"},
        ],
    )
    store.commit()
    tasks = store.get_tasks("r1")
    assert [t["exec_id"] for t in tasks] == ["a", "b", "c"]
    first = tasks[0]
    assert set(first) == TASK_FIELDS
    assert first["status"] == "succeeded"
    assert_same(first["result"], (1, "x"))
    assert first["logs"] == []  # replaced, not merged
    assert first["attempts"] == 0
    assert first["run_id"] == "r1"


def test_task_record_round_trips_every_field(store: RunStore) -> None:
    make_run(store)
    record: TaskRecord = {
        "run_id": "r1",
        "exec_id": "e1",
        "task": "train",
        "seq": 7,
        "status": "failed",
        "attempts": 3,
        "input": {"n": 5, "when": datetime.date(2024, 1, 2)},
        "result": None,
        "error": "ValueError: bad",
        "started_at": 1.0,
        "ended_at": 2.5,
        "worker": "tcp://127.0.0.1:1234",
        "logs": ["line 1", "line 2"],
        "done": 3,
        "total": 10,
    }
    store.upsert_tasks("r1", [record])
    store.commit()
    [got] = store.get_tasks("r1")
    assert_same(got, {name: record[name] for name in TASK_COLUMNS})  # type: ignore[literal-required]


def test_numbers_are_made_plain(store: RunStore) -> None:
    numpy = pytest.importorskip("numpy")
    int64 = numpy.int64
    make_run(store, created_at=5)
    store.upsert_tasks(
        "r1",
        [
            {
                "exec_id": "a",
                "seq": int64(2),
                "attempts": int64(1),
                "done": int64(3),
                "total": 10,
            },
            {"exec_id": "b", "seq": 3, "done": Fraction(1, 2), "total": 1.0, "started_at": 7},
        ],
    )
    store.commit()
    run = store.get_run("r1")
    assert run is not None
    assert_same(run["created_at"], 5.0)
    a, b = store.get_tasks("r1")
    assert_same((a["seq"], a["attempts"], a["done"], a["total"]), (2, 1, 3, 10))
    assert_same((b["done"], b["total"], b["started_at"]), (0.5, 1.0, 7.0))
    with pytest.raises(ValueError, match="NaN"):
        store.update_run("r1", heartbeat_at=float("nan"))
    with pytest.raises(TypeError, match="'attempts' must be int"):
        store.upsert_tasks("r1", [{"exec_id": "c", "attempts": True}])


def test_tasks_without_seq_come_last_in_insertion_order(store: RunStore) -> None:
    make_run(store)
    store.upsert_tasks("r1", [{"exec_id": "x"}, {"exec_id": "y", "seq": 5}, {"exec_id": "w"}])
    assert [t["exec_id"] for t in store.get_tasks("r1")] == ["y", "x", "w"]


def test_upsert_tasks_checks(store: RunStore) -> None:
    with pytest.raises(RunNotFound):
        store.upsert_tasks("nope", [{"exec_id": "a"}])
    make_run(store)
    with pytest.raises(ValueError, match="exec_id"):
        store.upsert_tasks("r1", [{"task": "a"}])
    with pytest.raises(ValueError, match="'reslt'"):
        store.upsert_tasks("r1", [{"exec_id": "a", "reslt": 1}])  # type: ignore[typeddict-unknown-key]
    with pytest.raises(ValueError, match="upserted into run"):
        store.upsert_tasks("r1", [{"exec_id": "a", "run_id": "r2"}])
    with pytest.raises(TypeError, match="'seq' must be int"):
        store.upsert_tasks("r1", [{"exec_id": "a", "seq": 1.5}])  # type: ignore[typeddict-item]
    store.commit()
    assert store.get_tasks("r1") == []
    assert store.get_tasks("nope") == []


# -- event log -------------------------------------------------------------------------------

ODD_VALUES: dict[str, Any] = {
    "set": {1, 2, 3},
    "point": Point(1, 2),
    "bytes": b"\x00\xff raw",
    "tuple": (1, "two", [3]),
    "nested": {"inner": [(1, 2), {Point(3, 4)}], "ok": [1, "a", None, True, 2.5]},
    "int_keys": {1: "a", 2: "b"},
    "when": datetime.datetime(2024, 5, 6, 7, 8, 9),
    "fraction": Fraction(1, 3),
    "marker_lookalike": {"__jw_artifact__": "not really", "__jw_dict__": 1},
    "nan": float("nan"),
    "big": list(range(5000)),  # JSON, but large
    "big_blob": bytes(range(256)) * 400,  # 100 KiB: an artifact file for SqliteStore
    "unicode": "snow ☃, emoji \U0001f600",
}


def _same_with_nan(actual: Any, expected: Any) -> None:
    if isinstance(expected, float) and expected != expected:
        assert type(actual) is float and actual != actual
    else:
        assert_same(actual, expected)


def test_events_append_and_load_in_order(store: RunStore) -> None:
    make_run(store)
    make_run(store, "r2")
    store.append_events("r1", [{"type": "a", "n": 1}, {"type": "b", "n": 2}])
    store.append_events("r2", [{"type": "other"}])
    store.append_events("r1", [{"type": "c", "n": 3}])
    store.append_events("r1", [])
    store.commit()
    assert store.load_events("r1") == [
        {"type": "a", "n": 1},
        {"type": "b", "n": 2},
        {"type": "c", "n": 3},
    ]
    assert store.load_events("r2") == [{"type": "other"}]
    assert store.load_events("nope") == []


@pytest.mark.parametrize("name", sorted(ODD_VALUES))
def test_event_values_survive_the_round_trip(store: RunStore, name: str) -> None:
    make_run(store)
    value = ODD_VALUES[name]
    store.append_events("r1", [{"type": "task_succeeded", "result": value}])
    store.commit()
    [event] = store.load_events("r1")
    assert event["type"] == "task_succeeded"
    _same_with_nan(event["result"], value)


def test_events_must_have_a_type(store: RunStore) -> None:
    make_run(store)
    with pytest.raises(ValueError, match="type"):
        store.append_events("r1", [{"kind": "x"}])
    with pytest.raises(RunNotFound):
        store.append_events("nope", [{"type": "x"}])


def test_values_are_snapshots(store: RunStore) -> None:
    params = {"items": [1, 2]}
    make_run(store, parameters=params)
    event = {"type": "x", "data": {"k": [1]}}
    store.append_events("r1", [event])
    params["items"].append(3)
    event["data"]["k"].append(2)  # type: ignore[index]
    store.commit()
    got = store.get_run("r1")
    assert got is not None and got["parameters"] == {"items": [1, 2]}
    got["parameters"]["items"].append(99)
    assert store.get_run("r1")["parameters"] == {"items": [1, 2]}  # type: ignore[index]
    loaded = store.load_events("r1")
    assert loaded == [{"type": "x", "data": {"k": [1]}}]
    loaded[0]["data"]["k"].append(5)
    assert store.load_events("r1") == [{"type": "x", "data": {"k": [1]}}]


def test_reads_see_this_instances_buffered_writes(store: RunStore) -> None:
    make_run(store)
    store.append_events("r1", [{"type": "x"}])
    store.upsert_tasks("r1", [{"exec_id": "e", "seq": 1}])
    store.update_run("r1", status="paused")
    store.cache_put("k", 1, None)
    assert store.get_run("r1")["status"] == "paused"  # type: ignore[index]
    assert store.load_events("r1") == [{"type": "x"}]
    assert len(store.get_tasks("r1")) == 1
    assert store.cache_get("k", 0.0) == (True, 1)


def test_delete_run_removes_everything_of_the_run(store: RunStore) -> None:
    make_run(store)
    make_run(store, "keep")
    for run_id in ("r1", "keep"):
        store.append_events(run_id, [{"type": "x"}])
        store.upsert_tasks(run_id, [{"exec_id": "e"}])
        store.add_request(run_id, "pause")
    store.delete_run("r1")
    assert store.get_run("r1") is None
    assert store.load_events("r1") == [] and store.get_tasks("r1") == []
    assert store.take_requests("r1") == []
    assert [r["run_id"] for r in store.list_runs()] == ["keep"]
    assert len(store.get_tasks("keep")) == 1 and len(store.load_events("keep")) == 1
    with pytest.raises(RunNotFound):
        store.delete_run("r1")
    with pytest.raises(RunNotFound):
        store.append_events("r1", [{"type": "x"}])
    make_run(store)  # the id can be used again
    assert store.load_events("r1") == []


# -- requests --------------------------------------------------------------------------------


def test_requests_add_and_take(store: RunStore) -> None:
    make_run(store)
    make_run(store, "r2")
    assert store.take_requests("r1") == []
    store.add_request("r1", "pause")
    store.add_request("r2", "cancel")
    store.add_request("r1", "respond", {"task": "approve", "data": {"approved": True}})
    taken = store.take_requests("r1")
    assert [(r["kind"], r["payload"]) for r in taken] == [
        ("pause", None),
        ("respond", {"task": "approve", "data": {"approved": True}}),
    ]
    assert all(isinstance(r["created_at"], float) for r in taken)
    assert store.take_requests("r1") == []  # taking pops
    assert [r["kind"] for r in store.take_requests("r2")] == ["cancel"]
    assert store.take_requests("nope") == []


def test_take_all_requests_pops_only_the_runs_asked_for(store: RunStore) -> None:
    for run_id in ("r1", "r2", "r3", "other"):
        make_run(store, run_id)
    store.add_request("r1", "pause")
    store.add_request("r3", "cancel")
    store.add_request("r1", "resume")
    store.add_request("other", "pause")  # not asked for: another orchestrator's run
    taken = store.take_all_requests(["r1", "r2", "r3", "gone"])
    assert {run_id: [r["kind"] for r in reqs] for run_id, reqs in taken.items()} == {
        "r1": ["pause", "resume"],
        "r3": ["cancel"],
    }
    assert store.take_all_requests(["r1", "r2", "r3"]) == {}  # taking pops
    assert store.take_all_requests([]) == {}
    assert [r["kind"] for r in store.take_requests("other")] == ["pause"]


def test_heartbeat_marks_many_runs_in_one_call(store: RunStore) -> None:
    for run_id in ("r1", "r2", "idle"):
        make_run(store, run_id)
    store.heartbeat(["r1", "r2", "gone"], 1234.5, "host:42")  # a deleted run is skipped
    store.commit()
    for run_id in ("r1", "r2"):
        record = store.get_run(run_id)
        assert record is not None
        assert (record["heartbeat_at"], record["owner"]) == (1234.5, "host:42")
    idle = store.get_run("idle")
    assert idle is not None and idle["heartbeat_at"] != 1234.5
    store.heartbeat([], 1.0, "x")  # nothing to do


def test_request_for_unknown_run_raises(store: RunStore) -> None:
    with pytest.raises(RunNotFound, match="nope"):
        store.add_request("nope", "pause")


# -- cache, kv, secrets ----------------------------------------------------------------------


def test_cache(store: RunStore) -> None:
    assert store.cache_get("k", 0.0) == (False, None)
    store.cache_put("k", {"v": (1, 2)}, None)
    store.cache_put("e", "expiring", 100.0)
    store.commit()
    hit, value = store.cache_get("k", 1e12)
    assert hit
    assert_same(value, {"v": (1, 2)})
    assert store.cache_get("e", 99.0) == (True, "expiring")
    assert store.cache_get("e", 100.0) == (False, None)
    store.cache_put("e", "renewed", 200.0)
    assert store.cache_get("e", 150.0) == (True, "renewed")
    store.cache_put("none", None, None)
    assert store.cache_get("none", 0.0) == (True, None)  # a cached None is a hit


def test_kv(store: RunStore) -> None:
    assert store.kv_get("k") is None
    assert store.kv_get("k", 5) == 5
    store.kv_set("k", [1, 2])
    store.kv_set("p", Point(1, 1))
    assert store.kv_get("k") == [1, 2]
    assert store.kv_get("p") == Point(1, 1)
    store.kv_set("k", "new")
    assert store.kv_get("k", 5) == "new"
    store.kv_set("n", None)
    assert store.kv_get("n", 5) is None  # a stored None is not the default
    store.kv_delete("k")
    assert store.kv_get("k", 5) == 5
    store.kv_delete("never-set")  # no error
    assert store.kv_get("p") == Point(1, 1)  # other entries stay


def test_secrets(store: RunStore) -> None:
    assert store.secret_get("token") is None
    store.secret_set("token", "s3cr3t")
    assert store.secret_get("token") == "s3cr3t"
    store.secret_set("token", "rotated")
    assert store.secret_get("token") == "rotated"
    with pytest.raises(TypeError):
        store.secret_set("token", 123)  # type: ignore[arg-type]


# -- concurrency -----------------------------------------------------------------------------


def test_threads_write_and_read_at_once(store: RunStore) -> None:
    errors: list[BaseException] = []

    def work(n: int) -> None:
        try:
            run_id = f"run-{n}"
            make_run(store, run_id)
            for batch in range(10):
                store.append_events(run_id, [{"type": "e", "i": batch * 10 + i} for i in range(10)])
                store.upsert_tasks(run_id, [{"exec_id": f"x{batch}", "seq": batch}])
                store.commit()
                store.list_runs()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert len(store.list_runs()) == 8
    for n in range(8):
        assert [e["i"] for e in store.load_events(f"run-{n}")] == list(range(100))
        assert len(store.get_tasks(f"run-{n}")) == 10


def test_open_store(tmp_path: Path) -> None:
    assert isinstance(open_store(None), MemoryStore)
    assert isinstance(open_store(":memory:"), MemoryStore)
    sqlite = open_store(tmp_path / "x.db")
    assert isinstance(sqlite, SqliteStore)
    assert open_store(sqlite) is sqlite
    assert not (tmp_path / "x.db").exists()
