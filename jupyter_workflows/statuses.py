"""Status names of runs and task executions, and the sets of them the code asks about.

The one home of these names (CONTRACT §2/§4 use them): the engine's state machine, the ``Run``
handle, the CLI's exit codes, the progress lines, the widget and its live binding all import
them from here.
"""

from __future__ import annotations

from typing import Literal, get_args

__all__ = [
    "DONE_TASK",
    "ENDED_RUN",
    "LIVE_RUN",
    "OK_TASK",
    "REPORTED_TASK",
    "RUN_STATUSES",
    "SETTLED_RUN",
    "TASK_STATUSES",
    "RunStatus",
    "TaskStatus",
]

RunStatus = Literal[
    "pending",  # created, not started
    "running",  # tasks are running or about to
    "succeeded",  # ended, no unhandled failure
    "failed",  # ended with an unhandled failure (error names the task)
    "cancelled",  # ended by a cancel request
    "paused",  # no new task starts until resumed
    "waiting",  # nothing runs but an inquiry is open
    "interrupted",  # its orchestrator process is gone (a store-level status; see resume)
]
TaskStatus = Literal[
    "pending",  # an item of a with_items task not started yet
    "scheduled",  # submitted, waiting for a worker (executors that report starts)
    "running",  # an attempt is executing (or submitted, where starts are not reported)
    "retrying",  # an attempt failed; the next one is due after its delay
    "waiting",  # an inquiry waits for a response
    "succeeded",
    "failed",
    "skipped",  # not run: a branch not taken, or an item not started because another failed
    "cancelled",  # the run was cancelled (or failed) while it ran or waited
    "cached",  # its result came from the cache
]

RUN_STATUSES: tuple[str, ...] = get_args(RunStatus)
TASK_STATUSES: tuple[str, ...] = get_args(TaskStatus)

#: A run in one of these has ended for good (``resume`` can still retry a failed one).
ENDED_RUN: frozenset[str] = frozenset({"succeeded", "failed", "cancelled"})
#: Nothing happens to a run in one of these without outside help (a resume, a response, a
#: restart): ``Run.wait`` returns and live views stop polling.
SETTLED_RUN: frozenset[str] = ENDED_RUN | {"paused", "waiting", "interrupted"}
#: A run that may still change by itself or by a control request (the widget's controls).
LIVE_RUN: frozenset[str] = frozenset({"pending", "running", "waiting", "paused"})

#: A task execution in one of these is final: a cancel leaves it as it is.
DONE_TASK: frozenset[str] = frozenset({"succeeded", "failed", "skipped", "cancelled", "cached"})
#: A task execution that produced a result (``succeeded()`` in a ``when``).
OK_TASK: frozenset[str] = frozenset({"succeeded", "cached"})
#: What the CLI's progress lines report once per execution: the final ones, and an inquiry.
REPORTED_TASK: frozenset[str] = DONE_TASK | {"waiting"}
