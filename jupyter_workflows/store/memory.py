"""An in-process store: dicts behind one lock, for tests and throw-away runs.

Values are kept as Python objects, deep-copied when written and again when read, so the store
holds snapshots exactly like a persistent store does (mutating a result after writing it, or a
record after reading it, changes nothing stored). A value that ``copy.deepcopy`` cannot copy (a
lock, a generator, a socket) is kept as the object itself: a memory store cannot do better, and
refusing it would make it stricter than it needs to be.

Writes apply at once, so :meth:`MemoryStore.commit` has nothing to do; the rules of
:mod:`jupyter_workflows.store.base` (unknown runs, unknown fields, newest-first listing) are the
same as :class:`~jupyter_workflows.store.sqlite.SqliteStore`'s, which the contract suite checks.
"""

from __future__ import annotations

import copy
import itertools
import threading
import time
from typing import Any

from ..exceptions import RunNotFound, StoreError
from .base import (
    HISTORY_FIELDS,
    OBJECT_MUTABLE,
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

__all__ = ["MemoryStore"]


def _copy(value: Any) -> Any:
    try:
        return copy.deepcopy(value)
    except Exception:  # not copyable: keep the object itself (documented above)
        return value


class MemoryStore(RunStore):
    """A thread-safe :class:`~jupyter_workflows.store.base.RunStore` that lives in memory."""

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._order = itertools.count()
        #: run_id -> (insertion number, record); the number breaks ``created_at`` ties.
        self._runs: dict[str, tuple[int, dict[str, Any]]] = {}
        #: run_id -> exec_id -> (insertion number, record)
        self._tasks: dict[str, dict[str, tuple[int, dict[str, Any]]]] = {}
        self._events: dict[str, list[dict[str, Any]]] = {}
        self._requests: dict[str, list[dict[str, Any]]] = {}
        self._cache: dict[str, tuple[Any, float | None]] = {}
        self._kv: dict[str, Any] = {}
        self._secrets: dict[str, str] = {}
        self._objects: dict[str, dict[str, Any]] = {}
        self._history: list[dict[str, Any]] = []
        self._files: dict[tuple[str, str], dict[str, Any]] = {}

    def __repr__(self) -> str:
        return f"MemoryStore(<{len(self._runs)} runs>)"

    def _require_run(self, run_id: str) -> None:
        if run_id not in self._runs:
            raise RunNotFound(f"no run {run_id!r} in the store")

    # -- event log --------------------------------------------------------------------------
    def append_events(self, run_id: str, events: list[dict[str, Any]]) -> None:
        _check_events(events)
        copied = [_copy(event) for event in events]
        with self._lock:
            self._require_run(run_id)
            self._events[run_id].extend(copied)

    def load_events(self, run_id: str) -> list[dict[str, Any]]:
        with self._lock:
            events = list(self._events.get(run_id, ()))
        return [_copy(event) for event in events]

    # -- projections ------------------------------------------------------------------------
    def create_run(self, record: RunRecord) -> None:
        full = _copy(_full_run_record(record))
        run_id = full["run_id"]
        with self._lock:
            if run_id in self._runs:
                raise StoreError(f"run {run_id!r} already exists in the store")
            self._runs[run_id] = (next(self._order), full)
            self._tasks[run_id] = {}
            self._events[run_id] = []
            self._requests[run_id] = []

    def update_run(self, run_id: str, **fields: Any) -> None:
        copied = {key: _copy(value) for key, value in _run_update(fields).items()}
        with self._lock:
            self._require_run(run_id)
            self._runs[run_id][1].update(copied)

    def upsert_tasks(self, run_id: str, records: list[TaskRecord]) -> None:
        full = [_copy(_full_task_record(run_id, record)) for record in records]
        with self._lock:
            self._require_run(run_id)
            tasks = self._tasks[run_id]
            for record in full:
                old = tasks.get(record["exec_id"])
                tasks[record["exec_id"]] = (old[0] if old else next(self._order), record)

    def get_run(self, run_id: str) -> RunRecord | None:
        with self._lock:
            entry = self._runs.get(run_id)
            record = dict(entry[1]) if entry else None
        return _copy(record) if record is not None else None

    def list_runs(self, limit: int | None = None) -> list[RunRecord]:
        with self._lock:
            entries = list(self._runs.values())
        entries.sort(key=lambda entry: (entry[1]["created_at"] or 0.0, entry[0]), reverse=True)
        if limit is not None:
            entries = entries[: max(limit, 0)]
        return [_copy(dict(record)) for _, record in entries]

    def get_tasks(self, run_id: str) -> list[TaskRecord]:
        with self._lock:
            entries = list(self._tasks.get(run_id, {}).values())

        def order(entry: tuple[int, dict[str, Any]]) -> tuple[bool, int, int]:
            seq = entry[1]["seq"]
            return (seq is None, seq if seq is not None else 0, entry[0])

        entries.sort(key=order)
        return [_copy(dict(record)) for _, record in entries]

    def commit(self) -> None:
        """Nothing to do: a memory store applies writes at once."""

    def delete_run(self, run_id: str) -> None:
        with self._lock:
            self._require_run(run_id)
            for table in (self._runs, self._tasks, self._events, self._requests):
                table.pop(run_id, None)

    # -- control across processes -----------------------------------------------------------
    def add_request(self, run_id: str, kind: str, payload: Any = None) -> None:
        request = {"kind": kind, "payload": _copy(payload), "created_at": time.time()}
        with self._lock:
            self._require_run(run_id)
            self._requests[run_id].append(request)

    def take_requests(self, run_id: str) -> list[dict[str, Any]]:
        with self._lock:
            taken = self._requests.get(run_id, [])
            if run_id in self._requests:
                self._requests[run_id] = []
        return taken

    # -- cache, kv, secrets -----------------------------------------------------------------
    def cache_get(self, key: str, now: float) -> tuple[bool, Any]:
        with self._lock:
            entry = self._cache.get(key)
        if entry is None:
            return False, None
        value, expire_at = entry
        if expire_at is not None and expire_at <= now:
            return False, None
        return True, _copy(value)

    def cache_put(self, key: str, value: Any, expire_at: float | None) -> None:
        copied = _copy(value)
        with self._lock:
            self._cache[key] = (copied, expire_at)

    def kv_get(self, key: str, default: Any = None) -> Any:
        with self._lock:
            if key not in self._kv:
                return default
            value = self._kv[key]
        return _copy(value)

    def kv_set(self, key: str, value: Any) -> None:
        copied = _copy(value)
        with self._lock:
            self._kv[key] = copied

    def kv_delete(self, key: str) -> None:
        with self._lock:
            self._kv.pop(key, None)

    def secret_get(self, name: str) -> str | None:
        with self._lock:
            return self._secrets.get(name)

    def secret_set(self, name: str, value: str) -> None:
        if not isinstance(value, str):
            raise TypeError(f"secret {name!r} must be a str, not {type(value).__name__}")
        with self._lock:
            self._secrets[name] = value

    # -- lifecycle objects and watched files --------------------------------------------------
    def object_create(self, record: Any) -> bool:
        full = _copy(_new_object(record))
        with self._lock:
            if full["object_id"] in self._objects:
                return False
            self._objects[full["object_id"]] = full
            return True

    def object_get(self, object_id: str) -> dict[str, Any] | None:
        with self._lock:
            found = self._objects.get(object_id)
            return _copy(found) if found is not None else None

    def object_list(self) -> list[dict[str, Any]]:
        with self._lock:
            return [_copy(o) for o in self._objects.values()]

    def object_lock(self, object_id: str, owner: str, *, steal: str | None = None) -> bool:
        with self._lock:
            found = self._objects.get(object_id)
            if found is None or found["lock_owner"] not in (None, steal if steal else owner):
                return False
            found["lock_owner"], found["lock_at"] = owner, time.time()
            return True

    def object_unlock(self, object_id: str, owner: str) -> None:
        with self._lock:
            found = self._objects.get(object_id)
            if found is not None and found["lock_owner"] == owner:
                found["lock_owner"] = found["lock_at"] = None

    def _entry(self, object_id: str, entry: Any) -> dict[str, Any]:
        _check_object_fields(entry, HISTORY_FIELDS)
        if not isinstance(entry.get("outcome"), str):
            raise ValueError("a history entry needs an 'outcome'")
        full: dict[str, Any] = dict.fromkeys(HISTORY_FIELDS)
        full.update(_copy(dict(entry)))
        full.update(object_id=object_id, id=len(self._history) + 1)
        full["at"] = full["at"] or time.time()
        full["runs"] = list(full["runs"] or [])
        full["started"] = list(full["started"] or [])
        return full

    def object_save(
        self,
        object_id: str,
        owner: str,
        fields: Any,
        history: Any = None,
        *,
        unlock: bool = True,
    ) -> int | None:
        _check_object_fields(fields, tuple(OBJECT_MUTABLE))
        copied = {k: _copy(v) for k, v in fields.items()}
        with self._lock:
            found = self._objects.get(object_id)
            if found is None or found["lock_owner"] != owner:
                raise StoreError(
                    f"lifecycle object {object_id!r}: the transition lost its lock "
                    "(another process took it over); nothing was changed"
                )
            entry = self._entry(object_id, history) if history is not None else None
            found.update(copied)
            found["version"] += 1
            found["updated_at"] = time.time()
            if unlock:
                found["lock_owner"] = found["lock_at"] = None
            if entry is None:
                return None
            self._history.append(entry)
            return int(entry["id"])

    def object_note(self, object_id: str, entry: Any) -> int:
        with self._lock:
            if object_id not in self._objects:
                raise StoreError(f"no lifecycle object {object_id!r} in the store")
            full = self._entry(object_id, entry)
            self._history.append(full)
            return int(full["id"])

    def object_note_started(self, entry_id: int, run_ids: list[str]) -> None:
        with self._lock:
            if 1 <= entry_id <= len(self._history):
                self._history[entry_id - 1]["started"] = list(run_ids)

    def object_history(self, object_id: str) -> list[dict[str, Any]]:
        with self._lock:
            return [_copy(e) for e in self._history if e["object_id"] == object_id]

    def file_claim(self, path: str, digest: str, size: int, mtime: float) -> bool:
        with self._lock:
            if (path, digest) in self._files:
                return False
            self._files[(path, digest)] = {
                "path": path,
                "digest": digest,
                "size": int(size),
                "mtime": float(mtime),
                "status": "claimed",
                "runs": [],
                "error": None,
                "claimed_at": time.time(),
            }
            return True

    def file_done(self, path: str, digest: str, runs: list[str], error: str | None = None) -> None:
        with self._lock:
            found = self._files.get((path, digest))
            if found is not None:
                found.update(status="started", runs=list(runs), error=error)

    def file_list(self, *, claimed_only: bool = False) -> list[dict[str, Any]]:
        with self._lock:
            return [
                _copy(f)
                for f in self._files.values()
                if not claimed_only or f["status"] == "claimed"
            ]
