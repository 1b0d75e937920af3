"""The orchestrator: an asyncio loop that feeds events to run state machines and carries out
their commands on an executor and a store.

One orchestrator per process, on its own thread, serves every run of that process: the kernel's
event loop is never touched, so ``%workflow run --background`` leaves the kernel responsive, and
the sync facades (``Run.wait()``, the CLI) just wait on a condition.

Each turn of the loop takes every event queued since the last turn (from executor callbacks,
timers, API calls), appends them to the store's event log, lets the state machines handle them,
writes the projections, **commits once**, and only then carries out the commands. So every state
change is durable before anything acts on it (write-ahead), at the cost of one commit per batch,
not per event.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import dataclasses
import functools
import gc
import hashlib
import json
import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..actions.registry import ActionDef
from ..exceptions import ActionNotFound, InquiryError, RunStateError, WorkflowError
from ..executors.base import Executor, Outcome, ResultRef, Submission, switched_on
from ..executors.runtime import AFTER, secret_source
from ..expressions import MASKER, secret_function
from ..spec.compile import CompiledWorkflow
from . import commands as C
from . import events as E
from .state import DONE_TASK, FINAL_RUN, Execution, RunState

if TYPE_CHECKING:  # pragma: no cover
    from ..definition import Workflow
    from ..store.base import RunStore, TaskRecord

__all__ = ["ActiveRun", "Orchestrator"]

OWNER = f"{socket.gethostname()}:{os.getpid()}"
HEARTBEAT_SECONDS = 2.0
#: How deep nested runs may go: a workflow that (indirectly) nests itself stops here with a
#: one-line error on the task, instead of creating runs without end.
MAX_NESTING = 32
#: A running ``with_items`` execution of more items than this is written to the store at most
#: every :data:`BIG_PROJECTION_S` seconds (more for more items, see ``_projection_interval``): its record holds every item (its input), so writing
#: it after each batch of finished items would cost O(items) per batch, O(items^2) in all.
BIG_ITEMS = 1000
BIG_PROJECTION_S = 0.5


def _projection_interval(items: int) -> float:
    """Seconds between writes of a big running ``with_items`` execution: 0.5 s up to 10,000
    items, then growing with the item count (each write costs O(items)), at most 5 s."""
    return min(5.0, max(BIG_PROJECTION_S, items / 20000))


#: Python's cyclic garbage collector while runs are in flight in this process: a collection of
#: the youngest generation every this many allocations instead of every 700 (see
#: :class:`_GcTuning`).
GC_RUNS_GEN0 = 50_000
#: The interpreter's thresholds when this module was imported: the only ones the engine
#: changes (a process that set its own keeps them).
_GC_STARTUP = gc.get_threshold()


class _GcTuning:
    """Fewer, shorter garbage-collector pauses while runs are in flight in this process.

    The collector holds the GIL that the engine's loop, the Dask client and the embedded
    scheduler share, and each attempt allocates a handful of container objects (submission,
    event, outcome). With Python's default thresholds it ran about 2,400 times during a
    50,000-item fan-out (2.6-3.0 s of a 9 s run), and while 1,000 runs were started at once its
    full collections, which walk every object of the process (Dask, Bokeh, pandas, ...), paused
    everything for 128-192 ms: the p99 latency from ``run()`` to the first submission
    (docs/performance.md). From the start of a run until the last run in flight ends (or is
    adopted and ends), the youngest generation is collected every :data:`GC_RUNS_GEN0`
    allocations (the older generations keep their thresholds, so full collections become about
    70 times rarer too). Only the interpreter's own thresholds are changed, and
    ``JUPYTER_WORKFLOWS_GC_TUNING=0`` turns this off. Process-wide (the collector is), so one
    instance serves every orchestrator.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._runs: set[str] = set()
        self._tuned: tuple[int, ...] | None = None
        self._saved: tuple[int, ...] | None = None

    @property
    def active(self) -> bool:
        return self._tuned is not None

    def hold(self, run_id: str) -> None:
        with self._lock:
            if run_id in self._runs:
                return
            self._runs.add(run_id)
            if self._tuned is not None or len(self._runs) != 1:
                return
            if not switched_on("JUPYTER_WORKFLOWS_GC_TUNING"):
                return
            current = gc.get_threshold()
            if current != _GC_STARTUP or current[0] >= GC_RUNS_GEN0 or current[0] <= 0:
                return  # the process chose its own (or the collector is off): leave it
            self._saved = current
            self._tuned = (GC_RUNS_GEN0, *current[1:])
            gc.set_threshold(*self._tuned)

    def release(self, run_id: str) -> None:
        with self._lock:
            self._runs.discard(run_id)
            if self._runs or self._tuned is None:
                return
            if gc.get_threshold() == self._tuned and self._saved is not None:
                gc.set_threshold(*self._saved)  # unless someone set others meanwhile
            self._tuned = self._saved = None

    def release_all(self, run_ids: Iterable[str]) -> None:
        for run_id in list(run_ids):
            self.release(run_id)


_GC = _GcTuning()

logger = logging.getLogger(__name__)
Listener = Callable[["ActiveRun"], None]

#: Most events one turn of the orchestrator's loop handles, not counting the first events of
#: runs (see :func:`_take_turn`).
TURN_MAX = 256
#: Finished runs the orchestrator keeps in memory (the newest ones); older ones are dropped and
#: read from the store like a run of another process. A :class:`Run` handle keeps its own run's
#: state for as long as the handle lives. Without a bound a long-lived process (``serve``, a
#: kernel used all day) kept every run it ever drove, results included.
KEEP_FINISHED = 64
#: The first event of a run in this process.
_FIRST_EVENTS = (E.RunStarted, E.Recovered)


class _Barrier:
    """Queued like an event by :meth:`Orchestrator.barrier`: set once every event queued
    before it has been handled."""

    __slots__ = ("done",)

    def __init__(self) -> None:
        self.done = threading.Event()


_Pending = tuple[str, "E.Event | _Barrier"]


def _take_turn(pending: list[_Pending]) -> tuple[list[_Pending], list[_Pending]]:
    """``(this turn's events, the rest)``: runs' first events (``RunStarted``, ``Recovered``)
    wherever they are in the queue, and the other events in their order, at most
    :data:`TURN_MAX` of each.

    A turn commits once and carries out its commands only at its end, so a run started while
    a backlog of outcomes waited (1,000 runs at once; 10,000 queued) waited for all of them:
    turns of up to 2,000 events and 0.8 s, a dispatch p99 of 0.1-2 s. Bounded turns that take
    new runs first keep dispatch short, and the backlog still goes in order, a few hundred
    events a turn. No run sees its own events reordered: a run's first event comes before any
    other of its own, and a run whose first event waits for a later turn has its other events
    wait with it.
    """
    if len(pending) <= TURN_MAX:
        return pending, []
    taken: list[_Pending] = []
    rest: list[_Pending] = []
    firsts = others = 0
    waiting: set[str] = set()  # runs whose first event went to the rest
    for item in pending:
        if isinstance(item[1], _FIRST_EVENTS):
            if firsts < TURN_MAX:
                taken.append(item)
                firsts += 1
                continue
            waiting.add(item[0])
        elif others < TURN_MAX and item[0] not in waiting:
            taken.append(item)
            others += 1
            continue
        rest.append(item)
    return taken, rest


@dataclass
class ActiveRun:
    """A run this process is driving."""

    run_id: str
    workflow: Workflow
    state: RunState
    actions: dict[str, ActionDef]
    no_cache: bool = False
    parent: tuple[str, str] | None = None  # (parent run id, attempt key)
    children: dict[str, str] = field(default_factory=dict)  # attempt key -> child run id
    cache_keys: dict[str, tuple[str, float | None]] = field(default_factory=dict)
    held: set[str] = field(default_factory=set)
    settled: threading.Condition = field(default_factory=threading.Condition)
    listeners: list[Listener] = field(default_factory=list)
    #: When each big running ``with_items`` execution was last written (see BIG_ITEMS).
    projected_at: dict[str, float] = field(default_factory=dict)

    @property
    def quiescent(self) -> bool:
        """Nothing will happen without outside help: ended, paused, or waiting on a human."""
        s = self.state
        if s.status in FINAL_RUN:
            return True
        if s.status == "paused" and not s.inflight:
            return True
        return s.status == "waiting"


class Orchestrator:
    """Drives runs: one asyncio loop on a daemon thread.

    Parameters
    ----------
    store:
        Where every change goes.
    executor_factory:
        Builds the executor on first use (starting a cluster is slow: only when a task runs).
    """

    def __init__(self, store: RunStore, executor_factory: Callable[[], Executor]) -> None:
        self.store = store
        self._executor_factory = executor_factory
        #: Where workers write results above :attr:`artifact_threshold` bytes (an fsspec URL;
        #: by default the store's artifact folder), or ``None``: every result comes back here.
        self.artifacts: str | None = _default_artifacts(store)
        #: ``None``: the default, 1 MiB.
        self.artifact_threshold: int | None = None
        self._executor: Executor | None = None
        self._executor_lock = threading.Lock()
        self.runs: dict[str, ActiveRun] = {}
        #: Ids of the finished runs still in :attr:`runs`, oldest first (see KEEP_FINISHED).
        self._finished_ids: collections.OrderedDict[str, None] = collections.OrderedDict()
        #: Where context.secret() finds the store's secrets (the same for every attempt).
        self._secrets = secret_source(store)
        self._pending: list[tuple[str, E.Event | _Barrier]] = []
        self._pending_lock = threading.Lock()
        self._scheduled = False
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._serve, name="jupyter-workflows-orchestrator", daemon=True
        )
        self._thread.start()
        self._loop.call_soon_threadsafe(self._loop.call_later, HEARTBEAT_SECONDS, self._tick)
        self.closed = False

    # -- loop ---------------------------------------------------------------------------------
    def _serve(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._loop.run_forever()

    @property
    def executor(self) -> Executor:
        with self._executor_lock:
            if self._executor is None:
                self._executor = self._executor_factory()
            return self._executor

    def feed(self, run_id: str, event: E.Event | _Barrier) -> None:
        """Queue ``event`` for run ``run_id`` (any thread)."""
        with self._pending_lock:
            self._pending.append((run_id, event))
            if self._scheduled:
                return
            self._scheduled = True
        self._loop.call_soon_threadsafe(self._drain)

    def _tick(self) -> None:
        """Heartbeat and cross-process requests (pause/cancel/resume/respond from the CLI)."""
        if self.closed:
            return
        try:
            now = time.time()
            live = {run_id: a for run_id, a in list(self.runs.items()) if not a.state.done}
            for active in live.values():
                with contextlib.suppress(Exception):  # its next turn says what is wrong
                    self._project(active)  # what BIG_PROJECTION_S held back
            # One write and one look for all runs: per run, the tick held the loop (and every
            # new run's dispatch) for 50-160 ms at 1,000 runs in flight.
            self.store.heartbeat(live, now, OWNER)
            for run_id, requests in self.store.take_all_requests(live).items():
                for req in requests:
                    self._apply_request(live[run_id], req)
            self.store.commit()
        except Exception:  # the heartbeat must never kill the loop
            pass
        self._loop.call_later(HEARTBEAT_SECONDS, self._tick)

    def _apply_request(self, active: ActiveRun, req: dict[str, Any]) -> None:
        kind, payload, now = req.get("kind"), req.get("payload"), time.time()
        if kind == "pause":
            self.feed(active.run_id, E.PauseRequested(now))
        elif kind == "resume":
            self.feed(active.run_id, E.ResumeRequested(now))
        elif kind == "cancel":
            self.cancel(active.run_id)
        elif kind == "respond" and isinstance(payload, dict):
            exec_id = payload.get("exec_id", "")
            self.feed(
                active.run_id, E.InquiryResponded(now, exec_id=exec_id, data=payload.get("data"))
            )

    def _drain(self) -> None:
        with self._pending_lock:
            taken, self._pending = _take_turn(self._pending)
            more = self._scheduled = bool(self._pending)
        if more:  # the rest in the next turn, after what else the loop has to do
            self._loop.call_soon(self._drain)
        batch: list[tuple[str, E.Event]] = []
        barriers: list[_Barrier] = []
        for run_id, event in taken:
            if isinstance(event, _Barrier):
                barriers.append(event)
            else:
                batch.append((run_id, event))
        try:
            if batch:
                self._drain_batch(batch)
        except Exception:  # a bug in the guards below: never let the loop lose a batch silently
            logger.error("the orchestrator failed on a batch of events", exc_info=True)
            for run_id in {run_id for run_id, _event in batch}:
                active = self.runs.get(run_id)
                if active is not None and not active.state.done:
                    self._abort_now(active, "InternalError: the orchestrator failed")
        finally:
            for barrier in barriers:
                barrier.done.set()

    def _drain_batch(self, batch: list[tuple[str, E.Event]]) -> None:
        """One turn: log the batch's events, handle them, project, commit once, then act.

        Whatever raises while doing so (a bug, a value the store cannot take, a store that
        cannot commit) ends the affected run ``failed`` with one ``InternalError: ...`` line
        naming what failed (the traceback goes to this module's logger at DEBUG), so nobody
        waits on it forever; other runs of the batch go on.
        """
        work: list[tuple[ActiveRun, list[C.Command]]] = []
        touched: dict[str, ActiveRun] = {}
        #: Runs that were not over when the batch began (a run over before cannot be broken
        #: by late events: its end is already durable).
        live: set[str] = set()
        broken: dict[str, str] = {}  # run id -> the InternalError line
        for run_id, event in batch:
            active = self.runs.get(run_id)
            if active is None or run_id in broken:
                continue
            if run_id not in touched and not active.state.done:
                live.add(run_id)
            touched[run_id] = active
            try:
                cmds = self._handle(active, event)
            except Exception as exc:
                broken[run_id] = _internal(f"handling event {event.type!r}", exc)
                continue
            if cmds:
                work.append((active, cmds))
        for run_id, active in touched.items():
            if run_id in broken:
                continue
            try:
                self._project(active)
            except Exception as exc:
                broken[run_id] = _internal("writing the run's records to the store", exc)
        try:
            self.store.commit()  # write-ahead: durable before acting
        except Exception as exc:
            message = _internal("committing to the store", exc)
            for run_id in touched:
                broken.setdefault(run_id, message)
        for run_id, message in broken.items():
            active = touched[run_id]
            decided = [cmd for a, cmds in work if a is active for cmd in cmds]
            work = [(a, cmds) for a, cmds in work if a is not active]
            if run_id not in live:
                continue  # over before this batch: its end is durable, nothing to undo
            cmds = self._abort(active, message)
            if not any(isinstance(cmd, C.RunFinished) for cmd in cmds):
                # Already over (failed or cancelled) in memory: finish as decided.
                cmds += [cmd for cmd in decided if isinstance(cmd, C.RunFinished)]
            work.append((active, cmds))
        for active, cmds in work:
            for cmd in cmds:
                try:
                    self._carry_out(active, cmd)
                except Exception as exc:
                    # Carrying out must never stop the loop: the rest of the batch, the
                    # listeners and every other run depend on it. An attempt that cannot start
                    # fails its task instead.
                    if isinstance(cmd, (C.Submit, C.StartChild)):
                        self.feed(active.run_id, _failed(cmd.key, exc))
                    else:
                        logger.debug("carrying out %r failed", cmd, exc_info=True)
        for active in touched.values():
            self._notify(active)

    def _handle(self, active: ActiveRun, event: E.Event) -> list[C.Command]:
        """Log ``event`` (unless advisory) and let the run's state machine handle it."""
        run_id = active.run_id
        if isinstance(event, (E.AttemptProgress, E.AttemptStarted)):
            # Advisory, not logged (see the event): it only changes what the run shows.
            return active.state.handle(event)
        try:
            self.store.append_events(run_id, [_masked_event(event)])
        except WorkflowError as exc:
            if not isinstance(event, E.AttemptDone) or not event.ok:
                raise
            # A result the store cannot keep (unpicklable) fails the attempt instead.
            event = E.AttemptDone(
                event.time,
                key=event.key,
                ok=False,
                error=f"StoreError: {exc}",
                error_type="StoreError",
                logs=event.logs,
                worker=event.worker,
                progress=event.progress,
            )
            self.store.append_events(run_id, [_masked_event(event)])
        if isinstance(event, E.AttemptDone):
            self._cache_result(active, event)
        return active.state.handle(event)

    def _abort(self, active: ActiveRun, message: str) -> list[C.Command]:
        """End ``active`` ``failed`` with ``message`` after an internal error; the commands
        that follow (cancel what is in flight, finish the run)."""
        event = E.InternalFailure(time.time(), error=message)
        try:
            self.store.append_events(active.run_id, [event.to_dict()])
        except Exception:
            logger.debug("logging the internal failure of %s failed", active.run_id, exc_info=True)
        try:
            cmds = active.state.handle(event)
        except Exception:  # pragma: no cover - the handler is plain bookkeeping
            logger.debug("failing %s failed", active.run_id, exc_info=True)
            self._abort_now(active, message)
            return []
        try:
            self._project(active)
            self.store.commit()
        except Exception:
            # The records themselves may be what the store refuses (a value it cannot keep):
            # write each record alone, without its values where it must, and the run's end.
            logger.debug("writing the failure of %s failed", active.run_id, exc_info=True)
            self._write_end_plainly(active, message)
        return cmds

    def _write_end_plainly(self, active: ActiveRun, message: str) -> None:
        state, run_id = active.state, active.run_id
        for ex in state.execution_list():
            record = _task_record(run_id, ex)
            bare: TaskRecord = {**record, "input": None, "result": None}
            for attempt in (record, bare):
                try:
                    self.store.upsert_tasks(run_id, [attempt])
                    break
                except Exception:
                    continue
        try:
            self.store.update_run(run_id, status="failed", error=message, ended_at=state.ended_at)
            self.store.commit()
        except Exception:
            logger.debug("the store refuses %s's end", run_id, exc_info=True)

    def _abort_now(self, active: ActiveRun, message: str) -> None:
        """Last resort (the batch machinery itself failed): end the run and tell everyone."""
        try:
            cmds = self._abort(active, message)
            for cmd in cmds:
                try:
                    self._carry_out(active, cmd)
                except Exception:
                    logger.debug("carrying out %r failed", cmd, exc_info=True)
        except Exception:
            logger.debug("aborting %s failed", active.run_id, exc_info=True)
        state = active.state
        if not state.done:  # pragma: no cover - even the state machine failed
            state.status, state.error, state.ended_at = "failed", message, time.time()
        self._notify(active)

    def _notify(self, active: ActiveRun) -> None:
        for listener in list(active.listeners):
            try:
                listener(active)
            except Exception:
                pass
        if active.quiescent:
            with active.settled:
                active.settled.notify_all()

    def _cache_result(self, active: ActiveRun, event: E.AttemptDone) -> None:
        """Keep the result of a cached task's attempt (committed with the batch)."""
        entry = active.cache_keys.pop(event.key, None)
        if entry is None or not event.ok or event.cached or event.key not in active.state.inflight:
            return  # not a cached task, failed, from the cache, or late (timed out, cancelled)
        key, expire = entry
        expire_at = None if expire is None else event.time + expire
        self.store.cache_put(key, MASKER.mask(event.result), expire_at)

    def _project(self, active: ActiveRun) -> None:
        state = active.state
        changed = state.changed_executions()
        if changed:
            now = time.monotonic()
            quiescent = active.quiescent
            later: set[str] = set()
            records = []
            for exec_id in changed:
                ex = state.executions[exec_id]
                if ex.items is not None and len(ex.items) > BIG_ITEMS and not quiescent:
                    if ex.status not in DONE_TASK:
                        since = now - active.projected_at.get(exec_id, 0.0)
                        if since < _projection_interval(len(ex.items)):
                            later.add(exec_id)
                            continue
                        active.projected_at[exec_id] = now
                    else:
                        active.projected_at.pop(exec_id, None)
                records.append(_task_record(active.run_id, ex))
            if records:
                self.store.upsert_tasks(active.run_id, records)
            # After the write: records the store refused are written again.
            state.mark_projected(e for e in changed if e not in later)
        if state.take_run_change():
            fields: dict[str, Any] = {"status": state.status}
            if state.started_at is not None:
                fields["started_at"] = state.started_at
            if state.done:
                fields["ended_at"] = state.ended_at
                fields["outputs"] = MASKER.mask(state.outputs)
                fields["error"] = MASKER.mask_text(state.error) if state.error else None
            self.store.update_run(active.run_id, **fields)

    # -- commands -----------------------------------------------------------------------------
    def _carry_out(self, active: ActiveRun, cmd: C.Command) -> None:
        if isinstance(cmd, C.Submit):
            self._submit(active, cmd)
        elif isinstance(cmd, C.StartTimer):
            self._loop.call_later(max(cmd.delay, 0.0), self._fire_timer, active.run_id, cmd.timer)
        elif isinstance(cmd, C.CancelAttempt):
            child = active.children.pop(cmd.key, None)
            if child is not None:
                self.cancel(child)
            else:
                self.executor.cancel(cmd.key)
        elif isinstance(cmd, C.StartChild):
            self._start_child(active, cmd)
        elif isinstance(cmd, C.OpenInquiry):
            pass  # listeners (widget, progress) see the waiting task in the state
        elif isinstance(cmd, C.RunFinished):
            self._finished(active)

    def _fire_timer(self, run_id: str, timer: str) -> None:
        self.feed(run_id, E.TimerFired(time.time(), timer=timer))

    def _submit(self, active: ActiveRun, cmd: C.Submit) -> None:
        action = active.actions[cmd.task]
        task = active.state.wf.tasks[cmd.task]
        if cmd.cache is not None and not active.no_cache:
            key = _cache_key(action, cmd)
            hit, value = self.store.cache_get(key, time.time())
            if hit:
                self.feed(
                    active.run_id,
                    E.AttemptDone(time.time(), key=cmd.key, ok=True, result=value, cached=True),
                )
                return
            active.cache_keys[cmd.key] = (key, cmd.cache[1])
        kwargs: dict[str, Any] = dict(cmd.input)
        if cmd.after is not None:
            if cmd.after not in active.held:  # its gate never reached the executor (cache hit)
                self.feed(
                    active.run_id,
                    E.AttemptDone(
                        time.time(),
                        key=cmd.key,
                        ok=False,
                        error="Skipped: not submitted",
                        error_type="Skipped",
                    ),
                )
                return
            kwargs[AFTER] = ResultRef(cmd.after)
        for arg, upstream in cmd.refs.items():
            if upstream in active.held:
                kwargs[arg] = ResultRef(upstream)
        resources = dict(task.resources or action.resources or {})
        queue = task.queue or action.queue
        sub = Submission(
            key=cmd.key,
            fn=action.fn,
            kwargs=kwargs,
            context={
                "run_id": active.run_id,
                "task": cmd.task,
                "attempt": cmd.attempt,
                "item": cmd.item,
                "index": cmd.index,
                "workflow": active.workflow.name,
                # where context.secret() finds the store's secrets, in any process
                "secrets": self._secrets,
            },
            wants_context=action.wants_context,
            resources=resources,
            queue=queue,
            priority=task.priority,
            on_progress=functools.partial(self._progress, active.run_id, cmd.key),
            on_start=functools.partial(self._started, active.run_id, cmd.key),
            artifacts=self.artifacts,
            artifact_threshold=self.artifact_threshold,
        )
        # An item of with_items: the executor may run it in a chunk with its siblings (a
        # timeout needs an attempt of its own to cancel, and so does a ResultRef input), and
        # need not keep its result once the outcome is out (chunk_size 1: never chunked).
        if (
            cmd.index is not None
            and task.timeout is None
            and not any(isinstance(v, ResultRef) for v in kwargs.values())
        ):
            ex = active.state.executions.get(cmd.exec_id)
            count = len(ex.items) if ex is not None and ex.items is not None else 1
            sub.chunk_group = f"{active.run_id}:{cmd.exec_id}"
            sub.chunk_size = task.chunk_size or 0
            sub.chunk_span = min(task.batch_size or count, count)
        run_id = active.run_id

        def done(outcome: Outcome) -> None:
            self.feed(run_id, E.AttemptDone.from_outcome(time.time(), outcome))

        active.held.add(cmd.key)
        executor = self.executor
        # Known for sure once the executor exists (it is built on the first submit).
        active.state.track_starts = executor.reports_starts
        executor.submit(sub, done)

    def _reports_starts(self) -> bool:
        """Whether the executor reports attempt starts (``scheduled`` before ``running``),
        without building it: the factory may say so beforehand."""
        if self._executor is not None:
            return bool(getattr(self._executor, "reports_starts", False))
        return bool(getattr(self._executor_factory, "reports_starts", False))

    def _started(self, run_id: str, key: str, worker: str) -> None:
        """A submitted attempt began on a worker (any thread; see ``Submission.on_start``)."""
        self.feed(run_id, E.AttemptStarted(time.time(), key=key, worker=worker))

    def _progress(self, run_id: str, key: str, done: int, total: int) -> None:
        """A running attempt reported progress (any thread; see ``Submission.on_progress``)."""
        self.feed(run_id, E.AttemptProgress(time.time(), key=key, done=done, total=total))

    def _start_child(self, active: ActiveRun, cmd: C.StartChild) -> None:
        """Start a nested run; anything that keeps it from starting fails the parent's task
        with one line (the child's definition no longer resolves, bad parameters, too deep)."""
        from ..spec.params import resolve_parameters

        try:
            chain = self._nesting(active)
            if len(chain) > MAX_NESTING:
                shown = chain if len(chain) <= 6 else [*chain[:3], "...", *chain[-2:]]
                self.feed(
                    active.run_id,
                    E.AttemptDone(
                        time.time(),
                        key=cmd.key,
                        ok=False,
                        error=(
                            f"NestingError: nested workflow {cmd.workflow!r} would be level "
                            f"{len(chain)} of nesting (at most {MAX_NESTING}; a workflow that "
                            f"nests itself through others?): {' -> '.join([*shown, cmd.workflow])}"
                        ),
                        error_type="NestingError",
                    ),
                )
                return
            child_wf = active.workflow.resolve_workflow(cmd.workflow)
            child_wf.validate()
            params = resolve_parameters(child_wf.spec, cmd.input)
            child_id = self.start(
                child_wf, params, no_cache=active.no_cache, parent=(active.run_id, cmd.key)
            )
        except Exception as exc:
            self.feed(active.run_id, _failed(cmd.key, exc, f"nested workflow {cmd.workflow!r}"))
            return
        active.children[cmd.key] = child_id

    def _nesting(self, active: ActiveRun) -> list[str]:
        """Workflow names from the outermost run down to ``active`` (at most one past the limit)."""
        chain = [active.workflow.name]
        parent = active.parent
        while parent is not None and len(chain) <= MAX_NESTING:
            up = self.runs.get(parent[0])
            if up is not None:
                chain.append(up.workflow.name)
                parent = up.parent
                continue
            rec = self.store.get_run(parent[0])  # a parent this process no longer holds
            if rec is None:
                break
            chain.append(rec.get("workflow") or "?")
            grand = rec.get("parent_run_id")
            parent = (grand, rec.get("parent_task") or "") if grand else None
        return chain[::-1]

    def _finished(self, active: ActiveRun) -> None:
        _GC.release(active.run_id)
        self._let_go_of_old_runs(active.run_id)
        if active.held:
            try:
                if self._executor is not None:
                    self._executor.forget(sorted(active.held))
            except Exception:  # the parent must hear of the end whatever happens here
                logger.debug("forgetting the results of %s failed", active.run_id, exc_info=True)
            finally:
                active.held.clear()
        if active.parent is not None:
            parent_id, key = active.parent
            parent = self.runs.get(parent_id)
            if parent is not None:
                parent.children.pop(key, None)
            s = active.state
            self.feed(
                parent_id,
                E.AttemptDone(
                    time.time(),
                    key=key,
                    ok=s.status == "succeeded",
                    result=s.outputs,
                    error=None
                    if s.status == "succeeded"
                    else _elide(
                        f"ChildRunFailed: workflow {active.workflow.name!r} run {active.run_id} "
                        f"{s.status}: {s.error}"
                    ),
                    error_type=None if s.status == "succeeded" else "ChildRunFailed",
                ),
            )

    def _let_go_of_old_runs(self, run_id: str) -> None:
        """Note ``run_id`` as finished; drop the oldest finished runs beyond KEEP_FINISHED."""
        self._finished_ids[run_id] = None
        self._finished_ids.move_to_end(run_id)
        while len(self._finished_ids) > KEEP_FINISHED:
            old_id, _ = self._finished_ids.popitem(last=False)
            old = self.runs.get(old_id)
            if old is not None and old.state.done:
                del self.runs[old_id]  # reopened since (retry_failed): still driven, kept

    def _new_state(
        self, workflow: Workflow, run_id: str, parameters: dict[str, Any]
    ) -> tuple[dict[str, ActionDef], RunState]:
        """The resolved actions and a fresh :class:`RunState` for ``workflow``: the one builder,
        for a new run and for one taken over from the store (which then replays its events)."""
        actions, compiled, inquiries, children = prepare(workflow)
        state = RunState(
            compiled,
            run_id,
            parameters,
            inquiries=inquiries,
            children=children,
            system={"user": _user()},
            kv_get=self.store.kv_get,
            secret=secret_function(self.store.secret_get),
        )
        state.track_starts = self._reports_starts()
        return actions, state

    # -- public API (any thread) ----------------------------------------------------------------

    def start(
        self,
        workflow: Workflow,
        parameters: dict[str, Any],
        *,
        no_cache: bool = False,
        parent: tuple[str, str] | None = None,
        run_id: str | None = None,
    ) -> str:
        """Create a run (durably) and start it; returns its id. Parameters must be resolved."""
        run_id = run_id or uuid.uuid4().hex
        actions, state = self._new_state(workflow, run_id, parameters)
        active = ActiveRun(run_id, workflow, state, actions, no_cache=no_cache, parent=parent)
        now = time.time()
        self.store.create_run(
            {
                "run_id": run_id,
                "workflow": workflow.name,
                "status": "pending",
                "parameters": MASKER.mask(parameters),
                "outputs": None,
                "error": None,
                "created_at": now,
                "started_at": None,
                "ended_at": None,
                "definition": workflow.definition_json(),
                "base_dir": str(workflow.base_dir),
                "code": _pickle_code(actions),
                "parent_run_id": parent[0] if parent else None,
                "parent_task": parent[1] if parent else None,
                "owner": OWNER,
                "heartbeat_at": now,
                "options": {"no_cache": no_cache},
            }
        )
        self.store.commit()
        self.runs[run_id] = active
        _GC.hold(run_id)
        self.feed(run_id, E.RunStarted(now))
        return run_id

    def adopt(
        self,
        workflow: Workflow,
        record: dict[str, Any],
        events: list[dict[str, Any]],
        *,
        no_cache: bool = False,
    ) -> str:
        """Take over a run from the store: replay its events, then redo what was in flight."""
        run_id = record["run_id"]
        actions, state = self._new_state(workflow, run_id, record.get("parameters") or {})
        for data in events:
            state.handle(E.event_from_dict(data))
        state.mark_all_changed()
        active = ActiveRun(run_id, workflow, state, actions, no_cache=no_cache)
        parent_id = record.get("parent_run_id")
        if parent_id and record.get("parent_task"):
            active.parent = (parent_id, record["parent_task"])
        self.store.update_run(run_id, owner=OWNER, heartbeat_at=time.time())
        self.runs[run_id] = active
        if not state.done:
            _GC.hold(run_id)
        self.feed(run_id, E.Recovered(time.time()))
        return run_id

    def wait(self, run_id: str, timeout: float | None = None) -> bool:
        """Block until the run is quiescent (ended, paused, waiting); False on timeout."""
        active = self.runs.get(run_id)
        if active is None:
            return True
        self.barrier()
        deadline = None if timeout is None else time.monotonic() + timeout
        with active.settled:
            while not active.quiescent:
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    return False
                active.settled.wait(timeout=0.5 if left is None else min(left, 0.5))
        # The state turns quiescent inside the loop's turn, before that turn wrote the store:
        # let the turn finish, so what the store says agrees with the state.
        self.barrier()
        return True

    def barrier(self, timeout: float = 30.0) -> None:
        """Return once every event fed before this call has been handled."""
        if threading.current_thread() is self._thread:
            return
        barrier = _Barrier()
        self.feed("", barrier)  # handled after every event queued before it
        barrier.done.wait(timeout)

    def retry_failed(self, run_id: str) -> None:
        """Reopen a failed run: its failed tasks run again."""
        active = self.runs.get(run_id)
        if active is not None:
            # Task code may have been fixed since: resolve the actions again.
            active.actions = prepare(active.workflow)[0]
        self.feed(run_id, E.RetryRequested(time.time()))

    def pause(self, run_id: str) -> None:
        self.feed(run_id, E.PauseRequested(time.time()))

    def resume_paused(self, run_id: str) -> None:
        self.feed(run_id, E.ResumeRequested(time.time()))

    def cancel(self, run_id: str) -> None:
        active = self.runs.get(run_id)
        if active is None:
            return
        for child in list(active.children.values()):
            self.cancel(child)
        self.feed(run_id, E.CancelRequested(time.time()))

    def respond(self, run_id: str, task: str, data: Any) -> None:
        """Answer an open inquiry of ``task`` after checking ``data`` against its schema."""
        active = self.runs.get(run_id)
        if active is None:
            raise RunStateError(f"run {run_id} is not running in this process")
        ex = find_open_inquiry(active.state.execution_list(), task, run_id)
        check_response(ex.inquiry.get("schema") if ex.inquiry else None, data, task)
        self.feed(run_id, E.InquiryResponded(time.time(), exec_id=ex.id, data=data))

    def close(self) -> None:
        """Stop the loop and the executor (tests and interpreter exit)."""
        self.closed = True
        _GC.release_all(self.runs)
        with self._executor_lock:
            if self._executor is not None:
                self._executor.close()
                self._executor = None
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=5)
        if not self._thread.is_alive():
            # Closed here, not by its finaliser at interpreter exit, which may find its
            # self-pipe already closed and print a traceback after the CLI's one line.
            with contextlib.suppress(Exception):
                self._loop.close()
        try:
            self.store.commit()
        except Exception:
            pass


# -- helpers ------------------------------------------------------------------------------------
def prepare(
    workflow: Workflow,
) -> tuple[dict[str, ActionDef], CompiledWorkflow, frozenset[str], dict[str, str]]:
    """Resolve every task's action (or nested workflow) and merge action decorator defaults."""
    from ..sources import get_workflow

    compiled = workflow.compiled
    actions: dict[str, ActionDef] = {}
    inquiries: set[str] = set()
    children: dict[str, str] = {}
    tasks = dict(compiled.tasks)
    from ..spec.models import _walk_tasks

    spec_tasks = dict(_walk_tasks(workflow.spec.tasks))
    for name, ct in compiled.tasks.items():
        if ct.workflow is not None:
            workflow.resolve_workflow(ct.workflow)
            children[name] = ct.workflow
            continue
        if ct.action is None:
            continue
        try:
            action = workflow.resolve_action(ct.action)
        except ActionNotFound:
            if get_workflow(ct.action) is not None or _sibling(workflow, ct.action):
                children[name] = ct.action
                continue
            raise
        if action.engine_side and action.name == "core.inquiry":
            inquiries.add(name)
        if action.name == "llm.prompt" and isinstance(ct.input, dict) and "prompt_file" in ct.input:
            from ..actions.llm import inline_prompt_file  # the file beside the workflow

            tasks[name] = ct = dataclasses.replace(
                ct, input=inline_prompt_file(ct.input, workflow.base_dir)
            )
        actions[name] = action
        spec_task = spec_tasks.get(name)
        defaults = workflow.spec.defaults
        changes: dict[str, Any] = {}
        for fld in ("retry", "timeout", "cache", "queue", "resources"):
            decorated = getattr(action, fld)
            if decorated is None:
                continue
            set_here = spec_task is not None and getattr(spec_task, fld) is not None
            set_default = defaults is not None and getattr(defaults, fld) is not None
            if not set_here and not set_default:
                changes[fld] = decorated
        if changes:
            tasks[name] = dataclasses.replace(tasks[name], **changes)
    if tasks != compiled.tasks:
        compiled = dataclasses.replace(compiled, tasks=tasks)
    return actions, compiled, frozenset(inquiries), children


def _sibling(workflow: Workflow, name: str) -> bool:
    try:
        workflow.resolve_workflow(name)
        return True
    except ActionNotFound:
        return False


def find_open_inquiry(executions: list[Execution], task: str, run_id: str) -> Execution:
    for ex in reversed(executions):
        if ex.task == task and ex.status == "waiting" and ex.inquiry is not None:
            return ex
    raise InquiryError(f"run {run_id}: task {task!r} is not waiting for a response")


def check_response(schema: Any, data: Any, task: str) -> None:
    """Validate an inquiry response against its JSON Schema; one-line :class:`InquiryError`."""
    if not schema:
        return
    import jsonschema

    try:
        jsonschema.validate(data, schema)
    except jsonschema.ValidationError as exc:
        where = "/".join(str(p) for p in exc.absolute_path)
        raise InquiryError(
            f"response to {task!r} does not fit its schema"
            + (f" at {where}" if where else "")
            + f": {exc.message}"
        ) from None
    except jsonschema.SchemaError as exc:
        raise InquiryError(f"inquiry {task!r} has an invalid schema: {exc.message}") from None


def _default_artifacts(store: RunStore) -> str | None:
    """The store's artifact folder as a URL (a SQLite store's ``<db>.artifacts``), if it has one."""
    folder = getattr(store, "artifact_dir", None)
    if folder is None:
        return None
    from ..store.artifacts import location_url

    return location_url(folder)


def _cache_key(action: ActionDef, cmd: C.Submit) -> str:
    assert cmd.cache is not None
    custom = cmd.cache[0]
    basis = custom if custom is not None else json.dumps(cmd.input, sort_keys=True, default=_digest)
    return hashlib.sha256(f"{action.name}\0{action.code_hash}\0{basis}".encode()).hexdigest()


def _digest(value: Any) -> str:
    """A non-JSON input in a cache key: the hash of its pickle, never its repr (a DataFrame's
    repr elides its middle rows, so two different frames could share a key). A pickle that
    differs for equal values costs a cache miss, never a wrong hit."""
    import cloudpickle

    try:
        payload = cloudpickle.dumps(value, protocol=5)
    except Exception:  # cannot be pickled: no key can be trusted to match it again
        return f"unhashable:{uuid.uuid4().hex}"
    return f"{type(value).__qualname__}:{hashlib.sha256(payload).hexdigest()}"


def _failed(key: str, exc: BaseException, what: str | None = None) -> E.AttemptDone:
    """A failed attempt for an exception raised while starting it; ``what`` prefixes the
    message (``SpecError: nested workflow 'x': x.yaml:3:5: ...``)."""
    from ..exceptions import error_line

    error = error_line(exc)
    if what:
        kind, _, message = error.partition(": ")
        error = f"{kind}: {what}: {message}"
    return E.AttemptDone(time.time(), key=key, ok=False, error=error, error_type=type(exc).__name__)


def _internal(what: str, exc: BaseException) -> str:
    """The one-line error of a run the engine failed to drive; the traceback goes to the log."""
    from ..exceptions import error_line

    logger.debug("internal error while %s", what, exc_info=exc)
    return _elide(f"InternalError: {what} failed: {error_line(exc)}")


def _elide(line: str, limit: int = 600) -> str:
    """Shorten a very long one-line error (deeply nested runs) to its start and its cause."""
    if len(line) <= limit:
        return line
    return f"{line[: limit // 3]} ... {line[-(2 * limit) // 3 :]}"


def _masked_event(event: E.Event) -> dict[str, Any]:
    data = event.to_dict()
    if isinstance(event, (E.AttemptDone, E.InquiryResponded)):
        return MASKER.mask(data)
    return data


def _task_record(run_id: str, ex: Execution) -> TaskRecord:
    done, total = ex.progress()
    return MASKER.mask(
        {
            "run_id": run_id,
            "exec_id": ex.id,
            "task": ex.task,
            "seq": ex.seq,
            "status": ex.status,
            "attempts": ex.attempts,
            "input": ex.input
            if ex.inquiry is None
            else {**(ex.input or {}), "_inquiry": ex.inquiry},
            "result": ex.result,
            "error": ex.error,
            "started_at": ex.started_at,
            "ended_at": ex.ended_at,
            "worker": ex.worker,
            "logs": list(ex.logs),
            "done": done,
            "total": total,
        }
    )


def _pickle_code(actions: dict[str, ActionDef]) -> bytes | None:
    """Kernel-defined functions (``__main__``), so another process can resume the run."""
    import cloudpickle

    mine = {
        a.name: a.fn for a in actions.values() if getattr(a.fn, "__module__", None) == "__main__"
    }
    if not mine:
        return None
    try:
        return cloudpickle.dumps(mine)
    except Exception:
        return None


def _user() -> str:
    try:
        import getpass

        return getpass.getuser()
    except Exception:
        return "unknown"
