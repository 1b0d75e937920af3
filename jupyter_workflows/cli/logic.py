"""What each CLI subcommand does, as plain functions returning the exit code.

Kept apart from argument wiring so tests call them directly; every one goes through the same
engine API (:mod:`jupyter_workflows.engine.api`) the magics and the REST API use.
"""

from __future__ import annotations

import json
import os
import sys
from argparse import Namespace
from typing import Any

from ..exceptions import SpecError, WorkflowError, first_line
from ..sources import load_target
from ..statuses import ENDED_RUN
from ..values import to_json_form

__all__ = ["exit_code", "load_target", "out", "render_trace"]


class UsageError(WorkflowError):
    """Bad command-line usage found while running a command (exit 2, one line)."""


class RunInterrupted(KeyboardInterrupt):
    """Ctrl-C while ``run`` or ``resume`` drove a run (exit 130).

    The command stops at once, the way a crash would stop it: the run is left ``interrupted``
    (its tasks in flight are abandoned, what finished is kept) and ``resume`` continues it.
    """

    def __init__(self, run_id: str) -> None:
        super().__init__(
            f"interrupted: run {run_id} stopped; `jupyter-workflows resume {run_id}` continues it"
        )
        self.run_id = run_id


EXIT_CODES = {
    "succeeded": 0,
    "failed": 1,
    "cancelled": 1,
    "paused": 3,
    "waiting": 3,
    "interrupted": 3,
    "running": 3,
    "pending": 3,
}


ENDED = ENDED_RUN


def exit_code(status: str) -> int:
    """CONTRACT §5 exit code for a run status."""
    return EXIT_CODES.get(status, 1)


def out(text: str, end: str = "\n") -> None:
    """Print ``text`` on stdout; a reader that went away (``| head``) is not an error.

    The rest of the output is dropped (stdout is pointed at the null device, so the flush at exit
    cannot fail either) and the command still ends with its own exit code.
    """
    if _stdout_closed:
        return
    try:
        sys.stdout.write(text + end)
        sys.stdout.flush()
    except BrokenPipeError:
        _drop_stdout()


_stdout_closed = False


def _drop_stdout() -> None:
    global _stdout_closed
    _stdout_closed = True
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):  # no real file descriptor (tests capturing stdout)
        pass


def _configure(args: Namespace) -> None:
    from ..engine.api import configure

    options: dict[str, Any] = {}
    if getattr(args, "store", None):
        options["store"] = args.store
    if getattr(args, "scheduler", None):
        options["scheduler"] = args.scheduler
    if getattr(args, "artifacts", None):
        options["artifacts"] = args.artifacts
    if options:
        configure(**options)


CONNECT_TIMEOUT = 10.0
"""Seconds ``run``/``resume`` wait for a ``--scheduler`` address to answer before giving up."""

_PROBED_SCHEMES = ("tcp", "tls", "ws", "wss")
_DASK_SCHEMES = (*_PROBED_SCHEMES, "inproc", "ucx")


def _connect(args: Namespace) -> None:
    """Connect to the configured Dask scheduler before a run is created (exit 2 when it fails).

    Only an external scheduler address is checked here: its syntax, then a plain TCP connection
    bounded by :data:`CONNECT_TIMEOUT` (Dask's own connect timeout is 30 s), then the executor's
    own start. The embedded cluster and the inline executor start when the first task runs.
    """
    from ..engine.api import get_orchestrator

    executor = get_orchestrator().executor
    address = getattr(executor, "scheduler", None)
    if not isinstance(address, str):
        return
    _probe_scheduler(address)
    start = getattr(executor, "start", None)
    if start is None:
        return
    try:
        start()
    except Exception as exc:
        raise UsageError(
            f"--scheduler {address}: cannot connect to the Dask scheduler: "
            f"{type(exc).__name__}: {first_line(exc)}"
        ) from exc


def _probe_scheduler(address: str) -> None:
    from urllib.parse import urlsplit

    text = address.strip()
    url = text if "://" in text else f"tcp://{text}"
    expected = "expected tcp://HOST:PORT"
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        port = None
        parts = None
    if parts is None or parts.scheme not in _DASK_SCHEMES:
        raise UsageError(f"--scheduler {address!r}: not a Dask scheduler address ({expected})")
    if parts.scheme not in _PROBED_SCHEMES:
        return
    if not parts.hostname or port is None or parts.path not in ("", "/"):
        raise UsageError(f"--scheduler {address!r}: not a Dask scheduler address ({expected})")
    import socket

    try:
        with socket.create_connection((parts.hostname, port), timeout=CONNECT_TIMEOUT):
            pass
    except TimeoutError:
        raise UsageError(f"--scheduler {address}: no answer within {CONNECT_TIMEOUT:g}s") from None
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise UsageError(f"--scheduler {address}: cannot connect ({reason})") from None


def _print_warnings(warnings) -> None:
    for w in warnings:
        print(str(w), file=sys.stderr)


def cmd_convert(args: Namespace) -> int:
    """The native YAML of a workflow in any dialect (CONTRACT §1.7); it validates as it is."""
    wf = load_target(args.file, args.workflow)
    wf.validate()
    out(wf.to_yaml().rstrip("\n"))
    return 0


def cmd_validate(args: Namespace) -> int:
    try:
        from .lifecycle import validate_document  # lifecycle and trigger files

        done = validate_document(args.file)
        if done is not None:
            out(done)
            return 0
        wf = load_target(args.file, args.workflow)
        warnings = wf.validate()
    except SpecError as exc:
        errors = getattr(exc, "errors", None)
        if not errors or getattr(args, "debug", False):
            raise  # one line (or the traceback with --debug), as for every command
        for error in errors:  # every error found, one FILE:LINE:COL: message line each
            print(str(error), file=sys.stderr)
        return 2
    _print_warnings(warnings)
    dialect = getattr(wf.source_map, "dialect", None)
    if dialect:  # a file in another language, read as it is (CONTRACT §1.7)
        out(f"{args.file}: ok ({dialect}): {len(wf.compiled.tasks)} tasks")
    else:
        out(f"{args.file}: ok ({len(wf.compiled.tasks)} tasks)")
    return 0


def cmd_graph(args: Namespace) -> int:
    from ..spec import graph

    wf = load_target(args.file, args.workflow)
    wf.validate()
    render = {"mermaid": graph.to_mermaid, "dot": graph.to_dot, "json": graph.to_json}[args.format]
    out(render(wf.compiled), end="")
    return 0


def _report(run: Any, as_json: bool) -> int:
    data = run.to_dict()
    if as_json:
        out(json.dumps(to_json_form(data)))
    else:
        out(run.summary())
    return exit_code(data["status"])


def cmd_run(args: Namespace) -> int:
    from ..engine.api import start_run
    from ..spec.params import parse_assignments

    params = parse_assignments(args.params)
    wf = load_target(args.file, args.workflow)
    _configure(args)
    _connect(args)
    run = start_run(
        wf,
        params,
        wait=False,
        no_cache=args.no_cache,
        progress=not args.json or sys.stderr.isatty(),
    )
    try:
        run.wait()
    except KeyboardInterrupt:
        raise RunInterrupted(run.run_id) from None
    return _report(run, args.json)


def cmd_resume(args: Namespace) -> int:
    from ..engine.api import get_run, resume

    _configure(args)
    existing = get_run(args.run_id)
    run_id, status = existing.run_id, existing.status
    if status not in ENDED or (status == "failed" and args.retry_failed):
        _connect(args)  # an ended run is only printed: it needs no scheduler
    try:
        run = resume(run_id, wait=True, no_cache=args.no_cache, retry_failed=args.retry_failed)
    except KeyboardInterrupt:
        raise RunInterrupted(run_id) from None
    return _report(run, args.json)


def cmd_runs(args: Namespace) -> int:
    from ..engine.api import runs

    _configure(args)
    items = runs()
    if args.json:
        out(json.dumps([r.summary_dict() for r in items], default=str))
        return 0
    if not items:
        out("no runs")
        return 0
    out(f"{'RUN ID':<34} {'WORKFLOW':<20} {'STATUS':<12} STARTED")
    for r in items:
        d = r.summary_dict()
        # a damaged row (NULL columns) is shown as such, not an internal error
        row = {k: "(missing)" if d.get(k) is None else str(d[k]) for k in ("run_id", "workflow")}
        status = "(missing)" if d.get("status") is None else str(d["status"])
        out(f"{row['run_id']:<34} {row['workflow']:<20} {status:<12} {d.get('started_at') or ''}")
    return 0


def cmd_show(args: Namespace) -> int:
    from ..engine.api import get_run

    _configure(args)
    run = get_run(args.run_id)
    if args.json:
        out(json.dumps(to_json_form(run.to_dict())))
    else:
        out(run.summary(details=True))
        out(render_trace(run.trace("json")))
    return 0


LOG_LINES_SHOWN = 40
"""``show`` prints at most this many log lines per attempt (the last ones); ``trace`` has all."""


def render_trace(trace: dict[str, Any]) -> str:
    """The text form of a run's JSON trace, as ``show`` prints it.

    Each task execution with its attempts (one per call for a ``with_items`` task): status, time,
    worker, error and that attempt's log lines; then the run's own events (start, pause, resume,
    cancel, recovery after a crash, inquiry responses).
    """
    events = trace.get("events") or []
    calls = _calls_by_execution(trace, events)
    lines = ["", "trace:"]
    for record in trace.get("tasks") or []:
        name = record.get("exec_id") or record.get("task")
        head = f"  {name}: {record.get('status')}"
        if record.get("worker"):
            head += f" on {record['worker']}"
        lines.append(head)
        mine = calls.get(id(record), [])
        label = "call" if len(mine) > max(1, record.get("attempts") or 0) else "attempt"
        for number, event in enumerate(mine, 1):
            lines.append(f"    {label} {number}: {_describe_call(event)}")
            lines.extend(_log_block(event.get("logs") or [], "      | "))
        if not mine:  # running, waiting, or never reached an executor
            if record.get("error"):
                lines.append(f"    error: {record['error']}")
            lines.extend(_log_block(record.get("logs") or [], "      | "))
    others = [e for e in events if e.get("type") != "attempt_done"]
    if others:
        lines.append("  run events:")
        for event in others:
            what = str(event.get("type", "event")).replace("_", " ")
            if event.get("type") == "inquiry_responded":
                what += f" ({event.get('exec_id')}: {json.dumps(to_json_form(event.get('data')))})"
            elif event.get("type") == "timer_fired":
                what += f" ({event.get('timer')})"
            lines.append(f"    {_clock(event.get('time'))}  {what}")
    return "\n".join(lines)


def _calls_by_execution(
    trace: dict[str, Any], events: list[dict[str, Any]]
) -> dict[int, list[dict[str, Any]]]:
    """Each ``attempt_done`` event under the execution it belongs to.

    An attempt's Dask key is ``WORKFLOW.TASK-RUNID8-N``; of that task's executions, the attempt
    belongs to the last one that started before it.
    """
    prefix = f"{trace.get('workflow')}."
    suffix = f"-{str(trace.get('run_id', ''))[:8]}-"
    by_task: dict[str, list[dict[str, Any]]] = {}
    for record in trace.get("tasks") or []:
        by_task.setdefault(str(record.get("task")), []).append(record)
    calls: dict[int, list[dict[str, Any]]] = {}
    for event in events:
        key = str(event.get("key") or "")
        if event.get("type") != "attempt_done" or not key.startswith(prefix) or suffix not in key:
            continue
        records = by_task.get(key[len(prefix) : key.rindex(suffix)])
        if not records:
            continue
        began = event.get("started_at") or event.get("time") or 0.0
        owner = records[0]
        for record in records:
            if (record.get("started_at") or 0.0) <= began:
                owner = record
        calls.setdefault(id(owner), []).append(event)
    return calls


def _describe_call(event: dict[str, Any]) -> str:
    status = "cached" if event.get("cached") else "succeeded" if event.get("ok") else "failed"
    text = f"{status} at {_clock(event.get('started_at') or event.get('time'))}"
    start, end = event.get("started_at"), event.get("ended_at")
    if start is not None and end is not None:
        text += f" in {max(0.0, float(end) - float(start)):.2f}s"
    if event.get("worker"):
        text += f" on {event['worker']}"
    if not event.get("ok") and event.get("error"):
        text += f": {event['error']}"
    return text


def _log_block(logs: list[Any], indent: str) -> list[str]:
    lines = [str(line) for line in logs]
    if len(lines) > LOG_LINES_SHOWN:
        hidden = len(lines) - LOG_LINES_SHOWN
        lines = [f"... {hidden} earlier lines (see `trace`)", *lines[-LOG_LINES_SHOWN:]]
    return [indent + line for line in lines]


def _clock(when: Any) -> str:
    """Epoch seconds as ``2024-01-31T12:00:00.123Z``, the form ``run --json`` uses."""
    from datetime import datetime, timezone

    try:
        moment = datetime.fromtimestamp(float(when), tz=timezone.utc)
    except (TypeError, ValueError, OverflowError, OSError):
        return str(when)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def cmd_pause(args: Namespace) -> int:
    from ..engine.api import get_run

    _configure(args)
    run = get_run(args.run_id)
    run.pause()
    out(f"{args.run_id}: pause requested")
    return 0


def cmd_cancel(args: Namespace) -> int:
    from ..engine.api import get_run

    _configure(args)
    run = get_run(args.run_id)
    run.cancel()
    out(f"{args.run_id}: cancel requested")
    return 0


def cmd_respond(args: Namespace) -> int:
    from ..engine.api import get_run
    from ..exceptions import InquiryError

    _configure(args)
    try:
        data = json.loads(args.data)
    except json.JSONDecodeError as exc:
        raise InquiryError(f"--data is not JSON: {exc.msg} at column {exc.colno}") from None
    run = get_run(args.run_id)
    run.respond(args.task, data)
    out(f"{args.run_id}: response to {args.task!r} recorded")
    return 0


def cmd_trace(args: Namespace) -> int:
    from ..engine.api import get_run

    _configure(args)
    run = get_run(args.run_id)
    trace = run.trace(format=args.format)
    out(json.dumps(to_json_form(trace)))
    return 0


def cmd_export(args: Namespace) -> int:
    from ..jupyter.export import export_job

    folder = export_job(args.source, args.dir, workflow=args.workflow)
    out(f"exported to {folder}")
    return 0


def cmd_serve(args: Namespace) -> int:
    from ..server.serve import serve

    _configure(args)
    return serve(args.paths, ip=args.ip, port=args.port, watch=args.watch or ())
