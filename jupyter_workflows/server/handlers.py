"""REST handlers: thin tornado adapters over :mod:`jupyter_workflows.engine.api`.

Every route needs Jupyter's own authentication (a token, a cookie, a JupyterHub identity); a
request without one gets ``403`` and a one-line JSON error, whatever its method (checked in
``prepare``, before tornado would answer 405 for a method the route does not have). Jupyter's authorizer is
consulted too (resource ``workflows``; GET is ``read``, POST is ``write``), so a JupyterHub
read-only role can list runs but not start them.

Engine calls may block (the first run builds the Dask cluster, ``?wait=true`` waits for a run to
settle), so they run in a thread pool, never on the server's event loop. Errors are always JSON,
``{"error": "<one line>"}``, with the status code mapped from the engine's error type:

=================================  ======
error                              status
=================================  ======
unknown workflow, run, task,       404
endpoint
bad parameters, bad JSON body,     400
invalid workflow, an answer that
does not fit the inquiry's schema
run cannot do that now (pause an   409
ended run, answer a task that is
not waiting)
anything else                      500
=================================  ======
"""

from __future__ import annotations

import contextlib
import functools
import json
import math
import os
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

import yaml
from jupyter_server.auth.decorator import authorized
from jupyter_server.base.handlers import APIHandler
from tornado import web
from tornado.ioloop import IOLoop

from ..exceptions import (
    InquiryError,
    RunNotFound,
    RunStateError,
    SpecError,
    StoreError,
    WorkflowError,
    describe,
    one_line,
)
from ..limits import LIMITS, hint
from ..sources import get_workflow, is_workflow_file_name, registered_workflows, workflow_files
from ..values import to_json_form

__all__ = ["default_handlers", "discover_workflows", "find_workflow"]

T = TypeVar("T")

#: Workflow files bigger than this in the root folder are not opened by ``GET workflows``.
MAX_WORKFLOW_FILE_BYTES = 1_000_000
_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off"})

_pool: ThreadPoolExecutor | None = None


def _executor() -> ThreadPoolExecutor:
    """The threads engine calls run in (a waiting request holds one for as long as it waits)."""
    global _pool
    if _pool is None:
        _pool = ThreadPoolExecutor(max_workers=32, thread_name_prefix="jupyter-workflows-rest")
    return _pool


def _depth(value: Any, limit: int) -> int:
    """How deeply ``value`` nests (iteratively; stops counting past ``limit``)."""
    deepest = 0
    todo: list[tuple[Any, int]] = [(value, 1)]
    while todo:
        item, level = todo.pop()
        if isinstance(item, (dict, list)):
            deepest = max(deepest, level)
            if deepest > limit:
                return deepest
            children = item.values() if isinstance(item, dict) else item
            todo.extend((child, level + 1) for child in children)
    return deepest


def _one_line(text: str) -> str:
    return one_line(text) or "error"


def _status_for(exc: BaseException) -> int:
    if isinstance(exc, RunNotFound):
        return 404
    if isinstance(exc, RunStateError):
        return 409
    if isinstance(exc, StoreError):
        return 500
    if isinstance(exc, WorkflowError):  # ParameterError, SpecError, ActionNotFound, InquiryError
        return 400
    return 500


class _WorkflowsHandler(APIHandler):
    """Common parts: JSON in and out, one-line JSON errors, engine calls off the event loop."""

    auth_resource = "workflows"

    async def prepare(self) -> None:  # type: ignore[override]
        await super().prepare()
        # Every method of every route: a GET on a POST-only route would otherwise be a 405
        # before any method's @web.authenticated runs. OPTIONS (a CORS preflight, which
        # carries no credentials) is left to Jupyter.
        if self.current_user is None and self.request.method != "OPTIONS":
            raise web.HTTPError(403)

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        exc = (kwargs.get("exc_info") or (None, None, None))[1]
        if status_code == 403 and getattr(self, "_jupyter_current_user", None) is None:
            # Jupyter's own reasons (a missing _xsrf argument, ...) would mislead an API client.
            message = "Forbidden: a valid token is required (header 'Authorization: token TOKEN')"
        elif isinstance(exc, web.HTTPError):
            message = exc.log_message or self._reason
        elif exc is not None:
            message = f"{type(exc).__name__}: {exc}"
        else:
            message = self._reason
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps({"error": _one_line(message)}))

    def send(self, data: Any, status: int = 200) -> None:
        self.set_status(status)
        self.set_header("Content-Type", "application/json")
        # Task results and outputs are user values: JSON forms, never reprs (values.py).
        self.finish(json.dumps(to_json_form(data)))

    def json_body(self, *, required: bool = False) -> Any:
        """The request body as JSON; an empty body is None (or a 400 when ``required``).

        Bounded (``LIMITS.request_body_bytes``, ``LIMITS.request_nesting``): a 413 or a 400, never
        a ``RecursionError`` from ``"[" * 100000`` or a value nested too deeply for the code that
        reads it later.
        """
        raw = self.request.body or b""
        if len(raw) > LIMITS.request_body_bytes:
            raise web.HTTPError(
                413,
                f"the request body has {len(raw):,} bytes, more than "
                f"{LIMITS.request_body_bytes:,} {hint('request_body_bytes')}",
            )
        if not raw.strip():
            if required:
                raise web.HTTPError(400, "the request body must be JSON")
            return None
        try:
            value = json.loads(raw)
        except (ValueError, UnicodeDecodeError) as exc:
            raise web.HTTPError(400, f"the request body is not valid JSON: {exc}") from None
        except RecursionError:
            value = None
            depth = LIMITS.request_nesting + 1
        else:
            depth = _depth(value, LIMITS.request_nesting)
        if depth > LIMITS.request_nesting:
            raise web.HTTPError(
                400,
                f"the request body nests more than {LIMITS.request_nesting} levels deep "
                + hint("request_nesting"),
            )
        return value

    def flag(self, name: str) -> bool:
        """A boolean query argument: ``?wait=true`` (also ``1``, ``yes``, or a bare ``?wait``)."""
        value = self.get_query_argument(name, None)
        if value is None:
            return False
        value = value.strip().lower()
        if value in _TRUE or value == "":
            return True
        if value in _FALSE:
            return False
        raise web.HTTPError(400, f"query argument {name!r} must be true or false, not {value!r}")

    def number(self, name: str) -> float | None:
        value = self.get_query_argument(name, None)
        if value is None or not value.strip():
            return None
        try:
            number = float(value)
        except ValueError:
            number = math.nan
        if not math.isfinite(number):  # also inf, nan, 1e400
            raise web.HTTPError(
                400, f"query argument {name!r} must be a finite number, not {value[:40]!r}"
            )
        if number < 0:
            raise web.HTTPError(400, f"query argument {name!r} must not be negative")
        return number

    def whole_number(self, name: str) -> int | None:
        """A non-negative integer query argument (``?limit=10``), else a 400."""
        value = self.get_query_argument(name, None)
        if value is None or not value.strip():
            return None
        text = value.strip()
        if not text.isdigit() or len(text) > 18:
            raise web.HTTPError(
                400, f"query argument {name!r} must be a whole number >= 0, not {value[:40]!r}"
            )
        return int(text)

    async def call(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run ``fn`` in a worker thread; the engine's errors become JSON HTTP errors."""
        try:
            return await IOLoop.current().run_in_executor(
                _executor(), functools.partial(fn, *args, **kwargs)
            )
        except web.HTTPError:
            raise
        except WorkflowError as exc:
            raise web.HTTPError(_status_for(exc), self._tidy(str(exc))) from None

    def _tidy(self, message: str) -> str:
        """One line, with file names relative to the root folder (``hello.yaml:3:5: ...``)."""
        return _one_line(message).replace(f"{self.root_dir.resolve()}{os.sep}", "")

    @property
    def root_dir(self) -> Path:
        return Path(self.settings.get("server_root_dir") or os.getcwd()).expanduser()


# -- the engine calls, each run in a worker thread ----------------------------------------------
def _wait(run: Any, wait: bool, timeout: float | None) -> dict[str, Any]:
    """The run's JSON, once it settles when ``wait`` (returns as it is after ``timeout``).

    Without ``wait``, once the orchestrator has handled what this request fed it, so the answer
    to ``resume`` says ``running``, not still ``paused``.
    """
    from ..engine.api import get_orchestrator

    get_orchestrator().barrier()
    if wait:
        with contextlib.suppress(TimeoutError):  # past the timeout: the run as it is now
            run.wait(timeout)
    return run.to_dict()


def _start(
    workflow: Any,
    params: dict[str, Any] | None,
    *,
    wait: bool,
    timeout: float | None,
    no_cache: bool,
) -> dict[str, Any]:
    from ..engine.api import start_run

    run = start_run(workflow, params, wait=False, no_cache=no_cache)
    return _wait(run, wait, timeout)


def _list_runs(limit: int | None, workflow: str | None, status: str | None) -> list[dict[str, Any]]:
    from ..engine.api import runs

    out: list[dict[str, Any]] = []
    if limit == 0:
        return out
    for run in runs():
        entry = run.summary_dict()
        if workflow and entry["workflow"] != workflow:
            continue
        if status and entry["status"] != status:
            continue
        out.append(entry)
        if limit is not None and len(out) >= limit:
            break
    return out


def _get(run_id: str) -> dict[str, Any]:
    from ..engine.api import get_run

    return get_run(run_id).to_dict()


def _trace(run_id: str, fmt: str) -> Any:
    from ..engine.api import get_run

    return get_run(run_id).trace(format=fmt)


def _graph(run_id: str) -> dict[str, Any]:
    """The run's graph with its task states and open inquiries (the JupyterLab runs panel)."""
    from ..engine.api import get_run
    from ..jupyter.display import run_graph_data

    run = get_run(run_id)
    data = run_graph_data(run)
    if data is None:
        raise web.HTTPError(404, f"run {run.run_id}: its workflow's graph cannot be rebuilt")
    snapshot = run.live()
    return {**data, "inquiries": snapshot.get("inquiries") or []}


def _control(run_id: str, action: str, *, wait: bool, timeout: float | None) -> dict[str, Any]:
    from ..engine.api import get_run, resume

    run = get_run(run_id)
    if action == "resume":
        run = resume(run.run_id, wait=False)
    elif action == "pause":
        run.pause()
    else:
        run.cancel()
    return _wait(run, wait, timeout)


def _respond(
    run_id: str, task: str, data: Any, *, wait: bool, timeout: float | None
) -> dict[str, Any]:
    from ..engine.api import get_run, respond

    run = get_run(run_id)
    try:
        respond(run.run_id, task, data)
    except InquiryError as exc:
        _refine_respond_error(run, task, exc)
        raise
    return _wait(run, wait, timeout)


def _refine_respond_error(run: Any, task: str, exc: InquiryError) -> None:
    """404 for a task the run does not have, 409 for one not waiting for an answer now.

    The engine raises :class:`InquiryError` for every refused answer; only one that does not
    fit the inquiry's schema stays a 400 (the client's body is wrong, not the moment).
    """
    records = run.tasks
    if task not in _task_names(run) and not any(t["task"] == task for t in records):
        raise web.HTTPError(404, f"run {run.run_id} has no task {task!r}") from None
    waiting = [t for t in records if t["task"] == task and t["status"] == "waiting"]
    if not waiting:
        statuses = sorted({t["status"] for t in records if t["task"] == task}) or ["not started"]
        raise web.HTTPError(
            409,
            f"run {run.run_id}: task {task!r} is not waiting for a response "
            f"({', '.join(statuses)})",
        ) from None
    if "already has a response" in str(exc):  # recorded offline, not yet applied by a resume
        raise web.HTTPError(409, _one_line(str(exc))) from None


def _task_names(run: Any) -> set[str]:
    """Every task name of the run's workflow (group members included), from its definition."""
    from ..engine.api import get_orchestrator

    record = get_orchestrator().store.get_run(run.run_id) or {}
    text = record.get("definition") or ""
    try:  # JSON (Workflow.definition_json) now, YAML in runs stored by earlier versions
        document = json.loads(text) if text.lstrip().startswith("{") else yaml.safe_load(text)
    except (ValueError, yaml.YAMLError):
        return set()
    names: set[str] = set()
    todo = [document.get("tasks") if isinstance(document, dict) else None]
    while todo:
        tasks = todo.pop()
        entries = tasks.items() if isinstance(tasks, dict) else []
        if isinstance(tasks, list):  # the list form: [{name: ..., ...}]
            entries = [(t.get("name"), t) for t in tasks if isinstance(t, dict)]
        for name, spec in entries:
            if isinstance(name, str):
                names.add(name)
            if isinstance(spec, dict):
                todo.append(spec.get("tasks"))
    return names


# -- workflow discovery -------------------------------------------------------------------------
def _looks_like_workflow(path: Path) -> bool:
    """A mapping with ``tasks`` at the top: a workflow document, valid or not.

    Parsed by the engine's bounded loader (nesting, aliases, size), never ``yaml.safe_load``.
    """
    from ..spec.loader import parse_document

    try:
        if path.stat().st_size > MAX_WORKFLOW_FILE_BYTES:
            return False
        data, _ = parse_document(path.read_text(encoding="utf-8"), file=path.name)
    except (OSError, UnicodeDecodeError, SpecError):
        # Broken YAML may still be a workflow being written: show it if it mentions tasks.
        try:
            return (
                "tasks:"
                in path.read_text(encoding="utf-8", errors="replace")[:MAX_WORKFLOW_FILE_BYTES]
            )
        except OSError:
            return False
    return isinstance(data, dict) and "tasks" in data


def _describe(wf: Any, source: str, path: str | None) -> dict[str, Any]:
    return {
        "name": wf.name,
        "description": wf.description,
        "parameters": wf.parameters,
        "schedule": wf.spec.schedule,
        "tasks": list(wf.spec.tasks),
        "source": source,
        "path": path,
        "error": None,
    }


def discover_workflows(root_dir: Path) -> list[dict[str, Any]]:
    """Workflows registered in the server process, then workflow files in ``root_dir``.

    Files are ``*.yaml``, ``*.yml`` and ``*.json`` (any case: ``sources``) directly in ``root_dir`` (not in sub-folders,
    not hidden) whose top level has ``tasks``. A file that does not load is listed with its
    one-line ``error`` and no other details; one that loads but does not validate (an unknown
    task in ``on_success``, an action that does not resolve) keeps its details, with ``error``.
    """
    from ..definition import load

    out = []
    seen: set[Path] = set()
    live: set[Path] = set()
    for wf in registered_workflows().values():
        path = wf.path.resolve() if wf.path else None
        if path is not None:
            seen.add(path)
        out.append(_describe(wf, "registered", _relative(path, root_dir)))
    for path in _workflow_files(root_dir):
        if path.resolve() in seen:
            continue
        rel = path.name
        try:
            stamp = path.stat()
        except OSError:
            continue
        key = (path.resolve(), str(root_dir))
        live.add(key[0])
        version = (stamp.st_mtime_ns, stamp.st_size)
        cached = _DISCOVERED.get(key)
        if cached is not None and cached[0] == version:
            out.append(dict(cached[1]))  # unchanged since it was validated: no work at all
            continue
        out.append(dict(_discover_bounded(key, version, path, rel, root_dir, load)))
    with _DISCOVERY_LOCK:
        for key in [k for k in _DISCOVERED if k[1] == str(root_dir) and k[0] not in live]:
            _DISCOVERED.pop(key, None)
    return out


#: ``(file, root) -> ((mtime_ns, size), entry)``: discovery validates a file once per version.
_DISCOVERED: dict[tuple[Path, str], tuple[tuple[int, int], dict[str, Any]]] = {}
#: Files being loaded now, ``(file, root) -> ((mtime_ns, size), done)``: one thread per version.
_LOADING: dict[tuple[Path, str], tuple[tuple[int, int], Any]] = {}
_DISCOVERY_LOCK = threading.Lock()


def _discover_bounded(
    key: tuple[Path, str],
    version: tuple[int, int],
    path: Path,
    rel: str,
    root_dir: Path,
    load: Callable[..., Any],
) -> dict[str, Any]:
    """:func:`_discover_file` on its own thread, waited for at most ``discovery_seconds``.

    A file that takes longer is listed with a one-line error this time; its thread goes on (it
    is bounded step by step by the other limits) and caches the real entry for the next
    listing. A request never waits longer than the limit for one file, and a file that is
    still loading is not loaded a second time by the next request.
    """
    with _DISCOVERY_LOCK:
        loading = _LOADING.get(key)
        if loading is None or loading[0] != version:
            done = threading.Event()
            loading = (version, done)
            _LOADING[key] = loading

            def work() -> None:
                try:
                    entry = _discover_file(path, rel, root_dir, load)
                except BaseException as exc:  # listed, never raised into a thread
                    entry = _broken(path, rel, f"{rel}: internal error: {describe(exc)}")
                with _DISCOVERY_LOCK:
                    _DISCOVERED[key] = (version, entry)
                    if _LOADING.get(key) is loading:
                        del _LOADING[key]
                done.set()

            threading.Thread(target=work, name=f"jw-discover-{rel}", daemon=True).start()
    if loading[1].wait(LIMITS.discovery_seconds):
        with _DISCOVERY_LOCK:
            cached = _DISCOVERED.get(key)
        if cached is not None and cached[0] == version:
            return cached[1]
    return _broken(
        path,
        rel,
        f"{rel}: still loading after {LIMITS.discovery_seconds:g} s; listed when it is done "
        + hint("discovery_seconds"),
    )


def _broken(path: Path, rel: str, error: str) -> dict[str, Any]:
    """The entry of a file that could not be listed: its name and one-line ``error``."""
    return {
        "name": path.stem,
        "description": None,
        "parameters": None,
        "schedule": None,
        "tasks": None,
        "source": "file",
        "path": rel,
        "error": error,
    }


def _discover_file(
    path: Path, rel: str, root_dir: Path, load: Callable[..., Any]
) -> dict[str, Any]:
    """One file's entry for ``GET workflows``: its details, or its one-line error.

    Loading and validating are bounded (document size, nesting, aliases, schedule search; no
    template is evaluated), so one bad file costs at most a second or so, once per version, and
    is listed with its error while every other file and route keeps working.
    """

    def broken(error: str) -> dict[str, Any]:
        return _broken(path, rel, error)

    if path.stat().st_size > LIMITS.discovery_file_bytes:
        return broken(
            f"{rel}: larger than {LIMITS.discovery_file_bytes:,} bytes "
            + hint("discovery_file_bytes")
        )
    try:
        wf = load(path)
    except WorkflowError as exc:
        return broken(_relative_message(exc, root_dir))
    except Exception as exc:  # a bug must not take the listing down: list the file with it
        return broken(f"{rel}: internal error: {_one_line(f'{type(exc).__name__}: {exc}')}")
    entry = _describe(wf, "file", rel)
    try:
        # What `validate` (and a run) refuses: unknown targets, unresolved actions, ...
        wf.validate()
    except WorkflowError as exc:
        entry["error"] = _relative_message(exc, root_dir)
    except Exception as exc:
        entry["error"] = f"{rel}: internal error: {_one_line(f'{type(exc).__name__}: {exc}')}"
    return entry


def _relative_message(exc: BaseException, root_dir: Path) -> str:
    return _one_line(str(exc)).replace(f"{root_dir.resolve()}{os.sep}", "")


def _relative(path: Path | None, root_dir: Path) -> str | None:
    if path is None:
        return None
    try:
        return str(path.relative_to(root_dir.resolve()))
    except ValueError:
        return str(path)


def _workflow_files(root_dir: Path) -> list[Path]:
    return [p for p in workflow_files(root_dir) if _looks_like_workflow(p)]


def find_workflow(name: str, root_dir: Path) -> Any:
    """The workflow ``name``: registered, else a file in ``root_dir`` that defines it, else None.

    ``name`` may also be a file name in ``root_dir`` (``hello.yaml``). Raises
    :class:`SpecError` when the file that would define it is invalid.
    """
    from ..definition import load

    found = get_workflow(name)
    if found is not None:
        return found
    if (
        is_workflow_file_name(name)
        and "/" not in name
        and "\\" not in name
        and not name.startswith(".")
    ):
        path = root_dir / name
        if path.is_file():
            return load(path)
    broken: SpecError | None = None
    for path in _workflow_files(root_dir):
        try:
            wf = load(path)
        except SpecError as exc:
            if path.stem == name:
                broken = exc
            continue
        if wf.name == name:
            return wf
    if broken is not None:
        raise broken
    return None


# -- handlers -----------------------------------------------------------------------------------
class IndexHandler(_WorkflowsHandler):
    """``GET /workflows/api/``: what this API is and where its endpoints are."""

    @web.authenticated
    @authorized
    async def get(self) -> None:
        from .._version import __version__

        self.send(
            {
                "name": "jupyter_workflows",
                "version": __version__,
                "dashboard_proxy": self._dashboard_proxy(),
                "dashboard": self._dashboard(),
                "endpoints": [
                    "GET workflows",
                    "POST workflows/{name}/runs",
                    "GET runs",
                    "GET runs/{id}",
                    "GET runs/{id}/trace",
                    "GET runs/{id}/graph",
                    "POST runs/{id}/pause",
                    "POST runs/{id}/resume",
                    "POST runs/{id}/cancel",
                    "POST runs/{id}/tasks/{task}/respond",
                    "GET schedules",
                    "GET objects",
                    "GET objects/{id}/state",
                    "POST objects/{id}/state",
                    "GET hooks",
                    "POST hooks/{name}",
                ],
            }
        )

    def _dashboard_proxy(self) -> str | None:
        """``{base_url}proxy/`` when jupyter-server-proxy is enabled in this server: a Dask
        dashboard on this machine's loopback (``http://127.0.0.1:PORT/status``) is then
        reachable from any browser as ``{base_url}proxy/PORT/status``, through Jupyter's auth."""
        app = self.settings.get("serverapp")
        manager = getattr(app, "extension_manager", None)
        package = (getattr(manager, "extensions", None) or {}).get("jupyter_server_proxy")
        if package is None or not getattr(package, "enabled", False):
            return None
        from jupyter_server.utils import url_path_join

        return str(url_path_join(self.settings.get("base_url", "/") or "/", "proxy/"))

    def _dashboard(self) -> str | None:
        """The dashboard of the Dask cluster this server's runs use, once it is started."""
        from ..engine import api

        orchestrator = api._orchestrator
        executor = getattr(orchestrator, "_executor", None) if orchestrator else None
        try:
            return str(executor.dashboard_link) if executor and executor.dashboard_link else None
        except Exception:  # a cluster going away: no link, not a 500
            return None


class WorkflowsHandler(_WorkflowsHandler):
    """``GET workflows``: registered workflows and workflow files in the root folder."""

    @web.authenticated
    @authorized
    async def get(self) -> None:
        self.send(await self.call(discover_workflows, self.root_dir))


class WorkflowRunsHandler(_WorkflowsHandler):
    """``POST workflows/{name}/runs``: start a run; the body is its parameters."""

    @web.authenticated
    @authorized
    async def post(self, name: str) -> None:
        params = self.json_body()
        if params is not None and not isinstance(params, dict):
            raise web.HTTPError(400, "the request body must be a JSON object of parameters")
        wait, timeout, no_cache = self.flag("wait"), self.number("timeout"), self.flag("no_cache")
        workflow = await self.call(find_workflow, name, self.root_dir)
        if workflow is None:
            raise web.HTTPError(
                404,
                f"no workflow {name!r} (registered, or a workflow file in the server's root folder)",
            )
        run = await self.call(
            _start, workflow, params, wait=wait, timeout=timeout, no_cache=no_cache
        )
        self.set_header(
            "Location", f"{self.base_url.rstrip('/')}/workflows/api/runs/{run['run_id']}"
        )
        self.send(run, status=201)


class RunsHandler(_WorkflowsHandler):
    """``GET runs``: summaries, newest first (``?limit=N&workflow=NAME&status=STATUS``)."""

    @web.authenticated
    @authorized
    async def get(self) -> None:
        limit = self.whole_number("limit")
        workflow = self.get_query_argument("workflow", None) or None
        status = self.get_query_argument("status", None) or None
        self.send(await self.call(_list_runs, limit, workflow, status))


class RunHandler(_WorkflowsHandler):
    """``GET runs/{id}``: the run as ``jupyter-workflows run --json`` prints it."""

    @web.authenticated
    @authorized
    async def get(self, run_id: str) -> None:
        self.send(await self.call(_get, run_id))


class TraceHandler(_WorkflowsHandler):
    """``GET runs/{id}/trace``: the trace, ``?format=json`` (default) or ``chrome``."""

    @web.authenticated
    @authorized
    async def get(self, run_id: str) -> None:
        fmt = self.get_query_argument("format", "json") or "json"
        if fmt not in ("json", "chrome"):
            raise web.HTTPError(400, f"format must be json or chrome, not {fmt!r}")
        self.send(await self.call(_trace, run_id, fmt))


class GraphHandler(_WorkflowsHandler):
    """``GET runs/{id}/graph``: graph, task states, run, open inquiries (GRAPH_MIME + inquiries)."""

    @web.authenticated
    @authorized
    async def get(self, run_id: str) -> None:
        self.send(await self.call(_graph, run_id))


class RunControlHandler(_WorkflowsHandler):
    """``POST runs/{id}/pause|resume|cancel``: returns the run (``?wait=true``: once it settles)."""

    @web.authenticated
    @authorized
    async def post(self, run_id: str, action: str) -> None:
        wait, timeout = self.flag("wait"), self.number("timeout")
        self.send(await self.call(_control, run_id, action, wait=wait, timeout=timeout))


class RespondHandler(_WorkflowsHandler):
    """``POST runs/{id}/tasks/{task}/respond``: the body is the answer to the inquiry."""

    @web.authenticated
    @authorized
    async def post(self, run_id: str, task: str) -> None:
        data = self.json_body(required=True)
        wait, timeout = self.flag("wait"), self.number("timeout")
        self.send(await self.call(_respond, run_id, task, data, wait=wait, timeout=timeout))


class SchedulesHandler(_WorkflowsHandler):
    """``GET schedules``: what ``jupyter-workflows serve`` runs on a schedule (``[]`` elsewhere)."""

    @web.authenticated
    @authorized
    async def get(self) -> None:
        scheduler = self.settings.get("jupyter_workflows_scheduler")
        self.send(scheduler.snapshot() if scheduler is not None else [])


class NotFoundHandler(_WorkflowsHandler):
    """Anything else under the API prefix: a JSON 404, after authentication like every route."""

    @web.authenticated
    async def get(self, *args: str) -> None:
        raise web.HTTPError(404, f"no endpoint {self.request.method} {self.request.path}")

    post = put = patch = delete = get


def _extra_handlers(base: str, seg: str) -> list[tuple[str, type[web.RequestHandler]]]:
    """Routes of lifecycle objects and webhooks (their own modules)."""
    from .editor import editor_handlers
    from .hooks import hook_handlers
    from .lifecycle_handlers import lifecycle_handlers

    return [*lifecycle_handlers(base, seg), *hook_handlers(base, seg), *editor_handlers(base)]


def default_handlers(base: str) -> list[tuple[str, type[web.RequestHandler]]]:
    """The routes, under ``base`` (``{base_url}/workflows/api``)."""
    base = base.rstrip("/")
    seg = r"([^/]+)"
    return [
        (rf"{base}/?", IndexHandler),
        (rf"{base}/workflows/?", WorkflowsHandler),
        (rf"{base}/workflows/{seg}/runs/?", WorkflowRunsHandler),
        (rf"{base}/runs/?", RunsHandler),
        (rf"{base}/runs/{seg}/?", RunHandler),
        (rf"{base}/runs/{seg}/trace/?", TraceHandler),
        (rf"{base}/runs/{seg}/graph/?", GraphHandler),
        (rf"{base}/runs/{seg}/(pause|resume|cancel)/?", RunControlHandler),
        (rf"{base}/runs/{seg}/tasks/{seg}/respond/?", RespondHandler),
        (rf"{base}/schedules/?", SchedulesHandler),
        *_extra_handlers(base, seg),
        (rf"{base}/.*", NotFoundHandler),
    ]
