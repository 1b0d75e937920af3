"""The loop that starts scheduled runs (``jupyter-workflows serve``, the server extension).

When a ``schedule:`` string (cron or RRULE) fires next is :mod:`jupyter_workflows.spec.schedules`
(a pure function, also used by validation); :func:`next_fire` and :func:`schedule_problem` stay
importable from here. The :class:`Scheduler` uses the host's local time.

The :class:`Scheduler` holds the schedules of a set of workflow files and starts their runs; its
clock, its run starter and the loop's sleep are injectable, so tests drive it with a fake clock
instead of waiting minutes. Policy, as in Airflow with ``catchup=False``: fires missed while the
server was down (or while the loop was late) are not replayed; one run starts, and the next fire
is computed from now. A run starts at each fire even if the previous one is still running.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..exceptions import SpecError, describe

if TYPE_CHECKING:  # pragma: no cover
    from ..definition import Workflow
    from ..engine.run import Run

# Parsing schedule strings lives in ``spec.schedules`` (validation checks them); these names stay
# importable from here.
from ..spec.schedules import next_fire, schedule_problem

__all__ = ["ScheduledWorkflow", "Scheduler", "next_fire", "schedule_problem"]

#: The loop never sleeps longer than this, so a changed wall clock (suspend, NTP) is noticed.
MAX_SLEEP_SECONDS = 60.0


# -- the scheduler ------------------------------------------------------------------------------
def _local_now() -> datetime:
    return datetime.now()


def _start_run(workflow: Workflow) -> Run:
    from ..engine.api import start_run

    return start_run(workflow, None, wait=False)


def _load(path: Path) -> Workflow:
    from ..sources import load_target

    return load_target(str(path))


@dataclass
class ScheduledWorkflow:
    """One workflow file the scheduler watches."""

    path: Path
    """The file (or job folder, or notebook) it was loaded from."""
    workflow: Workflow
    """The definition as last loaded."""
    mtime: float | None = None
    """The file's modification time when it was loaded; a change reloads it before a fire."""
    next_at: datetime | None = None
    """When it fires next; None when it has no schedule."""
    last_run_id: str | None = None
    """The run started by the latest fire."""
    last_error: str | None = None
    """Why the latest fire started no run (the file stopped loading, bad parameters, ...)."""
    broken: str | None = None
    """Why the file, changed since it was loaded, no longer loads (its fires are skipped)."""
    fired: list[str] = field(default_factory=list)
    """Ids of the runs started so far, oldest first."""

    @property
    def schedule(self) -> str | None:
        return self.workflow.spec.schedule

    def to_dict(self) -> dict[str, Any]:
        """The JSON shape of ``GET /workflows/api/schedules``."""
        return {
            "workflow": self.workflow.name,
            "path": str(self.path),
            "schedule": self.schedule,
            "next_at": self.next_at.isoformat(timespec="seconds") if self.next_at else None,
            "last_run_id": self.last_run_id,
            "last_error": self.last_error,
            "broken": self.broken,
            "runs_started": len(self.fired),
        }


class Scheduler:
    """Starts runs of the workflows in ``paths`` at their ``schedule:`` times.

    Parameters
    ----------
    paths:
        Workflow files (YAML/JSON, job folders, notebooks), as ``jupyter-workflows run`` takes them.
    clock:
        Returns "now" (default: naive local time).
    start:
        Starts a run of a workflow and returns it (default: ``start_run(wf, None, wait=False)``).
    load:
        Loads a path into a :class:`Workflow` (default: the CLI's loader).
    log:
        Where each start, skip and error is logged.
    """

    def __init__(
        self,
        paths: Sequence[str | os.PathLike[str]],
        *,
        clock: Callable[[], datetime] = _local_now,
        start: Callable[[Workflow], Run] = _start_run,
        load: Callable[[Path], Workflow] = _load,
        log: logging.Logger | None = None,
    ) -> None:
        self.paths = [Path(p) for p in paths]
        self.clock = clock
        self._start = start
        self._load = load
        self.log = log or logging.getLogger(__name__)
        self.entries: list[ScheduledWorkflow] = []
        self._lock = threading.Lock()
        self._stop_requested = False

    # -- loading ---------------------------------------------------------------------------------
    def load(self) -> list[ScheduledWorkflow]:
        """Load and validate every file; compute first fires. Raises the first :class:`SpecError`."""
        now = self.clock()
        entries = []
        for path in self.paths:
            wf = self._load(path)
            wf.validate()
            entry = ScheduledWorkflow(path=path, workflow=wf, mtime=_mtime(path))
            if wf.spec.schedule:
                entry.next_at = next_fire(wf.spec.schedule, now)
            entries.append(entry)
        with self._lock:
            self.entries = entries
        return entries

    def _refresh(self, entry: ScheduledWorkflow, now: datetime) -> None:
        """Reload ``entry`` when its file changed; a file that stops loading pauses its fires."""
        mtime = _mtime(entry.path)
        if mtime == entry.mtime:
            return
        entry.mtime = mtime
        try:
            wf = self._load(entry.path)
            wf.validate()
        except Exception as exc:
            entry.broken = _describe(exc)
            self.log.error(
                "jupyter-workflows schedule: %s no longer loads, its fires are skipped until it is fixed: %s",
                entry.path,
                entry.broken,
            )
            return
        old_schedule = entry.schedule
        entry.workflow, entry.broken = wf, None
        if entry.schedule != old_schedule:
            entry.next_at = self._following(entry, now)
        self.log.info(
            "jupyter-workflows schedule: reloaded %s (schedule %r, next %s)",
            entry.path,
            entry.schedule,
            _fmt(entry.next_at),
        )

    # -- firing ------------------------------------------------------------------------------------
    def due(self, now: datetime | None = None) -> list[ScheduledWorkflow]:
        """Entries whose next fire is at or before ``now``."""
        now = self.clock() if now is None else now
        with self._lock:
            return [e for e in self.entries if e.next_at is not None and e.next_at <= now]

    def tick(self) -> list[str]:
        """Reload changed files, then start a run of every due workflow; returns the run ids.

        A fire that cannot start a run (the file no longer loads, the start fails) is logged and
        recorded in ``last_error``; the schedule goes on.
        """
        now = self.clock()
        with self._lock:
            entries = list(self.entries)
        for entry in entries:
            self._refresh(entry, now)
        started: list[str] = []
        for entry in self.due(now):
            due_at = entry.next_at
            try:
                if entry.broken:
                    raise SpecError(entry.broken)
                run = self._start(entry.workflow)
            except Exception as exc:
                entry.last_error = _describe(exc)
                self.log.error(
                    "jupyter-workflows schedule: %r (%s) due %s: no run started: %s",
                    entry.workflow.name,
                    entry.path,
                    _fmt(due_at),
                    entry.last_error,
                )
            else:
                entry.last_run_id, entry.last_error = run.run_id, None
                entry.fired.append(run.run_id)
                started.append(run.run_id)
                self.log.info(
                    "jupyter-workflows schedule: started run %s of %r (due %s, schedule %r)",
                    run.run_id,
                    entry.workflow.name,
                    _fmt(due_at),
                    entry.schedule,
                )
            entry.next_at = self._following(entry, now)
        return started

    def _following(self, entry: ScheduledWorkflow, now: datetime) -> datetime | None:
        schedule = entry.schedule
        if not schedule:
            return None
        try:
            return next_fire(schedule, now)
        except SpecError as exc:
            entry.last_error = str(exc)
            self.log.error("jupyter-workflows schedule: %s: %s; no more runs", entry.path, exc)
            return None

    def seconds_until_next(self, now: datetime | None = None) -> float:
        """How long the loop may sleep: until the earliest fire, at most :data:`MAX_SLEEP_SECONDS`."""
        now = self.clock() if now is None else now
        with self._lock:
            times = [e.next_at for e in self.entries if e.next_at is not None]
        if not times:
            return MAX_SLEEP_SECONDS
        return max(0.0, min(MAX_SLEEP_SECONDS, (min(times) - now).total_seconds()))

    def snapshot(self) -> list[dict[str, Any]]:
        """Every entry as JSON-able data (for the REST API)."""
        with self._lock:
            return [e.to_dict() for e in self.entries]

    # -- the loop ----------------------------------------------------------------------------------
    def stop(self) -> None:
        """Make :meth:`run_forever` return after its current step."""
        self._stop_requested = True

    async def run_forever(
        self,
        *,
        sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
        in_thread: bool = True,
    ) -> None:
        """Fire due workflows, sleep until the next fire, repeat until :meth:`stop`.

        ``tick`` runs in a worker thread (``in_thread``) because starting a run may block (the
        first start builds the Dask cluster); the event loop keeps serving HTTP meanwhile.
        """
        loop = asyncio.get_running_loop()
        while not self._stop_requested:
            if in_thread:
                await loop.run_in_executor(None, self.tick)
            else:
                self.tick()
            if self._stop_requested:
                break
            await sleep(self.seconds_until_next())


def _describe(exc: BaseException) -> str:
    """A one-line reason: our own errors as they are, others prefixed with their type."""
    return describe(exc)


def _mtime(path: Path) -> float | None:
    try:
        return path.stat().st_mtime
    except OSError:
        return None


def _fmt(moment: datetime | None) -> str:
    return moment.isoformat(timespec="seconds") if moment else "-"
