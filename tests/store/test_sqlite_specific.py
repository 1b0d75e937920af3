"""SqliteStore beyond the contract: files, schema versions, processes, crashes, speed."""

from __future__ import annotations

import itertools
import os
import random
import signal
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from jupyter_workflows.exceptions import RunNotFound, StoreError
from jupyter_workflows.store import SqliteStore
from jupyter_workflows.store import sqlite as sqlite_module
from jupyter_workflows.store.sqlite import APPLICATION_ID, AUTOCHECKPOINT_PAGES, SCHEMA_VERSION


def raw(path: Path) -> sqlite3.Connection:
    """A plain sqlite3 connection, to look at (or tamper with) a store from outside."""
    return sqlite3.connect(path, isolation_level=None)


def make_store(path: Path, runs: int = 1) -> None:
    with SqliteStore(path) as store:
        for n in range(runs):
            store.create_run({"run_id": f"r{n}", "workflow": "w"})
            store.append_events(f"r{n}", [{"type": "x", "n": n}])


def files_under(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


# -- created on first write ------------------------------------------------------------------


def test_reading_a_missing_store_creates_nothing(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "er" / "state.db"
    store = SqliteStore(path)
    assert store.list_runs() == []
    assert store.get_run("x") is None
    assert store.get_tasks("x") == []
    assert store.load_events("x") == []
    assert store.take_requests("x") == []
    assert store.cache_get("k", 0.0) == (False, None)
    assert store.kv_get("k", 1) == 1
    assert store.secret_get("s") is None
    assert store.integrity_check() == "ok"
    store.commit()  # nothing buffered: nothing to create
    store.close()
    with pytest.raises(RunNotFound):
        store.add_request("x", "pause")
    assert files_under(tmp_path) == []


def test_first_write_creates_folders_and_a_private_file(tmp_path: Path) -> None:
    path = tmp_path / "a" / "b" / "state.db"
    store = SqliteStore(path)
    store.create_run({"run_id": "r1"})
    assert not path.exists()  # buffered, not written
    store.commit()
    assert path.is_file()
    assert path.stat().st_mode & 0o777 == 0o600  # it holds secrets
    store.close()
    with raw(path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        assert conn.execute("PRAGMA application_id").fetchone()[0] == APPLICATION_ID


def test_kv_and_secrets_create_the_store(tmp_path: Path) -> None:
    SqliteStore(tmp_path / "kv.db").kv_set("k", 1)
    SqliteStore(tmp_path / "secret.db").secret_set("s", "v")
    assert SqliteStore(tmp_path / "kv.db").kv_get("k") == 1
    assert SqliteStore(tmp_path / "secret.db").secret_get("s") == "v"


def test_an_empty_file_reads_as_an_empty_store(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    path.touch()  # a writer created it and has not initialised it yet
    store = SqliteStore(path)
    assert store.list_runs() == []
    assert path.read_bytes() == b""
    store.create_run({"run_id": "r1"})
    store.commit()
    assert [r["run_id"] for r in SqliteStore(path).list_runs()] == ["r1"]


def test_connection_pragmas(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "s.db", busy_timeout=3)
    store.kv_set("k", 1)
    conn = store._connection()
    assert conn.execute("PRAGMA synchronous").fetchone()[0] == 1  # NORMAL
    assert conn.execute("PRAGMA foreign_keys").fetchone()[0] == 1
    assert conn.execute("PRAGMA busy_timeout").fetchone()[0] == 3000


def _checkpointers() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "jupyter-workflows-sqlite-checkpoint"]


def test_checkpoints_run_in_a_background_thread_not_in_commits(tmp_path: Path) -> None:
    """SQLite checkpoints inside the COMMIT that takes the WAL past 1000 pages, stalling every
    commit of the process; a store checkpoints from a thread of its own instead (SQLite's own
    only past AUTOCHECKPOINT_PAGES), and the thread ends when the store is closed."""
    path = tmp_path / "s.db"
    before = set(_checkpointers())
    store = SqliteStore(path)
    store.kv_set("k", 0)
    conn = store._connection()
    assert conn.execute("PRAGMA wal_autocheckpoint").fetchone()[0] == AUTOCHECKPOINT_PAGES
    size = path.stat().st_size
    for n in range(20):  # about 2,000 pages, well below the backstop (16,000)
        store.create_run({"run_id": f"r{n}", "workflow": "w", "parameters": {"x": "y" * 400_000}})
        store.commit()
    deadline = time.monotonic() + 30
    while path.stat().st_size < size + 6_000_000 and time.monotonic() < deadline:
        time.sleep(0.05)  # the checkpoint copies the pages from the WAL into the file
    assert path.stat().st_size >= size + 6_000_000
    mine = [t for t in _checkpointers() if t not in before]
    assert len(mine) == 1
    store.close()
    mine[0].join(timeout=10)
    assert not mine[0].is_alive()
    assert SqliteStore(path).get_run("r19")["parameters"] == {"x": "y" * 400_000}


def test_path_is_absolute_and_artifacts_sit_beside_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    store = SqliteStore("rel/state.db")
    assert store.path == tmp_path / "rel" / "state.db"
    assert store.artifact_dir == tmp_path / "rel" / "state.db.artifacts"
    store.create_run({"run_id": "r1"})
    store.append_events("r1", [{"type": "small", "v": (1, 2)}])
    store.commit()
    assert not store.artifact_dir.exists()  # small pickles stay inline
    big = bytes(range(256)) * 300  # 77 KB: above the inline limit
    store.append_events("r1", [{"type": "big", "v": big}, {"type": "again", "v": big}])
    store.commit()
    assert len(list(store.artifact_dir.rglob("*.pkl"))) == 1  # content-addressed
    monkeypatch.chdir("/")
    assert store.load_events("r1")[1]["v"] == big


def test_memory_path_is_refused() -> None:
    with pytest.raises(ValueError, match="MemoryStore"):
        SqliteStore(":memory:")


# -- files that are not (our) stores ---------------------------------------------------------

NOT_A_DATABASE = "not a jupyter_workflows store (file is not a database)"


@pytest.mark.parametrize(
    "content",
    [
        b"name: deploy\ntasks: {}\n" * 20,
        bytes(random.Random(1).randrange(256) for _ in range(8192)),
        b"SQLite format 3\x00" + b"\x00" * 20,  # a header cut short
        b"SQLite format 3\x00" + bytes(random.Random(2).randrange(256) for _ in range(4096)),
    ],
    ids=["text", "garbage", "short-header", "garbage-after-magic"],
)
def test_a_file_that_is_not_a_database_is_refused_and_left_alone(
    tmp_path: Path, content: bytes
) -> None:
    path = tmp_path / "state.db"
    path.write_bytes(content)
    store = SqliteStore(path)
    for attempt in (store.list_runs, lambda: store.get_run("x"), lambda: store.kv_set("k", 1)):
        with pytest.raises(StoreError) as info:
            attempt()
        assert str(info.value) == f"{path}: {NOT_A_DATABASE}"
    with pytest.raises(StoreError, match="file is not a database"):
        store.create_run({"run_id": "r1"})  # it looks for an existing run of that id first
    store.commit()
    assert path.read_bytes() == content
    assert files_under(tmp_path) == ["state.db"]


def test_a_truncated_store_is_reported_not_overwritten(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    with SqliteStore(path) as store:
        for n in range(30):
            store.create_run({"run_id": f"r{n}", "definition": "x" * 3000})
    with raw(path) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    data = path.read_bytes()
    for size in (60, 4096, len(data) // 2):
        path.write_bytes(data[:size])
        for name in ("state.db-wal", "state.db-shm"):
            (tmp_path / name).unlink(missing_ok=True)
        with pytest.raises(StoreError) as info:
            SqliteStore(path).list_runs()
        message = str(info.value)
        assert message.startswith(f"{path}: ") and "\n" not in message
        assert "not a database" in message or "corrupt" in message
        assert path.read_bytes() == data[:size]


def test_another_programs_database_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "other.db"
    with raw(path) as conn:
        conn.execute("CREATE TABLE notes (body TEXT)")
        conn.execute("INSERT INTO notes VALUES ('hello')")
    before = path.read_bytes()
    store = SqliteStore(path)
    with pytest.raises(StoreError, match="another program"):
        store.list_runs()
    with pytest.raises(StoreError, match="another program"):
        store.kv_set("k", 1)
    assert path.read_bytes() == before


def test_a_folder_is_refused(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="folder"):
        SqliteStore(tmp_path).list_runs()


def test_a_newer_schema_is_refused_and_nothing_is_written(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    make_store(path)
    with raw(path) as conn:
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 5}")
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    before = path.read_bytes()
    store = SqliteStore(path)
    expected = (
        f"{path}: store schema version {SCHEMA_VERSION + 5} is newer than this "
        f"jupyter_workflows supports ({SCHEMA_VERSION}); upgrade jupyter_workflows"
    )
    with pytest.raises(StoreError) as info:
        store.list_runs()
    assert str(info.value) == expected
    with pytest.raises(StoreError) as info:
        store.kv_set("k", "v")
    assert str(info.value) == expected
    store.close()  # nothing was left in the buffer
    assert path.read_bytes() == before
    with raw(path) as conn:
        assert conn.execute("SELECT count(*) FROM kv").fetchone()[0] == 0


def test_an_older_schema_is_migrated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "state.db"
    make_store(path, runs=2)
    step = ("CREATE TABLE notes (run_id TEXT, body TEXT)", "INSERT INTO notes VALUES ('r0', 'hi')")
    monkeypatch.setattr(sqlite_module, "MIGRATIONS", [*sqlite_module.MIGRATIONS, step])
    monkeypatch.setattr(sqlite_module, "SCHEMA_VERSION", SCHEMA_VERSION + 1)
    store = SqliteStore(path)
    assert len(store.list_runs()) == 2  # reading an existing store upgrades it
    with raw(path) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION + 1
        assert conn.execute("SELECT body FROM notes").fetchall() == [("hi",)]
    SqliteStore(path).list_runs()  # already there: nothing applied twice
    with raw(path) as conn:
        assert conn.execute("SELECT count(*) FROM notes").fetchone()[0] == 1


# -- instances, threads, processes -----------------------------------------------------------


def test_commit_makes_writes_visible_to_a_second_instance(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    writer = SqliteStore(path)
    writer.create_run({"run_id": "r0", "workflow": "w"})
    writer.commit()
    reader = SqliteStore(path)
    writer.create_run({"run_id": "r1", "workflow": "w"})
    writer.append_events("r0", [{"type": "x", "v": {1}}])
    writer.upsert_tasks("r0", [{"exec_id": "e", "result": (1,)}])
    writer.update_run("r0", status="succeeded")
    assert [r["run_id"] for r in reader.list_runs()] == ["r0"]  # buffered: invisible elsewhere
    assert reader.load_events("r0") == []
    assert reader.get_run("r0")["status"] == "pending"  # type: ignore[index]
    writer.commit()
    assert [r["run_id"] for r in reader.list_runs()] == ["r1", "r0"]
    assert reader.load_events("r0") == [{"type": "x", "v": {1}}]
    assert reader.get_tasks("r0")[0]["result"] == (1,)
    assert reader.get_run("r0")["status"] == "succeeded"  # type: ignore[index]
    reader.add_request("r0", "cancel")  # and back the other way
    assert writer.take_requests("r0")[0]["kind"] == "cancel"


def test_a_busy_store_keeps_the_buffer_for_the_next_commit(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    make_store(path)
    store = SqliteStore(path, busy_timeout=0.2)
    store.append_events("r0", [{"type": "late"}])
    blocker = raw(path)
    blocker.execute("BEGIN IMMEDIATE")  # another process holds the write lock
    try:
        with pytest.raises(StoreError, match="busy"):
            store.commit()
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    store.commit()
    assert [e["type"] for e in SqliteStore(path).load_events("r0")] == ["x", "late"]


def test_a_run_deleted_elsewhere_discards_the_batch_with_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    make_store(path)
    store = SqliteStore(path)
    store.append_events("r0", [{"type": "y"}])  # r0 is known to exist
    SqliteStore(path).delete_run("r0")
    with pytest.raises(StoreError, match="1 buffered writes were discarded"):
        store.commit()
    store.commit()  # the buffer is not poisoned
    store.create_run({"run_id": "r9"})
    store.commit()
    assert [r["run_id"] for r in store.list_runs()] == ["r9"]


def test_each_thread_has_its_own_connection_and_close_closes_them(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "s.db")
    store.kv_set("k", 0)
    seen: list[sqlite3.Connection] = []

    def read() -> None:
        assert store.kv_get("k") == 0
        seen.append(store._connection())

    threads = [threading.Thread(target=read) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len({id(conn) for conn in [*seen, store._connection()]}) == 5
    store.close()
    with pytest.raises(sqlite3.ProgrammingError):
        seen[0].execute("SELECT 1")
    assert store.kv_get("k") == 0  # a closed store reopens on use


WRITER = textwrap.dedent(
    """
    import os
    import sys
    import time

    from jupyter_workflows.store import SqliteStore

    path, prefix, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
    if len(sys.argv) > 4:  # start together with the other writers
        open(sys.argv[4] + ".ready-" + prefix, "w").close()
        while not os.path.exists(sys.argv[4]):
            time.sleep(0.005)
    store = SqliteStore(path)
    i = 0
    while count < 0 or i < count:
        run_id = f"{prefix}-{i}"
        store.create_run({"run_id": run_id, "workflow": "w", "parameters": {"i": i, "s": {i}}})
        store.append_events(
            run_id,
            [
                {"type": "e", "n": n, "blob": bytes(1500) + f"{prefix}-{i}-{n}".encode()}
                for n in range(20)
            ],
        )
        # and one value large enough for an artifact file
        store.append_events(run_id, [{"type": "big", "blob": bytes(70_000) + run_id.encode()}])
        store.upsert_tasks(run_id, [{"exec_id": f"x{n}", "seq": n, "result": (n,)} for n in range(10)])
        store.update_run(run_id, status="succeeded")
        store.commit()
        store.kv_set(f"{prefix}-last", i)
        print(run_id, flush=True)
        i += 1
    """
)


def check_run(store: SqliteStore, run_id: str) -> None:
    run = store.get_run(run_id)
    assert run is not None, run_id
    i = int(run_id.rsplit("-", 1)[1])
    assert run["status"] == "succeeded" and run["parameters"] == {"i": i, "s": {i}}
    events = store.load_events(run_id)
    assert [e["n"] for e in events[:20]] == list(range(20))
    assert events[20]["blob"] == bytes(70_000) + run_id.encode()
    prefix = run_id.rsplit("-", 1)[0]
    assert events[7]["blob"] == bytes(1500) + f"{prefix}-{i}-7".encode()
    assert [t["result"] for t in store.get_tasks(run_id)] == [(n,) for n in range(10)]


def test_two_processes_write_one_store_at_once(tmp_path: Path) -> None:
    script = tmp_path / "writer.py"
    script.write_text(WRITER)
    path = tmp_path / "new" / "state.db"  # both race to create it, too
    go = tmp_path / "go"
    procs = [
        subprocess.Popen(
            [sys.executable, str(script), str(path), name, "100", str(go)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for name in ("a", "b")
    ]
    # Both have imported and wait (a fixed sleep was too short on a loaded machine: one writer
    # could finish before the other began, and nothing interleaved).
    deadline = time.monotonic() + 120
    while not all((tmp_path / f"go.ready-{name}").exists() for name in ("a", "b")):
        assert time.monotonic() < deadline, "the writers did not start"
        assert all(proc.poll() is None for proc in procs), [p.communicate() for p in procs]
        time.sleep(0.02)
    go.touch()
    outputs = [proc.communicate(timeout=120) for proc in procs]
    for proc, (_, err) in zip(procs, outputs, strict=True):
        assert proc.returncode == 0, err
    store = SqliteStore(path)
    assert store.integrity_check() == "ok"
    runs = store.list_runs()
    assert len(runs) == 200
    for name in ("a", "b"):
        for i in range(100):
            check_run(store, f"{name}-{i}")
        assert store.kv_get(f"{name}-last") == 99
    # They did write at the same time: the two writers' runs interleave.
    order = [r["run_id"][0] for r in reversed(runs)]
    assert sum(1 for x, y in itertools.pairwise(order) if x != y) > 2, "".join(order)


def test_kill_9_never_loses_a_commit_nor_breaks_the_store(tmp_path: Path) -> None:
    script = tmp_path / "writer.py"
    script.write_text(WRITER)
    path = tmp_path / "state.db"
    rng = random.Random(9)
    committed: list[str] = []
    for iteration in range(10):
        proc = subprocess.Popen(
            [sys.executable, str(script), str(path), f"k{iteration}", "-1"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert proc.stdout is not None
        first = proc.stdout.readline()  # it is up and writing
        assert first, proc.stderr.read() if proc.stderr else ""
        time.sleep(rng.uniform(0.0, 0.3))
        os.kill(proc.pid, signal.SIGKILL)
        rest, _ = proc.communicate(timeout=30)
        assert proc.returncode == -signal.SIGKILL
        lines = [first.strip(), *rest.split()]
        committed.extend(line for line in lines if line)
        store = SqliteStore(path)
        assert store.integrity_check() == "ok"
        for run_id in committed:
            check_run(store, run_id)
        store.close()
    assert len(committed) >= 10


# -- speed -----------------------------------------------------------------------------------


def test_batched_writes_are_fast(tmp_path: Path) -> None:
    """20,000 events and 10,000 task upserts in commits of ~100 writes: well under seconds."""
    store = SqliteStore(tmp_path / "s.db")
    store.create_run({"run_id": "r"})
    start = time.perf_counter()
    for batch in range(300):
        base = batch * 34
        store.append_events(
            "r",
            [{"type": "task_succeeded", "exec_id": f"t{base + i}", "result": i} for i in range(67)],
        )
        store.upsert_tasks(
            "r",
            [
                {"exec_id": f"t{base + i}", "seq": base + i, "status": "succeeded", "result": i}
                for i in range(34)
            ],
        )
        store.commit()
    elapsed = time.perf_counter() - start
    assert len(store.load_events("r")) == 300 * 67
    assert len(store.get_tasks("r")) == 300 * 34
    print(f"\n20100 events + 10200 upserts in 300 commits: {elapsed:.2f} s")
    assert elapsed < 10


@pytest.mark.skipif(not hasattr(os, "fork"), reason="POSIX only")
def test_a_forked_child_does_not_reuse_the_parents_connection_or_buffer(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "s.db")
    store.create_run({"run_id": "parent"})
    store.commit()
    store.append_events("parent", [{"type": "buffered-in-parent"}])
    pid = os.fork()
    if pid == 0:  # the child: only ever leave through os._exit
        code = 1
        try:
            assert store._pending == []
            store.create_run({"run_id": "child"})
            store.commit()
            code = 0
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    store.commit()
    assert {r["run_id"] for r in store.list_runs()} == {"parent", "child"}
    assert store.load_events("parent") == [{"type": "buffered-in-parent"}]
    assert store.integrity_check() == "ok"


def test_threads_racing_to_create_a_store_all_succeed(tmp_path: Path) -> None:
    """Readers may meet the file while a writer creates it: empty, half-made, or migrating."""
    for attempt in range(30):
        store = SqliteStore(tmp_path / str(attempt) / "s.db")
        errors: list[BaseException] = []

        def work(n: int, store: SqliteStore = store, errors: list[BaseException] = errors) -> None:
            try:
                store.list_runs()
                store.create_run({"run_id": f"r{n}"})
                store.commit()
                store.list_runs()
            except BaseException as exc:
                errors.append(exc)

        threads = [threading.Thread(target=work, args=(n,)) for n in range(6)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert errors == []
        assert len(store.list_runs()) == 6
