"""Commands: what the run state machine asks the orchestrator to do.

The state machine returns them from ``handle(event)``; the orchestrator carries them out on the
executor, timers and the store, after making the events that led to them durable.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "CancelAttempt",
    "Command",
    "OpenInquiry",
    "RunFinished",
    "StartChild",
    "StartTimer",
    "Submit",
]


@dataclass(frozen=True, slots=True)
class Command:
    """Base class of commands."""


@dataclass(frozen=True, slots=True)
class Submit(Command):
    """Run one attempt (of one item) of an action task."""

    key: str
    exec_id: str
    task: str
    action: str
    attempt: int
    input: dict[str, Any]
    item: Any = None
    index: int | None = None
    #: Inputs that are exactly ``{{ task.X.result }}``: argument name -> key of X's attempt.
    refs: dict[str, str] = field(default_factory=dict)
    #: ``(rendered cache key or None, expire seconds or None)`` when the task caches.
    cache: tuple[str | None, float | None] | None = None
    #: Submitted speculatively right behind the attempt with this key: run only if it succeeds.
    after: str | None = None


@dataclass(frozen=True, slots=True)
class StartChild(Command):
    """Run a nested workflow as a child run; its end comes back as ``AttemptDone(key)``."""

    key: str
    exec_id: str
    task: str
    workflow: str
    attempt: int
    input: dict[str, Any]


@dataclass(frozen=True, slots=True)
class StartTimer(Command):
    """Feed ``TimerFired(timer)`` after ``delay`` seconds."""

    timer: str
    delay: float


@dataclass(frozen=True, slots=True)
class CancelAttempt(Command):
    """Stop an attempt (or child run) that the state machine no longer waits for."""

    key: str


@dataclass(frozen=True, slots=True)
class OpenInquiry(Command):
    """A task now waits for a human response."""

    exec_id: str
    task: str
    prompt: str
    schema: dict[str, Any] | None


@dataclass(frozen=True, slots=True)
class RunFinished(Command):
    """The run reached a final status."""

    status: str
    outputs: dict[str, Any] | None
    error: str | None
