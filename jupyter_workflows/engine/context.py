"""Moved: the worker-side runtime (``TaskContext``, ``Envelope``, ``run_task``, log capture) lives
with the executors, in :mod:`jupyter_workflows.executors.runtime`. These names stay importable
from here (a task function may annotate ``context: TaskContext`` with this path).
"""

from __future__ import annotations

from ..exceptions import NO_MESSAGE, error_line
from ..executors.runtime import (
    AFTER,
    CAPTURE_LEVEL,
    PROGRESS_INTERVAL,
    Envelope,
    TaskContext,
    _CaptureHandler,
    await_in_thread,
    run_task,
    secret_source,
)

__all__ = [
    "AFTER",
    "CAPTURE_LEVEL",
    "NO_MESSAGE",
    "PROGRESS_INTERVAL",
    "Envelope",
    "TaskContext",
    "_CaptureHandler",
    "await_in_thread",
    "error_line",
    "run_task",
    "secret_source",
]
