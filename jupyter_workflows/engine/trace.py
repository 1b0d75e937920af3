"""A run's trace: JSON (tasks, logs, events), or Chrome trace events for Perfetto.

The Chrome format puts one track (``tid``) per worker, so a run's parallelism is visible at a
glance in ``ui.perfetto.dev`` or ``chrome://tracing``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..exceptions import WorkflowError

if TYPE_CHECKING:  # pragma: no cover
    from .run import Run

__all__ = ["build_trace"]


def build_trace(run: Run, format: str = "json") -> Any:
    records = run._task_records()
    if format == "json":
        try:
            events = run._orch.store.load_events(run.run_id)
        except Exception:
            events = []
        return {
            "run_id": run.run_id,
            "workflow": run.workflow,
            "status": run.status,
            "error": run.error,
            "tasks": [
                {
                    "task": r.get("task"),
                    "exec_id": r.get("exec_id"),
                    "status": r.get("status"),
                    "attempts": r.get("attempts"),
                    "started_at": r.get("started_at"),
                    "ended_at": r.get("ended_at"),
                    "worker": r.get("worker"),
                    "error": r.get("error"),
                    "logs": r.get("logs") or [],
                }
                for r in records
            ],
            "events": [{k: v for k, v in e.items() if k != "result"} for e in events],
        }
    if format == "chrome":
        workers: dict[str, int] = {}
        out: list[dict[str, Any]] = [
            {
                "name": "process_name",
                "ph": "M",
                "pid": 1,
                "tid": 0,
                "args": {"name": f"{run.workflow} {run.run_id}"},
            }
        ]
        for r in records:
            start, end = r.get("started_at"), r.get("ended_at")
            if start is None:
                continue
            worker = r.get("worker") or "engine"
            if worker not in workers:
                workers[worker] = len(workers) + 1
                out.append(
                    {
                        "name": "thread_name",
                        "ph": "M",
                        "pid": 1,
                        "tid": workers[worker],
                        "args": {"name": worker},
                    }
                )
            out.append(
                {
                    "name": r.get("exec_id") or r.get("task"),
                    "cat": r.get("status"),
                    "ph": "X",
                    "ts": float(start) * 1e6,
                    "dur": max(0.0, float(end or start) - float(start)) * 1e6,
                    "pid": 1,
                    "tid": workers[worker],
                    "args": {
                        "status": r.get("status"),
                        "attempts": r.get("attempts"),
                        "error": r.get("error"),
                    },
                }
            )
        return {"traceEvents": out, "displayTimeUnit": "ms"}
    raise WorkflowError(f"unknown trace format {format!r} (json or chrome)")
