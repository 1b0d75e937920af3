"""The executor interface: how the orchestrator hands one attempt of one task to compute.

An executor takes :class:`Submission` objects and calls back with an :class:`Outcome`, from any
thread; it knows nothing of workflows. Results stay with the executor (on Dask: on the workers)
until :meth:`Executor.forget`, so a later submission can pass them on by :class:`ResultRef`
without a round trip through the orchestrator.
"""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..exceptions import error_line

__all__ = ["Executor", "Outcome", "ResultRef", "Submission", "switched_on"]


#: What a script that starts runs at its top level, without the ``__main__`` guard, is told.
MAIN_GUARD = (
    "put the code of a script that starts workflow runs under "
    '`if __name__ == "__main__":` (each Dask worker process the engine starts imports the '
    "script, and would run it again)"
)


def switched_on(name: str) -> bool:
    """Whether the engine's on/off environment switch ``name`` is on (the default): ``0``,
    ``false``, ``no`` or ``off`` turn it off (``JUPYTER_WORKFLOWS_DASK_TUNING``,
    ``JUPYTER_WORKFLOWS_GC_TUNING``)."""
    return os.environ.get(name, "1").strip().lower() not in ("0", "false", "no", "off")


@dataclass(frozen=True, slots=True)
class ResultRef:
    """Stands, in :attr:`Submission.kwargs`, for the result of the earlier submission ``key``."""

    key: str


@dataclass(slots=True)
class Submission:
    """One attempt (of one item) of one task."""

    #: Unique; names the workflow and task so the Dask dashboard shows them.
    key: str
    fn: Callable[..., Any]
    #: Keyword arguments; top-level values may be :class:`ResultRef`.
    kwargs: dict[str, Any]
    #: ``run_id``, ``task``, ``attempt``, ``item``, ``index``, ``workflow`` for the task context.
    context: dict[str, Any] = field(default_factory=dict)
    wants_context: bool = False
    resources: dict[str, float] = field(default_factory=dict)
    queue: str | None = None
    priority: int = 0
    #: Called with ``(done, total)`` while the attempt runs, each time the task reports progress
    #: (``context.progress``; at most every :data:`~jupyter_workflows.executors.runtime.PROGRESS_INTERVAL`
    #: seconds, and always for ``done >= total``). From any thread; never raises. An executor
    #: that cannot report live progress may ignore it: the last report still arrives as
    #: :attr:`Outcome.progress`. Not for shipping: call it where the outcome callback runs.
    on_progress: Callable[[int, int], None] | None = None
    #: Where a result above ``artifact_threshold`` pickled bytes is written by the worker that
    #: made it (an fsspec URL; see :func:`~jupyter_workflows.store.artifacts.offload`): the
    #: outcome then carries an ``ArtifactRef``. ``None``: every result comes back whole. An
    #: executor that runs tasks in the engine's own process (inline) may ignore it.
    artifacts: str | None = None
    #: ``None``: :data:`~jupyter_workflows.store.artifacts.DEFAULT_THRESHOLD` (1 MiB).
    artifact_threshold: int | None = None
    #: Called once with the worker's name when the attempt starts executing (it is
    #: ``scheduled`` until then), from any thread; never raises. Only an executor whose
    #: :attr:`Executor.reports_starts` is true calls it.
    on_start: Callable[[str], None] | None = None
    #: Items of one ``with_items`` execution share a group (``None``: not an item, or not to be
    #: chunked). An executor may run several submissions of one group as one task of its own
    #: (a *chunk*); each still gets its own outcome, under its own key. Chunked submissions
    #: pass no :class:`ResultRef`, report no progress or start, and cannot be cancelled one by
    #: one (cancelling every member of a chunk cancels the chunk). No ResultRef ever names a
    #: grouped submission: its result need not be held once its outcome is out.
    chunk_group: str | None = None
    #: Submissions per chunk; 0: the executor chooses (see ``chunk_span``); 1: no chunks.
    chunk_size: int = 0
    #: How many submissions of the group may be in flight at once (``batch_size``, else the
    #: item count): what an executor sizes its chunks by when it chooses.
    chunk_span: int = 0


@dataclass(slots=True)
class Outcome:
    """What became of a submission."""

    key: str
    ok: bool
    result: Any = None
    #: One line, ``Type: message``, when not ``ok``.
    error: str | None = None
    #: Captured ``print`` and ``logging`` lines.
    logs: list[str] = field(default_factory=list)
    started_at: float | None = None
    ended_at: float | None = None
    worker: str | None = None
    #: Exception type name when not ``ok`` (``TimeoutError`` makes ``timed_out()`` true).
    error_type: str | None = None
    #: The last ``(done, total)`` the task reported (``Envelope.progress``), if any.
    progress: tuple[int, int] | None = None

    @classmethod
    def failed(cls, key: str, error_type: str, message: str = "") -> Outcome:
        """A failed attempt the executor itself decided (``CancelledError: ...``)."""
        error = f"{error_type}: {message}" if message else error_type
        return cls(key=key, ok=False, error=error, error_type=error_type)

    @classmethod
    def failed_by(cls, key: str, exc: BaseException) -> Outcome:
        """A failed attempt for an exception raised around it (never by the task: the runtime
        catches those and its :class:`~jupyter_workflows.executors.runtime.Envelope` says)."""
        return cls(key=key, ok=False, error=error_line(exc), error_type=type(exc).__name__)


class Executor(ABC):
    """Runs submissions somewhere and reports outcomes through a callback."""

    #: Whether this executor calls :attr:`Submission.on_start` when an attempt begins. When it
    #: does, a submitted task shows ``scheduled`` until then; otherwise ``running`` at once.
    reports_starts: bool = False

    @abstractmethod
    def submit(self, submission: Submission, callback: Callable[[Outcome], None]) -> None:
        """Start ``submission``; call ``callback`` exactly once with its outcome (any thread)."""

    @abstractmethod
    def cancel(self, key: str) -> None:
        """Stop caring about ``key``: cancel it if possible; its callback may still fire."""

    @abstractmethod
    def forget(self, keys: list[str]) -> None:
        """Release results held for :class:`ResultRef` (the run no longer needs them)."""

    @property
    def dashboard_link(self) -> str | None:
        """A URL of a dashboard to watch the work, if any."""
        return None

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release resources (clusters started by this executor)."""
