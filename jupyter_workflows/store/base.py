"""The store interface: every persisted change of a run goes through it.

Two kinds of data:

- the **event log** (append-only, per run): the events the run state machine consumed, in order.
  It is the source of truth: replaying it rebuilds a run's state exactly (resume).
- **projections** (runs, task executions): written after each batch of events, for listing and
  showing runs without replaying.

Writes are buffered and made durable by :meth:`RunStore.commit`; the orchestrator commits before
it acts on what a batch of events decided (write-ahead). Values (results, inputs, outputs,
parameters) are whatever Python objects the engine has: a store encodes them (JSON when it can,
else pickled artifacts) and decodes them on read.

Rules every implementation keeps (``tests/store/test_store_contract.py`` pins them):

- **Read your own writes.** A read on a store instance sees that instance's buffered writes
  (:class:`~jupyter_workflows.store.sqlite.SqliteStore` commits its buffer before it reads);
  other instances and processes see them once committed.
- **Values are snapshots.** A value is copied (or encoded) when it is written, and every read
  returns fresh objects: mutating what you wrote or read never changes the store.
- **Runs first.** :meth:`RunStore.create_run` comes before anything else about the run; events,
  task executions, updates and requests for an unknown run raise
  :class:`~jupyter_workflows.exceptions.RunNotFound` at the call (not later, at commit).
- **Known fields only, checked at the call.** A field that :class:`RunRecord` /
  :class:`TaskRecord` does not declare raises ``ValueError``, and a value of the wrong kind (see
  :data:`RUN_COLUMNS`) raises ``TypeError``, when the write is buffered (numbers are made plain
  ``int`` / ``float``, so ``numpy.int64`` fits): a typo cannot vanish
  into the store, and a bad value cannot make a later :meth:`RunStore.commit` fail for the whole
  batch. Adding a field means adding it here and a schema migration in ``sqlite.py``.
- Events are dicts with a ``str`` ``"type"``; anything else raises ``ValueError``.
- Records read back carry every declared field (``None`` where nothing was written; ``logs``
  ``[]``, ``attempts`` ``0``, ``parameters`` and ``options`` ``{}``).
"""

from __future__ import annotations

import math
import numbers
import time
from abc import ABC, abstractmethod
from collections.abc import Collection, Mapping
from types import TracebackType
from typing import Any, Literal, TypedDict

from ..exceptions import RunNotFound

__all__ = [
    "HISTORY_FIELDS",
    "OBJECT_FIELDS",
    "OBJECT_MUTABLE",
    "RUN_COLUMNS",
    "RUN_FIELDS",
    "TASK_COLUMNS",
    "TASK_FIELDS",
    "RunRecord",
    "RunStore",
    "TaskRecord",
    "ValueKind",
]


class RunRecord(TypedDict, total=False):
    """A run's projection row."""

    run_id: str
    workflow: str
    status: str
    parameters: dict[str, Any]
    outputs: dict[str, Any] | None
    error: str | None
    created_at: float
    started_at: float | None
    ended_at: float | None
    #: The workflow document (YAML) and its folder, so another process can resume the run.
    definition: str
    base_dir: str
    #: cloudpickled ``{action name: function}`` for actions defined in a kernel.
    code: bytes | None
    parent_run_id: str | None
    parent_task: str | None
    #: Orchestrator process owning the run: ``host:pid``; and its last heartbeat (epoch seconds).
    owner: str | None
    heartbeat_at: float | None
    options: dict[str, Any]


class TaskRecord(TypedDict, total=False):
    """A task execution's projection row (one per execution; a retried task is one row)."""

    run_id: str
    exec_id: str
    task: str
    seq: int
    status: str
    attempts: int
    input: Any
    result: Any
    error: str | None
    started_at: float | None
    ended_at: float | None
    worker: str | None
    logs: list[str]
    done: float | None
    total: float | None


ValueKind = Literal["text", "real", "int", "number", "bytes", "value"]
"""How a store keeps a field. ``None`` fits every kind.

- ``text``: a ``str``;
- ``real``: a real number, kept as ``float`` (``3`` reads back as ``3.0``);
- ``int``: an integral number (``numpy.int64`` too), kept as ``int``;
- ``number``: an integral number kept as ``int``, any other real number as ``float`` (progress
  counters, which users report);
- ``bytes``: ``bytes``;
- ``value``: any Python value, encoded by the store.

``bool`` is not a number here: ``True`` where a number belongs is a bug.
"""

RUN_COLUMNS: Mapping[str, ValueKind] = {
    "run_id": "text",
    "workflow": "text",
    "status": "text",
    "parameters": "value",
    "outputs": "value",
    "error": "text",
    "created_at": "real",
    "started_at": "real",
    "ended_at": "real",
    "definition": "text",
    "base_dir": "text",
    "code": "bytes",
    "parent_run_id": "text",
    "parent_task": "text",
    "owner": "text",
    "heartbeat_at": "real",
    "options": "value",
}
"""Every field of :class:`RunRecord` with the kind of value it holds."""

TASK_COLUMNS: Mapping[str, ValueKind] = {
    "run_id": "text",
    "exec_id": "text",
    "task": "text",
    "seq": "int",
    "status": "text",
    "attempts": "int",
    "input": "value",
    "result": "value",
    "error": "text",
    "started_at": "real",
    "ended_at": "real",
    "worker": "text",
    "logs": "value",
    "done": "number",
    "total": "number",
}
"""Every field of :class:`TaskRecord` with the kind of value it holds."""

OBJECT_FIELDS: tuple[str, ...] = (
    "object_id",
    "lifecycle",
    "state",
    "data",
    "definition",
    "base_dir",
    "pending",
    "version",
    "lock_owner",
    "lock_at",
    "created_at",
    "updated_at",
)
"""Every field of a lifecycle object (``data`` and ``pending`` are values, the rest plain)."""

HISTORY_FIELDS: tuple[str, ...] = (
    "id",
    "object_id",
    "at",
    "outcome",
    "from_state",
    "to_state",
    "reason",
    "runs",
    "started",
    "actor",
)
"""Every field of a history entry; ``outcome`` is ``created``, ``transitioned`` or ``refused``;
``runs`` and ``started`` are lists of run ids (exit/entry workflows; the new state's workflows)."""

OBJECT_MUTABLE = frozenset({"state", "data", "definition", "base_dir", "pending", "lifecycle"})
"""The fields :meth:`RunStore.object_save` may change."""

RUN_FIELDS: frozenset[str] = frozenset(RUN_COLUMNS)
"""Every field a :class:`RunRecord` may have."""

TASK_FIELDS: frozenset[str] = frozenset(TASK_COLUMNS)
"""Every field a :class:`TaskRecord` may have."""

_INT64 = range(-(2**63), 2**63)
_EXPECTED = {"text": "str", "real": "float", "int": "int", "number": "a number", "bytes": "bytes"}


def _coerce(kind: ValueKind, value: Any) -> Any:
    """``value`` as the kind keeps it; raises ``TypeError`` (by the caller) when it does not fit."""
    if value is None or kind == "value":
        return value
    if kind == "text":
        if isinstance(value, str):
            return value
    elif kind == "bytes":
        if isinstance(value, bytes):
            return value
    elif not isinstance(value, bool):
        if kind != "real" and isinstance(value, numbers.Integral) and int(value) in _INT64:
            return int(value)
        if kind != "int" and isinstance(value, numbers.Real):
            return float(value)
    raise TypeError


def _coerce_fields(
    what: str, fields: Mapping[str, Any], columns: Mapping[str, ValueKind]
) -> dict[str, Any]:
    """``fields`` with numbers made plain ``int`` / ``float``.

    Raises ``ValueError`` for unknown fields and ``TypeError`` for values of the wrong kind.
    """
    unknown = sorted(set(fields) - set(columns))
    if unknown:
        raise ValueError(
            f"unknown {what} field(s) {', '.join(map(repr, unknown))}; "
            f"known: {', '.join(sorted(columns))}"
        )
    coerced = {}
    for name, value in fields.items():
        kind = columns[name]
        try:
            coerced[name] = _coerce(kind, value)
        except TypeError:
            raise TypeError(
                f"{what} field {name!r} must be {_EXPECTED[kind]} or None, "
                f"not {type(value).__name__}"
            ) from None
        # Only numbers the store keeps as numbers are checked: a ``value`` field holds user
        # values (a DataFrame, an array), which are never compared (``==`` on them is not a
        # bool); NaN inside one is the value's business and round-trips through its encoding.
        if kind != "value" and type(coerced[name]) is float and math.isnan(coerced[name]):
            raise ValueError(f"{what} field {name!r} must not be NaN")  # SQLite: NaN -> NULL
    return coerced


def _full_run_record(record: Mapping[str, Any]) -> dict[str, Any]:
    """``record`` checked and completed with every field's default (for ``create_run``)."""
    coerced = _coerce_fields("run", record, RUN_COLUMNS)
    if not coerced.get("run_id"):
        raise ValueError("a run record needs a non-empty 'run_id'")
    full: dict[str, Any] = dict.fromkeys(RUN_COLUMNS)
    full.update(status="pending", parameters={}, options={})
    full.update(coerced)
    if full["created_at"] is None:
        full["created_at"] = time.time()
    return full


def _run_update(fields: Mapping[str, Any]) -> dict[str, Any]:
    """``fields`` checked and coerced (for ``update_run``, whose ``run_id`` is its own)."""
    coerced = _coerce_fields("run", fields, RUN_COLUMNS)
    if "created_at" in coerced and coerced["created_at"] is None:
        raise ValueError("a run's 'created_at' cannot be None")
    return coerced


def _full_task_record(run_id: str, record: Mapping[str, Any]) -> dict[str, Any]:
    """``record`` checked and completed with every field's default (for ``upsert_tasks``)."""
    coerced = _coerce_fields("task", record, TASK_COLUMNS)
    if not coerced.get("exec_id"):
        raise ValueError("a task record needs a non-empty 'exec_id'")
    if coerced.get("run_id", run_id) != run_id:
        raise ValueError(f"task record of run {coerced['run_id']!r} upserted into run {run_id!r}")
    full: dict[str, Any] = dict.fromkeys(TASK_COLUMNS)
    full.update(attempts=0, logs=[])
    full.update(coerced)
    full["run_id"] = run_id
    return full


def _check_events(events: list[dict[str, Any]]) -> None:
    """Every event is a dict with a ``str`` ``"type"`` (for ``append_events``)."""
    for event in events:
        if not isinstance(event, dict) or not isinstance(event.get("type"), str):
            raise ValueError(f"an event must be a dict with a str 'type', not {event!r:.80}")


def _check_object_fields(
    fields: Mapping[str, Any], allowed: frozenset[str] | tuple[str, ...]
) -> None:
    """Unknown object fields raise ``ValueError``; ids, names and states must be ``str``."""
    unknown = sorted(set(fields) - set(allowed))
    if unknown:
        raise ValueError(f"unknown lifecycle object field(s) {', '.join(map(repr, unknown))}")
    for name in ("object_id", "lifecycle", "state", "definition"):
        if name in fields and not isinstance(fields[name], str):
            raise TypeError(f"lifecycle object field {name!r} must be str")


def _new_object(record: Mapping[str, Any]) -> dict[str, Any]:
    """``record`` checked and completed (for ``object_create``)."""
    _check_object_fields(record, OBJECT_FIELDS)
    for name in ("object_id", "lifecycle", "state", "definition"):
        if not record.get(name):
            raise ValueError(f"a lifecycle object needs a non-empty {name!r}")
    now = time.time()
    full: dict[str, Any] = dict.fromkeys(OBJECT_FIELDS)
    full.update(version=0, created_at=now, updated_at=now)
    full.update(record)
    full["lock_owner"] = full["lock_at"] = None
    return full


class RunStore(ABC):
    """Persistence of runs: event log, projections, control requests, cache, kv, secrets."""

    # -- event log --------------------------------------------------------------------------
    @abstractmethod
    def append_events(self, run_id: str, events: list[dict[str, Any]]) -> None:
        """Append events (plain dicts with a ``"type"`` key) to the run's log (buffered)."""

    @abstractmethod
    def load_events(self, run_id: str) -> list[dict[str, Any]]:
        """The run's events in append order (decoded)."""

    # -- projections ------------------------------------------------------------------------
    @abstractmethod
    def create_run(self, record: RunRecord) -> None:
        """Insert a new run (buffered)."""

    @abstractmethod
    def update_run(self, run_id: str, **fields: Any) -> None:
        """Change fields of a run (buffered)."""

    @abstractmethod
    def upsert_tasks(self, run_id: str, records: list[TaskRecord]) -> None:
        """Insert or replace task executions, keyed by ``(run_id, exec_id)`` (buffered)."""

    @abstractmethod
    def get_run(self, run_id: str) -> RunRecord | None:
        """One run, or None."""

    @abstractmethod
    def list_runs(self, limit: int | None = None) -> list[RunRecord]:
        """Runs, newest first (by ``created_at``)."""

    @abstractmethod
    def get_tasks(self, run_id: str) -> list[TaskRecord]:
        """A run's task executions in the order they started (``seq``)."""

    @abstractmethod
    def commit(self) -> None:
        """Make every buffered write durable."""

    # -- control across processes -----------------------------------------------------------
    @abstractmethod
    def add_request(self, run_id: str, kind: str, payload: Any = None) -> None:
        """Queue a request for the run's orchestrator: pause, resume, cancel, respond (durable at once)."""

    @abstractmethod
    def take_requests(self, run_id: str) -> list[dict[str, Any]]:
        """Pop the run's queued requests: ``[{"kind", "payload", "created_at"}]`` oldest first."""

    def heartbeat(self, run_ids: Collection[str], at: float, owner: str) -> None:
        """Mark these runs alive at ``at``, driven by ``owner`` (buffered).

        The orchestrator calls this every heartbeat for every run it drives: a store should
        make it one write for all of them (runs no longer in the store are skipped)."""
        for run_id in run_ids:
            try:
                self.update_run(run_id, heartbeat_at=at, owner=owner)
            except RunNotFound:
                continue

    def take_all_requests(self, run_ids: Collection[str]) -> dict[str, list[dict[str, Any]]]:
        """Pop the queued requests of these runs: ``{run_id: requests}`` for the runs that have
        any, each as :meth:`take_requests` returns them.

        Polled every heartbeat for every run the orchestrator drives: a store should look for
        all of them at once."""
        taken: dict[str, list[dict[str, Any]]] = {}
        for run_id in run_ids:
            try:
                requests = self.take_requests(run_id)
            except RunNotFound:
                continue
            if requests:
                taken[run_id] = requests
        return taken

    # -- cache, kv, secrets -----------------------------------------------------------------
    @abstractmethod
    def cache_get(self, key: str, now: float) -> tuple[bool, Any]:
        """``(True, value)`` for a live entry, else ``(False, None)``."""

    @abstractmethod
    def cache_put(self, key: str, value: Any, expire_at: float | None) -> None:
        """Store a cached result (buffered)."""

    @abstractmethod
    def kv_get(self, key: str, default: Any = None) -> Any:
        """A value of the key-value store."""

    @abstractmethod
    def kv_set(self, key: str, value: Any) -> None:
        """Set a key-value entry (durable at once)."""

    def kv_delete(self, key: str) -> None:
        """Remove a key-value entry (durable at once); an unknown key is no error."""
        raise NotImplementedError(f"{type(self).__name__} cannot delete key-value entries")

    @abstractmethod
    def secret_get(self, name: str) -> str | None:
        """A stored secret, or None."""

    @abstractmethod
    def secret_set(self, name: str, value: str) -> None:
        """Store a secret (durable at once)."""

    # -- additions beyond the engine's minimum -------------------------------------------------
    def delete_run(self, run_id: str) -> None:
        """Delete a run with its task executions, events and requests (durable at once).

        Raises :class:`~jupyter_workflows.exceptions.RunNotFound` for an unknown run. Child runs
        and cached results are kept. Optional: the default raises ``NotImplementedError``.
        """
        raise NotImplementedError(f"{type(self).__name__} cannot delete runs")

    # -- lifecycle objects and watched files (jupyter_workflows.lifecycle) ---------------------
    # Optional: the defaults raise NotImplementedError. Every write below is durable at once
    # (one transaction each), because two processes may transition one object at the same time:
    # the lock and the state change are compare-and-set operations on the stored row.
    def object_create(self, record: Mapping[str, Any]) -> bool:
        """Insert a lifecycle object (see :data:`OBJECT_FIELDS`); False when it exists already."""
        raise NotImplementedError(f"{type(self).__name__} has no lifecycle objects")

    def object_get(self, object_id: str) -> dict[str, Any] | None:
        """One lifecycle object, or None."""
        raise NotImplementedError(f"{type(self).__name__} has no lifecycle objects")

    def object_list(self) -> list[dict[str, Any]]:
        """Every lifecycle object, oldest first."""
        raise NotImplementedError(f"{type(self).__name__} has no lifecycle objects")

    def object_lock(self, object_id: str, owner: str, *, steal: str | None = None) -> bool:
        """Take the object's lock for ``owner`` if it is free (or held by ``steal``)."""
        raise NotImplementedError(f"{type(self).__name__} has no lifecycle objects")

    def object_unlock(self, object_id: str, owner: str) -> None:
        """Release the object's lock if ``owner`` holds it."""
        raise NotImplementedError(f"{type(self).__name__} has no lifecycle objects")

    def object_save(
        self,
        object_id: str,
        owner: str,
        fields: Mapping[str, Any],
        history: Mapping[str, Any] | None = None,
        *,
        unlock: bool = True,
    ) -> int | None:
        """Change fields of an object whose lock ``owner`` holds, add a history entry, bump its
        ``version`` and (``unlock``) release the lock, in one transaction.

        Returns the history entry's id (None without one). Raises :class:`StoreError` when
        ``owner`` does not hold the lock (nothing is written).
        """
        raise NotImplementedError(f"{type(self).__name__} has no lifecycle objects")

    def object_note(self, object_id: str, entry: Mapping[str, Any]) -> int:
        """Add a history entry (see :data:`HISTORY_FIELDS`) without changing the object."""
        raise NotImplementedError(f"{type(self).__name__} has no lifecycle objects")

    def object_note_started(self, entry_id: int, run_ids: list[str]) -> None:
        """Record the runs a transition started once it was done (the new state's workflows)."""
        raise NotImplementedError(f"{type(self).__name__} has no lifecycle objects")

    def object_history(self, object_id: str) -> list[dict[str, Any]]:
        """The object's history entries, oldest first."""
        raise NotImplementedError(f"{type(self).__name__} has no lifecycle objects")

    def file_claim(self, path: str, digest: str, size: int, mtime: float) -> bool:
        """Claim one version of a watched file (``path``, content ``digest``): True for the
        first claim of that version, False when it was claimed before (by anyone)."""
        raise NotImplementedError(f"{type(self).__name__} has no watched files")

    def file_done(self, path: str, digest: str, runs: list[str], error: str | None = None) -> None:
        """Record what a claimed file version started (status ``started``)."""
        raise NotImplementedError(f"{type(self).__name__} has no watched files")

    def file_list(self, *, claimed_only: bool = False) -> list[dict[str, Any]]:
        """Watched file versions, oldest first (``claimed_only``: claimed, nothing recorded yet)."""
        raise NotImplementedError(f"{type(self).__name__} has no watched files")

    def close(self) -> None:  # noqa: B027 - optional hook
        """Flush and release connections."""

    def __enter__(self) -> RunStore:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
