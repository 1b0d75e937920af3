"""Bind a :class:`~jupyter_workflows.engine.run.Run` to a :class:`GraphWidget`: the live view.

Design
------
* **Push, from snapshots.** The orchestrator calls ``Run.on_change`` listeners on its own thread
  after each batch of state changes. The listener takes a snapshot there (``Run.live()``, the
  widget's wire shape), where the state cannot change under it, and pushes it into the widget's
  traits. The widget knows nothing of the engine and the engine nothing of widgets: this module
  is the only place the two meet.
* **Throttled, never stale.** A busy run changes hundreds of times a second; the browser needs a
  few frames. Pushes are spaced at least ``interval`` seconds apart (10/s by default). A change
  that arrives too early is kept and pushed by a timer when the interval is over (a trailing
  push), so a task that started just after a push never shows as "pending" while it runs for
  minutes. The final state of a run (ended, paused, waiting for a human) is pushed at once.
* **One message per push.** The task updates of one push are sent inside
  ``widget.hold_sync()``, so the front end receives one ``status`` message, not one per task.
* **Answers flow back** through the same engine call every surface uses: ``widget.on_respond``
  calls ``Run.respond`` (schema-checked); an error it raises is shown under the widget's form.
* Only runs this process drives can be followed live; a run owned by another process (or one
  that already ended) is shown as one snapshot, and :meth:`LiveBinding.refresh` shows the
  latest on demand.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import TYPE_CHECKING, Any

from ..statuses import SETTLED_RUN
from .widget import GraphWidget
from .wire import RUN_STATES, TASK_STATES

if TYPE_CHECKING:  # pragma: no cover
    from ..definition import Workflow
    from ..engine.orchestrator import Orchestrator
    from ..engine.run import Run

__all__ = ["LiveBinding", "bind_run", "widget_for_run", "widget_for_workflow"]

logger = logging.getLogger(__name__)

#: Run states after which nothing happens without outside help: pushed at once, then idle.
SETTLED = SETTLED_RUN
DEFAULT_INTERVAL = 0.1


def widget_for_workflow(workflow: Workflow, **kwargs: Any) -> GraphWidget:
    """A :class:`GraphWidget` drawing ``workflow`` (no run yet)."""
    from ..spec.graph import graph_dict

    try:
        spec = workflow.to_dict()
    except Exception:  # the editor's copy is a nicety; the graph is what matters
        spec = {}
    return GraphWidget(graph_dict(workflow.compiled), spec=spec, **kwargs)


def workflow_of(run: Run, orchestrator: Orchestrator | None = None) -> Workflow | None:
    """The workflow a run executes: the live one, else rebuilt from the stored definition."""
    orch = orchestrator or _orchestrator_of(run)
    active = orch.runs.get(run.run_id) if orch is not None else None
    if active is not None:
        return active.workflow
    if orch is None:
        return None
    record = orch.store.get_run(run.run_id)
    definition = (record or {}).get("definition")
    if not definition:
        return None
    from ..definition import load

    try:
        return load(definition)
    except Exception:  # an old or foreign definition: show the run without its graph
        return None


def widget_for_run(run: Run) -> GraphWidget:
    """A :class:`GraphWidget` for ``run``'s workflow (an empty graph if it cannot be rebuilt)."""
    workflow = workflow_of(run)
    if workflow is not None:
        try:
            return widget_for_workflow(workflow)
        except Exception:
            pass
    return GraphWidget({"name": _safe(lambda: run.workflow, ""), "nodes": [], "edges": []})


def _safe(fn: Any, default: Any) -> Any:
    try:
        return fn()
    except Exception:
        return default


def _same(a: Any, b: Any) -> bool:
    """Equal, for values that may not compare cleanly (arrays, frames): unsure means changed."""
    try:
        return bool(a == b)
    except Exception:
        return False


def _orchestrator_of(run: Run) -> Orchestrator | None:
    # A Run holds the orchestrator it was created by; that is the one whose thread calls us.
    return getattr(run, "_orch", None)


def _dashboard_link(orchestrator: Orchestrator | None) -> str:
    """The executor's dashboard URL, without starting an executor that is not running yet."""
    if orchestrator is None:
        return ""
    executor = getattr(orchestrator, "_executor", None)
    if executor is None:
        return ""
    try:
        return str(executor.dashboard_link or "")
    except Exception:
        return ""


class LiveBinding:
    """Keeps a :class:`GraphWidget` in step with a :class:`Run`.

    Build it with :func:`bind_run`. Attributes are for tests and tools: ``pushes`` counts the
    snapshots sent, ``last`` is the latest snapshot sent.
    """

    def __init__(
        self, run: Run, widget: GraphWidget, *, interval: float = DEFAULT_INTERVAL
    ) -> None:
        self.run = run
        self.widget = widget
        self.interval = max(0.0, float(interval))
        self.pushes = 0
        self.last: dict[str, Any] | None = None
        self.closed = False
        self._orch = _orchestrator_of(run)
        self._lock = threading.Lock()
        self._last_push = 0.0
        self._pending: dict[str, Any] | None = None
        self._timer: threading.Timer | None = None
        widget.on_respond(self._respond)

    # -- engine side ----------------------------------------------------------------------------
    def _on_change(self, _run: Run) -> None:
        """Listener: runs on the orchestrator's thread after each batch."""
        if self.closed:
            return
        with self._lock:
            snapshot = self._snapshot()
            if snapshot is None:
                return
            settled = snapshot["run"].get("status") in SETTLED
            wait = self._last_push + self.interval - time.monotonic()
            if settled or wait <= 0:
                self._cancel_timer()
                self._pending = None
                self._send(snapshot)
                return
            self._pending = snapshot
            if self._timer is None:
                self._timer = threading.Timer(wait, self._flush)
                self._timer.daemon = True
                self._timer.start()

    def _flush(self) -> None:
        with self._lock:
            self._timer = None
            snapshot, self._pending = self._pending, None
            if snapshot is not None and not self.closed:
                self._send(snapshot)

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def refresh(self) -> None:
        """Push the run's current state now (any thread)."""
        with self._lock:
            # Snapshot under the lock: a listener's push cannot then slip in between and be
            # overwritten by an older snapshot taken here.
            snapshot = self._snapshot()
            if snapshot is None:
                return
            self._cancel_timer()
            self._pending = None
            self._send(snapshot)

    def _snapshot(self) -> dict[str, Any] | None:
        try:
            return self.run.live()
        except Exception:  # a view must never disturb the run
            logger.debug("live snapshot of run %s failed", self.run.run_id, exc_info=True)
            return None

    # -- widget side ----------------------------------------------------------------------------
    def _send(self, snapshot: dict[str, Any]) -> None:
        """Write one snapshot into the widget's traits (caller holds ``_lock``)."""
        self._last_push = time.monotonic()
        previous = (self.last or {}).get("tasks") or {}
        widget = self.widget
        try:
            with widget.hold_sync():
                for name, fields in (snapshot.get("tasks") or {}).items():
                    if _same(previous.get(name), fields):
                        continue
                    fields = dict(fields)
                    if fields.get("status") not in TASK_STATES:
                        fields.pop("status", None)
                    widget.update_task(name, **fields)
                info = dict(snapshot.get("run") or {})
                if info.get("status") not in RUN_STATES:
                    info["status"] = None
                widget.set_run(**info)
                widget.set_inquiries(snapshot.get("inquiries") or [])
                if not widget.dashboard_link:
                    link = _dashboard_link(self._orch)
                    if link:
                        widget.dashboard_link = link
        except Exception:
            logger.debug("updating the widget of run %s failed", self.run.run_id, exc_info=True)
            return
        self.last = snapshot
        self.pushes += 1

    def _respond(self, task: str, data: Any) -> None:
        # Errors (wrong schema, nothing waiting) propagate: the widget shows them under its form.
        self.run.respond(task, data)

    def close(self) -> None:
        """Stop following the run (the widget keeps its last state)."""
        with self._lock:
            self.closed = True
            self._cancel_timer()
            self._pending = None
        self.widget.on_respond(self._respond, remove=True)


def bind_run(
    run: Run, widget: GraphWidget | None = None, *, interval: float = DEFAULT_INTERVAL
) -> LiveBinding:
    """Make ``widget`` (a new one for the run's workflow when None) follow ``run`` live.

    Parameters
    ----------
    run:
        The run to show. Runs this process drives update live; others show a snapshot.
    widget:
        The widget to drive; a new :class:`GraphWidget` of the run's workflow when None.
    interval:
        The least time between two pushes, in seconds. The final state is always pushed.

    Returns
    -------
    LiveBinding
        ``binding.widget`` is the widget; ``binding.refresh()`` pushes the current state.
    """
    if widget is None:
        widget = widget_for_run(run)
    previous = getattr(widget, "_jw_live_binding", None)
    if previous is not None:  # a widget shows one run at a time (a form that runs again)
        previous.close()
        widget.status = {}
    binding = LiveBinding(run, widget, interval=interval)
    # Subscribe before the first snapshot, so no batch falls between the two.
    run.on_change(binding._on_change)
    binding.refresh()
    # Keep the binding alive as long as the widget is.
    widget._jw_live_binding = binding
    return binding
