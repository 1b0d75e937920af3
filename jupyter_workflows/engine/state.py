"""The run state machine: events in, commands out; no I/O, no clock, no awaiting.

:class:`RunState` holds everything about one run (task executions, vars, joins, what is in
flight) and changes only in :meth:`RunState.handle`. Time comes inside events. Because it is
deterministic, replaying a run's persisted event log into a fresh ``RunState`` rebuilds it exactly;
that is how a run is resumed after a crash (the ``Recovered`` event then re-submits whatever was in
flight). :meth:`RunState.validate` checks its invariants; tests call it after every step.

Events are dispatched by type (``RunState._HANDLERS``). Statuses change in one place each, with
their bookkeeping: ``_set_status`` (an execution: end time, store projection, the ``task.<name>``
view templates read), ``_item_ended`` (a ``with_items`` item: counted, then the next items start
or the task ends) and ``_set_run_status``/``_finish_run`` (the run: start and end times, error,
``RunFinished``). The orchestrator reads what changed through :meth:`RunState.changed_executions`
and :meth:`RunState.take_run_change`; ``{{ task.X.result }}`` inputs arrive resolved at compile
time (``CTask.result_refs``).

Semantics implemented here (CONTRACT §1.1, §1.4, §2): transitions fire in order when their
``when`` holds (``publish`` first, then ``do``); the commands ``fail``/``noop``/``retry``; joins
(``all``/N distinct sources, run once); loops bounded by ``max_runs``; ``with_items`` with
``batch_size``, per-item retries, stop-on-failed-item; retries with backoff; timeouts; the
remediation rule, fail-fast and ``keep_going``; inquiries; nested runs; pause, resume, cancel;
``output_map`` rendered at the end, on failure too.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

from ..exceptions import NO_MESSAGE
from ..expressions import ExpressionError, evaluate, render
from ..spec.compile import FAILED, SUCCEEDED, CompiledWorkflow, CTask
from ..statuses import DONE_TASK, RunStatus, TaskStatus
from ..statuses import ENDED_RUN as FINAL_RUN
from ..statuses import OK_TASK as _OK_TASK
from . import commands as C
from . import events as E

__all__ = ["Execution", "RunState", "RunStatus", "TaskStatus"]

#: How many chain steps may be queued speculatively behind a running one.
SPECULATION_DEPTH = 4


@dataclass
class Item:
    """One item of a ``with_items`` task."""

    value: Any
    status: TaskStatus = "pending"
    attempts: int = 0
    result: Any = None
    error: str | None = None
    key: str | None = None


@dataclass
class Execution:
    """One execution of a task (a task in a loop has several)."""

    id: str
    task: str
    seq: int
    status: TaskStatus = "running"
    attempts: int = 0
    input: Any = None
    result: Any = None
    error: str | None = None
    error_type: str | None = None
    started_at: float | None = None
    ended_at: float | None = None
    logs: list[str] = field(default_factory=list)
    worker: str | None = None
    #: Key of the successful attempt (its result stays on the executor).
    result_key: str | None = None
    items: list[Item] | None = None
    inquiry: dict[str, Any] | None = None
    #: ``with_items`` bookkeeping, so each item's end costs O(1), not O(items): items are
    #: started in index order, so ``cursor`` is how many left ``pending``.
    cursor: int = 0
    items_done: int = 0
    first_failed: int | None = None
    #: The last ``(done, total)`` its running attempt reported (``context.progress``).
    reported: tuple[int, int] | None = None
    #: Attempts made by the executions before it, when ``do: retry`` started it: attempt
    #: numbers go on from there, while the ``retry`` policy counts this execution's own.
    retry_base: int = 0

    @property
    def timed_out(self) -> bool:
        return self.error_type == "TimeoutError"

    def progress(self) -> tuple[int | None, int | None]:
        """``(done, total)``: items for a ``with_items`` task, else what the task reported."""
        if self.items is not None:
            return self.items_done, len(self.items)
        if self.reported is not None:
            return self.reported
        return None, None


class RunState:
    """All state of one run; change it only through :meth:`handle`.

    Parameters
    ----------
    workflow:
        The compiled workflow.
    run_id:
        The run's id (used in keys and ``system.run_id``).
    parameters:
        Resolved, checked parameters.
    engine_side:
        Task names whose action the engine handles itself: ``{"inquiry": {...}, "child": {...}}``
        is decided by the orchestrator when it resolves actions; here, a set of task names that
        are inquiries and a set that are nested workflows.
    kv_get, secret:
        Read-only lookups for ``kv.get`` and ``secret()`` in templates.
    """

    def __init__(
        self,
        workflow: CompiledWorkflow,
        run_id: str,
        parameters: dict[str, Any],
        *,
        inquiries: frozenset[str] = frozenset(),
        children: dict[str, str] | None = None,
        system: dict[str, Any] | None = None,
        kv_get: Callable[..., Any] | None = None,
        secret: Callable[[str], str] | None = None,
    ) -> None:
        self.wf = workflow
        self.run_id = run_id
        #: The run's part of attempt keys: two 8-hex words of its id (Dask's ``key_split`` drops
        #: both, so the dashboard still groups by workflow and task). One word (32 bits) let two
        #: of 10,000 queued runs share keys in the executor.
        self._key_run = f"{run_id[:8]}-{run_id[8:16]}" if len(run_id) >= 16 else run_id[:8]
        self.parameters = dict(parameters)
        self.inquiries = inquiries
        self.children = dict(children or {})
        self.status: RunStatus = "pending"
        self.vars: dict[str, Any] = {}
        self.executions: dict[str, Execution] = {}
        self.order: list[str] = []
        self.task_view: dict[str, dict[str, Any]] = {}
        self.latest: dict[str, str] = {}
        self.runs_count: dict[str, int] = {}
        self.join_fired: dict[str, set[str]] = {}
        self.join_done: set[str] = set()
        #: Attempts in flight: key -> (exec_id, item index or None, attempt).
        self.inflight: dict[str, tuple[str, int | None, int]] = {}
        #: Timers set: name -> what to do when it fires.
        self.timers: dict[str, tuple[str, str, int | None]] = {}
        self.deferred: list[tuple[str, str]] = []
        self.deferred_submits: list[tuple[str, int | None]] = []
        self.failure: str | None = None
        self.failing = False
        #: The run failed by an internal error (:class:`~.events.InternalFailure`).
        self.internal = False
        #: Failed executions that failed the run, and starts dropped by fail-fast (retry_failed).
        self.unhandled: list[str] = []
        #: Speculative starts: task -> (its attempt's key, key of the attempt it waits on).
        self.speculated: dict[str, tuple[str, str]] = {}
        #: Outcomes of speculative attempts that arrived before their task started.
        self.early: dict[str, E.AttemptDone] = {}
        self.dropped: list[tuple[str, str | None]] = []
        #: Tasks a ``do: retry`` is about to start again -> the execution that asked.
        self.retrying: dict[str, str] = {}
        #: ``type: parallel`` groups: member -> its group.
        self.group_of: dict[str, str] = {
            m: name for name, t in workflow.tasks.items() for m in t.members
        }
        #: Groups that took a member's failure and end ``failed`` once their members settle:
        #: group -> ids of the failed member executions, in order.
        self.group_failures: dict[str, list[str]] = {}
        #: Failed group executions -> the members whose failures they took (for retry_failed).
        self.group_failed_members: dict[str, list[str]] = {}
        #: Transitions still to fire while a cascade of instant tasks runs (see ``_cascade``).
        self._stack: list[tuple[str, str | None] | None] | None = None
        self.outputs: dict[str, Any] | None = None
        self.error: str | None = None
        self.started_at: float | None = None
        self.ended_at: float | None = None
        self.submissions = 0
        self.now = 0.0
        #: Executions changed since the orchestrator last projected them (see ``changed_executions``).
        self._dirty: set[str] = set()
        #: The run's own record changed since the orchestrator last projected it.
        self._status_dirty = True
        self._kv = _KV(kv_get)
        self._secret = secret
        self._system = {"run_id": run_id, "workflow": workflow.name, **(system or {})}
        self._out: list[C.Command] = []
        #: The executor reports when attempts start (``AttemptStarted``): a submitted task is
        #: ``scheduled`` until then. Set by the orchestrator; it changes only what is shown.
        self.track_starts = False

    # -- public -----------------------------------------------------------------------------
    @property
    def done(self) -> bool:
        return self.status in FINAL_RUN

    def handle(self, event: E.Event) -> list[C.Command]:
        """Apply ``event``; return the commands it leads to."""
        self._out = []
        self.now = event.time
        if self.done and type(event) not in _AFTER_END:
            return []
        getattr(self, self._HANDLERS[type(event)])(event)
        if not self.done:
            self._settle()
        out, self._out = self._out, []
        return out

    def execution_list(self) -> list[Execution]:
        return [self.executions[e] for e in self.order]

    def open_inquiries(self) -> list[Execution]:
        return [e for e in self.execution_list() if e.status == "waiting" and e.inquiry is not None]

    # -- what the orchestrator projects to the store ----------------------------------------------
    def changed_executions(self) -> list[str]:
        """Ids of the executions changed since they were last projected, sorted."""
        return sorted(self._dirty)

    def mark_projected(self, exec_ids: Iterable[str]) -> None:
        """``exec_ids`` are in the store now (ids left out stay changed and come again)."""
        self._dirty.difference_update(exec_ids)

    def take_run_change(self) -> bool:
        """Whether the run's own record (status, times, outputs, error) changed since the last
        call; the call itself counts as projecting it."""
        changed, self._status_dirty = self._status_dirty, False
        return changed

    def mark_all_changed(self) -> None:
        """Everything is to be projected again (a run taken over from the store)."""
        self._dirty = set(self.executions)
        self._status_dirty = True

    def validate(self) -> None:
        """Assert the invariants (tests call this after every step)."""
        for key, (exec_id, item, _attempt) in self.inflight.items():
            ex = self.executions[exec_id]
            assert ex.status in ("scheduled", "running", "retrying", "waiting"), (key, ex.status)
            if item is not None:
                assert ex.items is not None and ex.items[item].status == "running", (key, item)
        for ex in self.executions.values():
            if ex.status in DONE_TASK:
                assert ex.ended_at is not None, ex.id
                assert not any(v[0] == ex.id for v in self.inflight.values()), ex.id
            if ex.status == "failed":
                assert ex.error, ex.id
        if self.done:
            assert not self.inflight, self.inflight
            assert self.ended_at is not None
            if self.status == "failed":
                assert self.error
        for name in self.join_done:
            assert self.wf.tasks[name].join is not None
        assert all(count <= self.wf.tasks[t].max_runs for t, count in self.runs_count.items())

    # -- events -----------------------------------------------------------------------------
    def _on_run_started(self, event: E.RunStarted) -> None:
        if self.status != "pending":
            return
        self._set_run_status("running")
        try:
            self.vars = {}
            scope = self._scope()
            for name, value in self.wf.spec.vars.items():
                self.vars[name] = render(value, scope)
        except ExpressionError as exc:
            self._fail_run(f"ExpressionError: vars: {exc}")
            return
        for name in self.wf.start:
            self._fire(name, None)

    def _on_attempt_done(self, event: E.AttemptDone) -> None:
        entry = self.inflight.pop(event.key, None)
        if entry is None:
            if any(key == event.key for key, _ in self.speculated.values()):
                self.early[event.key] = event  # its task has not started (yet)
            return  # late: timed out, cancelled, superseded, or a skipped speculation
        exec_id, index, attempt = entry
        self.timers.pop(f"timeout:{event.key}", None)
        ex = self.executions[exec_id]
        ex.logs.extend(event.logs)
        if event.worker:
            ex.worker = event.worker
        if event.progress is not None and index is None:
            ex.reported = _progress_pair(event.progress)
        self._dirty.add(ex.id)
        if event.ok:
            self._attempt_ok(ex, index, event.key, event.result, event.cached)
        else:
            error = event.error or f"{event.error_type or 'TaskFailed'}: {NO_MESSAGE}"
            self._attempt_failed(ex, index, attempt, error, event.error_type)

    def _on_attempt_started(self, event: E.AttemptStarted) -> None:
        entry = self.inflight.get(event.key)
        if entry is None or entry[1] is not None:
            return  # late, or an item (a with_items task is running while any item is)
        ex = self.executions[entry[0]]
        if ex.status == "scheduled":
            if event.worker:
                ex.worker = event.worker
            self._set_status(ex, "running")

    def _on_attempt_progress(self, event: E.AttemptProgress) -> None:
        entry = self.inflight.get(event.key)
        if entry is None or entry[1] is not None:
            return  # late, or an item (a with_items task counts its items)
        ex = self.executions[entry[0]]
        ex.reported = _progress_pair((event.done, event.total))
        self._changed(ex)

    def _on_timer_fired(self, event: E.TimerFired) -> None:
        what = self.timers.pop(event.timer, None)
        if what is None:
            return
        kind, ref, index = what
        getattr(self, self._TIMERS[kind])(ref, index)

    def _attempt_timed_out(self, key: str, _index: int | None) -> None:
        entry = self.inflight.pop(key, None)
        if entry is None:
            return
        exec_id, index, attempt = entry
        ex = self.executions[exec_id]
        self._out.append(C.CancelAttempt(key))
        task = self.wf.tasks[ex.task]
        self._attempt_failed(
            ex,
            index,
            attempt,
            f"TimeoutError: task {ex.task!r} timed out after {task.timeout:g}s",
            "TimeoutError",
        )

    def _retry_due(self, exec_id: str, index: int | None) -> None:
        ex = self.executions[exec_id]
        if self.status == "paused":
            self.deferred_submits.append((ex.id, index))
        elif ex.status not in DONE_TASK:
            self._submit(ex, index)

    def _inquiry_timed_out(self, exec_id: str, _index: int | None) -> None:
        ex = self.executions[exec_id]
        if ex.status == "waiting":
            task = self.wf.tasks[ex.task]
            ex.inquiry = None
            self._finish_execution(
                ex,
                ok=False,
                error=f"TimeoutError: inquiry {ex.task!r} got no response within {task.timeout:g}s",
                error_type="TimeoutError",
            )

    def _on_inquiry_responded(self, event: E.InquiryResponded) -> None:
        ex = self.executions.get(event.exec_id)
        if ex is None or ex.status != "waiting" or ex.inquiry is None:
            return
        self.timers.pop(f"inquiry:{ex.id}", None)
        ex.inquiry = None
        ex.attempts = max(ex.attempts, 1)
        self._finish_execution(ex, ok=True, result=event.data)

    def _on_pause_requested(self, event: E.PauseRequested) -> None:
        if self.status in ("running", "waiting"):
            self._set_run_status("paused")
            # Nothing new may start while paused: withdraw the speculative starts.
            self._withdraw_speculation()

    def _on_resume_requested(self, event: E.ResumeRequested) -> None:
        if self.status != "paused":
            return
        self._set_run_status("running")
        deferred, self.deferred = self.deferred, []
        submits, self.deferred_submits = self.deferred_submits, []
        for exec_id, index in submits:
            ex = self.executions[exec_id]
            if ex.status not in DONE_TASK:
                self._submit(ex, index)
        for target, source in deferred:
            self._fire(target, source)

    def _stop_everything(self) -> None:
        """Cancel every attempt in flight or speculated and drop everything waiting to start."""
        for key in list(self.inflight):
            self._out.append(C.CancelAttempt(key))
        for key, _after in self.speculated.values():
            self._out.append(C.CancelAttempt(key))
        self.speculated.clear()
        self.early.clear()
        self.inflight.clear()
        self.timers.clear()
        self.deferred.clear()
        self.deferred_submits.clear()

    def _end_open_executions(self, status: TaskStatus, error: str | None = None) -> None:
        """End every unfinished execution (and its unfinished items) with ``status``."""
        for ex in self.execution_list():
            if ex.status in DONE_TASK:
                continue
            ex.inquiry = None
            if error is not None:
                ex.error = error
                ex.error_type = "InternalError"
            for item in ex.items or ():
                if item.status not in DONE_TASK:
                    self._set_item_status(ex, item, status, error)
            if status == "failed" and ex.id not in self.unhandled:
                self.unhandled.append(ex.id)
            self._set_status(ex, status)

    def _on_cancel_requested(self, event: E.CancelRequested) -> None:
        self._stop_everything()
        self._end_open_executions("cancelled")
        self._end("cancelled", "RunCancelled: the run was cancelled")

    def _on_internal_failure(self, event: E.InternalFailure) -> None:
        """The engine failed while driving the run: end it ``failed`` now, whatever is in flight.

        Unfinished executions fail with the engine's error and count as unhandled failures, so
        ``retry_failed`` starts them again; finished ones keep their results.
        """
        self._stop_everything()
        self._end_open_executions("failed", event.error)
        self.failure = event.error
        self.failing = True
        self.internal = True  # retry_failed ends it again even when every task had finished
        self.group_failures.clear()
        # No output_map: the values it would read may be what broke the engine.
        self._finish_run("failed", event.error, None)

    def _on_retry_requested(self, event: E.RetryRequested) -> None:
        """Reopen a failed run: the tasks that failed it run again (a new execution each), and
        the starts that fail-fast dropped happen now. Succeeded tasks keep their results."""
        if self.status != "failed" or not (self.unhandled or self.dropped or self.internal):
            return
        self.internal = False
        unhandled, self.unhandled = self.unhandled, []
        dropped, self.dropped = self.dropped, []
        self._set_run_status("running")
        self.failure = None
        self.failing = False
        self.outputs = None
        work: list[tuple[str, str | None] | None] = []
        for exec_id in unhandled:
            work.extend(self._reopen(exec_id))
        work.extend(dropped)
        self._cascade(work)

    def _reopen(self, exec_id: str) -> list[tuple[str, str | None] | None]:
        """What to start again for a failed execution: the task, or for a parallel group the
        members whose failures it took (the members that succeeded keep their results)."""
        ex = self.executions[exec_id]
        task = self.wf.tasks[ex.task]
        if task.kind == "parallel":
            self.join_done.discard(task.name)
            work: list[tuple[str, str | None] | None] = []
            for member_exec in self.group_failed_members.pop(exec_id, []):
                work.extend(self._reopen(member_exec))
            return work
        if task.join is not None:
            self.join_done.discard(task.name)
            self.join_fired[task.name] = set(task.sources)
        return [(task.name, None)]

    def _on_recovered(self, event: E.Recovered) -> None:
        """Take over after a crash: what was in flight runs again."""
        if self.done:
            return
        self.speculated.clear()  # those attempts died with the old process
        self.early.clear()
        inflight, self.inflight = self.inflight, {}
        for key, (exec_id, index, attempt) in inflight.items():
            self.timers.pop(f"timeout:{key}", None)
            ex = self.executions[exec_id]
            if ex.items is not None and index is not None:
                ex.items[index].attempts = attempt - 1
            else:
                ex.attempts = attempt - 1
            if self.status == "paused":
                self.deferred_submits.append((exec_id, index))
            else:
                self._submit(ex, index)
        expired: list[str] = []
        for name, (kind, ref, _index) in list(self.timers.items()):
            # Timers died with the old process: retries go now, inquiry timeouts restart.
            if kind == "retry":
                self._out.append(C.StartTimer(name, 0.0))
            elif kind == "inquiry":
                ex = self.executions[ref]
                timeout = self.wf.tasks[ex.task].timeout or 0.0
                opened = event.time if ex.started_at is None else ex.started_at  # 0.0 is a time
                left = max(0.0, opened + timeout - event.time)
                if left > 0:
                    self._out.append(C.StartTimer(name, left))
                else:
                    expired.append(name)
        for name in expired:
            # Past its deadline: time it out now. A timer would fire too late for a headless
            # resume, which stops as soon as the run is only waiting on an inquiry.
            self._on_timer_fired(E.TimerFired(event.time, timer=name))
        for ex in self.open_inquiries():
            assert ex.inquiry is not None
            self._out.append(
                C.OpenInquiry(
                    ex.id, ex.task, ex.inquiry.get("prompt", ""), ex.inquiry.get("schema")
                )
            )
        if self.status == "pending":
            self._on_run_started(E.RunStarted(event.time))

    # -- scopes and templates ---------------------------------------------------------------
    def _scope(
        self, ex: Execution | None = None, item: Any = None, index: int | None = None
    ) -> dict[str, Any]:
        scope: dict[str, Any] = {
            "parameters": self.parameters,
            "vars": self.vars,
            "task": self.task_view,
            "system": {**self._system, "timestamp": self.now},
            "kv": self._kv,
            "item": item,
            "index": index,
        }
        if self._secret is not None:
            scope["secret"] = self._secret
        if ex is not None:
            status = ex.status
            scope["result"] = ex.result
            scope["error"] = ex.error
            scope["succeeded"] = lambda: status in _OK_TASK
            scope["failed"] = lambda: status == "failed"
            scope["completed"] = lambda: status in DONE_TASK
            scope["timed_out"] = lambda: ex.timed_out
        return scope

    def _attempt_scope(
        self, ex: Execution, index: int | None, error: str, error_type: str | None
    ) -> dict[str, Any]:
        """What ``retry.when`` sees: a transition's scope, about the attempt that just failed.

        The execution is not failed yet (it may be retried), so the outcome names describe the
        attempt: ``failed()`` holds, ``result`` is ``None`` (a failed attempt returns nothing),
        ``error`` its one-line error (``"ValueError: ..."``); for a ``with_items`` item, ``item``
        and ``index``.
        """
        item = None if index is None or ex.items is None else ex.items[index].value
        scope = self._scope(item=item, index=index)
        timed_out = error_type == "TimeoutError"
        scope["result"] = None
        scope["error"] = error
        scope["succeeded"] = lambda: False
        scope["failed"] = lambda: True
        scope["completed"] = lambda: True
        scope["timed_out"] = lambda: timed_out
        return scope

    def _when(self, when: str | bool | None, ex: Execution, scope: dict[str, Any]) -> bool:
        # The two conditions the sugar compiles to most: no need to render a template.
        if when is None:
            return True
        if when == SUCCEEDED:
            return ex.status in _OK_TASK
        if when == FAILED:
            return ex.status == "failed"
        return evaluate(when, scope)

    # -- starting tasks ---------------------------------------------------------------------
    def _fire(self, target: str, source: str | None) -> None:
        self._cascade([(target, source)])

    def _cascade(self, work: list[tuple[str, str | None] | None]) -> None:
        """Fire ``(target, source)`` transitions depth-first, in order, without recursing.

        A task that ends as it starts (routing, parallel group, bad input) fires its own
        transitions from inside ``_start``; done recursively, a loop of such tasks would exhaust
        Python's stack long before ``max_runs``. Nested calls push onto the running cascade's
        stack instead, so the order is exactly the recursive one. ``None`` marks where the run
        starts failing (after the tasks named beside ``do: fail`` started).
        """
        if self._stack is not None:
            self._stack.extend(reversed(work))
            return
        self._stack = list(reversed(work))
        try:
            while self._stack:
                step = self._stack.pop()
                if step is None:
                    self._start_failing()
                else:
                    self._fire_one(*step)
        finally:
            self._stack = None

    def _fire_one(self, target: str, source: str | None) -> None:
        if self.done:
            return
        if self.failing and not self.wf.spec.keep_going:
            self.dropped.append((target, source))
            return
        if self.status == "paused":
            self.deferred.append((target, source or ""))
            return
        task = self.wf.tasks[target]
        if task.join is not None:
            if target in self.join_done:
                return
            fired = self.join_fired.setdefault(target, set())
            if source:
                fired.add(source)
            need = len(task.sources) if task.join == "all" else task.join
            if len(fired) < need:
                return
            self.join_done.add(target)
        count = self.runs_count.get(target, 0)
        if count >= task.max_runs:
            self._fail_run(f"MaxRunsExceeded: task {target!r} reached max_runs ({task.max_runs})")
            return
        self.runs_count[target] = count + 1
        self._start(task, count + 1, source)

    def _new_execution(self, task: CTask, n: int) -> Execution:
        exec_id = task.name if n == 1 else f"{task.name}#{n}"
        ex = Execution(id=exec_id, task=task.name, seq=len(self.order) + 1, started_at=self.now)
        self.executions[exec_id] = ex
        self.order.append(exec_id)
        self.latest[task.name] = exec_id
        self._changed(ex)
        return ex

    def _group_result(self, task: CTask) -> dict[str, Any]:
        return {m: self.task_view.get(m, {}).get("result") for m in task.members}

    def _start(self, task: CTask, n: int, source: str | None = None) -> None:
        ex = self._new_execution(task, n)
        before = self.retrying.pop(task.name, None)
        if before is not None and task.with_items is None:
            # ``do: retry``: the same task tried again, so its attempts go on counting.
            ex.attempts = ex.retry_base = self.executions[before].attempts
        if task.kind in ("routing", "parallel"):
            result = self._group_result(task) if task.members else None
            ex.attempts = ex.retry_base + 1
            self._finish_execution(ex, ok=True, result=result)
            return
        scope = self._scope(ex=None)
        try:
            if task.with_items is None:
                ex.input = render(task.input, scope)
                items = None
            else:
                items = render(task.with_items, scope)
                ex.input = {"with_items": items}
        except ExpressionError as exc:
            ex.attempts = ex.retry_base + 1
            self._finish_execution(
                ex, ok=False, error=f"ExpressionError: {exc}", error_type="ExpressionError"
            )
            return
        if task.with_items is not None:
            if isinstance(items, (tuple, range)):
                items = list(items)
            if not isinstance(items, list):
                ex.attempts = ex.retry_base + 1
                self._finish_execution(
                    ex,
                    ok=False,
                    error=f"TypeError: with_items must give a list, got {type(items).__name__}",
                    error_type="TypeError",
                )
                return
            ex.items = [Item(value=v) for v in items]
            if not ex.items:
                ex.attempts = ex.retry_base + 1
                self._finish_execution(ex, ok=True, result=[])
                return
            self._items_settle(ex)  # starts the first batch
            return
        if task.name in self.inquiries:
            data = ex.input if isinstance(ex.input, dict) else {}
            ex.inquiry = {"prompt": str(data.get("prompt", "")), "schema": data.get("schema")}
            ex.attempts = ex.retry_base + 1
            self._set_status(ex, "waiting")
            self._out.append(
                C.OpenInquiry(ex.id, ex.task, ex.inquiry["prompt"], ex.inquiry["schema"])
            )
            if task.timeout:
                self.timers[f"inquiry:{ex.id}"] = ("inquiry", ex.id, None)
                self._out.append(C.StartTimer(f"inquiry:{ex.id}", task.timeout))
            return
        if task.name in self.speculated:
            up = self.executions.get(self.latest.get(source or "", ""))
            if self._adopt_speculation(ex, up):
                return
        self._submit(ex, None)

    def _submit(self, ex: Execution, index: int | None) -> None:
        task = self.wf.tasks[ex.task]
        self.submissions += 1
        key = f"{self.wf.name}.{task.name}-{self._key_run}-{self.submissions}"
        if index is None:
            ex.attempts += 1
            attempt = ex.attempts
            ex.reported = None  # a new attempt starts from nothing
            kwargs = ex.input
            item_value = None
            # A nested run starts at once; an action waits for a worker where that is reported.
            scheduled = self.track_starts and task.name not in self.children
            self._set_status(ex, "scheduled" if scheduled else "running")
        else:
            assert ex.items is not None
            item = ex.items[index]
            ex.cursor = max(ex.cursor, index + 1)
            item.attempts += 1
            self._set_item_status(ex, item, "running")
            item.key = key
            attempt = item.attempts
            ex.attempts = max(ex.attempts, attempt)
            item_value = item.value
            error = None
            try:
                kwargs = render(task.input, self._scope(item=item.value, index=index))
            except ExpressionError as exc:
                error = f"ExpressionError: {exc}"
            self._set_status(ex, "running")
            if error is not None:
                self._item_ended(ex, index, "failed", error=error)
                return
        self.inflight[key] = (ex.id, index, attempt)
        if task.timeout:
            self.timers[f"timeout:{key}"] = ("timeout", key, index)
            self._out.append(C.StartTimer(f"timeout:{key}", task.timeout))
        if task.name in self.children:
            self._out.append(
                C.StartChild(
                    key, ex.id, task.name, self.children[task.name], attempt, dict(kwargs or {})
                )
            )
            return
        refs = {}
        for arg, name in task.result_refs.items():
            up = self.executions.get(self.latest.get(name, ""))
            if up is not None and up.result_key is not None:
                refs[arg] = up.result_key
        cache = None
        if task.cache is not None:
            cache_key = None
            if task.cache.key:
                try:
                    cache_key = str(
                        render(task.cache.key, self._scope(item=item_value, index=index))
                    )
                except ExpressionError:
                    cache_key = None
            cache = (cache_key, task.cache.expire)
        self._out.append(
            C.Submit(
                key=key,
                exec_id=ex.id,
                task=task.name,
                action=task.action or "",
                attempt=attempt,
                input=dict(kwargs or {}),
                item=item_value,
                index=index,
                refs=refs,
                cache=cache,
            )
        )
        if index is None and cache is None:
            self._speculate(task, key, SPECULATION_DEPTH)

    def _speculate(self, task: CTask, key: str, depth: int) -> None:
        """Queue the task's only successor right behind this attempt, gated on its success.

        A workflow engine must see a result before it knows what runs next, which costs a
        round trip per step of a chain. When the next step cannot depend on anything but this
        attempt's success (one unconditional ``on_success`` target, no publish, no join, inputs
        that are constants or exactly this task's result, and the run is in no special state),
        it is submitted now with this attempt as a gate; it skips itself if the attempt fails.
        The successor becomes a task execution only when this attempt's success arrives.
        """
        if depth <= 0 or self.status != "running" or self.failing:
            return
        success = [tr for tr in task.next if tr.when is not None and tr.when != FAILED]
        if len(success) != 1:
            return
        tr = success[0]
        if (
            tr.when != SUCCEEDED
            or tr.publish
            or len(tr.do) != 1
            or tr.do[0] in ("fail", "noop", "retry")
        ):
            return
        if any(t.when is None for t in task.next):
            return
        nxt = self.wf.tasks[tr.do[0]]
        if (
            nxt.kind != "action"
            or nxt.join is not None
            or nxt.with_items is not None
            or nxt.cache is not None
            or nxt.timeout is not None
            or nxt.name in self.inquiries
            or nxt.name in self.children
            or nxt.name == task.name
            or (nxt.name in self.speculated and self._live_gate(self.speculated[nxt.name][1]))
            or self.runs_count.get(nxt.name, 0) + 1 > nxt.max_runs
        ):
            return
        refs: dict[str, str] = {}
        for arg in nxt.templated_inputs:
            if nxt.result_refs.get(arg) != task.name:
                return
            refs[arg] = key
        self.submissions += 1
        spec_key = f"{self.wf.name}.{nxt.name}-{self._key_run}-{self.submissions}"
        self.speculated[nxt.name] = (spec_key, key)
        self._out.append(
            C.Submit(
                key=spec_key,
                exec_id="",
                task=nxt.name,
                action=nxt.action or "",
                attempt=1,
                input={k: (None if k in refs else v) for k, v in nxt.input.items()},
                refs=refs,
                after=key,
            )
        )
        # Keep a few steps queued: the pipeline then never waits on a round trip.
        self._speculate(nxt, spec_key, depth - 1)

    def _live_gate(self, key: str) -> bool:
        """Whether an attempt key is still pending: in flight, or itself a speculation."""
        return key in self.inflight or any(k == key for k, _ in self.speculated.values())

    def _adopt_speculation(self, ex: Execution, source: Execution | None) -> bool:
        """Start ``ex`` as the speculative attempt queued behind ``source``'s success."""
        entry = self.speculated.pop(ex.task, None)
        if entry is None or source is None or source.result_key != entry[1]:
            if entry is not None:
                self.early.pop(entry[0], None)
            return False
        spec_key = entry[0]
        early = self.early.pop(spec_key, None)
        if early is not None and early.error_type == "Skipped":
            return False  # it did not run: submit it the ordinary way
        ex.attempts = 1
        self.inflight[spec_key] = (ex.id, None, 1)
        self._set_status(ex, "running")
        self._speculate(self.wf.tasks[ex.task], spec_key, SPECULATION_DEPTH)
        if early is not None:
            self._on_attempt_done(early)
        return True

    # -- attempts end -----------------------------------------------------------------------
    def _attempt_ok(
        self, ex: Execution, index: int | None, key: str, result: Any, cached: bool
    ) -> None:
        if index is None:
            ex.result_key = None if cached else key
            self._finish_execution(ex, ok=True, result=result, cached=cached)
            return
        self._item_ended(ex, index, "cached" if cached else "succeeded", result=result)

    def _attempt_failed(
        self, ex: Execution, index: int | None, attempt: int, error: str, error_type: str | None
    ) -> None:
        task = self.wf.tasks[ex.task]
        tries = attempt if index is not None else attempt - ex.retry_base
        retry = tries <= task.retry.count and not (self.failing and not self.wf.spec.keep_going)
        if retry and task.retry.when is not None:
            try:
                retry = evaluate(task.retry.when, self._attempt_scope(ex, index, error, error_type))
                if not retry:
                    ex.logs.append(f"attempt {attempt} failed: {error}; not retried (retry.when)")
            except ExpressionError as exc:
                # The condition is broken: the task fails (loudly, in one line), not retried.
                retry = False
                error = f"ExpressionError: retry.when: {exc} (attempt {attempt}: {error})"
                error_type = "ExpressionError"
        if retry:
            delay = task.retry.delay_for(tries)
            ex.logs.append(f"attempt {attempt} failed: {error}; retrying in {delay:g}s")
            if index is not None:
                assert ex.items is not None
                self._set_item_status(ex, ex.items[index], "retrying")
            self._set_status(ex, "retrying")
            name = f"retry:{ex.id}:{index}:{attempt}"
            self.timers[name] = ("retry", ex.id, index)
            self._out.append(C.StartTimer(name, delay))
            return
        if index is None:
            self._finish_execution(ex, ok=False, error=error, error_type=error_type)
            return
        if ex.error_type is None:
            ex.error_type = error_type
        self._item_ended(ex, index, "failed", error=error)

    def _item_ended(
        self,
        ex: Execution,
        index: int,
        status: Literal["succeeded", "cached", "failed"],
        *,
        result: Any = None,
        error: str | None = None,
    ) -> None:
        """The one place an item's attempts end: record it, count it, then start the next
        items or finish the task (:meth:`_items_settle`)."""
        assert ex.items is not None
        item = ex.items[index]
        self._set_item_status(ex, item, status, error if status == "failed" else None)
        if status == "failed":
            if ex.first_failed is None or index < ex.first_failed:
                ex.first_failed = index
        else:
            item.result = result
        ex.items_done += 1
        self._items_settle(ex)

    def _items_settle(self, ex: Execution) -> None:
        """After an item ended: start the next, or finish the task."""
        assert ex.items is not None
        task = self.wf.tasks[ex.task]
        total = len(ex.items)
        active = ex.cursor - ex.items_done
        if ex.first_failed is None and not self.done:
            room = (task.batch_size or total) - active
            upto = min(total, ex.cursor + max(room, 0))
            if self.status == "paused":
                for i in range(ex.cursor, upto):
                    self._set_item_status(ex, ex.items[i], "retrying")  # queued until resume
                    ex.cursor = i + 1
                    self.deferred_submits.append((ex.id, i))
            else:
                for i in range(ex.cursor, upto):
                    self._submit(ex, i)
                    if ex.items[i].status == "failed":
                        # Its input did not render and ``_submit`` settled the task: start no more.
                        return
            active = ex.cursor - ex.items_done
        self._changed(ex)
        if active:
            return
        if ex.first_failed is not None:
            for it in ex.items[ex.cursor :]:
                self._set_item_status(ex, it, "skipped")
            ex.items_done += total - ex.cursor
            ex.cursor = total
            i = ex.first_failed
            it = ex.items[i]
            kind, message = _split_error(it.error, ex.error_type)
            # The items that succeeded stay readable by the failure's transitions (``result``:
            # the list in item order, ``None`` where an item failed or never ran).
            partial = [x.result if x.status in ("succeeded", "cached") else None for x in ex.items]
            self._finish_execution(
                ex,
                ok=False,
                result=partial,
                error=f"{kind}: item {i}: {message}",
                error_type=ex.error_type,
            )
        elif ex.items_done == total:
            cached = all(it.status == "cached" for it in ex.items)
            self._finish_execution(
                ex, ok=True, result=[it.result for it in ex.items], cached=cached
            )

    def _finish_execution(
        self,
        ex: Execution,
        *,
        ok: bool,
        result: Any = None,
        error: str | None = None,
        error_type: str | None = None,
        cached: bool = False,
    ) -> None:
        if ok:
            ex.result = result
            ex.error = None
            self._set_status(ex, "cached" if cached else "succeeded")
        else:
            if result is not None:
                ex.result = result
            ex.error = error or f"{error_type or ex.error_type or 'TaskFailed'}: {NO_MESSAGE}"
            ex.error_type = error_type or ex.error_type
            self._set_status(ex, "failed")
        self._transitions(ex)

    # -- where statuses change ----------------------------------------------------------------
    def _set_status(self, ex: Execution, status: TaskStatus) -> None:
        """The one place an execution's status changes, with its bookkeeping.

        A final status stamps ``ended_at``; the execution is marked for the store's projection
        and its ``task.<name>`` view (what templates read) follows. Set the fields the view
        shows (result, error, attempts) before calling this.
        """
        ex.status = status
        if status in DONE_TASK:
            ex.ended_at = self.now
        self._changed(ex)

    def _set_item_status(
        self, ex: Execution, item: Item, status: TaskStatus, error: str | None = None
    ) -> None:
        """The one place a ``with_items`` item's status changes: ``error`` is recorded when
        given, and ``ex`` is marked for the store's projection (its ``task.<name>`` view follows
        when the caller settles the execution)."""
        item.status = status
        if error is not None:
            item.error = error
        self._dirty.add(ex.id)

    def _changed(self, ex: Execution) -> None:
        """``ex`` changed: project it to the store, refresh its ``task.<name>`` view."""
        self._dirty.add(ex.id)
        self._view(ex)

    def _set_run_status(self, status: RunStatus, error: str | None = None) -> None:
        """The one place the run's status changes, with its bookkeeping.

        ``started_at`` at the first start; ``ended_at`` and ``error`` when it ends, cleared when
        a retry reopens it; the store's run record follows (:meth:`take_run_change`).
        """
        if status == "running" and self.started_at is None:
            self.started_at = self.now
        final = status in FINAL_RUN
        self.ended_at = self.now if final else None
        self.error = error if final else None
        self.status = status
        self._status_dirty = True

    def _finish_run(self, status: RunStatus, error: str | None, outputs: Any) -> None:
        """End the run with ``status``: its outputs kept, ``RunFinished`` sent."""
        self.outputs = outputs
        self._set_run_status(status, error)
        self._out.append(C.RunFinished(status, outputs, error))

    def _view(self, ex: Execution) -> None:
        if self.latest.get(ex.task) != ex.id:
            return
        done, total = ex.progress()
        failed_items: list[Any] = []
        if ex.items and ex.status in DONE_TASK:  # once, when the task ended: not per item
            failed_items = [it.value for it in ex.items if it.status == "failed"]
        self.task_view[ex.task] = {
            "result": ex.result,
            "status": ex.status,
            "error": ex.error,
            "attempts": ex.attempts,
            "done": done,
            "total": total,
            "failed_items": failed_items,
        }

    def _transitions(self, ex: Execution) -> None:
        task = self.wf.tasks[ex.task]
        scope: dict[str, Any] | None = None
        fired = False
        fail_command = False
        starts: list[str] = []
        decided = False  # a decision is first-match: once one of its entries fired, skip the rest
        try:
            for tr in task.next:
                if decided and tr.kind == "decision":
                    continue
                if tr.when is None or tr.when == SUCCEEDED or tr.when == FAILED:
                    holds = self._when(tr.when, ex, {})
                else:
                    if scope is None:
                        scope = self._scope(ex)
                    holds = self._when(tr.when, ex, scope)
                if not holds:
                    continue
                fired = True
                decided = decided or tr.kind == "decision"
                if tr.publish:
                    if scope is None:
                        scope = self._scope(ex)
                    for name, expr in tr.publish:
                        self.vars[name] = render(expr, scope)
                for entered in tr.groups:
                    # A transition into a parallel group that already ended (a loop through
                    # it): the group runs again, a join over its members' new executions.
                    if entered in self.join_done and entered not in self.group_failures:
                        self.join_done.discard(entered)
                        self.join_fired[entered] = set()
                for target in tr.do:
                    if target == "fail":
                        fail_command = True
                    elif target == "noop":
                        pass
                    elif target == "retry":
                        starts.append(ex.task)
                        self.retrying[ex.task] = ex.id
                    else:
                        starts.append(target)
        except ExpressionError as exc:
            self._fail_run(f"ExpressionError: task {ex.task!r}: {exc}")
            return
        group = self.group_of.get(ex.task)
        if group is not None and group in self.join_done:
            group = None  # the group already ended (a loop through it): nothing to report to
        work: list[tuple[str, str | None] | None] = [(target, ex.task) for target in starts]
        if ex.status == "failed" and not fired:
            if group is not None:
                # Its group takes the failure: the group ends failed once its members settle.
                self.group_failures.setdefault(group, []).append(ex.id)
            else:
                self.unhandled.append(ex.id)
                self._fail_run(_task_failed(ex))
        elif fail_command:
            reason = (
                _task_failed(ex)
                if ex.status == "failed"
                else f"RunFailed: task {ex.task!r} transitioned to fail"
            )
            self._record_failure(reason)
        elif ex.status == "failed" and group is not None and ex.task not in starts:
            # Remediated by its own transitions: it counts as done for its group (a member
            # that runs itself again, ``do: retry``, counts when that execution ends).
            work.append((group, ex.task))
        if fail_command:
            work.append(None)  # the run fails once the tasks beside ``fail`` have started
        self._cascade(work)
        if group is not None and group in self.group_failures:
            self._end_failed_group(group, all_started=True)

    def _end_failed_group(self, group: str, *, all_started: bool) -> None:
        """End a group that took a member's failure, once none of its members is active.

        ``all_started``: also wait for members not started yet (they start in the cascade
        that is running); when the run settles, a member that never started never will.
        """
        if self.done or group not in self.group_failures:
            return
        task = self.wf.tasks[group]
        for member in task.members:
            exec_id = self.latest.get(member)
            if exec_id is None:
                if all_started:
                    return
            elif self.executions[exec_id].status not in DONE_TASK:
                return
        failed = self.group_failures.pop(group)
        self.join_done.add(group)
        count = self.runs_count.get(group, 0)
        if count >= task.max_runs:
            self._fail_run(f"MaxRunsExceeded: task {group!r} reached max_runs ({task.max_runs})")
            return
        self.runs_count[group] = count + 1
        ex = self._new_execution(task, count + 1)
        ex.attempts = 1
        first = self.executions[failed[0]]
        kind, message = _split_error(first.error, first.error_type)
        names = list(dict.fromkeys(self.executions[e].task for e in failed))
        more = f" (and {', '.join(repr(n) for n in names[1:])})" if len(names) > 1 else ""
        self.group_failed_members[ex.id] = failed
        self._finish_execution(
            ex,
            ok=False,
            result=None,
            error=f"{kind}: member {first.task!r} failed{more}: {message}",
            error_type=first.error_type,
        )

    # -- run end ----------------------------------------------------------------------------
    def _record_failure(self, reason: str) -> None:
        if self.failure is None:
            self.failure = reason

    def _fail_run(self, reason: str) -> None:
        """An unhandled failure: no new task starts (unless keep_going); the run will fail."""
        self._record_failure(reason)
        self._start_failing()

    def _start_failing(self) -> None:
        """No new task starts from now (unless keep_going): withdraw the speculative ones too."""
        self.failing = True
        if not self.wf.spec.keep_going:
            self._withdraw_speculation()

    def _withdraw_speculation(self) -> None:
        for key, _after in self.speculated.values():
            self._out.append(C.CancelAttempt(key))
        self.speculated.clear()
        self.early.clear()

    def _settle(self) -> None:
        """Decide the run's status once nothing more can happen on its own."""
        if self.status in ("pending",) or self.done:
            return
        if self.status == "paused":
            return
        # Called after every event: look at every execution or timer only when nothing is in
        # flight, or a run of N tasks costs O(N^2) (a 10,000-task replay took tens of seconds).
        busy = bool(self.inflight) or any(kind == "retry" for kind, _, _ in self.timers.values())
        if busy:
            if self.status != "running":
                self._set_run_status("running")
            return
        waiting = bool(self.open_inquiries())
        if waiting and not (self.failing and not self.wf.spec.keep_going):
            if self.status != "waiting":
                self._set_run_status("waiting")
            return
        if waiting:
            # Failing: an open inquiry will never be answered usefully; cancel it.
            for ex in self.open_inquiries():
                ex.inquiry = None
                self._set_status(ex, "cancelled")
            self.timers.clear()
        if self.group_failures:
            # Nothing else will happen: members of a failed group that never started never
            # will, so the group ends now (and its transitions may start more work).
            before = len(self.order)
            for group in list(self.group_failures):
                self._end_failed_group(group, all_started=False)
            if len(self.order) != before:
                self._settle()  # look again: each pass ends at least one group
                return
        if self.failure is None:
            for name in self.wf.tasks:
                fired = self.join_fired.get(name)
                if fired and name not in self.join_done:
                    task = self.wf.tasks[name]
                    need = len(task.sources) if task.join == "all" else task.join
                    missing = [s for s in task.sources if s not in fired]
                    self._record_failure(
                        f"JoinError: join task {name!r} can never run: {len(fired)} of {need} inbound "
                        f"transitions fired (waiting on {', '.join(missing)})"
                    )
                    break
        if self.failure is not None:
            self._end("failed", self.failure)
        else:
            self._end("succeeded", None)

    def _end(self, status: RunStatus, error: str | None) -> None:
        self.timers.clear()
        self.group_failures.clear()  # a group still waiting on members never ends now
        # Speculative attempts still out there will be ignored; a retry submits afresh.
        self.speculated.clear()
        self.early.clear()
        outputs: dict[str, Any] | None = None
        try:
            outputs = (
                render(self.wf.spec.output_map, self._scope()) if self.wf.spec.output_map else {}
            )
        except ExpressionError as exc:
            if status == "succeeded":
                status, error = "failed", f"ExpressionError: output_map: {exc}"
            outputs = None
        self._finish_run(status, error, outputs)

    #: Event type -> the name of its handler: every event type has exactly one. Names, not the
    #: functions, so that a subclass (or a test injecting a bug) can override a handler.
    _HANDLERS: ClassVar[dict[type[E.Event], str]] = {
        E.RunStarted: "_on_run_started",
        E.AttemptDone: "_on_attempt_done",
        E.AttemptStarted: "_on_attempt_started",
        E.AttemptProgress: "_on_attempt_progress",
        E.TimerFired: "_on_timer_fired",
        E.InquiryResponded: "_on_inquiry_responded",
        E.PauseRequested: "_on_pause_requested",
        E.ResumeRequested: "_on_resume_requested",
        E.CancelRequested: "_on_cancel_requested",
        E.InternalFailure: "_on_internal_failure",
        E.RetryRequested: "_on_retry_requested",
        E.Recovered: "_on_recovered",
    }
    #: Timer kind -> what happens when a timer of that kind fires, given ``(ref, item index)``.
    _TIMERS: ClassVar[dict[str, str]] = {
        "timeout": "_attempt_timed_out",
        "retry": "_retry_due",
        "inquiry": "_inquiry_timed_out",
    }


#: Events a run that has ended still takes; it ignores every other once it is final.
_AFTER_END: frozenset[type[E.Event]] = frozenset({E.Recovered, E.RetryRequested, E.InternalFailure})

_ERROR_TYPE = re.compile(r"[A-Za-z_][A-Za-z0-9_.]*")


def _split_error(error: str | None, error_type: str | None = None) -> tuple[str, str]:
    """``"ValueError: bad"`` -> ``("ValueError", "bad")``; untyped text gets ``error_type``."""
    text = error or "failed"
    head, sep, rest = text.partition(": ")
    if sep and _ERROR_TYPE.fullmatch(head):
        return head, rest
    return error_type or "TaskFailed", text


def _progress_pair(value: Any) -> tuple[int, int] | None:
    try:
        done, total = value
        return int(done), int(total)
    except (TypeError, ValueError):
        return None


def _task_failed(ex: Execution) -> str:
    """A run's error for an unhandled task failure: one line ``Type: message`` naming the task."""
    kind, message = _split_error(ex.error, ex.error_type)
    return f"{kind}: task {ex.task!r} failed: {message}"


class _KV:
    """``kv.get(key, default)`` in templates."""

    def __init__(self, getter: Callable[..., Any] | None) -> None:
        self._getter = getter

    def get(self, key: str, default: Any = None) -> Any:
        if self._getter is None:
            return default
        return self._getter(key, default)
