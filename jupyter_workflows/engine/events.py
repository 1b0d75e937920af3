"""Events: what happened to a run, the only input of the run state machine.

Events are plain frozen dataclasses with the time they happened in them (the state machine
never reads a clock), and convert to and from dicts with a ``type`` key: that dict is what the
store's append-only event log holds, and replaying the log rebuilds a run exactly.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:  # pragma: no cover
    from ..executors.base import Outcome

__all__ = [
    "AttemptDone",
    "AttemptProgress",
    "AttemptStarted",
    "CancelRequested",
    "Event",
    "InquiryResponded",
    "InternalFailure",
    "PauseRequested",
    "Recovered",
    "ResumeRequested",
    "RetryRequested",
    "RunStarted",
    "TimerFired",
    "event_from_dict",
]


#: Field names of each event class, in order (see :meth:`Event.to_dict`).
_FIELD_NAMES: dict[type, tuple[str, ...]] = {}


@dataclass(frozen=True, slots=True)
class Event:
    """Base class: every event has the time it happened (epoch seconds)."""

    type: ClassVar[str] = "event"
    time: float

    def to_dict(self) -> dict[str, Any]:
        names = _FIELD_NAMES.get(type(self))
        if names is None:  # once per class: dataclasses.fields() is slow for once per item
            names = _FIELD_NAMES[type(self)] = tuple(f.name for f in fields(self))
        data = {name: getattr(self, name) for name in names}
        data["type"] = self.type
        return data


@dataclass(frozen=True, slots=True)
class RunStarted(Event):
    """The run begins: start tasks are started."""

    type: ClassVar[str] = "run_started"


@dataclass(frozen=True, slots=True)
class AttemptDone(Event):
    """An attempt (of one item) finished, on an executor, a child run, or from the cache."""

    type: ClassVar[str] = "attempt_done"
    key: str = ""
    ok: bool = True
    result: Any = None
    error: str | None = None
    error_type: str | None = None
    logs: list[str] = field(default_factory=list)
    started_at: float | None = None
    ended_at: float | None = None
    worker: str | None = None
    cached: bool = False
    #: The last ``(done, total)`` the task reported with ``context.progress``, if any.
    progress: tuple[int, int] | list[int] | None = None

    @classmethod
    def from_outcome(cls, time: float, outcome: Outcome) -> AttemptDone:
        """The event for an executor's :class:`~jupyter_workflows.executors.base.Outcome`."""
        return cls(
            time,
            key=outcome.key,
            ok=outcome.ok,
            result=outcome.result,
            error=outcome.error,
            error_type=outcome.error_type,
            logs=list(outcome.logs),
            started_at=outcome.started_at,
            ended_at=outcome.ended_at,
            worker=outcome.worker,
            progress=outcome.progress,
        )


@dataclass(frozen=True, slots=True)
class AttemptStarted(Event):
    """A submitted attempt began executing on a worker (it was ``scheduled`` until then).

    Advisory like :class:`AttemptProgress`: not written to the event log.
    """

    type: ClassVar[str] = "attempt_started"
    key: str = ""
    worker: str | None = None


@dataclass(frozen=True, slots=True)
class AttemptProgress(Event):
    """A running attempt reported progress (``context.progress(done, total)``).

    Advisory: it changes what the run shows, never what the run does, so the orchestrator
    does not write it to the event log (a long task may report thousands of times). The last
    report comes back with the attempt's :class:`AttemptDone`, which is logged.
    """

    type: ClassVar[str] = "attempt_progress"
    key: str = ""
    done: int = 0
    total: int = 0


@dataclass(frozen=True, slots=True)
class TimerFired(Event):
    """A timer the state machine asked for (retry delay, timeout, inquiry timeout) fired."""

    type: ClassVar[str] = "timer_fired"
    timer: str = ""


@dataclass(frozen=True, slots=True)
class InquiryResponded(Event):
    """A (schema-checked) response to an open inquiry."""

    type: ClassVar[str] = "inquiry_responded"
    exec_id: str = ""
    data: Any = None


@dataclass(frozen=True, slots=True)
class PauseRequested(Event):
    type: ClassVar[str] = "pause_requested"


@dataclass(frozen=True, slots=True)
class ResumeRequested(Event):
    type: ClassVar[str] = "resume_requested"


@dataclass(frozen=True, slots=True)
class CancelRequested(Event):
    type: ClassVar[str] = "cancel_requested"


@dataclass(frozen=True, slots=True)
class Recovered(Event):
    """A new orchestrator took the run over after its process died: redo what was in flight."""

    type: ClassVar[str] = "recovered"


@dataclass(frozen=True, slots=True)
class RetryRequested(Event):
    """Run the tasks that failed a failed run again (``resume --retry-failed``)."""

    type: ClassVar[str] = "retry_requested"


@dataclass(frozen=True, slots=True)
class InternalFailure(Event):
    """The engine itself failed while driving the run (a bug, a store that cannot write):
    the run ends ``failed`` with ``error`` (one line, ``InternalError: ...``), never hangs.
    Attempts in flight are cancelled; ``resume --retry-failed`` runs the unfinished tasks again.
    """

    type: ClassVar[str] = "internal_failure"
    error: str = "InternalError: the engine failed"


_TYPES: dict[str, type[Event]] = {
    cls.type: cls
    for cls in (
        RunStarted,
        AttemptDone,
        AttemptProgress,
        AttemptStarted,
        TimerFired,
        InquiryResponded,
        PauseRequested,
        ResumeRequested,
        CancelRequested,
        Recovered,
        RetryRequested,
        InternalFailure,
    )
}


def event_from_dict(data: dict[str, Any]) -> Event:
    """Inverse of :meth:`Event.to_dict`."""
    data = dict(data)
    cls = _TYPES[data.pop("type")]
    return cls(**data)
