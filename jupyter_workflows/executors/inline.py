"""The inline executor: task attempts run in a thread pool of this process.

For tests and tiny runs: no cluster to start, nothing pickled. It keeps the Dask executor's
semantics so the engine cannot tell them apart:

* every attempt runs through :func:`~jupyter_workflows.executors.runtime.run_task` (logs captured
  per thread, failures returned as data, never raised);
* results are held (as the attempt's :class:`~concurrent.futures.Future`) until
  :meth:`InlineExecutor.forget`, and a :class:`~jupyter_workflows.executors.base.ResultRef`
  argument receives the held envelope, which ``run_task`` unwraps;
* callbacks come from one dispatcher thread, one at a time, never from the pool's threads or
  from inside :meth:`~InlineExecutor.submit`. A pool thread only enqueues its outcome, so a
  callback that submits more work, cancels, or blocks on a lock never stalls the pool.

``resources`` and ``queue`` are accepted and ignored: every task may run in this process.
"""

from __future__ import annotations

import logging
import os
import queue
import socket
import threading
from collections.abc import Callable
from concurrent.futures import CancelledError, Future, ThreadPoolExecutor
from typing import Any

from .base import Executor, Outcome, ResultRef, Submission
from .runtime import Envelope, error_line, run_task

__all__ = ["InlineExecutor"]

logger = logging.getLogger(__name__)


#: What the inline executor reports as the worker of every attempt (this process).
_WORKER = f"{socket.gethostname()}:{os.getpid()}"


class _MissingResult(LookupError):
    """A :class:`ResultRef` names a key whose result is not held."""


class InlineExecutor(Executor):
    """Runs submissions in a :class:`~concurrent.futures.ThreadPoolExecutor`.

    Parameters
    ----------
    max_workers
        Threads in the pool: how many attempts run at once.
    """

    #: An attempt waiting for a free thread is ``scheduled``; it calls ``on_start`` when it
    #: gets one.
    reports_starts = True

    def __init__(self, max_workers: int = 8) -> None:
        self._pool = ThreadPoolExecutor(
            max_workers=max_workers, thread_name_prefix="jupyter-workflows-inline"
        )
        self._lock = threading.Lock()
        self._held: dict[str, Future[Envelope]] = {}
        self._outcomes: queue.SimpleQueue[tuple[Outcome, Callable[[Outcome], None]] | None] = (
            queue.SimpleQueue()
        )
        self._dispatcher = threading.Thread(
            target=self._dispatch, name="jupyter-workflows-inline-callbacks", daemon=True
        )
        self._dispatcher.start()
        self._closed = False

    def submit(self, submission: Submission, callback: Callable[[Outcome], None]) -> None:
        """Start ``submission`` in the pool; ``callback`` gets its outcome from the dispatcher."""
        key = submission.key
        with self._lock:
            if self._closed:
                raise RuntimeError("the inline executor is closed")
            if key in self._held:
                self._outcomes.put(
                    (
                        _failed(
                            key,
                            "ValueError",
                            f"key {key!r} was already submitted; every attempt needs a new key",
                        ),
                        callback,
                    )
                )
                return
            kwargs: dict[str, Any] = {}
            for name, value in submission.kwargs.items():
                if isinstance(value, ResultRef):
                    upstream = self._held.get(value.key)
                    if upstream is None:
                        message = f"the result of {value.key!r} (argument {name!r}) is not held"
                        self._outcomes.put((_failed(key, "KeyError", message), callback))
                        return
                    kwargs[name] = upstream
                else:
                    kwargs[name] = value
            future = self._pool.submit(_run, submission, kwargs)
            self._held[key] = future
        future.add_done_callback(lambda done: self._outcomes.put((_outcome(key, done), callback)))

    def cancel(self, key: str) -> None:
        """Cancel ``key`` if it has not started (a running thread cannot be stopped)."""
        with self._lock:
            future = self._held.get(key)
        if future is not None:
            future.cancel()

    def forget(self, keys: list[str]) -> None:
        """Drop the held results of ``keys``."""
        with self._lock:
            for key in keys:
                self._held.pop(key, None)

    def held_keys(self) -> list[str]:
        """Keys whose results are held (for tests and diagnostics)."""
        with self._lock:
            return list(self._held)

    def close(self) -> None:
        """Cancel what has not started, wait for what runs, deliver the last outcomes."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
        current = threading.current_thread()
        in_pool = current.name.startswith("jupyter-workflows-inline_")
        self._pool.shutdown(wait=not in_pool, cancel_futures=True)
        self._outcomes.put(None)
        if current is not self._dispatcher:
            self._dispatcher.join(timeout=10)
        with self._lock:
            self._held.clear()

    def _dispatch(self) -> None:
        while True:
            entry = self._outcomes.get()
            if entry is None:
                return
            outcome, callback = entry
            try:
                callback(outcome)
            except Exception:
                logger.exception("outcome callback for %s failed", outcome.key)


def _run(submission: Submission, kwargs: dict[str, Any]) -> Envelope:
    """In a pool thread: wait for the upstream envelopes, then run the task."""
    resolved: dict[str, Any] = {}
    for name, value in kwargs.items():
        if isinstance(value, Future):
            try:
                value = value.result()
            except BaseException as exc:  # the upstream never produced a value
                return run_task(
                    _raiser(
                        _MissingResult(
                            f"upstream of argument {name!r} has no result: {error_line(exc)}"
                        )
                    ),
                    {},
                )
        resolved[name] = value
    if submission.on_start is not None:
        try:
            submission.on_start(_WORKER)
        except Exception:  # reporting must never fail the task
            logger.debug("on_start of %s failed", submission.key, exc_info=True)
    return run_task(
        submission.fn,
        resolved,
        submission.context,
        submission.wants_context,
        progress_hook=submission.on_progress,
    )


def _raiser(exc: BaseException) -> Callable[[], None]:
    def fail() -> None:
        raise exc

    return fail


_failed = Outcome.failed


def _outcome(key: str, future: Future[Envelope]) -> Outcome:
    try:
        envelope = future.result()
    except CancelledError:
        return _failed(key, "CancelledError", f"{key} was cancelled")
    except BaseException as exc:  # run_task never raises; a bug guard
        return Outcome.failed_by(key, exc)
    return envelope.outcome(key)
