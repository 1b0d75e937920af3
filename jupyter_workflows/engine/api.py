"""The functions every surface calls: configure, start, list, get, resume, respond.

The magics, the widget, the CLI and the REST API all come through here, to one process-wide
:class:`Orchestrator` built on first use from the configuration (``jw.configure``, then the
``JUPYTER_WORKFLOWS_STORE``/``JUPYTER_WORKFLOWS_SCHEDULER`` environment, then the defaults: a
SQLite store at ``./.jupyter_workflows/state.db`` and an embedded Dask LocalCluster).
"""

from __future__ import annotations

import atexit
import os
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..exceptions import RunNotFound, RunStateError, WorkflowError, first_line
from ..executors.base import MAIN_GUARD
from .run import REQUEST_SECONDS, TERMINAL, Run, effective_status, owner_alive

if TYPE_CHECKING:  # pragma: no cover
    from ..definition import Workflow
    from ..executors.base import Executor
    from ..store.base import RunStore
    from .orchestrator import Orchestrator

__all__ = ["configure", "get_orchestrator", "get_run", "respond", "resume", "runs", "start_run"]

DEFAULT_STORE = os.path.join(".jupyter_workflows", "state.db")

_lock = threading.RLock()
_config: dict[str, Any] = {}
_orchestrator: Orchestrator | None = None


class _Unset:
    """The default of :func:`configure`'s arguments: "not given", unlike an explicit None."""

    def __repr__(self) -> str:
        return "<unset>"


_UNSET: Any = _Unset()


def configure(
    store: str | os.PathLike[str] | RunStore | None = _UNSET,
    scheduler: Any = _UNSET,
    *,
    executor: Executor | str | None = _UNSET,
    artifacts: str | os.PathLike[str] | None = _UNSET,
    artifact_threshold: int | None = _UNSET,
    pack_config: dict[str, dict[str, Any]] | None = _UNSET,
) -> None:
    """Choose where runs are stored and where tasks run.

    Parameters
    ----------
    store:
        A path to a SQLite store, ``":memory:"``, or a :class:`RunStore`; None goes back to the
        default (``JUPYTER_WORKFLOWS_STORE``, else ``./.jupyter_workflows/state.db``).
    scheduler:
        A Dask scheduler address, a ``distributed.Client``, or None for the default
        (``JUPYTER_WORKFLOWS_SCHEDULER``, else the embedded cluster).
    executor:
        An :class:`Executor` instance, ``"inline"`` to run tasks in threads of this process
        (small runs and tests; no Dask), or None for the default (Dask).
    artifacts:
        Where workers write results above ``artifact_threshold`` bytes: a folder or any fsspec
        URL (``file:///shared/jw``, ``s3://bucket/jw``, ``memory://jw`` for tests); a remote
        cluster needs storage its workers and this process share. None goes back to the
        default (``JUPYTER_WORKFLOWS_ARTIFACTS``, else the folder beside the SQLite store).
    artifact_threshold:
        Size in bytes (of the pickled result) above which a result stays with the workers and
        the engine keeps a reference; None goes back to the default
        (``JUPYTER_WORKFLOWS_ARTIFACT_THRESHOLD``, else 1 MiB).
    pack_config:
        attune packs' configuration (``config.*``/``pack.config.*`` in attune workflows), as
        ``{PACK: {key: value}}`` over the defaults of each pack's ``pack.yaml``; None forgets it.
        It does not stop the orchestrator.

    An argument not given keeps its current setting. Changing the configuration stops the
    current orchestrator; runs in flight in this process should be finished first.
    """
    global _orchestrator
    if pack_config is not _UNSET:
        from ..spec.attune import set_pack_config

        set_pack_config(pack_config)
        if all(v is _UNSET for v in (store, scheduler, executor, artifacts, artifact_threshold)):
            return
    if artifacts is not _UNSET and artifacts is not None:
        artifacts = _artifact_location(artifacts, "artifacts")
    if artifact_threshold is not _UNSET and artifact_threshold is not None:
        artifact_threshold = _threshold(artifact_threshold, "artifact_threshold")
    with _lock:
        for name, value in (
            ("store", store),
            ("scheduler", scheduler),
            ("executor", executor),
            ("artifacts", artifacts),
            ("artifact_threshold", artifact_threshold),
        ):
            if value is _UNSET:
                continue
            if value is None:
                _config.pop(name, None)
            else:
                _config[name] = value
        if scheduler is not _UNSET and executor is _UNSET:
            # A scheduler (or the embedded cluster) means Dask: it replaces an executor chosen
            # earlier, unless this call chooses one too.
            _config.pop("executor", None)
        if _orchestrator is not None:
            old, _orchestrator = _orchestrator, None
            old.close()


def reset() -> None:
    """Forget the configuration and stop the orchestrator (tests)."""
    global _orchestrator
    from ..spec.attune import set_pack_config

    set_pack_config(None)
    with _lock:
        _config.clear()
        if _orchestrator is not None:
            old, _orchestrator = _orchestrator, None
            old.close()


def _open_store(value: Any) -> RunStore:
    from ..store.base import RunStore

    if isinstance(value, RunStore):
        return value
    if value is None:
        value = os.environ.get("JUPYTER_WORKFLOWS_STORE") or DEFAULT_STORE
    if str(value) == ":memory:":
        from ..store.memory import MemoryStore

        return MemoryStore()
    from ..store.sqlite import SqliteStore

    return SqliteStore(Path(value))


def _executor_factory():
    choice = _config.get("executor") or os.environ.get("JUPYTER_WORKFLOWS_EXECUTOR") or None
    scheduler = _config.get("scheduler") or os.environ.get("JUPYTER_WORKFLOWS_SCHEDULER") or None

    def build() -> Executor:
        if choice is not None and not isinstance(choice, str):
            return choice
        if choice == "inline":
            from ..executors.inline import InlineExecutor

            return InlineExecutor()
        from ..executors.dask import DaskExecutor

        return DaskExecutor(scheduler)

    # Known before the executor is built (the Dask one says so once it exists).
    if choice == "inline":
        build.reports_starts = True
    elif choice is not None and not isinstance(choice, str):
        build.reports_starts = bool(getattr(choice, "reports_starts", False))
    return build


def _artifact_location(value: Any, what: str) -> str:
    """``value`` as an fsspec URL whose file system is available here; one-line StoreError."""
    from ..exceptions import StoreError
    from ..store.artifacts import location_url

    try:
        url = location_url(value)
        import fsspec

        fsspec.core.url_to_fs(url)
    except Exception as exc:
        detail = first_line(exc)
        raise StoreError(f"{what} {str(value)!r}: not a usable location ({detail})") from None
    return url


def _threshold(value: Any, what: str) -> int:
    from ..exceptions import StoreError

    try:
        number = int(value)
        if isinstance(value, bool) or number < 0 or number != float(value):
            raise ValueError
    except (TypeError, ValueError):
        raise StoreError(f"{what} must be a whole number of bytes >= 0, not {value!r}") from None
    return number


def get_orchestrator() -> Orchestrator:
    """The process-wide orchestrator (built on first use)."""
    global _orchestrator
    with _lock:
        if _orchestrator is None:
            from .orchestrator import Orchestrator

            orchestrator = Orchestrator(_open_store(_config.get("store")), _executor_factory())
            try:
                artifacts = _config.get("artifacts")
                env = os.environ.get("JUPYTER_WORKFLOWS_ARTIFACTS")
                if artifacts is None and env:
                    artifacts = _artifact_location(env, "JUPYTER_WORKFLOWS_ARTIFACTS")
                if artifacts is not None:
                    orchestrator.artifacts = artifacts
                threshold = _config.get("artifact_threshold")
                env = os.environ.get("JUPYTER_WORKFLOWS_ARTIFACT_THRESHOLD")
                if threshold is None and env:
                    threshold = _threshold(env, "JUPYTER_WORKFLOWS_ARTIFACT_THRESHOLD")
                orchestrator.artifact_threshold = threshold
            except BaseException:
                orchestrator.close()
                raise
            _orchestrator = orchestrator
        return _orchestrator


def current_store() -> RunStore:
    return get_orchestrator().store


@atexit.register
def _shutdown() -> None:  # pragma: no cover - interpreter exit
    global _orchestrator
    if _orchestrator is not None:
        try:
            _orchestrator.close()
        except Exception:
            pass
        _orchestrator = None


def start_run(
    workflow: Workflow,
    parameters: dict[str, Any] | None = None,
    *,
    wait: bool = True,
    no_cache: bool = False,
    progress: bool = False,
    timeout: float | None = None,
) -> Run:
    """Validate, create and start a run; with ``wait``, block until it is quiescent.

    Raises
    ------
    SpecError, ParameterError, ActionNotFound
        Before any run exists.
    """
    from ..sources import register_workflow
    from ..spec.params import resolve_parameters

    _refuse_while_a_process_imports_main()
    workflow.validate()
    params = resolve_parameters(workflow.spec, parameters)
    if workflow.path is None:
        register_workflow(workflow)
    orch = get_orchestrator()
    run_id = orch.start(workflow, params, no_cache=no_cache)
    run = Run(run_id, orch)
    if progress:
        from .progress import attach_progress

        attach_progress(orch, run_id)
    if wait:
        run.wait(timeout)
    return run


def _refuse_while_a_process_imports_main() -> None:
    """Raise :class:`WorkflowError` in a process that is still importing the parent's script.

    Dask starts its worker processes with ``spawn``: each imports the parent's ``__main__``
    first. A script that starts a run at its top level would start it again in every worker
    process, which would start a cluster of its own, and so on: the parent waited forever for
    workers busy running the script (Dask alone fails with "Nanny failed to start"). Refused
    here, the worker fails at once and the parent's run fails with :data:`MAIN_GUARD`.
    """
    import multiprocessing

    if getattr(multiprocessing.current_process(), "_inheriting", False):
        raise WorkflowError(
            "a workflow run was started while a new process was importing the script "
            f"that started it: {MAIN_GUARD}"
        )


def runs(limit: int | None = None) -> list[Run]:
    """Runs in the store, newest first."""
    orch = get_orchestrator()
    return [Run(r["run_id"], orch) for r in orch.store.list_runs(limit)]


def get_run(run_id: str) -> Run:
    """The run ``run_id`` (a unique prefix of at least 6 characters works too)."""
    orch = get_orchestrator()
    if not isinstance(run_id, str) or not run_id.strip():
        raise RunNotFound("a run id is a non-empty string")
    run_id = run_id.strip()
    if run_id in orch.runs or orch.store.get_run(run_id) is not None:
        return Run(run_id, orch)
    if len(run_id) >= 6 and all(c in "0123456789abcdef" for c in run_id.lower()):
        matches = [
            r["run_id"] for r in orch.store.list_runs() if r["run_id"].startswith(run_id.lower())
        ]
        if len(matches) == 1:
            return Run(matches[0], orch)
        if len(matches) > 1:
            raise RunNotFound(f"run id prefix {run_id!r} is ambiguous ({len(matches)} runs)")
    raise RunNotFound(f"no run {run_id!r} in the store ({_store_name(orch)})")


def _store_name(orch: Orchestrator) -> str:
    return str(getattr(orch.store, "path", type(orch.store).__name__))


def resume(
    run_id: str,
    *,
    wait: bool = True,
    no_cache: bool = False,
    timeout: float | None = None,
    retry_failed: bool = False,
) -> Run:
    """Continue a paused or interrupted run; an ended run is returned as it is.

    With ``retry_failed``, a failed run is reopened instead: the tasks that failed it run again
    (fix their code first), and what fail-fast kept from starting starts now.

    Succeeded tasks are not run again (their results come from the store); tasks that were in
    flight run again.
    """
    _refuse_while_a_process_imports_main()
    run = get_run(run_id)
    orch = get_orchestrator()
    run_id = run.run_id
    active = orch.runs.get(run_id)
    if active is not None:
        if active.state.status == "paused":
            orch.resume_paused(run_id)
        elif retry_failed and active.state.status == "failed":
            orch.retry_failed(run_id)
        _settle(orch, run, wait, timeout)
        return run
    rec = orch.store.get_run(run_id)
    assert rec is not None
    status = effective_status(dict(rec))
    if status in TERMINAL and not (retry_failed and status == "failed"):
        return run
    if owner_alive(dict(rec)):
        # Another live process drives it: ask it.
        deadline = None if timeout is None else time.monotonic() + timeout
        if status == "paused":
            orch.store.add_request(run_id, "resume")
            # The owner takes the request at its next heartbeat; until then the run still shows
            # ``paused``, which ``wait`` would take for the answer. Without ``wait``, return
            # once it is applied too (or after a few heartbeats), so ``status`` reflects it.
            stop = deadline if wait else time.monotonic() + REQUEST_SECONDS
            while run.status == "paused" and owner_alive(dict(orch.store.get_run(run_id) or {})):
                if stop is not None and time.monotonic() > stop:
                    if not wait:
                        break
                    raise TimeoutError(f"run {run_id} still paused after {timeout}s")
                time.sleep(0.05)
        if wait:
            run.wait(None if deadline is None else max(0.0, deadline - time.monotonic()))
        return run
    workflow = rebuild_workflow(dict(rec))
    events = orch.store.load_events(run_id)
    orch.adopt(workflow, dict(rec), events, no_cache=no_cache)
    if status == "failed":
        orch.retry_failed(run_id)
    if rec.get("status") == "paused":
        orch.resume_paused(run_id)
    _settle(orch, run, wait, timeout)
    return run


def _settle(orch: Orchestrator, run: Run, wait: bool, timeout: float | None) -> None:
    """Wait for the run (``wait``), or at least until the requests fed so far are applied, so
    ``run.status`` right after reflects them."""
    if wait:
        run.wait(timeout)
    else:
        orch.barrier()


def rebuild_workflow(rec: dict[str, Any]) -> Workflow:
    """The workflow of a stored run: its YAML, its folder, and its kernel-defined code."""
    from ..actions.registry import task as register_task
    from ..definition import Workflow, load

    code = rec.get("code")
    if code:
        import cloudpickle

        try:
            functions = cloudpickle.loads(code)
        except Exception as exc:
            raise WorkflowError(
                f"run {rec['run_id']}: cannot load its task code ({type(exc).__name__}: {exc})"
            ) from None
        for name, fn in functions.items():
            register_task(name=name)(fn)
    base_dir = rec.get("base_dir") or os.getcwd()
    wf = _stored_definition(rec["definition"]) or load(rec["definition"])
    return Workflow(wf.spec, source_map=wf.source_map, base_dir=base_dir, source=rec["definition"])


def _stored_definition(text: str) -> Workflow | None:
    """A stored run's definition (``to_yaml()`` of a valid spec) parsed by libyaml, or None.

    The positional loader keeps line and column of every node for errors in what a user wrote;
    a stored definition was valid when the run started, and that loader takes 3 s on a
    10,000-task workflow (1 s this way), on every resume. Anything unexpected: None, and the
    caller uses :func:`load`.
    """
    import yaml

    from ..definition import Workflow
    from ..spec.loader import SourceMap, _normalise_tasks
    from ..spec.models import WorkflowSpec

    loader = getattr(yaml, "CSafeLoader", None)
    try:
        if text.lstrip().startswith("{"):
            import json

            raw = json.loads(text)  # what runs store now (Workflow.definition_json)
        elif loader is not None:
            raw = yaml.load(text, Loader=loader)  # runs stored by earlier versions
        else:
            return None
        data = _normalise_tasks(raw, (), SourceMap())
        return Workflow(WorkflowSpec.model_validate(data), source=text)
    except Exception:
        return None


def respond(run_id: str, task: str, data: Any) -> None:
    """Answer an inquiry (schema-checked); continues the run when its orchestrator is alive."""
    from .orchestrator import check_response

    run = get_run(run_id)
    orch = get_orchestrator()
    if run.run_id in orch.runs:
        orch.respond(run.run_id, task, data)
        return
    records = orch.store.get_tasks(run.run_id)
    waiting = [t for t in records if t.get("task") == task and t.get("status") == "waiting"]
    if not waiting:
        from ..exceptions import InquiryError

        raise InquiryError(f"run {run.run_id}: task {task!r} is not waiting for a response")
    record = waiting[-1]
    inquiry = (record.get("input") or {}).get("_inquiry") or {}
    check_response(inquiry.get("schema"), data, task)
    status = run.status
    if status in TERMINAL:
        raise RunStateError(f"run {run.run_id} already ended ({status})")
    if owner_alive(dict(orch.store.get_run(run.run_id) or {})):
        orch.store.add_request(
            run.run_id, "respond", {"exec_id": record["exec_id"], "task": task, "data": data}
        )
    else:
        # No orchestrator alive: record the answer in the log so `resume` continues from it.
        import time

        from .events import InquiryResponded

        timeout = _inquiry_timeout(orch.store.get_run(run.run_id) or {}, task)
        began = record.get("started_at")
        if timeout is not None and began is not None and time.time() > float(began) + timeout:
            # Its timer died with its process; the inquiry is over all the same.
            from ..exceptions import InquiryError

            raise InquiryError(
                f"run {run.run_id}: the inquiry of task {task!r} timed out {timeout:g}s after it "
                "opened; the response is refused (`resume` ends the task as timed out)"
            )

        answered = any(
            e.get("type") == InquiryResponded.type and e.get("exec_id") == record["exec_id"]
            for e in orch.store.load_events(run.run_id)
        )
        if answered:
            # The projection shows it waiting until a resume replays the first answer; a second
            # one would be ignored then, so refuse it now rather than claim it was recorded.
            from ..exceptions import InquiryError

            raise InquiryError(
                f"run {run.run_id}: task {task!r} already has a response; `resume` continues the run"
            )
        orch.store.append_events(
            run.run_id,
            [InquiryResponded(time.time(), exec_id=record["exec_id"], data=data).to_dict()],
        )
        orch.store.commit()


def _inquiry_timeout(record: Mapping[str, Any], task: str) -> float | None:
    """The ``timeout`` of ``task`` in a stored run's definition, or None (none, or unreadable)."""
    text = record.get("definition")
    if not text:
        return None
    try:
        from ..definition import load

        timeout = load(text).compiled.tasks[task].timeout
    except Exception:  # an old or odd definition: no timeout is known, as before
        return None
    return float(timeout) if timeout else None
