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
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, TypedDict

__all__ = ["RunRecord", "RunStore", "TaskRecord"]


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
    done: int | None
    total: int | None


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

    @abstractmethod
    def secret_get(self, name: str) -> str | None:
        """A stored secret, or None."""

    @abstractmethod
    def secret_set(self, name: str, value: str) -> None:
        """Store a secret (durable at once)."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Flush and release connections."""
