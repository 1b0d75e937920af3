"""The :class:`Run` handle users hold.

A ``Run`` reads live state from this process's orchestrator when it drives the run, and the
store otherwise (a run started by another process, or one that ended before this process
started). Controls go to the orchestrator, or, for a run owned by another live process, into the
store's request queue, which that process polls.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from ..exceptions import RunStateError
from ..expressions import MASKER
from ..statuses import DONE_TASK, ENDED_RUN, SETTLED_RUN
from ..values import to_json_form

if TYPE_CHECKING:  # pragma: no cover
    from ..store.base import TaskRecord
    from .orchestrator import Orchestrator

__all__ = ["TERMINAL", "Run"]

#: Ended runs (``statuses.ENDED_RUN``; the name other modules import from here).
TERMINAL = ENDED_RUN
#: A run not updated by its owner for this long is ``interrupted`` (its process is gone).
STALE_SECONDS = 10.0
#: How long a control waits for another process to apply it (its heartbeat is every 2 s).
REQUEST_SECONDS = 6.0


class Run:
    """One execution of a workflow.

    Attributes
    ----------
    run_id:
        The run's id (hex).
    """

    def __init__(self, run_id: str, orchestrator: Orchestrator) -> None:
        self.run_id = run_id
        self._orch = orchestrator
        #: The run's live state when this process drives it: kept by the handle, so it reads
        #: real values after the orchestrator let go of the finished run (KEEP_FINISHED).
        self._held = orchestrator.runs.get(run_id)

    # -- reading ----------------------------------------------------------------------------
    @property
    def _active(self):
        # The orchestrator's own first: a run resumed since is driven by a new ActiveRun.
        return self._orch.runs.get(self.run_id) or self._held

    def _record(self) -> dict[str, Any]:
        rec = self._orch.store.get_run(self.run_id)
        if rec is None:
            from ..exceptions import RunNotFound

            raise RunNotFound(f"no run {self.run_id!r} in the store")
        return dict(rec)

    @property
    def workflow(self) -> str:
        active = self._active
        return active.workflow.name if active else self._record()["workflow"]

    @property
    def status(self) -> str:
        """``pending running succeeded failed cancelled paused waiting interrupted``."""
        active = self._active
        if active is not None:
            return active.state.status
        rec = self._record()
        return effective_status(rec)

    @property
    def outputs(self) -> dict[str, Any] | None:
        """The run's outputs (``output_map``). A big result that a worker kept (see
        docs/durability.md, "Where values live") is read from its artifact when you read its
        key, not before: ``run.outputs["model"]``."""
        raw = self._raw_outputs()
        return LazyValues(raw) if type(raw) is dict else raw

    def _raw_outputs(self) -> Any:
        active = self._active
        if active is not None:
            # Live state holds real values; stored ones were masked when written.
            return MASKER.mask(active.state.outputs)
        return self._record().get("outputs")

    @property
    def error(self) -> str | None:
        active = self._active
        if active is not None:
            error = active.state.error
            return MASKER.mask_text(error) if error else error
        return self._record().get("error")

    @property
    def tasks(self) -> list[dict[str, Any]]:
        """One entry per task execution: ``task status attempts result error started_at ended_at``.

        A big result kept by a worker is read from its artifact when ``entry["result"]`` is
        read, not before."""
        return [LazyValues(_public_task(t)) for t in self._task_records()]

    def _task_records(self) -> list[dict[str, Any]]:
        active = self._active
        if active is not None:
            from .orchestrator import _task_record

            return [dict(_task_record(self.run_id, ex)) for ex in active.state.execution_list()]
        return [dict(t) for t in self._orch.store.get_tasks(self.run_id)]

    def to_dict(self) -> dict[str, Any]:
        """The shape of ``run --json`` (CONTRACT §5)."""
        return {
            "run_id": self.run_id,
            "workflow": self.workflow,
            "status": self.status,
            # References to big results stay references here: JSON shows their summary.
            "outputs": self._raw_outputs(),
            "error": self.error,
            "tasks": [_public_task(t) for t in self._task_records()],
        }

    def summary_dict(self) -> dict[str, Any]:
        """The shape of one entry of ``runs --json``."""
        active = self._active
        rec = self._record() if active is None else None
        if active is not None:
            started, ended = active.state.started_at, active.state.ended_at
        else:
            assert rec is not None
            started, ended = rec.get("started_at"), rec.get("ended_at")
        return {
            "run_id": self.run_id,
            "workflow": self.workflow,
            "status": self.status,
            "started_at": _iso(started),
            "ended_at": _iso(ended),
        }

    def summary(self, details: bool = False) -> str:
        """A few human lines."""
        d = self.to_dict()
        lines = [f"run {d['run_id']} of {d['workflow']!r}: {d['status']}"]
        if d["error"]:
            lines.append(f"  error: {d['error']}")
        for t in d["tasks"]:
            took = ""
            if t["started_at"] and t["ended_at"]:
                took = f" ({_seconds(t['started_at'], t['ended_at'])})"
            extra = f"  {t['error']}" if t["error"] else ""
            lines.append(
                f"  {t['task']:<24} {t['status']:<10} attempts={t['attempts']}{took}{extra}"
            )
            if details and t.get("result") is not None:
                lines.append(f"      result: {_short(t['result'])}")
        if d["outputs"]:
            lines.append(f"  outputs: {json.dumps(to_json_form(d['outputs']))}")
        return "\n".join(lines)

    def __repr__(self) -> str:
        try:
            return f"<Run {self.run_id} {self.workflow!r} {self.status}>"
        except Exception:
            return f"<Run {self.run_id}>"

    def _repr_mimebundle_(self, include=None, exclude=None) -> dict[str, Any]:
        from .. import hooks

        return hooks.display_bundle(self)  # the ``jupyter`` layer's display

    def live(self) -> dict[str, Any]:
        """A snapshot for live views (the widget): run info, latest state per task, open inquiries.

        ``{"run": {run_id, status, error}, "tasks": {task: {status, done, total, attempts,
        inputs, result, error, logs, started_at, ended_at}}, "inquiries": [{task, prompt, schema}]}``
        """
        records = self._task_records()
        tasks: dict[str, Any] = {}
        inquiries = []
        for r in records:  # in start order: the latest execution of a task wins
            inputs = r.get("input")
            inquiry = None
            if isinstance(inputs, dict) and "_inquiry" in inputs:
                inquiry = inputs["_inquiry"]
                inputs = {k: v for k, v in inputs.items() if k != "_inquiry"}
            tasks[r["task"]] = {
                "status": r.get("status"),
                "done": r.get("done"),
                "total": r.get("total"),
                "attempts": r.get("attempts") or 0,
                "inputs": inputs,
                "result": r.get("result"),
                "error": r.get("error"),
                "logs": list(r.get("logs") or [])[-200:],
                "started_at": r.get("started_at"),
                "ended_at": r.get("ended_at"),
            }
            if r.get("status") == "waiting" and inquiry:
                inquiries.append(
                    {
                        "task": r["task"],
                        "prompt": inquiry.get("prompt", ""),
                        "schema": inquiry.get("schema") or {},
                    }
                )
        return {
            "run": {"run_id": self.run_id, "status": self.status, "error": self.error},
            "tasks": tasks,
            "inquiries": inquiries,
        }

    def on_change(self, callback) -> None:
        """Call ``callback(run)`` after each batch of changes (from the orchestrator's thread).

        Only for runs this process drives; a no-op otherwise.
        """
        active = self._active
        if active is None:
            return
        active.listeners.append(lambda _active: callback(self))

    # -- waiting and control --------------------------------------------------------------------
    def wait(self, timeout: float | None = None) -> Run:
        """Block until the run ends, pauses or waits for an inquiry; returns ``self``.

        For a run owned by another process, polls the store.
        """
        if self._active is not None:
            if not self._orch.wait(self.run_id, timeout):
                raise TimeoutError(f"run {self.run_id} still {self.status} after {timeout}s")
            return self
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.status not in SETTLED_RUN:
            if deadline is not None and time.monotonic() > deadline:
                raise TimeoutError(f"run {self.run_id} still {self.status} after {timeout}s")
            time.sleep(0.2)
        return self

    def pause(self) -> None:
        """No new task starts; running tasks finish; the run is ``paused``."""
        self._control("pause")

    def cancel(self) -> None:
        """Cancel running tasks and end the run as ``cancelled``."""
        self._control("cancel")

    def resume(self, *, wait: bool = False, retry_failed: bool = False) -> Run:
        """Continue a paused run, or an interrupted one (in this process).

        With ``retry_failed``, reopen a failed run: the tasks that failed it run again.
        """
        from .api import resume

        return resume(self.run_id, wait=wait, retry_failed=retry_failed)

    def respond(self, task: str, data: Any) -> None:
        """Answer the open inquiry of ``task`` (checked against its schema)."""
        from .api import respond

        respond(self.run_id, task, data)

    def trace(self, format: str = "json") -> Any:
        """The run's trace: ``json`` (tasks with logs and events) or ``chrome`` (trace events)."""
        from .trace import build_trace

        return build_trace(self, format)

    def _control(self, kind: str) -> None:
        """Apply a pause or cancel; return once it is applied, so ``status`` reflects it."""
        status = self.status
        if status in TERMINAL:
            raise RunStateError(f"run {self.run_id} already ended ({status}); cannot {kind}")
        if self._active is not None:
            {"pause": self._orch.pause, "cancel": self._orch.cancel}[kind](self.run_id)
            self._orch.barrier()  # the loop has handled the request: the status shows it
            return
        store = self._orch.store
        gone = status == "interrupted" or (
            status in ("paused", "waiting") and not owner_alive(store.get_run(self.run_id) or {})
        )
        if kind == "pause" and status == "interrupted":
            # Nobody drives it and nothing runs: it is as good as paused, and `resume` (of any
            # process) continues it, as it would an interrupted run.
            store.update_run(self.run_id, status="paused")
            store.commit()
            return
        store.add_request(self.run_id, kind)
        if kind == "cancel" and gone:
            # Nobody drives it (its process exited, paused/waiting or mid-run): end it here,
            # with its open tasks, as a live process would have.
            now = time.time()
            open_tasks: list[TaskRecord] = [
                {**t, "status": "cancelled", "ended_at": t.get("ended_at") or now}
                for t in store.get_tasks(self.run_id)
                if t.get("status") not in DONE_TASK
            ]
            if open_tasks:
                store.upsert_tasks(self.run_id, open_tasks)
            store.update_run(
                self.run_id,
                status="cancelled",
                ended_at=now,
                error="RunCancelled: the run was cancelled",
            )
            store.commit()
            return
        # Another live process drives it and takes the request at its next heartbeat.
        await_request(self, lambda s: s == "paused" if kind == "pause" else s in TERMINAL)


class LazyValues(dict):
    """A dict whose values may hold references to big results kept by the workers
    (:class:`~jupyter_workflows.store.artifacts.ArtifactRef`): reading a value (``d[key]``,
    ``d.get(key)``, ``values()``, ``items()``) loads it from its artifact, once per dict. Its
    ``repr`` shows the references, so printing a run never loads anything."""

    def __getitem__(self, key: Any) -> Any:
        value = dict.__getitem__(self, key)
        artifacts = sys.modules.get("jupyter_workflows.store.artifacts")
        if artifacts is not None and artifacts.contains_refs(value):
            value = artifacts.resolve(value)
            dict.__setitem__(self, key, value)
        return value

    def get(self, key: Any, default: Any = None) -> Any:
        if key not in self:
            return default
        return self[key]

    def values(self) -> list[Any]:  # type: ignore[override]
        return [self[key] for key in self]

    def items(self) -> list[tuple[Any, Any]]:  # type: ignore[override]
        return [(key, self[key]) for key in self]


def await_request(
    run: Run, applied: Callable[[str], bool], timeout: float = REQUEST_SECONDS
) -> None:
    """Poll the store until ``applied(status)`` holds for a run another process drives, the run
    ends, or its process is gone; at most ``timeout`` seconds (then the request stays queued)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = run.status
        if applied(status) or status in TERMINAL or status == "interrupted":
            return
        time.sleep(0.05)


def owner_alive(rec: Mapping[str, Any]) -> bool:
    """Whether the process that drives a stored run still does (heartbeat, or pid on this host)."""
    import os
    import socket

    owner = rec.get("owner") or ""
    host, _, pid = owner.rpartition(":")
    if host == socket.gethostname() and pid.isdigit():
        if int(pid) == os.getpid():
            return False  # this process would have it in memory if it drove it
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            pass
    beat = rec.get("heartbeat_at") or rec.get("created_at") or 0
    return time.time() - float(beat) <= STALE_SECONDS


def effective_status(rec: dict[str, Any]) -> str:
    """A stored status; a running run whose process is gone shows as ``interrupted``.

    Paused and waiting runs keep their status when their process ends: nothing was lost, and
    ``resume`` (or ``respond`` then ``resume``) continues them.
    """
    status = rec.get("status") or "pending"
    if status in ("running", "pending") and not owner_alive(rec):
        return "interrupted"
    return status


def _public_task(t: dict[str, Any]) -> dict[str, Any]:
    return {
        "task": t.get("task"),
        "status": t.get("status"),
        "attempts": t.get("attempts", 0),
        "result": t.get("result"),
        "error": t.get("error"),
        "started_at": _iso(t.get("started_at")),
        "ended_at": _iso(t.get("ended_at")),
    }


def _iso(ts: float | None) -> str | None:
    if ts is None:
        return None
    from datetime import datetime, timezone

    return (
        datetime.fromtimestamp(float(ts), tz=timezone.utc)
        .isoformat(timespec="milliseconds")
        .replace("+00:00", "Z")
    )


def _seconds(a: str, b: str) -> str:
    from datetime import datetime

    try:
        da = datetime.fromisoformat(a.replace("Z", "+00:00"))
        db = datetime.fromisoformat(b.replace("Z", "+00:00"))
        return f"{(db - da).total_seconds():.2f}s"
    except ValueError:
        return ""


def _short(value: Any, limit: int = 120) -> str:
    from ..values import summary_line

    form = to_json_form(value)
    if isinstance(form, dict) and "type" in form and not isinstance(value, dict):
        return summary_line(value, limit)  # DataFrame 150x5 (a, b, ...), ndarray ...
    text = json.dumps(form)
    return text if len(text) <= limit else text[: limit - 3] + "..."
