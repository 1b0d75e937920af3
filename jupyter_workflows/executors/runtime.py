"""What runs on the worker around a task's function: the task context, log capture and the
:class:`Envelope` that carries the result or the error back (was ``engine/context.py``, which
still re-exports these names).

:func:`run_task` is the function every executor actually calls. It never raises: a failure comes
back as an :class:`Envelope` with ``ok=False``, so the lines the task printed or logged before it
failed still reach the trace. ``print`` and ``logging`` are captured per thread (a Dask worker
runs several tasks at once in threads), by a stdout proxy and a root-logger handler installed once
per process that route each line to the buffer of the thread that wrote it.

``logging`` drops a record below its logger's effective level before any handler sees it, and
the root logger's default level is WARNING. So while any task runs in this process, the root
level is lowered to INFO (:data:`CAPTURE_LEVEL`), and the root's other handlers get a filter
that passes exactly what they passed before: tasks' INFO lines reach their trace without
flooding the user's stderr. When no task runs, the root logger is as it was.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import inspect
import io
import logging
import os
import socket
import sys
import threading
import time
import traceback
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from ..exceptions import error_line
from ..values import pickling_error
from .base import Outcome

__all__ = ["AFTER", "Envelope", "TaskContext", "await_in_thread", "error_line", "run_task"]

T = TypeVar("T")

#: Hidden keyword: the result (reference) of the task this one was speculatively queued behind.
AFTER = "__jw_after__"

_local = threading.local()
_install_lock = threading.Lock()
_installed = False


#: Progress reports leave a task at most this often (seconds); see :meth:`TaskContext.progress`.
PROGRESS_INTERVAL = 0.5


class _ThreadRoutedStream(io.TextIOBase):
    """Writes go to the current thread's capture buffer if it has one, else to the original."""

    def __init__(self, original: Any) -> None:
        self._original = original

    def write(self, text: str) -> int:
        buf = getattr(_local, "buffer", None)
        if buf is not None:
            buf.append(text)
            return len(text)
        return self._original.write(text)

    def flush(self) -> None:
        if getattr(_local, "buffer", None) is None:
            self._original.flush()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._original, name)


class _CaptureHandler(logging.Handler):
    """On the root logger: a record logged by a task's thread goes to that task's buffer."""

    def emit(self, record: logging.LogRecord) -> None:
        buf = getattr(_local, "buffer", None)
        if buf is None:
            # Not from a task. Python prints a warning nobody handles to stderr (its "last
            # resort"), but only when no handler at all is found: this one must not change that.
            last_resort = logging.lastResort
            if (
                last_resort is not None
                and record.levelno >= logging.WARNING
                and not _handled_elsewhere(record, self)
            ):
                last_resort.handle(record)
            return
        try:
            line = f"{record.levelname} {record.name}: {record.getMessage()}\n"
            if record.exc_info:
                line += "".join(traceback.format_exception(*record.exc_info))
            buf.append(line)
        except Exception:  # a bad log call must not fail the task
            pass


def _handled_elsewhere(record: logging.LogRecord, mine: logging.Handler) -> bool:
    """Whether a handler other than ``mine`` takes ``record`` (what ``Logger.callHandlers``
    counts to decide on the last resort)."""
    logger: logging.Logger | None = logging.getLogger(record.name)
    if record.name == "root":
        logger = logging.getLogger()
    while logger is not None:
        if any(h is not mine and record.levelno >= h.level for h in logger.handlers):
            return True
        if not logger.propagate:
            return False
        logger = logger.parent
    return False


#: The lowest level captured from loggers that do not set their own (``logging.info`` from a
#: task, ``context.logger.info``); ``JUPYTER_WORKFLOWS_LOG_LEVEL=DEBUG`` captures DEBUG too.
CAPTURE_LEVEL = "INFO"


def _capture_level() -> int:
    name = os.environ.get("JUPYTER_WORKFLOWS_LOG_LEVEL") or CAPTURE_LEVEL
    level = logging.getLevelName(name.strip().upper())
    return level if isinstance(level, int) else logging.INFO


class _LevelGuard(logging.Filter):
    """On the root logger's other handlers while tasks run: pass exactly the records they got
    before the root level was lowered, so capturing INFO never floods the user's stderr."""

    def __init__(self, level: int) -> None:
        super().__init__()
        self.level = level

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno >= self.level:
            return True
        # Below the old root level: it was logged before only if its logger (or a parent below
        # the root) sets its own level low enough.
        logger: logging.Logger | None = logging.getLogger(record.name)
        while logger is not None and logger.parent is not None:
            if logger.level:
                return record.levelno >= logger.level
            logger = logger.parent
        return False


_level_lock = threading.Lock()
_tasks_running = 0
#: While tasks run with the root level lowered: (old level, lowered level, guard, guarded).
_lowered: tuple[int, int, _LevelGuard, list[logging.Handler]] | None = None


def _capture_begin() -> None:
    """A task starts: while any runs in this process, the root logger lets ``INFO`` through
    (``logging`` drops a record below its logger's level before any handler sees it), and the
    root's other handlers are guarded to see no more than before."""
    global _tasks_running, _lowered
    with _level_lock:
        _tasks_running += 1
        if _tasks_running > 1 or _lowered is not None:
            return
        root = logging.getLogger()
        floor = _capture_level()
        old = root.level
        if old and old > floor:
            guard = _LevelGuard(old)
            guarded = [h for h in root.handlers if not isinstance(h, _CaptureHandler)]
            for handler in guarded:
                handler.addFilter(guard)
            root.setLevel(floor)
            _lowered = (old, floor, guard, guarded)


def _capture_end() -> None:
    """A task ended: when none runs any more, the root logger is as it was."""
    global _tasks_running, _lowered
    with _level_lock:
        _tasks_running = max(0, _tasks_running - 1)
        if _tasks_running or _lowered is None:
            return
        old, floor, guard, guarded = _lowered
        _lowered = None
        for handler in guarded:
            handler.removeFilter(guard)
        root = logging.getLogger()
        if root.level == floor:  # unless someone set it meanwhile
            root.setLevel(old)


def _install() -> None:
    """Route print and logging per thread; re-wrap stdout/stderr if someone replaced them since
    (pytest's capture, ``redirect_stdout``), so capture never silently turns off."""
    global _installed
    if (
        isinstance(sys.stdout, _ThreadRoutedStream)
        and isinstance(sys.stderr, _ThreadRoutedStream)
        and _installed
    ):
        return
    with _install_lock:
        if not isinstance(sys.stdout, _ThreadRoutedStream):
            sys.stdout = _ThreadRoutedStream(sys.stdout)
        if not isinstance(sys.stderr, _ThreadRoutedStream):
            sys.stderr = _ThreadRoutedStream(sys.stderr)
        if not _installed:
            logging.getLogger().addHandler(_CaptureHandler(level=logging.DEBUG))
            _installed = True


@dataclass
class TaskContext:
    """Passed to a task function that declares a ``context`` parameter."""

    run_id: str
    task: str
    attempt: int = 1
    item: Any = None
    index: int | None = None
    workflow: str | None = None
    logger: logging.Logger = field(
        default_factory=lambda: logging.getLogger("jupyter_workflows.task")
    )
    progress_hook: Callable[[int, int], None] | None = None
    #: The last ``(done, total)`` reported; it leaves with the outcome (``Envelope.progress``).
    last_progress: tuple[int, int] | None = None
    _reported_at: float | None = field(default=None, repr=False)
    _reported: tuple[int, int] | None = field(default=None, repr=False)

    def progress(self, done: int, total: int) -> None:
        """Report progress: ``done`` of ``total`` units of work.

        The run shows it live (``Run.live()``, the widget) and the trace logs it. Call it as
        often as you like: reports go out at most every :data:`PROGRESS_INTERVAL` seconds, and
        always the first one and the one that reaches ``total``.
        """
        try:
            report = (int(done), int(total))
        except (TypeError, ValueError):
            self.logger.warning("progress(%r, %r): done and total must be numbers", done, total)
            return
        self.last_progress = report
        now = time.monotonic()
        if (
            self._reported_at is not None
            and now - self._reported_at < PROGRESS_INTERVAL
            and report[0] < report[1]
        ):
            return
        self._report(report, now)

    def _report(self, report: tuple[int, int], now: float) -> None:
        self._reported_at, self._reported = now, report
        self.logger.info("progress %s/%s", *report)
        if self.progress_hook is not None:
            try:
                self.progress_hook(*report)
            except Exception:  # reporting must never fail the task
                pass

    def _flush(self) -> None:
        """The task ended: log the last report if the interval held it back (the outcome
        carries it to the run)."""
        if self.last_progress is not None and self.last_progress != self._reported:
            self._reported = self.last_progress
            self.logger.info("progress %s/%s", *self.last_progress)

    #: Where the run's store keeps secrets (:func:`secret_source`), for :meth:`secret`.
    secrets: dict[str, Any] | None = field(default=None, repr=False)

    def secret(self, name: str) -> str:
        """A secret from the environment, else from the run's store; registered for masking.

        Works on every executor: in the engine's process through the store itself, in a Dask
        worker process by reading the SQLite store's ``secrets`` table (read-only).
        """
        from ..expressions import secret_lookup

        return secret_lookup(name, store_lookup=_store_secret_lookup(self.secrets))


#: ``token -> store.secret_get`` of the stores orchestrators in this process use.
_SECRET_LOOKUPS: dict[str, Callable[[str], str | None]] = {}


def secret_source(store: Any) -> dict[str, Any]:
    """How a task in any process reaches ``store``'s secrets: a token for this process's
    registry, and the SQLite file when there is one (a Dask worker opens it read-only)."""
    token = f"{os.getpid()}:{id(store)}"
    getter = getattr(store, "secret_get", None)
    if getter is not None:
        _SECRET_LOOKUPS[token] = getter
    path = getattr(store, "path", None)
    return {"token": token, "path": str(path) if path is not None else None}


def _store_secret_lookup(source: dict[str, Any] | None) -> Callable[[str], str | None] | None:
    if not source:
        return None
    local = _SECRET_LOOKUPS.get(str(source.get("token")))
    if local is not None:
        return local
    path = source.get("path")
    if not path:
        return None

    def from_file(name: str) -> str | None:
        import sqlite3
        from pathlib import Path

        try:
            conn = sqlite3.connect(Path(path).as_uri() + "?mode=ro", uri=True, timeout=10)
            try:
                row = conn.execute("SELECT value FROM secrets WHERE name = ?", (name,)).fetchone()
            finally:
                conn.close()
        except sqlite3.Error:
            return None
        return None if row is None else str(row[0])

    return from_file


@dataclass
class Envelope:
    """A task's outcome as it leaves the worker."""

    ok: bool
    value: Any = None
    error: str | None = None
    error_type: str | None = None
    logs: list[str] = field(default_factory=list)
    started_at: float = 0.0
    ended_at: float = 0.0
    worker: str = ""
    #: The last ``(done, total)`` the task reported with ``context.progress``.
    progress: tuple[int, int] | None = None

    def outcome(self, key: str) -> Outcome:
        """The :class:`~jupyter_workflows.executors.base.Outcome` of submission ``key``: what
        every executor reports once the envelope is back (``value`` becomes ``result``)."""
        return Outcome(
            key=key,
            ok=self.ok,
            result=self.value,
            error=self.error,
            logs=list(self.logs),
            started_at=self.started_at,
            ended_at=self.ended_at,
            worker=self.worker,
            error_type=self.error_type,
            progress=self.progress,
        )

    def keep_big_results(self, location: str, threshold: int) -> None:
        """Where the task ran: write the parts of the result above ``threshold`` pickled bytes
        to the artifact ``location`` and carry references instead (see
        :func:`~jupyter_workflows.store.artifacts.offload`). The references still hold the
        values in this process, so a downstream task here needs no read; what leaves the
        process (to the engine, to another worker) is the small reference. A write that fails
        fails the attempt."""
        if not self.ok:
            return
        from ..store.artifacts import offload

        try:
            value = offload(self.value, location, threshold)
        except Exception as exc:
            self.ok, self.value = False, None
            self.error, self.error_type = error_line(exc), type(exc).__name__
            return
        if value is not self.value:
            self.value = value
            self.ended_at = time.time()  # the write is part of the attempt


def _holds_refs(kwargs: dict[str, Any]) -> bool:
    """Whether an argument is (or holds) a reference to a big result (cheap when none does:
    the artifacts module is only imported once a reference exists in this process)."""
    artifacts = sys.modules.get("jupyter_workflows.store.artifacts")
    return artifacts is not None and any(artifacts.contains_refs(v) for v in kwargs.values())


def _load_refs(kwargs: dict[str, Any]) -> dict[str, Any]:
    """Arguments with every big-result reference replaced by its value: held in memory on the
    worker that made it, else read from its artifact."""
    from ..store.artifacts import resolve

    return {name: resolve(value) for name, value in kwargs.items()}


def await_in_thread(awaitable: Awaitable[T]) -> T:
    """The result of ``awaitable``, run to completion from synchronous code.

    Task functions run in a worker's (or the inline executor's) thread, where no event loop
    runs: the coroutine gets a fresh loop of its own (``asyncio.run``), in this thread, so its
    ``print`` and ``logging`` are captured like a plain function's. Where a loop already runs
    in this thread, it runs in a helper thread instead (``asyncio.run`` cannot nest).
    """

    async def main() -> T:
        return await awaitable

    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(main())
    with concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="jw-async") as pool:
        return pool.submit(asyncio.run, main()).result()


def _worker_name() -> str:
    name = os.environ.get("JUPYTER_WORKFLOWS_WORKER")
    if name:
        return name
    return f"{socket.gethostname()}:{os.getpid()}"


def run_task(
    fn: Callable[..., Any],
    kwargs: dict[str, Any],
    context: dict[str, Any] | None = None,
    wants_context: bool = False,
    progress_hook: Callable[[int, int], None] | None = None,
) -> Envelope:
    """Call ``fn(**kwargs)`` capturing logs; never raises.

    Values in ``kwargs`` that are :class:`Envelope` (an upstream result passed by reference)
    are unwrapped first.
    """
    _install()
    after = kwargs.pop(AFTER, None) if AFTER in kwargs else None
    if isinstance(after, Envelope) and not after.ok:
        # Submitted speculatively behind a task that then failed: do not run.
        now = time.time()
        return Envelope(
            False,
            None,
            "Skipped: the task before it failed",
            "Skipped",
            [],
            now,
            now,
            _worker_name(),
        )
    for value in kwargs.values():
        if isinstance(value, Envelope) and not value.ok:
            now = time.time()
            return Envelope(
                False,
                None,
                "Skipped: an input's task failed",
                "Skipped",
                [],
                now,
                now,
                _worker_name(),
            )
    kwargs = {k: (v.value if isinstance(v, Envelope) else v) for k, v in kwargs.items()}
    ctx = dict(context or {})
    task_context: TaskContext | None = None
    if wants_context:
        kwargs["context"] = task_context = TaskContext(
            run_id=ctx.get("run_id", ""),
            task=ctx.get("task", ""),
            attempt=ctx.get("attempt", 1),
            item=ctx.get("item"),
            index=ctx.get("index"),
            workflow=ctx.get("workflow"),
            progress_hook=progress_hook,
            secrets=ctx.get("secrets"),
        )
    lines: list[str] = []
    previous = getattr(_local, "buffer", None)
    _local.buffer = lines
    _capture_begin()
    started = time.time()
    try:
        if _holds_refs(kwargs):
            kwargs = _load_refs(kwargs)
        value = fn(**kwargs)
        if inspect.isawaitable(value):  # an ``async def`` task (or one returning a coroutine)
            value = await_in_thread(value)
        ok, error, error_type = True, None, None
        unpicklable = pickling_error(value)
        if unpicklable is not None:
            # Fail here, the same way on every executor, rather than later and differently
            # (a Dask transfer error naming an envelope, a store error, or nothing at all).
            value, ok = None, False
            error, error_type = unpicklable, "PicklingError"
    except KeyboardInterrupt:
        raise
    except BaseException as exc:
        value, ok = None, False
        error, error_type = error_line(exc), type(exc).__name__
        if isinstance(exc, TimeoutError):
            error_type = "TimeoutError"
        tb = traceback.format_exception(type(exc), exc, exc.__traceback__)
        lines.append("".join(tb[-6:]))
    finally:
        if task_context is not None:
            task_context._flush()
        _local.buffer = previous
        _capture_end()
    ended = time.time()
    logs = [line for chunk in "".join(lines).splitlines() if (line := chunk.rstrip())]
    # A secret the task looked up with ``context.secret()`` is registered in this process only:
    # on a remote worker the orchestrator never learns it, so mask logs, error and the result
    # here: a secret never leaves the task unmasked (CONTRACT §1.3). (Not imported when
    # absent: then no secret was looked up in this process.)
    masker = getattr(sys.modules.get("jupyter_workflows.expressions"), "MASKER", None)
    if masker is not None and len(masker):
        logs = [masker.mask_text(line) for line in logs]
        error = masker.mask_text(error) if error else error
        value = masker.mask(value)
    progress = task_context.last_progress if task_context is not None else None
    return Envelope(
        ok, value, error, error_type, logs, started, ended, _worker_name(), progress=progress
    )
