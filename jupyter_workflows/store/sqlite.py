"""The durable store: one SQLite file (stdlib :mod:`sqlite3`) and a folder of artifacts.

Design choices, and why:

**Created on first write, opened lazily.** ``SqliteStore(path)`` touches nothing. Reading a
store that does not exist yet shows an empty store and creates nothing (``jupyter-workflows
runs`` in a fresh folder must not leave a ``.jupyter_workflows/`` behind); the first
:meth:`~SqliteStore.commit` with something to write creates the parent folders, the database
file (mode ``0600``: it holds secrets) and the schema.

**WAL, ``synchronous=NORMAL``.** Readers never block the writer and the writer never blocks
readers, so the orchestrator, the CLI and the Jupyter server can share one store. In WAL mode
``NORMAL`` does not fsync on every commit, only at checkpoints: a committed transaction survives
the application crashing (``kill -9``, a dead kernel), because it is in the OS's page cache;
only an OS crash or power loss can lose the last few commits, and never corrupts the database.
That is the trade the engine wants: it commits once per batch of events, and ``FULL`` would add
an fsync to each. ``busy_timeout`` (10 s) makes concurrent writers from several processes wait
for each other instead of failing; every write transaction is ``BEGIN IMMEDIATE`` so a writer
takes the write lock up front (a deferred transaction that upgrades from read to write can fail
at once with ``SQLITE_BUSY``, whatever the timeout). ``foreign_keys=ON`` ties task executions,
events and requests to their run (``delete_run`` cascades).

**Buffered writes, one transaction per commit.** Writes are checked and encoded when they are
made (so a bad value fails at the call, never later inside a commit) and buffered per store
instance; :meth:`~SqliteStore.commit` runs the whole buffer in one transaction, with runs of
identical statements as ``executemany``. A commit that fails for a passing reason (the store is
busy, the disk is full) keeps the buffer for the next commit; one that fails for good (a
constraint, which the checks at the call should make impossible) discards it, saying how many
writes were lost. ``add_request``, ``take_requests``, ``kv_set``, ``secret_set`` and
``delete_run`` commit at once, in the same transaction as the buffer before them; their own
write is never left in the buffer, so when one raises, it did not happen. A read first commits the
instance's buffer, so an instance always reads its own writes.

**Checkpoints in the background.** A WAL commit appends pages to the ``-wal`` file; a
checkpoint copies them into the database file and fsyncs both. SQLite runs one inside the
``COMMIT`` that takes the WAL past 1000 pages, in the committing thread: 20-300 ms measured
while many runs started at once, during which every commit of the process waited (the
orchestrator's too, so dispatch stalled). Each store instance instead runs passive checkpoints
in a daemon thread of its own, shortly after commits (:data:`CHECKPOINT_DELAY_S`); SQLite's own
automatic checkpoint stays as a backstop at :data:`AUTOCHECKPOINT_PAGES`. What a commit makes
durable does not change: a passive checkpoint only moves committed pages.

**One connection per thread.** :mod:`sqlite3` connections must not be used by two threads at
once; each thread gets its own (dropped when the thread has ended, or the process forked).

**Schema migrations by ``PRAGMA user_version``.** :data:`MIGRATIONS` is a list; migration *i*
takes the schema from version *i* to *i + 1* and is applied in the same transaction that sets
the version, so two processes opening an old store at once upgrade it once. A store from a
newer jupyter_workflows is refused before anything is written. ``PRAGMA application_id`` marks
the file as ours, so another program's SQLite database is refused too. Files that are not SQLite
are recognised by their header before SQLite ever opens them, and are never modified.

**Values.** Parameters, outputs, options, inputs, results, logs, whole events, cache and kv
values are stored as JSON text encoded by :mod:`jupyter_workflows.store.artifacts`: JSON stays
JSON, anything else is pickled (small pickles inline, large ones into
``<db path>.artifacts/<sha256[:2]>/<sha256>.pkl``). Secrets are stored as given (plain text in a
``0600`` file); they never appear in errors or logs.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import stat
import threading
import time
import urllib.parse
import weakref
from collections.abc import Callable, Collection, Iterator, Mapping
from pathlib import Path
from typing import Any, TypeVar

from ..exceptions import RunNotFound, StoreError
from . import artifacts
from .base import (
    HISTORY_FIELDS,
    OBJECT_FIELDS,
    OBJECT_MUTABLE,
    RUN_COLUMNS,
    TASK_COLUMNS,
    RunRecord,
    RunStore,
    TaskRecord,
    _check_events,
    _check_object_fields,
    _full_run_record,
    _full_task_record,
    _new_object,
    _run_update,
)

__all__ = ["APPLICATION_ID", "MIGRATIONS", "SCHEMA_VERSION", "SqliteStore"]

T = TypeVar("T")

APPLICATION_ID = 0x4A574653
"""``PRAGMA application_id`` of a jupyter_workflows store (``"JWFS"``)."""

_SQLITE_MAGIC = b"SQLite format 3\x00"
_HEADER_SIZE = 100

MIGRATIONS: list[tuple[str, ...]] = [
    # 0 -> 1: the initial schema.
    (
        """CREATE TABLE runs (
            run_id TEXT PRIMARY KEY,
            workflow TEXT,
            status TEXT,
            parameters TEXT,            -- JSON (artifacts.encode)
            outputs TEXT,               -- JSON
            error TEXT,
            created_at REAL NOT NULL,
            started_at REAL,
            ended_at REAL,
            definition TEXT,
            base_dir TEXT,
            code BLOB,
            parent_run_id TEXT,
            parent_task TEXT,
            owner TEXT,
            heartbeat_at REAL,
            options TEXT                -- JSON
        )""",
        # The index holds (created_at, rowid): newest first, insertion order breaking ties.
        "CREATE INDEX runs_by_created ON runs (created_at)",
        "CREATE INDEX runs_by_status ON runs (status)",
        "CREATE INDEX runs_by_parent ON runs (parent_run_id) WHERE parent_run_id IS NOT NULL",
        """CREATE TABLE tasks (
            run_id TEXT NOT NULL REFERENCES runs (run_id) ON DELETE CASCADE,
            exec_id TEXT NOT NULL,
            task TEXT,
            seq INTEGER,
            status TEXT,
            attempts INTEGER,
            input TEXT,                 -- JSON
            result TEXT,                -- JSON
            error TEXT,
            started_at REAL,
            ended_at REAL,
            worker TEXT,
            logs TEXT,                  -- JSON
            done,                       -- no type: an int stays an int, a float a float
            total,
            PRIMARY KEY (run_id, exec_id)
        )""",
        "CREATE INDEX tasks_by_seq ON tasks (run_id, seq)",
        """CREATE TABLE events (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            run_id TEXT NOT NULL REFERENCES runs (run_id) ON DELETE CASCADE,
            seq INTEGER NOT NULL,       -- 1, 2, ... within the run
            type TEXT NOT NULL,
            data TEXT NOT NULL,         -- the whole event, JSON
            created_at REAL NOT NULL,
            UNIQUE (run_id, seq)
        )""",
        """CREATE TABLE requests (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            run_id TEXT NOT NULL REFERENCES runs (run_id) ON DELETE CASCADE,
            kind TEXT NOT NULL,
            payload TEXT,               -- JSON
            created_at REAL NOT NULL
        )""",
        "CREATE INDEX requests_by_run ON requests (run_id, id)",
        """CREATE TABLE cache (
            key TEXT PRIMARY KEY,
            value TEXT NOT NULL,        -- JSON
            expire_at REAL,
            created_at REAL NOT NULL
        )""",
        """CREATE TABLE kv (
            key TEXT PRIMARY KEY,
            value TEXT NOT NULL,        -- JSON
            updated_at REAL NOT NULL
        )""",
        """CREATE TABLE secrets (
            name TEXT PRIMARY KEY,
            value TEXT NOT NULL,
            updated_at REAL NOT NULL
        )""",
    ),
    # 1 -> 2: lifecycle objects, their history, and watched file versions.
    (
        """CREATE TABLE objects (
            object_id TEXT PRIMARY KEY,
            lifecycle TEXT NOT NULL,
            state TEXT NOT NULL,
            data TEXT,                  -- JSON
            definition TEXT NOT NULL,   -- the lifecycle document (YAML/JSON)
            base_dir TEXT,
            pending TEXT,               -- JSON: an open approval
            version INTEGER NOT NULL DEFAULT 0,
            lock_owner TEXT,            -- host:pid:token of the transition in progress
            lock_at REAL,
            created_at REAL NOT NULL,
            updated_at REAL NOT NULL
        )""",
        """CREATE TABLE object_history (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            object_id TEXT NOT NULL REFERENCES objects (object_id) ON DELETE CASCADE,
            at REAL NOT NULL,
            outcome TEXT NOT NULL,      -- created | transitioned | refused
            from_state TEXT,
            to_state TEXT,
            reason TEXT,
            runs TEXT,                  -- JSON list of run ids
            started TEXT,               -- JSON list of run ids
            actor TEXT
        )""",
        "CREATE INDEX object_history_by_object ON object_history (object_id, id)",
        """CREATE TABLE watched_files (
            path TEXT NOT NULL,
            digest TEXT NOT NULL,       -- sha256 of the content: one version of the file
            size INTEGER,
            mtime REAL,
            status TEXT NOT NULL,       -- claimed | started
            runs TEXT,                  -- JSON list of run ids
            error TEXT,
            claimed_at REAL NOT NULL,
            PRIMARY KEY (path, digest)
        )""",
    ),
]
"""Schema migrations: ``MIGRATIONS[i]`` takes a store from version ``i`` to ``i + 1``."""

SCHEMA_VERSION = len(MIGRATIONS)
"""The schema version this code writes; a store with a higher ``user_version`` is refused."""

_RUN_NAMES = tuple(RUN_COLUMNS)
_TASK_NAMES = tuple(TASK_COLUMNS)

_INSERT_RUN = (
    f"INSERT INTO runs ({', '.join(_RUN_NAMES)}) VALUES ({', '.join('?' * len(_RUN_NAMES))})"
)
_UPSERT_TASK = (
    f"INSERT INTO tasks ({', '.join(_TASK_NAMES)}) VALUES ({', '.join('?' * len(_TASK_NAMES))}) "
    "ON CONFLICT (run_id, exec_id) DO UPDATE SET "
    + ", ".join(
        f"{name} = excluded.{name}" for name in _TASK_NAMES if name not in ("run_id", "exec_id")
    )
)
_INSERT_EVENT = (
    "INSERT INTO events (run_id, seq, type, data, created_at) VALUES "
    "(?1, COALESCE((SELECT MAX(seq) FROM events WHERE run_id = ?1), 0) + 1, ?2, ?3, ?4)"
)
_SELECT_RUN = f"SELECT {', '.join(_RUN_NAMES)} FROM runs"
_SELECT_TASK = f"SELECT {', '.join(_TASK_NAMES)} FROM tasks"

#: A buffered write: one statement and the parameter rows to run it with (``executemany``).
_Write = tuple[str, list[tuple[Any, ...]]]


#: Seconds after a commit before the background thread checkpoints (commits in between join).
CHECKPOINT_DELAY_S = 0.2
#: SQLite's own automatic checkpoint (inside a ``COMMIT``), a backstop for the background one:
#: 16,000 pages (64 MB with 4 KB pages) instead of SQLite's 1,000.
AUTOCHECKPOINT_PAGES = 16000


def _checkpoint_loop(ref: weakref.ReferenceType[SqliteStore], wake: threading.Event) -> None:
    """A store's checkpointer thread: after commits, a passive checkpoint on its own connection;
    ends when the store is closed or gone (it holds the store only weakly)."""
    while True:
        woken = wake.wait(timeout=5.0)
        store = ref()
        if store is None or store._checkpointer_stop:
            return
        if not woken:
            continue
        del store
        time.sleep(CHECKPOINT_DELAY_S)
        wake.clear()
        store = ref()
        if store is None or store._checkpointer_stop:
            return
        try:
            store._connection().execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
        except (sqlite3.Error, StoreError, OSError):  # the next commit's wake tries again
            pass
        del store


#: Every live SqliteStore, so a forked child can make each forget its parent's connections.
_INSTANCES: weakref.WeakSet[SqliteStore] = weakref.WeakSet()


def _forget_after_fork() -> None:
    for store in list(_INSTANCES):
        store._after_fork()


if hasattr(os, "register_at_fork"):  # POSIX
    os.register_at_fork(after_in_child=_forget_after_fork)


_INSERT_HISTORY = (
    "INSERT INTO object_history (object_id, at, outcome, from_state, to_state, reason, runs, "
    "started, actor) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
)


class _Empty(Exception):
    """There is no store to read yet (no file, or a file no one has initialised)."""


class SqliteStore(RunStore):
    """A :class:`~jupyter_workflows.store.base.RunStore` in one SQLite file; see the module doc.

    Parameters
    ----------
    path
        The database file. It and its parent folders are created on the first write.
    busy_timeout
        Seconds a statement waits for another process's write lock before failing.
    inline_limit
        Pickled values up to this many bytes are kept in the database; larger ones are written
        to artifact files in :attr:`artifact_dir`.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        busy_timeout: float = 10.0,
        inline_limit: int = artifacts.DEFAULT_INLINE_LIMIT,
    ) -> None:
        if os.fspath(path) in ("", ":memory:"):
            raise ValueError("SqliteStore needs a file path; use MemoryStore for a store in memory")
        #: Absolute, so a later ``os.chdir`` (kernels do that) does not move the store.
        self.path = Path(os.path.abspath(os.path.expanduser(os.fspath(path))))
        #: The folder of artifact files (large pickled values): ``<db path>.artifacts``.
        self.artifact_dir = self.path.with_name(self.path.name + ".artifacts")
        self._json_loads = artifacts.json_loader(self.artifact_dir)
        self.busy_timeout = busy_timeout
        self.inline_limit = inline_limit
        self._pending: list[_Write] = []
        self._pending_lock = threading.Lock()
        #: Held across a whole commit so commits from several threads keep their order.
        self._commit_lock = threading.RLock()
        self._open_lock = threading.Lock()
        self._ready = False  # the schema was checked (and migrated) by this instance
        self._checked = False  # PRAGMA quick_check passed before this instance's first write
        self._local = threading.local()
        self._connections: list[tuple[threading.Thread, sqlite3.Connection]] = []
        self._generation = 0  # bumped by close(): every thread reconnects afterwards
        _INSTANCES.add(self)
        #: Runs known to exist (created by this instance, or seen in the database).
        self._known_runs: set[str] = set()
        #: The background checkpointer (see the module doc), started by the first commit.
        self._checkpointer: threading.Thread | None = None
        self._checkpoint_wake: threading.Event | None = None  # made with the thread
        self._checkpointer_stop = False

    def __repr__(self) -> str:
        return f"SqliteStore({str(self.path)!r})"

    # -- encoding ---------------------------------------------------------------------------
    def _dumps(self, value: Any) -> str:
        encoded = artifacts.encode(value, self.artifact_dir, inline_limit=self.inline_limit)
        return json.dumps(encoded, separators=(",", ":"), allow_nan=False)

    def _loads(self, text: str | None) -> Any:
        if text is None:
            return None
        try:
            return self._json_loads(text)
        except StoreError:
            raise
        except Exception as exc:  # SQLite does not notice every damaged page: JSON does
            raise StoreError(
                f"{self.path}: the store is corrupt (a stored value is damaged: "
                f"{type(exc).__name__}: {exc})"
            ) from exc

    def _row(self, columns: Mapping[str, str], record: Mapping[str, Any]) -> tuple[Any, ...]:
        """A record as a row of SQL parameters, values encoded; text checked to be UTF-8-able."""
        row = []
        for name, kind in columns.items():
            value = record[name]
            if kind == "value":
                value = self._dumps(value)
            elif kind == "text" and value is not None:
                _check_utf8(name, value)
            row.append(value)
        return tuple(row)

    def _record(
        self, columns: Mapping[str, str], row: sqlite3.Row | tuple[Any, ...]
    ) -> dict[str, Any]:
        record = {}
        for (name, kind), value in zip(columns.items(), row, strict=True):
            record[name] = self._loads(value) if kind == "value" else value
        return record

    # -- connections ------------------------------------------------------------------------
    def _connection(self) -> sqlite3.Connection:
        """This thread's connection to the existing database file."""
        local = self._local
        conn = getattr(local, "conn", None)
        if conn is not None and local.generation == self._generation:
            return conn
        with self._translate():
            conn = sqlite3.connect(
                self.path.as_uri() + "?mode=rw",  # never creates the file: _create_file does
                uri=True,
                timeout=self.busy_timeout,
                isolation_level=None,  # we issue BEGIN / COMMIT ourselves
                check_same_thread=False,  # one thread uses it; close() may close it from another
            )
            try:
                conn.execute("PRAGMA foreign_keys = ON")
                conn.execute("PRAGMA synchronous = NORMAL")
                conn.execute(f"PRAGMA busy_timeout = {int(self.busy_timeout * 1000)}")
                # Reads the file's header: fails on a file that is not a database.
                conn.execute(f"PRAGMA wal_autocheckpoint = {AUTOCHECKPOINT_PAGES}")
            except BaseException:
                conn.close()  # never left open behind the error
                raise
        with self._open_lock:
            alive = []
            for thread, other in self._connections:
                if thread.is_alive():
                    alive.append((thread, other))
                else:
                    other.close()
            alive.append((threading.current_thread(), conn))
            self._connections = alive
        local.conn, local.generation = conn, self._generation
        return conn

    def _after_fork(self) -> None:
        """In a forked child: forget the parent's connections, locks and buffer, never use them.

        SQLite connections must not cross a fork, and the parent commits its own buffer.
        """
        self._pending = []
        self._pending_lock = threading.Lock()
        self._commit_lock = threading.RLock()
        self._open_lock = threading.Lock()
        self._connections = []
        self._local = threading.local()
        self._checkpointer = None  # the parent's thread did not cross the fork
        self._checkpoint_wake = None

    def _checkpoint_soon(self) -> None:
        """After a commit: have the background thread checkpoint shortly (starting it if need
        be)."""
        wake, thread = self._checkpoint_wake, self._checkpointer
        if wake is not None and thread is not None and thread.is_alive():
            wake.set()
            return
        with self._open_lock:
            if self._checkpoint_wake is None:
                self._checkpoint_wake = threading.Event()
            self._checkpoint_wake.set()
            if self._checkpointer is not None and self._checkpointer.is_alive():
                return
            self._checkpointer_stop = False
            thread = threading.Thread(
                target=_checkpoint_loop,
                args=(weakref.ref(self), self._checkpoint_wake),
                name="jupyter-workflows-sqlite-checkpoint",
                daemon=True,
            )
            thread.start()
            self._checkpointer = thread

    def _check_header(self) -> int:
        """The header's length (0: an empty file); raise unless it is a valid SQLite header.

        Checked here, before SQLite opens the file, so that a file that is not a database is
        recognised for sure and never touched. Another process (or thread) may be writing the
        first page right now: an empty file is an uninitialised store, and a short or invalid
        header is read once more after a moment before it is refused.
        """
        try:
            mode = os.stat(self.path).st_mode
        except OSError:
            mode = None
        if mode is not None and stat.S_ISDIR(mode):
            raise StoreError(f"{self.path}: not a jupyter_workflows store (it is a folder)")
        if mode is not None and not stat.S_ISREG(mode):
            # a FIFO would block the open below for ever; a device would be read for ever
            raise StoreError(
                f"{self.path}: not a jupyter_workflows store (not a regular file: a FIFO, a "
                "device or a socket)"
            )
        for attempt in range(2):
            try:
                with open(self.path, "rb") as handle:
                    header = handle.read(_HEADER_SIZE)
            except IsADirectoryError:
                raise StoreError(
                    f"{self.path}: not a jupyter_workflows store (it is a folder)"
                ) from None
            except OSError as exc:
                raise StoreError(
                    f"{self.path}: cannot open the store: {exc.strerror or exc}"
                ) from exc
            if not header or _valid_header(header):
                return len(header)
            if attempt == 0:
                time.sleep(0.05)
        raise StoreError(f"{self.path}: not a jupyter_workflows store (file is not a database)")

    def _version(self, conn: sqlite3.Connection) -> int:
        """The store's schema version; raise if the database is not ours or too new."""
        with self._translate():  # one statement: one snapshot, even while a migration commits
            app_id, version, tables = conn.execute(
                "SELECT (SELECT application_id FROM pragma_application_id),"
                " (SELECT user_version FROM pragma_user_version),"
                " (SELECT count(*) FROM sqlite_master)"
            ).fetchone()
        if app_id != APPLICATION_ID and (app_id != 0 or version != 0 or tables != 0):
            raise StoreError(
                f"{self.path}: not a jupyter_workflows store (an SQLite database of another program)"
            )
        if version > SCHEMA_VERSION:
            raise StoreError(
                f"{self.path}: store schema version {version} is newer than this "
                f"jupyter_workflows supports ({SCHEMA_VERSION}); upgrade jupyter_workflows"
            )
        return version

    def _reader(self) -> sqlite3.Connection:
        """A connection to read from; raises :class:`_Empty` when there is nothing to read."""
        if self._ready:
            return self._connection()
        if not self.path.exists():
            raise _Empty
        if self._check_header() == 0:  # created by a writer that has not initialised it yet
            raise _Empty
        version = self._version(self._connection())
        if version == 0:
            raise _Empty
        if version < SCHEMA_VERSION:
            self._migrate()  # the store exists and is ours: upgrading it on read is fine
        self._ready = True
        return self._connection()

    def _writer(self) -> sqlite3.Connection:
        """A connection to write with; creates the folders, the file and the schema if needed."""
        if self._ready:
            if not self._checked:
                self._check_integrity()  # read before written: check before the first write
                self._checked = True
            return self._connection()
        self._create_file()
        self._check_header()
        version = self._version(self._connection())
        if version > 0:
            self._check_integrity()
        self._checked = True
        if version < SCHEMA_VERSION:
            self._migrate()
        self._ready = True
        return self._connection()

    def _check_integrity(self) -> None:
        """Refuse to write into a damaged store (``PRAGMA quick_check``, once per instance).

        A page damaged past the first is invisible until a query reads it; writing on top of it
        can spread the damage. ``quick_check`` reads every page (O(size), without checking
        index contents), so it runs when a store is first opened for writing, not per write.
        """
        with self._translate():
            rows = self._connection().execute("PRAGMA quick_check(5)").fetchall()
        findings = [str(row[0]) for row in rows]
        if findings != ["ok"]:
            finding = " ".join(" ".join(findings).replace("*** in database main ***", "").split())
            raise StoreError(
                f"{self.path}: the store is damaged ({finding[:200]}); refusing to write "
                f"into it. Keep the file, recover what SQLite can into a new store "
                f"(sqlite3 {self.path} .recover | sqlite3 NEW.db), or restore a copy made with "
                f"sqlite3 {self.path} '.backup COPY.db'; list the damage with "
                f"jupyter-workflows store check --store {self.path}"
            )

    #: Columns a sound store always fills (the schema allows NULL for older versions' sake).
    _EXPECTED: tuple[tuple[str, str, str], ...] = (
        ("runs", "run_id", "workflow"),
        ("runs", "run_id", "status"),
        ("tasks", "run_id || '/' || exec_id", "task"),
        ("tasks", "run_id || '/' || exec_id", "status"),
    )

    def check(self, *, limit: int = 20) -> list[str]:
        """A full, read-only check; one line per finding (``[]``: the store is sound).

        ``PRAGMA integrity_check`` (every page and index), ``foreign_key_check`` (tasks and
        events of a missing run), and rows whose status or workflow is NULL (a store written by
        hand, or damaged in a way SQLite cannot see). Opened read-only: never created, migrated
        or written, so it is safe on a store another process is using. Raises
        :class:`StoreError` (one line) when the file is not a store at all.
        """
        if not self.path.exists():
            raise StoreError(f"{self.path}: no store here (nothing to check)")
        if self._check_header() == 0:
            return []  # created, not initialised yet: nothing in it can be damaged
        uri = "file:" + urllib.parse.quote(str(self.path)) + "?mode=ro"
        try:
            conn = sqlite3.connect(uri, uri=True, timeout=self.busy_timeout)
        except sqlite3.Error as exc:
            raise StoreError(self._describe(exc)) from exc
        findings: list[str] = []
        try:
            with self._translate():
                self._version(conn)
                rows = conn.execute(f"PRAGMA integrity_check({int(limit)})").fetchall()
            damage = [str(row[0]) for row in rows if str(row[0]) != "ok"]
            findings += [" ".join(line.split()) for line in damage]
            if damage:
                return findings  # reading rows of a damaged file may fail or mislead
            with self._translate():
                orphans = conn.execute("PRAGMA foreign_key_check").fetchall()
                for table, _rowid, parent, _fk in orphans[:limit]:
                    findings.append(f"{table}: a row refers to a missing row of {parent}")
                for table, key, column in self._EXPECTED:
                    found = conn.execute(
                        f"SELECT {key} FROM {table} WHERE {column} IS NULL LIMIT ?", (limit,)
                    ).fetchall()
                    findings += [f"{table} {row[0]}: {column} is NULL" for row in found]
        finally:
            conn.close()
        return findings[:limit] if len(findings) > limit else findings

    def backup(self, target: str | os.PathLike[str]) -> Path:
        """Copy the store to ``target`` (a new file) with SQLite's online backup: consistent
        while runs write to it. Artifact files (large values) are copied beside it."""
        target = Path(os.path.abspath(os.path.expanduser(os.fspath(target))))
        if target.exists():
            raise StoreError(f"{target}: already exists; name a new file for the backup")
        if target == self.path:
            raise StoreError(f"{target}: is the store itself; name a new file for the backup")
        try:
            self._reader()  # refuses what is not a store (and says so in one line)
        except _Empty:
            raise StoreError(f"{self.path}: no store here (nothing to back up)") from None
        if self._pending:
            self.commit()
        with self._translate():
            destination = sqlite3.connect(str(target))
            try:
                self._connection().backup(destination)
            finally:
                destination.close()
        if self.artifact_dir.is_dir():
            import shutil

            shutil.copytree(self.artifact_dir, target.with_name(target.name + ".artifacts"))
        return target

    def _create_file(self) -> None:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            return
        except OSError as exc:
            raise StoreError(
                f"{self.path}: cannot create the store: {exc.strerror or exc}"
            ) from exc
        os.close(fd)

    def _migrate(self) -> None:
        """Bring the schema to :data:`SCHEMA_VERSION`, in one transaction."""
        conn = self._connection()
        with self._translate():
            if conn.execute("PRAGMA journal_mode").fetchone()[0].lower() != "wal":
                conn.execute("PRAGMA journal_mode = WAL")  # persistent; cannot run in a transaction
            conn.execute("BEGIN IMMEDIATE")
            try:
                version = self._version(conn)  # again: another process may have migrated it
                for steps in MIGRATIONS[version:]:
                    for statement in steps:
                        conn.execute(statement)
                conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")
                conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
                conn.execute("COMMIT")
            except BaseException:
                _rollback(conn)
                raise

    @contextlib.contextmanager
    def _translate(self) -> Iterator[None]:
        """Turn SQLite's errors into one-line :class:`StoreError` s that name the store."""
        try:
            yield
        except (sqlite3.ProgrammingError, sqlite3.InterfaceError):
            raise  # our bugs, not the store's state
        except sqlite3.DatabaseError as exc:
            raise StoreError(self._describe(exc)) from exc

    def _describe(self, exc: sqlite3.Error) -> str:
        message = str(exc)
        if "file is not a database" in message:
            return f"{self.path}: not a jupyter_workflows store (file is not a database)"
        if "malformed" in message or "corrupt" in message:
            return f"{self.path}: the store is corrupt ({message})"
        if "locked" in message or "busy" in message:
            return f"{self.path}: the store is busy ({message} after {self.busy_timeout:g} s)"
        return f"{self.path}: {message}"

    def _read(self, query: Callable[[sqlite3.Connection], T], empty: T) -> T:
        """Run ``query`` after committing this instance's buffer; ``empty`` if there is no store."""
        if self._pending:
            self.commit()
        try:
            conn = self._reader()
        except _Empty:
            return empty
        with self._translate():
            return query(conn)

    # -- writes -----------------------------------------------------------------------------
    def _buffer(self, sql: str, rows: list[tuple[Any, ...]]) -> None:
        with self._pending_lock:
            if self._pending and self._pending[-1][0] == sql:
                self._pending[-1][1].extend(rows)
            else:
                self._pending.append((sql, rows))

    def _transaction(self, then: Callable[[sqlite3.Connection], T] | None = None) -> T | None:
        """Commit the buffer, and run ``then`` in the same transaction."""
        with self._commit_lock:
            with self._pending_lock:
                pending, self._pending = self._pending, []
            if not pending and then is None:
                return None
            try:
                conn = self._writer()
                with self._translate():
                    conn.execute("BEGIN IMMEDIATE")
                    try:
                        for sql, rows in pending:
                            conn.executemany(sql, rows)
                        result = then(conn) if then is not None else None
                        conn.execute("COMMIT")
                    except BaseException:
                        _rollback(conn)
                        raise
                self._checkpoint_soon()
            except BaseException as exc:
                if _is_passing(exc):  # keep the writes for the next commit, in order
                    with self._pending_lock:
                        self._pending[:0] = pending
                    raise
                self._known_runs.clear()  # runs created in the lost batch do not exist
                lost = sum(len(rows) for _, rows in pending)
                if isinstance(exc, StoreError):
                    raise StoreError(f"{exc}; {lost} buffered writes were discarded") from exc
                raise StoreError(
                    f"{self.path}: commit failed ({type(exc).__name__}: {exc}); "
                    f"{lost} buffered writes were discarded"
                ) from exc
            return result

    def commit(self) -> None:
        """Write every buffered write in one transaction (creating the store if need be)."""
        self._transaction()

    def _require_run(self, run_id: str) -> None:
        if run_id in self._known_runs:
            return
        try:
            conn = self._reader()
        except _Empty:
            conn = None
        if conn is not None:
            with self._translate():
                found = conn.execute("SELECT 1 FROM runs WHERE run_id = ?", (run_id,)).fetchone()
            if found:
                self._known_runs.add(run_id)
                return
        raise RunNotFound(f"no run {run_id!r} in the store {self.path}")

    # -- event log --------------------------------------------------------------------------
    def append_events(self, run_id: str, events: list[dict[str, Any]]) -> None:
        _check_events(events)
        self._require_run(run_id)
        now = time.time()
        rows = [(run_id, event["type"], self._dumps(event), now) for event in events]
        if rows:
            self._buffer(_INSERT_EVENT, rows)

    def load_events(self, run_id: str) -> list[dict[str, Any]]:
        def query(conn: sqlite3.Connection) -> list[dict[str, Any]]:
            rows = conn.execute(
                "SELECT data FROM events WHERE run_id = ? ORDER BY seq", (run_id,)
            ).fetchall()
            return [self._loads(data) for (data,) in rows]

        return self._read(query, [])

    # -- projections ------------------------------------------------------------------------
    def create_run(self, record: RunRecord) -> None:
        full = _full_run_record(record)
        run_id = full["run_id"]
        exists = run_id in self._known_runs
        if not exists:
            with contextlib.suppress(RunNotFound):
                self._require_run(run_id)
                exists = True
        if exists:
            raise StoreError(f"run {run_id!r} already exists in the store {self.path}")
        row = self._row(RUN_COLUMNS, full)
        self._buffer(_INSERT_RUN, [row])
        self._known_runs.add(run_id)

    def update_run(self, run_id: str, **fields: Any) -> None:
        fields = _run_update(fields)
        self._require_run(run_id)
        if not fields:
            return
        names = sorted(fields)
        columns = {name: RUN_COLUMNS[name] for name in names}
        row = self._row(columns, fields)
        sql = f"UPDATE runs SET {', '.join(f'{name} = ?' for name in names)} WHERE run_id = ?"
        self._buffer(sql, [(*row, run_id)])

    def upsert_tasks(self, run_id: str, records: list[TaskRecord]) -> None:
        full = [_full_task_record(run_id, record) for record in records]
        self._require_run(run_id)
        rows = [self._row(TASK_COLUMNS, record) for record in full]
        if rows:
            self._buffer(_UPSERT_TASK, rows)

    def get_run(self, run_id: str) -> RunRecord | None:
        def query(conn: sqlite3.Connection) -> RunRecord | None:
            row = conn.execute(f"{_SELECT_RUN} WHERE run_id = ?", (run_id,)).fetchone()
            return None if row is None else self._record(RUN_COLUMNS, row)  # type: ignore[return-value]

        return self._read(query, None)

    def list_runs(self, limit: int | None = None) -> list[RunRecord]:
        def query(conn: sqlite3.Connection) -> list[RunRecord]:
            rows = conn.execute(
                f"{_SELECT_RUN} ORDER BY created_at DESC, rowid DESC LIMIT ?",
                (-1 if limit is None else max(limit, 0),),
            ).fetchall()
            return [self._record(RUN_COLUMNS, row) for row in rows]  # type: ignore[misc]

        return self._read(query, [])

    def get_tasks(self, run_id: str) -> list[TaskRecord]:
        def query(conn: sqlite3.Connection) -> list[TaskRecord]:
            rows = conn.execute(
                f"{_SELECT_TASK} WHERE run_id = ? ORDER BY seq IS NULL, seq, rowid", (run_id,)
            ).fetchall()
            return [self._record(TASK_COLUMNS, row) for row in rows]  # type: ignore[misc]

        return self._read(query, [])

    def delete_run(self, run_id: str) -> None:
        self._require_run(run_id)

        def delete(conn: sqlite3.Connection) -> int:
            return conn.execute("DELETE FROM runs WHERE run_id = ?", (run_id,)).rowcount

        deleted = self._transaction(delete)
        self._known_runs.discard(run_id)
        if not deleted:
            raise RunNotFound(f"no run {run_id!r} in the store {self.path}")

    # -- control across processes -----------------------------------------------------------
    def add_request(self, run_id: str, kind: str, payload: Any = None) -> None:
        self._require_run(run_id)
        row = (run_id, kind, self._dumps(payload), time.time())
        # Run inside the commit rather than buffered: if the commit fails, the caller knows the
        # request was not made, and no later commit makes it behind the caller's back.
        self._transaction(
            lambda conn: conn.execute(
                "INSERT INTO requests (run_id, kind, payload, created_at) VALUES (?, ?, ?, ?)", row
            )
        )

    def take_requests(self, run_id: str) -> list[dict[str, Any]]:
        select = "SELECT id, kind, payload, created_at FROM requests WHERE run_id = ? ORDER BY id"
        if not self._pending:
            # The orchestrator polls this often: look first, and take the write lock only when
            # there is something to take.
            found = self._read(
                lambda conn: conn.execute(
                    "SELECT 1 FROM requests WHERE run_id = ? LIMIT 1", (run_id,)
                ).fetchone(),
                None,
            )
            if found is None:
                return []

        def take(conn: sqlite3.Connection) -> list[dict[str, Any]]:
            rows = conn.execute(select, (run_id,)).fetchall()
            if rows:
                conn.execute(
                    "DELETE FROM requests WHERE run_id = ? AND id <= ?", (run_id, rows[-1][0])
                )
            return [
                {"kind": kind, "payload": self._loads(payload), "created_at": created_at}
                for _, kind, payload, created_at in rows
            ]

        return self._transaction(take) or []

    def heartbeat(self, run_ids: Collection[str], at: float, owner: str) -> None:
        # One statement for every run (not an UPDATE and a commit per run: a heartbeat of
        # 1,000 runs held the orchestrator's loop for 50-160 ms, 10,000 for over a second).
        rows = [(at, owner, run_id) for run_id in run_ids]
        if rows:
            self._buffer("UPDATE runs SET heartbeat_at = ?, owner = ? WHERE run_id = ?", rows)

    def take_all_requests(self, run_ids: Collection[str]) -> dict[str, list[dict[str, Any]]]:
        # One look for every run; the write lock only for the runs that have requests.
        wanted = set(run_ids)
        if not wanted:
            return {}
        found: list[str] = self._read(
            lambda conn: [row[0] for row in conn.execute("SELECT DISTINCT run_id FROM requests")],
            [],
        )
        taken: dict[str, list[dict[str, Any]]] = {}
        for run_id in found:
            if run_id in wanted:
                requests = self.take_requests(run_id)
                if requests:
                    taken[run_id] = requests
        return taken

    # -- cache, kv, secrets -----------------------------------------------------------------
    def cache_get(self, key: str, now: float) -> tuple[bool, Any]:
        row = self._read(
            lambda conn: conn.execute(
                "SELECT value, expire_at FROM cache WHERE key = ?", (key,)
            ).fetchone(),
            None,
        )
        if row is None or (row[1] is not None and row[1] <= now):
            return False, None
        return True, self._loads(row[0])

    def cache_put(self, key: str, value: Any, expire_at: float | None) -> None:
        _check_utf8("cache key", key)
        row = (key, self._dumps(value), expire_at, time.time())
        self._buffer(
            "INSERT INTO cache (key, value, expire_at, created_at) VALUES (?, ?, ?, ?) "
            "ON CONFLICT (key) DO UPDATE SET value = excluded.value, "
            "expire_at = excluded.expire_at, created_at = excluded.created_at",
            [row],
        )

    def kv_get(self, key: str, default: Any = None) -> Any:
        row = self._read(
            lambda conn: conn.execute("SELECT value FROM kv WHERE key = ?", (key,)).fetchone(), None
        )
        return default if row is None else self._loads(row[0])

    def kv_set(self, key: str, value: Any) -> None:
        _check_utf8("kv key", key)
        row = (key, self._dumps(value), time.time())
        self._transaction(
            lambda conn: conn.execute(
                "INSERT INTO kv (key, value, updated_at) VALUES (?, ?, ?) ON CONFLICT (key) "
                "DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at",
                row,
            )
        )

    def kv_delete(self, key: str) -> None:
        self._transaction(lambda conn: conn.execute("DELETE FROM kv WHERE key = ?", (key,)))

    def secret_get(self, name: str) -> str | None:
        row = self._read(
            lambda conn: conn.execute(
                "SELECT value FROM secrets WHERE name = ?", (name,)
            ).fetchone(),
            None,
        )
        return None if row is None else row[0]

    def secret_set(self, name: str, value: str) -> None:
        if not isinstance(value, str):
            raise TypeError(f"secret {name!r} must be a str, not {type(value).__name__}")
        _check_utf8("secret name", name)
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise ValueError(f"secret {name!r} is not valid text") from None  # never echo it
        row = (name, value, time.time())
        self._transaction(
            lambda conn: conn.execute(
                "INSERT INTO secrets (name, value, updated_at) VALUES (?, ?, ?) ON CONFLICT (name) "
                "DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at",
                row,
            )
        )

    # -- lifecycle objects and watched files ------------------------------------------------
    def _object_row(self, row: tuple[Any, ...]) -> dict[str, Any]:
        record = dict(zip(OBJECT_FIELDS, row, strict=True))
        record["data"] = self._loads(record["data"])
        record["pending"] = self._loads(record["pending"])
        return record

    def _history_row(self, row: tuple[Any, ...]) -> dict[str, Any]:
        entry = dict(zip(HISTORY_FIELDS, row, strict=True))
        entry["runs"] = self._loads(entry["runs"]) or []
        entry["started"] = self._loads(entry["started"]) or []
        return entry

    def object_create(self, record: Mapping[str, Any]) -> bool:
        full = _new_object(record)
        _check_utf8("object id", full["object_id"])
        values = [
            self._dumps(full[name]) if name in ("data", "pending") else full[name]
            for name in OBJECT_FIELDS
        ]
        sql = (
            f"INSERT INTO objects ({', '.join(OBJECT_FIELDS)}) VALUES "
            f"({', '.join('?' * len(OBJECT_FIELDS))}) ON CONFLICT (object_id) DO NOTHING"
        )
        return bool(self._transaction(lambda conn: conn.execute(sql, values).rowcount))

    def object_get(self, object_id: str) -> dict[str, Any] | None:
        row = self._read(
            lambda conn: conn.execute(
                f"SELECT {', '.join(OBJECT_FIELDS)} FROM objects WHERE object_id = ?", (object_id,)
            ).fetchone(),
            None,
        )
        return None if row is None else self._object_row(row)

    def object_list(self) -> list[dict[str, Any]]:
        rows: list[Any] = self._read(
            lambda conn: conn.execute(
                f"SELECT {', '.join(OBJECT_FIELDS)} FROM objects ORDER BY created_at, rowid"
            ).fetchall(),
            [],
        )
        return [self._object_row(row) for row in rows]

    def object_lock(self, object_id: str, owner: str, *, steal: str | None = None) -> bool:
        sql = (
            "UPDATE objects SET lock_owner = ?, lock_at = ? WHERE object_id = ? AND "
            "(lock_owner IS NULL OR lock_owner = ?)"
        )
        params = (owner, time.time(), object_id, steal if steal is not None else owner)
        return bool(self._transaction(lambda conn: conn.execute(sql, params).rowcount))

    def object_unlock(self, object_id: str, owner: str) -> None:
        self._transaction(
            lambda conn: conn.execute(
                "UPDATE objects SET lock_owner = NULL, lock_at = NULL "
                "WHERE object_id = ? AND lock_owner = ?",
                (object_id, owner),
            )
        )

    def object_save(
        self,
        object_id: str,
        owner: str,
        fields: Mapping[str, Any],
        history: Mapping[str, Any] | None = None,
        *,
        unlock: bool = True,
    ) -> int | None:
        _check_object_fields(fields, tuple(OBJECT_MUTABLE))
        names = sorted(fields)
        values = [
            self._dumps(fields[name]) if name in ("data", "pending") else fields[name]
            for name in names
        ]
        sets = [f"{name} = ?" for name in names] + ["version = version + 1", "updated_at = ?"]
        if unlock:
            sets += ["lock_owner = NULL", "lock_at = NULL"]
        update = f"UPDATE objects SET {', '.join(sets)} WHERE object_id = ? AND lock_owner = ?"
        params = (*values, time.time(), object_id, owner)
        note = self._history_values(object_id, history) if history is not None else None

        def save(conn: sqlite3.Connection) -> int | None:
            # Nothing of ours is written when the lock is not held; the transaction still
            # commits (it carries this instance's buffered writes).
            if conn.execute(update, params).rowcount != 1:
                return -1
            if note is None:
                return None
            return conn.execute(_INSERT_HISTORY, note).lastrowid

        entry_id = self._transaction(save)
        if entry_id == -1:
            raise StoreError(
                f"lifecycle object {object_id!r}: the transition lost its lock "
                "(another process took it over); nothing was changed"
            )
        return entry_id

    def _history_values(self, object_id: str, entry: Mapping[str, Any]) -> tuple[Any, ...]:
        _check_object_fields(entry, HISTORY_FIELDS)
        if not isinstance(entry.get("outcome"), str):
            raise ValueError("a history entry needs an 'outcome'")
        return (
            object_id,
            entry.get("at") or time.time(),
            entry["outcome"],
            entry.get("from_state"),
            entry.get("to_state"),
            entry.get("reason"),
            self._dumps(list(entry.get("runs") or [])),
            self._dumps(list(entry.get("started") or [])),
            entry.get("actor"),
        )

    def object_note(self, object_id: str, entry: Mapping[str, Any]) -> int:
        values = self._history_values(object_id, entry)

        def note(conn: sqlite3.Connection) -> int:
            found = conn.execute("SELECT 1 FROM objects WHERE object_id = ?", (object_id,))
            if found.fetchone() is None:
                return -1
            return int(conn.execute(_INSERT_HISTORY, values).lastrowid or 0)

        entry_id = int(self._transaction(note) or 0)
        if entry_id == -1:
            raise StoreError(f"no lifecycle object {object_id!r} in the store {self.path}")
        return entry_id

    def object_note_started(self, entry_id: int, run_ids: list[str]) -> None:
        text = self._dumps(list(run_ids))
        self._transaction(
            lambda conn: conn.execute(
                "UPDATE object_history SET started = ? WHERE id = ?", (text, entry_id)
            )
        )

    def object_history(self, object_id: str) -> list[dict[str, Any]]:
        rows: list[Any] = self._read(
            lambda conn: conn.execute(
                f"SELECT {', '.join(HISTORY_FIELDS)} FROM object_history WHERE object_id = ? "
                "ORDER BY id",
                (object_id,),
            ).fetchall(),
            [],
        )
        return [self._history_row(row) for row in rows]

    def file_claim(self, path: str, digest: str, size: int, mtime: float) -> bool:
        _check_utf8("file path", path)
        row = (path, digest, int(size), float(mtime), time.time())
        return bool(
            self._transaction(
                lambda conn: (
                    conn.execute(
                        "INSERT INTO watched_files (path, digest, size, mtime, status, claimed_at) "
                        "VALUES (?, ?, ?, ?, 'claimed', ?) ON CONFLICT (path, digest) DO NOTHING",
                        row,
                    ).rowcount
                )
            )
        )

    def file_done(self, path: str, digest: str, runs: list[str], error: str | None = None) -> None:
        row = (self._dumps(list(runs)), error, path, digest)
        self._transaction(
            lambda conn: conn.execute(
                "UPDATE watched_files SET status = 'started', runs = ?, error = ? "
                "WHERE path = ? AND digest = ?",
                row,
            )
        )

    def file_list(self, *, claimed_only: bool = False) -> list[dict[str, Any]]:
        where = " WHERE status = 'claimed'" if claimed_only else ""
        rows: list[Any] = self._read(
            lambda conn: conn.execute(
                "SELECT path, digest, size, mtime, status, runs, error, claimed_at "
                f"FROM watched_files{where} ORDER BY claimed_at, rowid"
            ).fetchall(),
            [],
        )
        names = ("path", "digest", "size", "mtime", "status", "runs", "error", "claimed_at")
        out = []
        for row in rows:
            record = dict(zip(names, row, strict=True))
            record["runs"] = self._loads(record["runs"]) or []
            out.append(record)
        return out

    # -- maintenance ------------------------------------------------------------------------
    def integrity_check(self) -> str:
        """``"ok"``, or SQLite's findings (``PRAGMA integrity_check``), one per line.

        Reads every page: seconds on a large store. A store that does not exist yet is ``"ok"``.
        """
        rows = self._read(lambda conn: conn.execute("PRAGMA integrity_check").fetchall(), [("ok",)])
        return "\n".join(str(row[0]) for row in rows)

    def close(self) -> None:
        """Commit the buffer and close every thread's connection (a later use reopens)."""
        try:
            self.commit()
        finally:
            with self._open_lock:
                connections, self._connections = self._connections, []
                self._generation += 1
                self._checkpointer_stop = True  # a later commit starts another
                if self._checkpoint_wake is not None:
                    self._checkpoint_wake.set()
            for _, conn in connections:
                with contextlib.suppress(sqlite3.Error):
                    conn.close()


def _valid_header(header: bytes) -> bool:
    """Whether ``header`` is a plausible SQLite database header (see the file format spec)."""
    if len(header) < _HEADER_SIZE or not header.startswith(_SQLITE_MAGIC):
        return False
    page_size = int.from_bytes(header[16:18], "big")
    page_size = 65536 if page_size == 1 else page_size
    return (
        512 <= page_size <= 65536
        and page_size & (page_size - 1) == 0
        and header[18] in (1, 2)
        and header[19] in (1, 2)
        and header[21:24] == bytes((64, 32, 32))  # payload fractions: always these
    )


def _rollback(conn: sqlite3.Connection) -> None:
    if conn.in_transaction:
        with contextlib.suppress(sqlite3.Error):
            conn.execute("ROLLBACK")


def _is_passing(exc: BaseException) -> bool:
    """Whether a failed commit may succeed later with the same writes.

    Only a constraint violation, or a value SQLite cannot bind, is the writes' own fault: those
    would fail every time. Anything else (busy, disk full, I/O, ^C, a store that cannot be opened
    now) says nothing against them.
    """
    cause = exc.__cause__ if isinstance(exc, StoreError) and exc.__cause__ is not None else exc
    if isinstance(cause, sqlite3.IntegrityError | sqlite3.InterfaceError):
        return False
    return isinstance(cause, StoreError | OSError | sqlite3.DatabaseError) or not isinstance(
        cause, Exception
    )


def _check_utf8(name: str, value: str) -> None:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError(f"{name} is not valid text (it has a lone surrogate)") from None
