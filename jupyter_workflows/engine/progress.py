"""Progress of a run on stderr for the CLI: a tqdm bar on a terminal, plain lines otherwise."""

from __future__ import annotations

import sys
import threading
from typing import TYPE_CHECKING

from ..expressions import MASKER
from ..statuses import REPORTED_TASK

if TYPE_CHECKING:  # pragma: no cover
    from .orchestrator import ActiveRun, Orchestrator

__all__ = ["attach_progress"]


def attach_progress(orch: Orchestrator, run_id: str, stream=None) -> None:
    """Report each task execution that ends (and the run's end) on ``stream`` (stderr)."""
    stream = stream or sys.stderr
    active = orch.runs.get(run_id)
    if active is None:
        return
    seen: dict[str, str] = {}
    lock = threading.Lock()
    bar = None
    if stream.isatty():
        from tqdm import tqdm

        bar = tqdm(
            total=len(active.state.wf.tasks),
            file=stream,
            desc=active.workflow.name,
            unit="task",
            leave=True,
        )

    def listener(run: ActiveRun) -> None:
        with lock:
            state = run.state
            for ex in state.execution_list():
                if ex.status in REPORTED_TASK and seen.get(ex.id) != ex.status:
                    seen[ex.id] = ex.status
                    took = ""
                    if ex.started_at and ex.ended_at:
                        took = f" in {ex.ended_at - ex.started_at:.2f}s"
                    line = f"[{run.workflow.name}] {ex.id}: {ex.status}{took}"
                    if ex.error:
                        line += f" ({MASKER.mask_text(ex.error)})"
                    if bar is not None:
                        bar.total = max(bar.total or 0, len(state.order))
                        bar.update(1)
                        bar.set_postfix_str(f"{ex.id} {ex.status}")
                    else:
                        print(line, file=stream, flush=True)
            if state.done or state.status in ("paused", "waiting"):
                if bar is not None:
                    bar.close()
                print(
                    f"[{run.workflow.name}] run {run.run_id}: {state.status}",
                    file=stream,
                    flush=True,
                )

    active.listeners.append(listener)
