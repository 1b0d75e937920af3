"""The Dask executor: task attempts run as Dask futures on a distributed cluster.

This is the only module of the project that imports :mod:`distributed`; everything else talks to
the :class:`~jupyter_workflows.executors.base.Executor` interface.

Where it runs
    ``DaskExecutor()`` starts an embedded :class:`~distributed.LocalCluster` on first use: worker
    *processes* on ``127.0.0.1`` (scheduler, workers and dashboard bind to loopback only), one per
    core, never fewer than two threads in all (on one core: one worker with two threads), plus
    one single-threaded worker per GPU :func:`detect_gpus` finds, declaring ``GPU=1`` and seeing
    only its device. The embedded cluster serves every ``queue`` (queues route work between the
    machines of a real cluster; on one machine there is nowhere else to go).
    ``DaskExecutor("tcp://host:8786")`` connects to a running scheduler, ``DaskExecutor(client)``
    borrows a :class:`~distributed.Client` and never closes it.

Threads, and why
    ``submit`` only queues: it may be called from an outcome callback, from the orchestrator's
    lock, from a notebook cell, and must never block. Two daemon threads do the work:

    * the *submitter* drains the queue in batches and hands each batch to Dask with one
      ``client.map`` call per (resources, priority) group: one graph update for many tasks is what
      lets a burst of submissions (a fan-out, ``with_items``) approach raw ``client.map`` rates.
      It also parks submissions whose resources no worker offers (see below).
    * the *drain* thread receives finished futures (``Future.add_done_callback`` only enqueues,
      so nothing we do can raise into Dask or stall its callback thread) and fetches their
      envelopes with one ``client.gather`` per batch instead of one ``future.result()`` round
      trip per task. It calls every outcome callback, one at a time, so callbacks never run
      concurrently with each other.

What travels
    Each task runs :func:`run_shipped` on the worker. The function (pickled once per wave of
    submissions), its plain keyword arguments and its context travel as one cloudpickle payload
    that the worker unpickles *inside* the task. Two reasons: modules registered with
    ``cloudpickle.register_pickle_by_value`` (and a notebook's ``__main__``) are only pickled
    by value when cloudpickle pickles them itself (Dask's own pickling looks at the registry
    only for the top-level object), and a payload that cannot be unpickled on a worker (a
    module missing there) must fail that one task with ``ModuleNotFoundError`` rather than break
    the worker's connection to the scheduler.

    A function from a module in a user's folder (not installed: the workflow's folder, a job
    folder) is pickled *by reference*, and the module's files (its package, and the ``.py``
    files beside it) are shipped once per version with a worker plugin (:class:`_ShippedCode`)
    that puts them on each worker's ``sys.path``, workers that join later included. The module
    is then imported on the worker, so module-level state (a ``threading.Lock``, a client, a
    cache) is made there rather than pickled. A function that cannot be pickled fails its
    attempt with one line naming the function and the global that cannot be. :class:`ResultRef` arguments are passed as the held Dask
    futures, so upstream results go worker to worker and never through the client. Workers
    need ``jupyter_workflows`` itself installed (it defines :func:`run_shipped` and the
    envelope); users' task code does not.

How outcomes come back
    The executor subscribes to a private Dask event topic; a worker publishes each small
    envelope (up to 16 KiB pickled) there as the task ends, so the outcome reaches the engine in
    the scheduler's existing stream, with no gather round trip. That is worth it for latency (a
    chain of steps), not for throughput: when many independent tasks are queued (a fan-out),
    an event each costs the scheduler more than one gather per batch, so waves that would make
    the cluster busy are not published but gathered, batched. Larger envelopes, and futures
    that end without running (cancelled, ``KilledWorker``), are gathered in the client's loop,
    batched. Either way each submission's callback is called exactly once.

Big results
    A submission with an artifact location (:attr:`Submission.artifacts`) has every part of its
    result above the threshold written there by the worker, and the envelope carries an
    :class:`~jupyter_workflows.store.artifacts.ArtifactRef` instead; the reference keeps the
    value in the worker's memory without pickling it, so the future's data still serves a
    downstream task on that worker, while what the engine gathers (or another worker fetches)
    is a few hundred bytes. ``dask.sizeof`` is taught the real size of envelopes and held
    references, so Dask's memory accounting and task placement see the value, not the wrapper.

Resources and queues
    ``Submission.resources`` become Dask worker resources (``resources={"GPU": 1}`` runs only on a
    worker started with ``--resources GPU=1``). ``Submission.queue = "gpu"`` adds the resource
    ``queue-gpu: 1``; **a worker serves queue NAME when it starts with**
    ``dask worker ADDRESS --resources "queue-NAME=1e9"`` (a capacity so large it never limits
    concurrency; combine with others as ``--resources "GPU=1,queue-gpu=1e9"``). Before submitting
    such a task the submitter checks the workers' declared resources; when no worker offers
    enough it waits up to ``resource_wait`` seconds (other submissions go on meanwhile), then
    fails the attempt with ``ResourceError: no worker offers ...``: a task never waits forever
    for a worker that does not exist.

Failures
    A task's own exception comes back in its envelope (``ok=False``, ``Type: message``, logs).
    A worker that dies mid-task makes Dask run the task again elsewhere (up to the scheduler's
    ``allowed-failures``, 3 by default), which the run does not see; only when every try died
    does the outcome fail with ``KilledWorker: ...``. A cancelled future fails with
    ``CancelledError``. A lost scheduler fails what is in flight, and what is submitted until
    the client is connected again, with ``SchedulerLost`` (:class:`SchedulerLost`); a scheduler
    of the user's that has had no workers for ``worker_wait`` seconds has the attempts in
    flight cancelled with ``NoWorkers`` (see docs/durability.md, "When the cluster fails").

Keys
    Submission keys are Dask keys. The engine's
    ``"{workflow}.{task}-{run_id[:8]}-{run_id[8:16]}-{seq}"`` (run ids are hex) splits, with
    ``dask.utils.key_split``, to ``"{workflow}.{task}"``: the dashboard groups tasks by
    workflow and task name.

Scripts that start the embedded cluster must guard their entry point with
``if __name__ == "__main__":``: worker processes are spawned and re-import the main module.
"""

from __future__ import annotations

import asyncio
import atexit
import collections
import concurrent.futures
import contextlib
import functools
import gc
import hashlib
import importlib
import logging
import os
import queue
import shutil
import subprocess
import sys
import sysconfig
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from dataclasses import replace as _replace
from pathlib import Path
from typing import Any, cast

import cloudpickle
from dask.sizeof import sizeof
from dask.system import cpu_count
from distributed import Client, Future, LocalCluster, WorkerPlugin, get_worker
from distributed import client as _distributed_client

from ..exceptions import WorkflowError, first_line
from ..store.artifacts import DEFAULT_THRESHOLD, ArtifactRef
from .base import MAIN_GUARD, Executor, Outcome, ResultRef, Submission, switched_on
from .runtime import Envelope, error_line, run_task

__all__ = [
    "WORKER_WAIT_S",
    "DaskExecutor",
    "SchedulerLost",
    "auto_chunk_size",
    "detect_gpus",
    "embedded_cluster_size",
    "engine_dask_config",
    "get_default_executor",
    "queue_resource",
    "run_chunk",
    "run_shipped",
    "shutdown_default_executor",
    "start_local_cluster",
    "tune_client",
    "wait_for_workers",
]

logger = logging.getLogger(__name__)

SchedulerSpec = str | Client | None

#: Most submissions (and finished futures) handled in one batch.
_BATCH = 2000
#: How often parked submissions look again for a worker that offers their resources.
_RESOURCE_POLL_S = 0.2
#: A submit-queue entry: :meth:`DaskExecutor.forget` has futures to release.
_RELEASE: Any = object()
#: How long the submitter holds forgotten futures for submissions to go before them.
_RELEASE_WAIT_S = 0.02
#: How long a positive answer about the workers' resources is trusted without asking again.
_OFFERS_TTL_S = 1.0


#: Whether futures expose the awaitable state :meth:`DaskExecutor._watch` waits on.
#: With more free futures (waiting on no other future) pending than this many times the cluster's threads, finished futures are
#: gathered at most every :data:`_GATHER_WINDOW_S`: the workers have queued work, so a few
#: milliseconds of latency cost nothing, while a gather per future costs the scheduler (in this
#: process, on the embedded cluster) a round trip each.
_BUSY_FACTOR = 2
_GATHER_WINDOW_S = 0.02
#: Largest pickled envelope a worker publishes on the engine's event topic; larger ones are
#: gathered. The scheduler keeps the last ``distributed.admin.low-level-log-length`` (1000)
#: events of a topic, so this also bounds what a topic holds there.
_PUSH_MAX_BYTES = 16 * 1024
#: Dask settings for a cluster the engine starts itself (never for one the user brought), each
#: applied only while the setting still has Dask's own default (a user's dask config wins);
#: ``JUPYTER_WORKFLOWS_DASK_TUNING=0`` turns them off. See docs/performance.md.
#:
#: ``worker-saturation``: Dask queues root tasks on the scheduler and hands a worker a new one
#: only as a thread frees up (1.1 x its threads), a scheduler round trip between two tiny tasks.
#: Workflow tasks are mostly independent, small-data tasks: sending them on at once (work
#: stealing still balances) made 3,000 no-op tasks about 3x faster on the 2-core machine.
ENGINE_DASK_CONFIG: dict[str, Any] = {"distributed.scheduler.worker-saturation": float("inf")}
_DASK_DEFAULTS: dict[str, Any] = {"distributed.scheduler.worker-saturation": 1.1}
#: How long the engine's own Dask client holds a message to the scheduler for batching after
#: sending one (Dask's client: 10 ms). A client the engine connected itself (the embedded
#: cluster's, or one for a scheduler address; never a ``Client`` the user passed) uses this
#: instead: a run's ``update-graph`` sent within 10 ms of the previous run's ``client-releases-
#: keys`` otherwise waited out the rest of those 10 ms, most of a 1 MiB two-step run's overhead
#: over raw Dask (see docs/performance.md, "Big results"). Messages queued in the same turn of
#: the client's loop still go together.
CLIENT_SEND_INTERVAL_S = 0.002


#: Whether the engine hides the objects that exist right after it started its embedded cluster
#: from Python's cyclic garbage collector (``gc.freeze()``; ``JUPYTER_WORKFLOWS_GC_TUNING=0``
#: turns it off, with the engine's other garbage-collector tuning). The embedded scheduler and
#: its dashboard live in this process: with the modules they make a heap of ~180,000 objects
#: that every full collection walked, 100-250 ms
#: with the GIL held on the 2-core machine while 1,000 runs started, which stalled dispatch
#: and everything else. Frozen objects are still freed by reference counting; only those that
#: end up in a reference cycle stay until the cluster is closed (then ``gc.unfreeze()``).
def _gc_freeze_enabled() -> bool:
    return switched_on("JUPYTER_WORKFLOWS_GC_TUNING")


#: Automatic chunks of ``with_items`` (see :func:`auto_chunk_size`): about this many chunks per
#: thread of the cluster, and never more items than this in one chunk.
_CHUNKS_PER_THREAD = 8
_CHUNK_MAX = 256
#: Seconds to wait for a scheduler given by address to answer.
_CONNECT_TIMEOUT_S = 10.0
#: A drain-queue entry whose envelope the drain thread still has to gather.
_UNGATHERED: Any = object()
_CAN_WATCH = callable(
    getattr(_distributed_client, "FutureState", None) and _distributed_client.FutureState.wait
)
_FutureCancelled = concurrent.futures.CancelledError
#: Dask's reason for the futures it cancels when its client loses the scheduler.
_CONNECTION_LOST = "scheduler-connection-lost"
#: Our reason for the futures we cancel when the cluster has had no workers for too long.
_NO_WORKERS = "jupyter-workflows-no-workers"
#: Least seconds between two tries to replace a client that gave up on its scheduler.
_RECONNECT_EVERY_S = 5.0
#: Default seconds attempts wait for a scheduler of the user's that has no workers at all.
WORKER_WAIT_S = 60.0
#: How often the submitter asks such a scheduler how many workers it has, while work is in
#: flight.
_WORKER_POLL_S = 1.0
_DEFAULT_WAIT: Any = object()


def worker_wait_from_env() -> float | None:
    """``JUPYTER_WORKFLOWS_WORKER_WAIT``: seconds, or ``none``/``inf`` to wait for ever
    (default :data:`WORKER_WAIT_S`). A value that is not a number is refused with one line."""
    text = os.environ.get("JUPYTER_WORKFLOWS_WORKER_WAIT", "").strip().lower()
    if not text:
        return WORKER_WAIT_S
    if text in ("none", "inf", "infinity", "forever"):
        return None
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not value >= 0:  # NaN too
        raise WorkflowError(
            f"JUPYTER_WORKFLOWS_WORKER_WAIT={text!r}: expected seconds (a number >= 0) or 'none'"
        )
    return None if value == float("inf") else value


class SchedulerLost(ConnectionError):
    """The connection to the Dask scheduler went away: the attempt was abandoned.

    Dask cancels every future of a client that loses its scheduler (their work is gone with
    it), then tries to reconnect for 10 s before it closes the client. Attempts in flight then
    fail with this (one line), and so do submissions that find no scheduler to connect to
    (see :meth:`DaskExecutor._connected`); they never wait for an answer that cannot come.
    """


def _lost_line(address: str, status: str) -> str:
    if status == "connecting":
        return f"lost the connection to the Dask scheduler at {address} (reconnecting)"
    return (
        f"lost the connection to the Dask scheduler at {address}, and nothing answers there "
        "(the next runs connect again once one does; or use another: `--scheduler ADDRESS`, "
        "`jw.configure(scheduler=...)`)"
    )


def _cancel_reason(future: Future) -> tuple[str | None, str | None]:
    """Why Dask cancelled ``future``: ``(reason, msg)`` of its ``FutureCancelledError``."""
    exc = getattr(getattr(future, "_state", None), "exception", None)
    return getattr(exc, "reason", None), getattr(exc, "msg", None)


def _cancelled_by_connection_loss(future: Future) -> bool:
    return _cancel_reason(future)[0] == _CONNECTION_LOST


class _QuietConnectionLoss(logging.Filter):
    """Drops what Dask's client logs when its scheduler goes away (tracebacks of a closed
    comm and of a ``CancelledError`` in its own close, "Failed to reconnect ... closing
    client"): the attempts it abandoned fail with one :class:`SchedulerLost` line instead."""

    def filter(self, record: logging.LogRecord) -> bool:
        from distributed.comm import CommClosedError

        exc = record.exc_info[1] if record.exc_info else None
        if isinstance(exc, (asyncio.CancelledError, CommClosedError)):
            return False
        try:
            message = record.getMessage()
        except Exception:  # a record that cannot be formatted: not ours to judge
            return True
        return not message.startswith("Failed to reconnect to scheduler")


#: The loggers of the client side of Dask that report a lost scheduler.
_CLIENT_LOGGERS = ("distributed.client", "distributed.batched")
_QUIET_CONNECTION_LOSS = _QuietConnectionLoss()


def auto_chunk_size(span: int, nthreads: int) -> int:
    """Items per chunk when ``chunk_size`` is not set: ``span`` items in flight at once spread as
    about :data:`_CHUNKS_PER_THREAD` chunks per thread (so uneven items still balance), at most
    :data:`_CHUNK_MAX` items each. Few items (up to 8 per thread) are not chunked at all.
    """
    per = -(-max(1, span) // (_CHUNKS_PER_THREAD * max(1, nthreads)))
    return max(1, min(_CHUNK_MAX, per))


def engine_dask_config() -> dict[str, Any]:
    """What :data:`ENGINE_DASK_CONFIG` changes here: the settings whose value is still Dask's
    default (none with ``JUPYTER_WORKFLOWS_DASK_TUNING=0``)."""
    if not _tuning_enabled():
        return {}
    import dask

    return {
        key: value
        for key, value in ENGINE_DASK_CONFIG.items()
        if dask.config.get(key, None) == _DASK_DEFAULTS.get(key)
    }


def _tuning_enabled() -> bool:
    return switched_on("JUPYTER_WORKFLOWS_DASK_TUNING")


def tune_client(client: Client) -> bool:
    """Shorten the batching interval of ``client``'s stream to the scheduler to
    :data:`CLIENT_SEND_INTERVAL_S` (for clients the engine connected itself; a reconnect makes
    a new stream, so this is called again before each submission). Returns whether it did."""
    comm = getattr(client, "scheduler_comm", None)
    interval = getattr(comm, "interval", None)
    if not isinstance(interval, (int, float)) or interval <= CLIENT_SEND_INTERVAL_S:
        return False
    comm.interval = CLIENT_SEND_INTERVAL_S  # type: ignore[union-attr]
    return True


def queue_resource(name: str) -> str:
    """The Dask resource a worker declares to serve queue ``name`` (``queue-NAME``)."""
    return f"queue-{name}"


def embedded_cluster_size(cores: int | None = None) -> tuple[int, int]:
    """``(n_workers, threads_per_worker)`` for the embedded cluster: a process per core, >= 2 threads.

    ``cores`` defaults to the cores this process may use (affinity and cgroup quota included).
    """
    cores = max(1, cores if cores is not None else cpu_count())
    if cores == 1:
        return 1, 2
    return cores, 1


def detect_gpus() -> list[str]:
    """The GPUs this machine offers the embedded cluster, as ``CUDA_VISIBLE_DEVICES`` entries.

    ``nvidia-smi -L`` lists them; ``CUDA_VISIBLE_DEVICES``, when set, narrows the list (an empty
    value hides every GPU). No ``nvidia-smi``: no GPUs.
    """
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None and not visible.strip():
        return []
    exe = shutil.which("nvidia-smi")
    if exe is None:
        return []
    try:
        listed = subprocess.run(
            [exe, "-L"], capture_output=True, text=True, timeout=10, check=True
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    found = [str(i) for i, line in enumerate(listed.splitlines()) if line.startswith("GPU ")]
    if visible is not None:
        wanted = [v.strip() for v in visible.split(",") if v.strip()]
        return [v for v in wanted if v in found or not v.isdigit()]
    return found


def start_local_cluster(
    n_workers: int | None = None,
    threads_per_worker: int | None = None,
    *,
    processes: bool = True,
    resources: dict[str, float] | None = None,
    gpus: list[str] | None = None,
    tune: bool = False,
    **kwargs: Any,
) -> tuple[LocalCluster, Client]:
    """Start a LocalCluster bound to loopback, and a client of it (not the default client).

    Parameters
    ----------
    n_workers, threads_per_worker
        Default to :func:`embedded_cluster_size`.
    processes
        Worker processes (the default) or threads of this process.
    resources
        Resources every worker declares (``{"GPU": 1}``).
    gpus
        Devices (``CUDA_VISIBLE_DEVICES`` entries) that each get one more worker process of one
        thread, which declares ``GPU=1`` and sees only that device (as ``dask-cuda`` does).
    tune
        Start the cluster with :func:`engine_dask_config` (the embedded cluster does).
    **kwargs
        Passed on to :class:`~distributed.LocalCluster`.
    """
    import dask

    with dask.config.set(engine_dask_config() if tune else {}):
        return _start_local_cluster(
            n_workers, threads_per_worker, processes, resources, gpus, kwargs
        )


def _start_local_cluster(
    n_workers: int | None,
    threads_per_worker: int | None,
    processes: bool,
    resources: dict[str, float] | None,
    gpus: list[str] | None,
    kwargs: dict[str, Any],
) -> tuple[LocalCluster, Client]:
    default_workers, default_threads = embedded_cluster_size()
    if n_workers is None:
        n_workers = default_workers
        if threads_per_worker is None:
            threads_per_worker = default_threads
    if threads_per_worker is None:
        threads_per_worker = max(1, -(-2 // n_workers))  # at least two threads in all
    options: dict[str, Any] = {
        "host": "127.0.0.1",
        "dashboard_address": "127.0.0.1:0",
        "silence_logs": logging.WARNING,
    }
    if not processes:
        del options["host"]  # threads talk over inproc://, which has no host to bind
    options.update(kwargs)
    if resources:
        options["resources"] = dict(resources)
    _watch_lost_results()
    try:
        cluster = LocalCluster(
            n_workers=n_workers,
            threads_per_worker=threads_per_worker,
            processes=processes,
            **options,
        )
    except Exception as exc:
        if processes and _main_is_a_script():
            raise RuntimeError(
                f"the embedded Dask cluster could not start its worker processes "
                f"({first_line(exc)}); if this is a script: {MAIN_GUARD}"
            ) from exc
        raise
    try:
        if gpus and processes:
            _add_gpu_workers(cluster, gpus)
        client = Client(cluster, set_as_default=False)
        if gpus and processes:
            client.wait_for_workers(n_workers + len(gpus), timeout=60)
    except BaseException:
        cluster.close()
        raise
    return cluster, client


def _main_is_a_script() -> bool:
    """Whether ``__main__`` is a file that Dask's worker processes import (``python script.py``
    or ``python -m module``; not a notebook's kernel, an interactive shell or ``python -c``)."""
    return bool(getattr(sys.modules.get("__main__"), "__file__", None))


def _probe_scheduler(address: str, timeout: float) -> None:
    """Raise ``ConnectionError`` (one line) unless a Dask scheduler answers at ``address``.

    A failed ``Client(address)`` leaves a half-made client whose ``__del__`` later waits and
    prints a traceback; a Dask handshake first (bounded by ``timeout``, also for a port that
    answers but is not Dask) means a bad address never gets that far.
    """
    from distributed.comm import connect

    async def probe() -> None:
        async def handshake() -> None:
            comm = await connect(address, timeout=timeout)
            await comm.close()

        try:  # connect's timeout does not cover a peer that accepts and never answers
            await asyncio.wait_for(handshake(), timeout)
        except asyncio.TimeoutError:
            raise TimeoutError(f"no Dask handshake within {timeout:g} s") from None

    with concurrent.futures.ThreadPoolExecutor(1) as pool:  # the caller may be in a loop
        try:
            pool.submit(asyncio.run, probe()).result()
        except Exception as exc:
            detail = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise ConnectionError(f"cannot reach a Dask scheduler at {address}: {detail}") from None


def _add_gpu_workers(cluster: LocalCluster, gpus: list[str]) -> None:
    for device in gpus:
        spec = next(iter(cluster.new_worker_spec().values()))
        options = dict(spec["options"])
        options["nthreads"] = 1
        options["resources"] = {**(options.get("resources") or {}), "GPU": 1}
        options["env"] = {**(options.get("env") or {}), "CUDA_VISIBLE_DEVICES": device}
        cluster.worker_spec[f"gpu-{device}"] = {**spec, "options": options}
    cluster.sync(cluster._correct_state)


def wait_for_workers(address: str, n_workers: int, timeout: float = 30.0) -> list[dict[str, Any]]:
    """Block until the scheduler at ``address`` has ``n_workers`` workers; return their info."""
    with Client(address, set_as_default=False, timeout=timeout) as client:
        client.wait_for_workers(n_workers, timeout=timeout)
        workers = client.scheduler_info(n_workers=-1)["workers"]
        return [dict(info, address=addr) for addr, info in workers.items()]


def _wait_until_released(cluster: LocalCluster, timeout: float = 10.0) -> None:
    """Wait (bounded) until the embedded scheduler has forgotten every task.

    The scheduler learns that results are no longer wanted from messages; closing the workers
    before it has handled them makes it warn, for each worker, that removing it "caused the
    cluster to lose already computed task(s)" (and it would recompute them). The scheduler runs
    in this process: its task table says when it is done. Usually within milliseconds; on a
    busy machine it took over 3 s (the CLI then printed the warning in 1 of 3 runs).
    """
    scheduler = getattr(cluster, "scheduler", None)
    tasks = getattr(scheduler, "tasks", None)
    if tasks is None:
        return
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if not any(ts.state == "memory" for ts in list(tasks.values())):
                return
        except RuntimeError:  # changed while we looked
            pass
        time.sleep(0.02)


class _LostResultsFilter(logging.Filter):
    """Drops the scheduler's "Removing worker ... caused the cluster to lose already computed
    task(s)" once the engine closes its own embedded cluster (or the interpreter exits, when
    Dask's own exit hook may close it first): every result the engine still held is persisted,
    nothing will be recomputed, and the warning only alarms the user. While the cluster works
    (a worker that died mid-run) the warning is kept."""

    closing = threading.Event()

    def filter(self, record: logging.LogRecord) -> bool:
        if not self.closing.is_set():
            return True
        try:
            message = record.getMessage()
        except Exception:  # a record that cannot be formatted: not ours to judge
            return True
        return "caused the cluster to lose" not in message


_LOST_RESULTS = _LostResultsFilter()


def _watch_lost_results() -> None:
    """Install the filter for an embedded cluster (once per process); registered at exit after
    Dask's own hook, so it runs before Dask closes the clusters that are still open."""
    target = logging.getLogger("distributed.scheduler")
    if _LOST_RESULTS not in target.filters:
        target.addFilter(_LOST_RESULTS)
        atexit.register(_LOST_RESULTS.closing.set)


@contextlib.contextmanager
def _quiet_lost_results() -> Iterator[None]:
    _LOST_RESULTS.closing.set()
    yield


def _reraise(exc: BaseException) -> None:
    raise exc


def run_shipped(payload: bytes, refs: dict[str, Any]) -> Envelope:
    """What a Dask worker runs: unpickle ``(fn, kwargs, context, wants_context, push, progress,
    keep, code)`` and run it.

    ``fn`` comes pickled on its own (the same bytes for every task of a wave), and is
    unpickled once per worker for the same bytes.

    ``refs`` holds the upstream results (Dask resolved the futures to their envelopes, which
    :func:`~jupyter_workflows.executors.runtime.run_task` unwraps). Never raises: a payload that
    cannot be loaded here fails the task like an exception of the task would.

    ``progress`` is ``(topic, key)`` or ``None``: where ``context.progress`` reports go.
    ``code`` is ``(folder label, version, module names)`` or ``None``: the function's module
    was shipped as files (see :class:`_ShippedCode`) and is imported from that folder.
    ``keep`` is ``(artifact location, threshold)`` or ``None``: results above the threshold are
    written there by this worker and come back as references (:meth:`Envelope.keep_big_results`).
    ``push`` is ``(topic, key)`` or ``None``: the envelope, when small, is also published on
    that Dask event topic, so the engine that subscribed to it learns the outcome without a
    gather round trip (see :meth:`DaskExecutor._watch`).
    """
    try:
        fn_bytes, kwargs, context, wants_context, push, progress, keep, code = cloudpickle.loads(
            payload
        )
        fn = _load_function(fn_bytes, code)
    except Exception as exc:
        return run_task(functools.partial(_reraise, exc), {})
    kwargs.update(refs)
    hook = functools.partial(_publish_progress, progress) if progress is not None else None
    envelope = run_task(fn, kwargs, context, wants_context, progress_hook=hook)
    if keep is not None:
        envelope.keep_big_results(*keep)
    if push is not None:
        _push(push, envelope)
    return envelope


def run_chunk(payload: bytes, count: int) -> list[Envelope]:
    """What a Dask worker runs for a chunk of ``count`` items of one ``with_items`` task:
    unpickle ``(fn, wants_context, [(kwargs, context), ...], keep, code)`` (``keep`` and
    ``code`` as for :func:`run_shipped`) and run the function once per item, in order. Returns
    one envelope per item; never raises (a payload that cannot be loaded here fails every item
    of the chunk)."""
    try:
        fn_bytes, wants_context, members, keep, code = cloudpickle.loads(payload)
        fn = _load_function(fn_bytes, code)
    except Exception as exc:
        failed = run_task(functools.partial(_reraise, exc), {})
        return [failed] * count
    envelopes = []
    for kwargs, context in members:
        envelope = run_task(fn, kwargs, context, wants_context)
        if keep is not None:
            envelope.keep_big_results(*keep)
        envelopes.append(envelope)
    return envelopes


@sizeof.register(Envelope)
def _sizeof_envelope(envelope: Envelope) -> int:
    # What Dask's memory accounting and placement see: the value, not the wrapper.
    return 200 + sizeof(envelope.value)


@sizeof.register(ArtifactRef)
def _sizeof_ref(ref: ArtifactRef) -> int:
    return ref.nbytes if ref.held else 200


@functools.lru_cache(maxsize=128)
def _load_function(
    data: bytes, code: tuple[str, str, tuple[str, ...]] | None
) -> Callable[..., Any]:
    """Unpickle a task function, once per worker for the same bytes (as Dask caches its own).

    A function shipped by reference from a user's folder (``code``) is imported from that
    folder's shipped copy: two folders may both have a ``tasks.py`` (job folders often do),
    and a worker that ran one must not hand the other's function its module. So the modules of
    the names this folder provides are swapped into ``sys.modules`` (as imported from it
    before, else imported now with its copy first on ``sys.path``), and stay there until
    another folder's are needed (pickling a result looks its class up there).
    """
    if code is None:
        return cloudpickle.loads(data)
    label, _version, names = code  # the version only keys the cache
    with _import_lock:
        folder = _shipped_dirs.get(label)
        if folder is None:  # not shipped here (a plugin that failed): try as it is
            return cloudpickle.loads(data)
        return _load_from(folder, frozenset(names), data)


#: On a worker: shipped code, folder label -> its directory (the newest version), and the
#: modules imported from each directory.
_shipped_dirs: dict[str, str] = {}
_shipped_versions: dict[str, str] = {}
_dir_modules: dict[str, dict[str, Any]] = {}
_import_lock = threading.RLock()


def _load_from(folder: str, names: frozenset[str], data: bytes) -> Callable[..., Any]:
    def provided(name: str) -> bool:
        return name.partition(".")[0] in names

    def from_folder(module: Any) -> bool:
        file = getattr(module, "__file__", None)
        return isinstance(file, str) and os.path.realpath(file).startswith(folder + os.sep)

    current = [n for n, m in list(sys.modules.items()) if provided(n) and not from_folder(m)]
    for name in current:
        del sys.modules[name]
    sys.modules.update(_dir_modules.get(folder, {}))
    sys.path.insert(0, folder)
    try:
        return cloudpickle.loads(data)
    finally:
        if folder in sys.path:
            sys.path.remove(folder)
        _dir_modules[folder] = {
            n: m for n, m in list(sys.modules.items()) if provided(n) and from_folder(m)
        }


def _publish_progress(to: tuple[str, str], done: int, total: int) -> None:
    """A task's ``context.progress(done, total)`` on a worker: published on the engine's topic."""
    topic, key = to
    try:
        get_worker().log_event(topic, [key, int(done), int(total)])
    except Exception:  # progress is best effort; the last report also comes with the outcome
        logger.debug("publishing progress of %s failed", key, exc_info=True)


def _push(push: tuple[str, str], envelope: Envelope) -> None:
    """Publish a small envelope on the engine's topic: handed to the worker's
    :class:`_OutcomePublisher` when it has one (it publishes as the task ends, together with
    Dask's own ``task-finished``), else published right away."""
    topic, key = push
    try:
        data = cloudpickle.dumps(envelope, protocol=5)
        if len(data) > _PUSH_MAX_BYTES:
            return
        worker = get_worker()
        publisher = worker.plugins.get(_PUBLISHER)
        if isinstance(publisher, _OutcomePublisher) and publisher.take(key, topic, data):
            return
        worker.log_event(topic, [key, data])
    except Exception:  # the engine gathers the envelope instead
        logger.debug("publishing the outcome of %s failed", key, exc_info=True)


#: The name of the :class:`_OutcomePublisher` worker plugin (one per worker, for every engine).
_PUBLISHER = "jupyter-workflows-outcomes"
#: Most outcomes a publisher holds for tasks that have not ended yet (more: published at once).
_OUTBOX_MAX = 10_000


class _OutcomePublisher(WorkerPlugin):
    """Publishes a task's outcome on the engine's topic when the worker ends the task, not
    from the task's thread before it returns.

    A worker sends its messages to the scheduler batched, at most one batch every 2 ms. An
    event published from the task's thread went out in a batch of its own just before the task
    ended, so Dask's ``task-finished`` waited out the 2 ms (more on a busy worker) behind it,
    and with it the start of every task that waits for this one (measured: ~2-3 ms of a 1 MiB
    two-step run). Here the event is queued in the same turn of the worker's loop as
    ``task-finished`` (the transition out of ``executing``), so both leave in one batch.
    """

    idempotent = True  # every engine on a cluster shares the one plugin

    def __init__(self) -> None:
        self.outbox: dict[str, tuple[str, bytes]] = {}
        self.worker: Any = None

    def setup(self, worker: Any) -> None:
        self.worker = worker

    def take(self, key: str, topic: str, data: bytes) -> bool:
        """In the task's thread: hold the outcome until the task ends; False: publish now."""
        if self.worker is None or len(self.outbox) >= _OUTBOX_MAX:
            return False
        self.outbox[key] = (topic, data)
        return True

    def transition(self, key: Any, start: str, finish: str, *args: Any, **kwargs: Any) -> None:
        # In the worker's loop, for every transition of every task: cheap when nothing waits.
        if not self.outbox:
            return
        entry = self.outbox.pop(key, None)
        if entry is None:
            return
        topic, data = entry
        try:
            self.worker.log_event(topic, [key, data])
        except Exception:  # the engine gathers the envelope instead
            logger.debug("publishing the outcome of %s failed", key, exc_info=True)


# -- task code from the user's folders: shipped as files, imported on the workers -------------

#: Most bytes of Python source shipped from one folder to the workers.
_SHIP_MAX_BYTES = 32 * 1024 * 1024
#: Where shipped code lives in a worker's local directory.
_SHIP_DIR = "jupyter-workflows-code"


def _installed_roots() -> tuple[str, ...]:
    """Folders whose modules every worker is expected to have (the Python installation)."""
    roots = {sys.prefix, sys.base_prefix, sys.exec_prefix}
    for name in ("stdlib", "platstdlib", "purelib", "platlib"):
        path = sysconfig.get_paths().get(name)
        if path:
            roots.add(path)
    return tuple(os.path.realpath(r) for r in roots if r)


@functools.lru_cache(maxsize=1)
def _installed() -> tuple[str, ...]:
    return _installed_roots()


def _code_root(fn: Callable[..., Any]) -> tuple[str, Path] | None:
    """``(top-level module, its file or package folder)`` when ``fn``'s module lives in a
    user's folder, i.e. the workers must be sent its source; ``None`` otherwise (a notebook's
    ``__main__``, which travels by value, an installed package, this package, a module
    registered with ``cloudpickle.register_pickle_by_value``)."""
    name = getattr(fn, "__module__", None)
    if not isinstance(name, str) or not name or name == "__main__":
        return None
    top = name.partition(".")[0]
    if top == "jupyter_workflows" or top in sys.builtin_module_names:
        return None
    if top in getattr(sys, "stdlib_module_names", ()):
        return None
    if top in cloudpickle.list_registry_pickle_by_value():
        return None
    # The function's own module file first: another folder's module of the same name may be
    # the one in sys.modules now (two workflow folders that both have a tasks.py).
    file = (getattr(fn, "__globals__", None) or {}).get("__file__")
    if not isinstance(file, str) or not file:
        file = getattr(sys.modules.get(top), "__file__", None)
        name = top
    if not file:
        return None
    path = Path(os.path.realpath(file))
    if path.suffix != ".py":
        return None  # an extension module: installed, or not something we can ship
    if any(str(path).startswith(root + os.sep) for root in _installed()):
        return None
    if path.name == "__init__.py":
        path = path.parent
    for _ in name.split(".")[1:]:  # up from a submodule to its top-level package
        path = path.parent
    if path.name != top and path.stem != top:
        return None
    return top, path


def _code_files(root: Path) -> dict[str, Path]:
    """The files shipped for a module root: the module (or every ``.py`` of its package) and
    the ``.py`` files beside it (siblings it may import), by their path relative to its folder."""
    folder = root.parent
    files: dict[str, Path] = {}
    if root.is_dir():
        for dirpath, dirnames, filenames in os.walk(root):
            dirnames[:] = [d for d in dirnames if not d.startswith(".") and d != "__pycache__"]
            for filename in filenames:
                if filename.endswith(".py"):
                    full = Path(dirpath) / filename
                    files[full.relative_to(folder).as_posix()] = full
    try:
        siblings = [p for p in folder.iterdir() if p.suffix == ".py" and p.is_file()]
    except OSError:
        siblings = []
    for path in siblings:
        files.setdefault(path.name, path)
    if root.is_file():
        files[root.name] = root
    return files


class _ShippedCode(WorkerPlugin):
    """A worker plugin that makes a folder's modules importable on each worker, so task
    functions pickled *by reference* import there, module-level state (locks, clients, caches)
    included. Registered under one name per source folder: a new version replaces the old one,
    whose modules are dropped from ``sys.modules``.

    A worker that sees the source folder itself with the same files (the embedded cluster,
    workers on the same machine or a shared file system) imports from it, so ``__file__`` and
    paths relative to it (a data file beside the module) are what the author sees. Elsewhere
    the files are written under the worker's local directory (``JUPYTER_WORKFLOWS_COPY_CODE=1``
    in a worker's environment makes it do that always).
    """

    idempotent = False

    def __init__(self, label: str, digest: str, source: str, files: dict[str, bytes]) -> None:
        self.label = label
        self.digest = digest
        self.source = source
        self.files = files

    def _source_matches(self) -> bool:
        if os.environ.get("JUPYTER_WORKFLOWS_COPY_CODE", "").strip() not in ("", "0"):
            return False
        try:
            return all(
                (Path(self.source) / rel).read_bytes() == data for rel, data in self.files.items()
            )
        except OSError:
            return False

    def setup(self, worker: Any) -> None:
        if self._source_matches():
            target = Path(self.source)
        else:
            base = Path(worker.local_directory) / _SHIP_DIR
            target = base / f"{self.label}-{self.digest[:16]}"
            if not target.is_dir():
                tmp = base / f".{target.name}.{uuid.uuid4().hex[:8]}"
                for rel, data in self.files.items():
                    path = tmp / rel
                    path.parent.mkdir(parents=True, exist_ok=True)
                    path.write_bytes(data)
                try:
                    os.replace(tmp, target)
                except OSError:  # another worker of this machine sharing the directory won
                    shutil.rmtree(tmp, ignore_errors=True)
        with _import_lock:
            older = _shipped_dirs.get(self.label)
            if older is not None and _shipped_versions.get(self.label) != self.digest:
                # A new version: forget the modules imported from the old one.
                _dir_modules.pop(older, None)
                for name, module in list(sys.modules.items()):
                    if (getattr(module, "__file__", None) or "").startswith(older + os.sep):
                        del sys.modules[name]
                if older != str(target) and older in sys.path:
                    sys.path.remove(older)
            _shipped_dirs[self.label] = str(target)
            _shipped_versions[self.label] = self.digest
            # At the end of the path: what a task imports lazily (inside its body) is found
            # too, and never shadows an installed module.
            if str(target) not in sys.path:
                sys.path.append(str(target))
            importlib.invalidate_caches()


def _unshippable(fn: Callable[..., Any], exc: BaseException) -> str:
    """One line naming the task function and the global (or closure variable) that failed."""
    name = getattr(fn, "__qualname__", None) or getattr(fn, "__name__", None) or repr(fn)
    code = getattr(fn, "__code__", None)
    culprit = None
    if code is not None:
        candidates: list[tuple[str, str, Any]] = []
        globals_ = getattr(fn, "__globals__", {}) or {}
        for var in code.co_names:
            if var in globals_:
                candidates.append(("global", var, globals_[var]))
        for var, cell in zip(
            code.co_freevars, getattr(fn, "__closure__", None) or (), strict=False
        ):
            try:
                candidates.append(("closure variable", var, cell.cell_contents))
            except ValueError:  # an empty cell
                continue
        for kind, var, value in candidates:
            if isinstance(value, type(sys)):  # modules pickle by reference
                continue
            try:
                cloudpickle.dumps(value)
            except Exception:
                culprit = f"its {kind} {var!r} ({type(value).__name__})"
                break
    text = next((line.strip() for line in str(exc).splitlines() if line.strip()), "")
    where = f": {culprit} cannot be pickled" if culprit else ""
    return f"cannot ship task function {name!r} to the workers{where}" + (
        f": {text}" if text else ""
    )


#: What the loop watches per future: ``(future, callback, free, on_progress)``.
_Watched = tuple[Future, Callable[[Outcome], None], bool, Callable[[int, int], None] | None]


@dataclass(slots=True, frozen=True)
class _Pushed:
    """A pickled envelope a worker published; unpickled in the drain thread, off the loop."""

    data: bytes

    def load(self) -> Any:
        try:
            return cloudpickle.loads(self.data)
        except Exception as exc:  # becomes the outcome
            return _Unreadable(exc)


class _Unreadable(Exception):
    """An outcome that came back from the worker but cannot be unpickled here (its result's
    class is in a module only the workers can import, say); fails the attempt with one line."""

    def __init__(self, exc: BaseException) -> None:
        super().__init__(exc)
        self.original = exc

    def outcome(self, key: str) -> Outcome:
        exc = self.original
        why = error_line(exc).partition(": ")[2]
        line = f"the outcome came back from the worker but cannot be unpickled here: {why}"
        if isinstance(exc, ImportError):
            line += " (the workers can import it, this process cannot: install it here too)"
        return _failed(key, type(exc).__name__, line)


@dataclass(slots=True, eq=False)
class _Chunk:
    """Submissions that went to Dask as one task (see :func:`run_chunk`); stands in for their
    callbacks in the drain queue, which hands each member its own outcome."""

    key: str
    members: list[_Pending]
    future: Future | None = None
    #: Members cancelled: once all are, the chunk's future is cancelled.
    cancelled: set[str] = field(default_factory=set)

    def __call__(self, outcome: Outcome) -> None:  # pragma: no cover - never called directly
        raise TypeError("a chunk is delivered by DaskExecutor._deliver_chunk")


@dataclass(slots=True)
class _Pending:
    """A submission on its way to Dask."""

    submission: Submission
    callback: Callable[[Outcome], None]
    needs: dict[str, float]
    deadline: float = 0.0


def _keep(sub: Submission) -> tuple[str, int] | None:
    """``(artifact location, threshold)`` for the worker, or ``None``: keep nothing there."""
    if not sub.artifacts:
        return None
    threshold = DEFAULT_THRESHOLD if sub.artifact_threshold is None else sub.artifact_threshold
    return sub.artifacts, threshold


_failed = Outcome.failed
_failed_by = Outcome.failed_by


def _format_resources(resources: dict[str, float]) -> str:
    return ", ".join(f"{name}={amount:g}" for name, amount in sorted(resources.items()))


def _offered(needs: dict[str, float], offers: dict[str, dict[str, float]]) -> bool:
    return any(
        all(float(res.get(name, 0)) >= amount for name, amount in needs.items())
        for res in offers.values()
    )


def _resource_error(
    key: str, needs: dict[str, float], offers: dict[str, dict[str, float]], waited: float
) -> Outcome:
    if offers:
        shown = [
            f"{addr} {_format_resources(res) or 'nothing'}"
            for addr, res in sorted(offers.items())[:5]
        ]
        if len(offers) > 5:
            shown.append(f"and {len(offers) - 5} more")
        workers = "workers offer: " + "; ".join(shown)
    else:
        workers = "no workers connected"
    hint = "".join(
        f"; a worker serves queue {name[len('queue-') :]!r} when started with --resources {name}=1e9"
        for name in sorted(needs)
        if name.startswith("queue-")
    )
    return _failed(
        key,
        "ResourceError",
        f"no worker offers {_format_resources(needs)} (waited {waited:g}s; {workers}){hint}",
    )


class DaskExecutor(Executor):
    """Runs submissions as Dask futures.

    Parameters
    ----------
    scheduler
        ``None``: an embedded LocalCluster (worker processes on 127.0.0.1), started on first use.
        ``"tcp://host:port"``: connect to that scheduler. A :class:`~distributed.Client`: use it
        (it is never closed by this executor).
    n_workers, threads_per_worker
        Size of the embedded cluster (default: :func:`embedded_cluster_size`).
    resource_wait
        Seconds a submission whose resources or queue no worker offers waits for such a worker
        before it fails with ``ResourceError``.
    worker_wait
        A scheduler given by address or client only: seconds the attempts in flight wait while
        the cluster has no workers at all (none started, or all died) before they fail with
        ``NoWorkers``; ``None`` waits for ever (an autoscaling cluster that starts from zero).
        Default: ``$JUPYTER_WORKFLOWS_WORKER_WAIT``, else :data:`WORKER_WAIT_S`.
    """

    def __init__(
        self,
        scheduler: SchedulerSpec = None,
        *,
        n_workers: int | None = None,
        threads_per_worker: int | None = None,
        resource_wait: float = 10.0,
        worker_wait: Any = _DEFAULT_WAIT,
    ) -> None:
        if scheduler is not None and not isinstance(scheduler, (str, Client)):
            raise TypeError(
                f"scheduler must be an address, a distributed.Client or None, not {type(scheduler).__name__}"
            )
        self.scheduler = scheduler
        self.n_workers = n_workers
        self.threads_per_worker = threads_per_worker
        self.resource_wait = float(resource_wait)
        self.worker_wait: float | None = (
            worker_wait_from_env()
            if worker_wait is _DEFAULT_WAIT
            else (None if worker_wait is None else float(worker_wait))
        )
        #: Since when (monotonic) the scheduler has had no workers while work was in flight.
        self._no_workers_since: float | None = None
        self._workers_checked_at = float("-inf")
        self._lock = threading.RLock()
        self._client: Client | None = None
        self._cluster: LocalCluster | None = None
        self._owns_client = False
        #: Whether this executor froze the garbage collector's view (see _gc_freeze_enabled).
        self._froze = False
        #: Whether to shorten the client's batching interval (see :func:`tune_client`).
        self._tune_client = False
        self._closed = False
        #: Futures kept (results stay on the workers) until :meth:`forget`.
        self._held: dict[str, Future] = {}
        #: Keys cancelled before they reached Dask.
        self._cancelled: set[str] = set()
        self._submit_queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        #: Futures :meth:`forget` let go of, released by the submitter (see there).
        self._releasing: list[Future] = []
        #: ``(future or outcome, envelope or _UNGATHERED, callback)``; ``None`` stops the drain.
        self._done_queue: queue.SimpleQueue[
            tuple[Future | Outcome, Any, Callable[[Outcome], None]] | None
        ] = queue.SimpleQueue()
        self._threads: list[threading.Thread] = []
        self._offers: dict[str, dict[str, float]] = {}
        self._offers_at = float("-inf")
        self._waiters: set[asyncio.Task[None]] = set()
        #: The Dask event topic workers publish outcomes on, and whether we subscribed to it.
        self._topic = f"jupyter-workflows-{uuid.uuid4().hex}"
        self._pushing = False
        #: Watched futures by key, until their outcome went to the drain queue (loop only).
        self._expected: dict[str, tuple[Future, Callable[[Outcome], None]]] = {}
        #: Outcomes published before their future was watched (loop only).
        self._early: collections.OrderedDict[str, bytes] = collections.OrderedDict()
        #: ``Submission.on_progress`` of watched futures that have one (loop only).
        self._on_progress: dict[str, Callable[[int, int], None]] = {}
        #: Finished futures waiting for the next gather, and whether one is under way (both
        #: touched only in the client's loop).
        self._finished_batch: list[tuple[Future, Callable[[Outcome], None]]] = []
        self._gathering = False
        #: Pending futures that wait on no other future (loop only).
        self._free_pending = 0
        #: Held keys of items (``Submission.chunk_group``) sent one per task: let go of as
        #: soon as their outcome is out (no ResultRef names an item).
        self._transient: set[str] = set()
        #: Chunked submissions in flight: member key -> its chunk (see :func:`run_chunk`).
        self._chunk_of: dict[str, _Chunk] = {}
        #: Code folders shipped to the workers: label -> (files' signature, digest).
        self._shipped: dict[str, tuple[Any, str]] = {}
        #: Threads in the cluster, refreshed by the submitter at most every _OFFERS_TTL_S.
        self._nthreads = 0
        self._nthreads_at = float("-inf")
        #: The scheduler's address, for messages (set by :meth:`start`).
        self._address = ""
        #: The id of the scheduler this executor set up (code, topic) on, and whether the
        #: connection was seen lost since (see :meth:`_connected`).
        self._scheduler_id: str | None = None
        self._lost_seen = False
        self._reconnected_at = float("-inf")

    # -- lifecycle ------------------------------------------------------------------------------

    @property
    def client(self) -> Client:
        """The Dask client (starting the embedded cluster if needed)."""
        self.start()
        assert self._client is not None
        return self._client

    @property
    def started(self) -> bool:
        """Whether the client exists (the embedded cluster is started lazily)."""
        return self._client is not None

    def start(self) -> DaskExecutor:
        """Connect, or start the embedded cluster; idempotent. Returns ``self``."""
        with self._lock:
            if self._closed:
                raise RuntimeError("the Dask executor is closed")
            if self._client is not None:
                return self
            if self.scheduler is None:
                self._cluster, self._client = start_local_cluster(
                    self.n_workers, self.threads_per_worker, gpus=detect_gpus(), tune=True
                )
                self._owns_client = True
                if _gc_freeze_enabled():
                    gc.collect()  # what is garbage now is not frozen with the rest
                    gc.freeze()
                    self._froze = True
            elif isinstance(self.scheduler, str):
                _probe_scheduler(self.scheduler, _CONNECT_TIMEOUT_S)
                self._client = Client(
                    self.scheduler, set_as_default=False, timeout=_CONNECT_TIMEOUT_S
                )
                self._owns_client = True
            else:
                self._client = self.scheduler
                self._owns_client = False
            self._tune_client = self._owns_client and _tuning_enabled()
            if self._tune_client:
                tune_client(self._client)
            if self._cluster is None:  # a scheduler of the user's: it may go away
                for name in _CLIENT_LOGGERS:
                    client_log = logging.getLogger(name)
                    if _QUIET_CONNECTION_LOSS not in client_log.filters:
                        client_log.addFilter(_QUIET_CONNECTION_LOSS)
            self._address = _scheduler_address(self._client, self.scheduler)
            self._scheduler_id = _scheduler_id(self._client)
            self._subscribe(self._client)
            for target, name in ((self._submit_loop, "submit"), (self._drain_loop, "drain")):
                thread = threading.Thread(
                    target=target, name=f"jupyter-workflows-dask-{name}", daemon=True
                )
                thread.start()
                self._threads.append(thread)
            return self

    def _subscribe(self, client: Client) -> None:
        """Have the workers publish outcomes on this executor's topic (see :func:`run_shipped`)."""
        self._pushing = False
        try:
            client.subscribe_topic(self._topic, self._on_pushed)
            self._pushing = True
        except Exception:  # outcomes are gathered then
            logger.debug("subscribing to %s failed", self._topic, exc_info=True)
        if self._pushing:
            try:
                client.register_plugin(_OutcomePublisher(), name=_PUBLISHER)
            except Exception:  # workers publish from the task's thread then
                logger.debug("registering the outcome publisher failed", exc_info=True)

    def _connected(self, client: Client) -> Client | None:
        """In the submitter: a connected client to submit to, or ``None`` (the scheduler is lost).

        A client that lost its scheduler reconnects by itself for 10 s (Dask), then closes;
        a closed client of an address this executor connected to is replaced by a new one
        (at most every :data:`_RECONNECT_EVERY_S`), so a long-lived process (``serve``, a
        kernel) works again once a scheduler answers at that address. Either way the
        scheduler may be a new one, without what this executor set up on the old one: the
        code it shipped, the outcome topic. That is set up again."""
        if client.status != "running":
            self._lost_seen = True
            # Dask reconnects for 10 s: wait for it (bounded) rather than fail what could run.
            deadline = time.monotonic() + _CONNECT_TIMEOUT_S + 5
            while client.status in ("connecting", "closing") and time.monotonic() < deadline:
                time.sleep(0.05)
        if client.status != "running":
            replaced = self._reconnect(client)
            if replaced is None:
                return None
            client = replaced
        if self._lost_seen or _scheduler_id(client) != self._scheduler_id:
            self._lost_seen = False
            self._scheduler_id = _scheduler_id(client)
            with self._lock:
                self._shipped.clear()
            self._offers_at = self._nthreads_at = float("-inf")
            self._subscribe(client)
        return client

    def _reconnect(self, old: Client) -> Client | None:
        if (
            old.status not in ("closed", "closing")  # (Dask can leave it closing for ever)
            or not self._owns_client
            or self._cluster is not None
            or not isinstance(self.scheduler, str)
        ):
            return None
        if time.monotonic() - self._reconnected_at < _RECONNECT_EVERY_S:
            return None
        try:
            _probe_scheduler(self.scheduler, _CONNECT_TIMEOUT_S)
            client = Client(self.scheduler, set_as_default=False, timeout=_CONNECT_TIMEOUT_S)
        except Exception:  # still nothing there: the submissions fail with SchedulerLost
            logger.debug("reconnecting to %s failed", self.scheduler, exc_info=True)
            return None
        finally:  # counted from the end of this try (a failed probe takes 10 s)
            self._reconnected_at = time.monotonic()
        with self._lock:
            closed = self._closed
            if not closed:
                self._client = client
        if closed:
            client.close()
            return None
        if self._tune_client:
            tune_client(client)
        return client

    @property
    def dashboard_link(self) -> str | None:
        """The Dask dashboard's URL, once connected (``None`` before the cluster starts)."""
        client = self._client
        if client is None:
            return None
        try:
            return client.dashboard_link
        except Exception:  # no dashboard on that scheduler
            return None

    def close(self) -> None:
        """Stop the threads; close the client and the cluster if this executor started them."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            client, cluster, owns = self._client, self._cluster, self._owns_client
            self._client = self._cluster = None
            held, self._held = self._held, {}
            for future in self._releasing:  # forgotten, not yet released: released below
                held[_key_of(future)] = future
            self._releasing = []
        self._submit_queue.put(None)
        current = threading.current_thread()
        for thread in self._threads[:1]:
            if thread is not current:
                thread.join(timeout=5)
        if client is not None and not owns:
            # A borrowed client lives on: let go of what we asked it to keep.
            if self._pushing:
                try:
                    client.unsubscribe_topic(self._topic)
                except Exception:  # best effort
                    logger.debug("unsubscribing from %s failed", self._topic, exc_info=True)
            for future in held.values():
                future.release()
        try:
            if owns and client is not None:
                for future in held.values():
                    future.release()
                client.close()
            if cluster is not None:
                _wait_until_released(cluster)
                with _quiet_lost_results():
                    cluster.close()
        except Exception:  # pragma: no cover - closing a broken cluster
            logger.debug("closing the Dask cluster failed", exc_info=True)
        finally:
            if self._froze:
                self._froze = False
                gc.unfreeze()  # cycles among what was frozen can be collected again
            held.clear()
            self._done_queue.put(None)
            for thread in self._threads[1:]:
                if thread is not current:
                    thread.join(timeout=5)

    def __enter__(self) -> DaskExecutor:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- the Executor interface -----------------------------------------------------------------

    def submit(self, submission: Submission, callback: Callable[[Outcome], None]) -> None:
        """Queue ``submission``; ``callback`` gets its outcome from the drain thread."""
        self.start()
        needs = {name: float(amount) for name, amount in (submission.resources or {}).items()}
        if submission.queue and self.scheduler is not None:  # the embedded cluster serves all
            needs[queue_resource(submission.queue)] = 1.0
        self._submit_queue.put(_Pending(submission, callback, needs))

    def cancel(self, key: str) -> None:
        """Cancel ``key``: dropped if it has not reached Dask yet, else ``Future.cancel()``.

        A member of a chunk: the chunk is cancelled once every member of it is."""
        with self._lock:
            future = self._held.get(key)
            chunk = self._chunk_of.get(key) if future is None else None
            if chunk is not None:
                chunk.cancelled.add(key)
                if len(chunk.cancelled) < len(chunk.members) or chunk.future is None:
                    return
                future = chunk.future
            if future is None:
                self._cancelled.add(key)
                return
        try:
            future.cancel()
        except Exception:  # best effort: the client may be closing
            logger.debug("cancelling %s failed", key, exc_info=True)

    def forget(self, keys: list[str]) -> None:
        """Stop holding these results (Dask frees them once nothing else needs them).

        Released by the submitter thread right after its next submissions, or within
        :data:`_RELEASE_WAIT_S` when none come: a run's end and the next run's start then
        reach the scheduler in that order, so the workers get the next ``compute-task`` before
        the ``free-keys`` (a scheduler sends a worker at most one batch every 5 ms: the other
        way round the task waited up to 5 ms behind the release)."""
        with self._lock:
            dropped = [f for key in keys if (f := self._held.pop(key, None)) is not None]
            self._cancelled.difference_update(keys)
            if not dropped:
                return
            self._releasing.extend(dropped)
        self._submit_queue.put(_RELEASE)

    def _release_forgotten(self) -> None:
        with self._lock:
            releasing, self._releasing = self._releasing, []
        for future in releasing:
            try:
                future.release()
            except Exception:  # best effort: the client may be closing
                logger.debug("releasing %s failed", future.key, exc_info=True)

    def held_keys(self) -> list[str]:
        """Keys whose results are held (for tests and diagnostics)."""
        with self._lock:
            return list(self._held)

    # -- submitter thread -----------------------------------------------------------------------

    def _take(self, timeout: float | None) -> Iterator[Any]:
        try:
            yield self._submit_queue.get(timeout=timeout)
        except queue.Empty:
            return
        for _ in range(_BATCH - 1):
            try:
                yield self._submit_queue.get_nowait()
            except queue.Empty:
                return

    def _submit_loop(self) -> None:
        parked: list[_Pending] = []
        while True:
            wait = _RESOURCE_POLL_S if parked else None
            if self._watches_workers():
                wait = min(wait or _WORKER_POLL_S, _WORKER_POLL_S)
            batch = list(self._take(wait))
            if batch and all(p is _RELEASE for p in batch):
                # Only releases: give the next submissions a moment to go first.
                batch += self._take(_RELEASE_WAIT_S)
            releasing = _RELEASE in batch
            stopping = None in batch
            pending = [p for p in batch if p is not None and p is not _RELEASE]
            try:
                if stopping:
                    for item in parked + pending:
                        self._emit(
                            item.callback,
                            _failed(
                                item.submission.key, "CancelledError", "the executor was closed"
                            ),
                        )
                    return
                if parked:
                    parked = self._recheck(parked, pending)
                parked.extend(self._place(pending))
            except Exception:  # a bug here must not kill the thread: fail the batch instead
                logger.exception("submitting to Dask failed")
                for item in pending:
                    self._emit(
                        item.callback,
                        _failed(item.submission.key, "ExecutorError", "submitting to Dask failed"),
                    )
            finally:
                if releasing:
                    self._release_forgotten()
                if self._watches_workers():
                    self._check_workers()
                else:  # nothing in flight: the next attempts get the whole worker_wait
                    self._no_workers_since = None

    def _watches_workers(self) -> bool:
        """Whether the submitter should look for a cluster without workers: a scheduler of the
        user's (the embedded cluster's nannies restart its workers), a finite ``worker_wait``,
        and attempts in flight."""
        return (
            self._cluster is None
            and self.worker_wait is not None
            and self._client is not None
            and bool(self._held or self._chunk_of)
        )

    def _check_workers(self) -> None:
        """Fail the attempts in flight with ``NoWorkers`` once the scheduler has had no
        workers for ``worker_wait`` seconds (Dask would keep them for ever)."""
        now = time.monotonic()
        if now - self._workers_checked_at < _WORKER_POLL_S:
            return
        self._workers_checked_at = now
        client = self._client
        if client is None or client.status != "running" or self.worker_wait is None:
            return
        try:
            workers = int(client.scheduler_info(n_workers=0).get("n_workers", 1))
        except Exception:  # the scheduler is busy or gone: ask again at the next poll
            logger.debug("asking the scheduler for its workers failed", exc_info=True)
            return
        if workers:
            self._no_workers_since = None
            return
        if self._no_workers_since is None:
            self._no_workers_since = now
        if now - self._no_workers_since < self.worker_wait:
            return
        with self._lock:
            pending = [f for f in self._held.values() if f.status == "pending"]
            pending += [
                c.future
                for c in {id(c): c for c in self._chunk_of.values()}.values()
                if c.future is not None and c.future.status == "pending"
            ]
        if not pending:
            return
        line = (
            f"the Dask scheduler at {self._address} has had no workers for "
            f"{self.worker_wait:g} s (start some: `dask worker {self._address}`; "
            "JUPYTER_WORKFLOWS_WORKER_WAIT sets how long to wait, 'none' for ever)"
        )
        try:
            client.cancel(pending, reason=_NO_WORKERS, msg=line)
        except Exception:  # best effort: the next poll tries again
            logger.debug("cancelling the attempts without workers failed", exc_info=True)

    def _worker_offers(self, refresh: bool) -> dict[str, dict[str, float]]:
        now = time.monotonic()
        if refresh or now - self._offers_at > _OFFERS_TTL_S:
            client = self._client
            if client is None:
                return self._offers
            workers = client.scheduler_info(n_workers=-1).get("workers", {})
            self._offers = {
                addr: dict(info.get("resources") or {}) for addr, info in workers.items()
            }
            self._offers_at = time.monotonic()
        return self._offers

    def _place(self, pending: list[_Pending]) -> list[_Pending]:
        """Submit what can run now; return the submissions that must wait for resources."""
        ready: list[_Pending] = []
        parked: list[_Pending] = []
        refreshed = False
        for item in pending:
            if self._drop_if_cancelled(item):
                continue
            if item.needs and not _offered(item.needs, self._worker_offers(refresh=False)):
                # The cached view may be stale (a worker just joined): ask once per batch.
                if not refreshed:
                    refreshed = True
                    offered = _offered(item.needs, self._worker_offers(refresh=True))
                else:
                    offered = False
                if not offered:
                    item.deadline = time.monotonic() + self.resource_wait
                    parked.append(item)
                    continue
            ready.append(item)
        self._submit_batch(ready)
        # With no time to wait, fail right away rather than after the next poll.
        return self._recheck(parked, []) if self.resource_wait <= 0 else parked

    def _recheck(self, parked: list[_Pending], into: list[_Pending]) -> list[_Pending]:
        """Move parked submissions whose resources appeared into ``into``; fail the expired."""
        offers = self._worker_offers(refresh=True)
        now = time.monotonic()
        still: list[_Pending] = []
        for item in parked:
            if self._drop_if_cancelled(item):
                continue
            if _offered(item.needs, offers):
                into.append(item)
            elif now >= item.deadline:
                self._emit(
                    item.callback,
                    _resource_error(item.submission.key, item.needs, offers, self.resource_wait),
                )
            else:
                still.append(item)
        return still

    def _drop_if_cancelled(self, item: _Pending) -> bool:
        key = item.submission.key
        with self._lock:
            if key not in self._cancelled:
                return False
            self._cancelled.discard(key)
        self._emit(
            item.callback, _failed(key, "CancelledError", f"{key} was cancelled before it started")
        )
        return True

    def _prepare(
        self,
        item: _Pending,
        client: Client,
        pickled: dict[int, tuple[Callable[..., Any], bytes, Any]],
        push: bool,
    ) -> tuple[bytes, dict[str, Future]] | None:
        """The payload and upstream futures for one submission, or ``None`` after failing it.

        ``pickled`` caches each function's pickle for one wave: a notebook function travels by
        value, and pickling it once for 2000 items instead of 2000 times matters. (Not longer
        than a wave: the pickle holds the values of the globals it uses, which may change.)
        """
        sub = item.submission
        refs: dict[str, Future] = {}
        plain: dict[str, Any] = {}
        with self._lock:
            if sub.key in self._held or sub.key in client.futures:
                self._emit(
                    item.callback,
                    _failed(
                        sub.key,
                        "ValueError",
                        f"key {sub.key!r} was already submitted; every attempt needs a new key",
                    ),
                )
                return None
            for name, value in sub.kwargs.items():
                if isinstance(value, ResultRef):
                    future = self._held.get(value.key)
                    if future is None:
                        self._emit(
                            item.callback,
                            _failed(
                                sub.key,
                                "KeyError",
                                f"the result of {value.key!r} (argument {name!r}) is not held",
                            ),
                        )
                        return None
                    refs[name] = future
                else:
                    plain[name] = value
        try:
            to = (self._topic, sub.key) if push else None
            progress = (
                (self._topic, sub.key) if self._pushing and sub.on_progress is not None else None
            )
            cached = pickled.get(id(sub.fn))
            if cached is None:
                problem, code = self._ship_code(client, sub.fn)
                if problem is not None:
                    self._emit(item.callback, _failed(sub.key, "ShippingError", problem))
                    return None
                try:
                    fn_bytes = cloudpickle.dumps(sub.fn, protocol=5)
                except Exception as exc:
                    self._emit(
                        item.callback,
                        _failed(sub.key, type(exc).__name__, _unshippable(sub.fn, exc)),
                    )
                    return None
                cached = pickled[id(sub.fn)] = (sub.fn, fn_bytes, code)
            keep = _keep(sub)
            payload = cloudpickle.dumps(
                (cached[1], plain, sub.context, sub.wants_context, to, progress, keep, cached[2]),
                protocol=5,
            )
        except Exception as exc:
            self._emit(item.callback, _failed_by(sub.key, exc))
            return None
        return payload, refs

    def _ship_code(
        self, client: Client, fn: Callable[..., Any]
    ) -> tuple[str | None, tuple[str, str, tuple[str, ...]] | None]:
        """Make sure the workers can import ``fn``'s module when it lives in a user's folder
        (see :class:`_ShippedCode`). Returns ``(one-line problem or None, code)``, ``code``
        being ``(folder label, version, module names it provides)`` for
        :func:`_load_function`, or
        ``None`` when ``fn`` needs nothing shipped.

        Checked once per wave and function: the files' sizes and times are compared with what
        was shipped last, and only a change reads and ships them again.
        """
        found = _code_root(fn)
        if found is None:
            return None, None
        top, root = found
        try:
            files = _code_files(root)
            signature = tuple(
                sorted((rel, p.stat().st_mtime_ns, p.stat().st_size) for rel, p in files.items())
            )
        except OSError as exc:
            return f"cannot read module {top!r} ({root}): {exc.strerror or exc}", None
        label = hashlib.sha256(str(root.parent).encode()).hexdigest()[:12]
        names = tuple(sorted({rel.partition("/")[0].removesuffix(".py") for rel in files}))
        with self._lock:
            shipped = self._shipped.get(label)
            if shipped is not None and shipped[0] == signature:
                return None, (label, shipped[1][:16], names)
        total = sum(size for _, _, size in signature)
        if total > _SHIP_MAX_BYTES:
            return (
                f"module {top!r}: the Python files in {root.parent} are {total / 2**20:.0f} MiB, "
                f"more than the {_SHIP_MAX_BYTES // 2**20} MiB shipped to workers; install it "
                "on the workers instead"
            ), None
        try:
            contents = {rel: path.read_bytes() for rel, path in files.items()}
        except OSError as exc:
            return f"cannot read module {top!r} ({root}): {exc.strerror or exc}", None
        digest = hashlib.sha256()
        for rel in sorted(contents):
            digest.update(rel.encode() + b"\0" + contents[rel] + b"\0")
        try:
            client.register_plugin(
                _ShippedCode(label, digest.hexdigest(), str(root.parent), contents),
                name=f"jupyter-workflows-code-{label}",
            )
        except Exception as exc:
            return f"cannot ship module {top!r} to the workers: {error_line(exc)}", None
        with self._lock:
            self._shipped[label] = (signature, digest.hexdigest())
        return None, (label, digest.hexdigest()[:16], names)

    def _submit_batch(self, ready: list[_Pending]) -> None:
        """Submit in waves: a submission whose ResultRef names another one of this batch goes
        after it, once that one's future is held (the engine submits a task's successor
        right behind it when it can start it speculatively)."""
        remaining = ready
        while remaining:
            keys = {item.submission.key for item in remaining}
            now: list[_Pending] = []
            later: list[_Pending] = []
            for item in remaining:
                waits = any(
                    isinstance(v, ResultRef) and v.key in keys and v.key not in self._held
                    for v in item.submission.kwargs.values()
                )
                (later if waits else now).append(item)
            if not now:  # a cycle of references: let _prepare report them
                now, later = later, []
            self._submit_wave(now)
            remaining = later

    def _submit_wave(self, ready: list[_Pending]) -> None:
        client = self._client
        if client is not None and ready:
            connected = self._connected(client)
            if connected is None:
                # Lost the scheduler: what Dask is given now may never come back (futures
                # made while it reconnects or closes can stay pending for ever). Fail them.
                lost = SchedulerLost(_lost_line(self._address, client.status))
                for item in ready:
                    self._emit(item.callback, _failed_by(item.submission.key, lost))
                return
            client = connected
        if client is not None and self._tune_client:
            tune_client(client)  # a reconnected client has a new stream
        if client is not None and time.monotonic() - self._nthreads_at > _OFFERS_TTL_S:
            try:
                self._nthreads = sum(client.nthreads().values())
            except Exception:  # the gather window is an optimisation: go on without it
                self._nthreads = 0
            self._nthreads_at = time.monotonic()
        if client is None or not ready:
            for item in ready:
                self._emit(
                    item.callback,
                    _failed(item.submission.key, "CancelledError", "the executor was closed"),
                )
            return
        pickled: dict[int, tuple[Callable[..., Any], bytes, Any]] = {}
        chunked = [
            item
            for item in ready
            if item.submission.chunk_group is not None
            and item.submission.chunk_size != 1
            and not any(isinstance(v, ResultRef) for v in item.submission.kwargs.values())
        ]
        if chunked:
            self._submit_chunks(client, chunked, pickled)
            if len(chunked) == len(ready):
                return
            taken = {id(item) for item in chunked}
            ready = [item for item in ready if id(item) not in taken]
        groups: dict[
            tuple[tuple[tuple[str, float], ...], int],
            list[tuple[_Pending, bytes, dict[str, Future]]],
        ] = {}
        seen: set[str] = set()
        # Publishing outcomes saves latency (a chain), but an event per task costs the scheduler
        # more than one gather per batch does when many independent tasks are queued (a
        # fan-out): those are gathered, batched, instead.
        free = sum(
            not any(isinstance(v, ResultRef) for v in item.submission.kwargs.values())
            for item in ready
        )
        push = self._pushing and (
            free + self._free_pending <= _BUSY_FACTOR * max(1, self._nthreads)
        )
        for item in ready:
            key = item.submission.key
            if key in seen:
                self._emit(
                    item.callback, _failed(key, "ValueError", f"key {key!r} was submitted twice")
                )
                continue
            prepared = self._prepare(item, client, pickled, push)
            if prepared is None:
                continue
            seen.add(key)
            group = (tuple(sorted(item.needs.items())), int(item.submission.priority or 0))
            groups.setdefault(group, []).append((item, *prepared))
        for (needs, priority), members in groups.items():
            try:
                futures = client.map(
                    run_shipped,
                    [payload for _, payload, _ in members],
                    [refs for _, _, refs in members],
                    key=[item.submission.key for item, _, _ in members],
                    resources=dict(needs) or None,
                    priority=priority,
                    pure=False,
                    retries=0,
                )
            except Exception as exc:
                for item, _, _ in members:
                    self._emit(
                        item.callback, _failed_by(item.submission.key, self._why(client, exc))
                    )
                continue
            with self._lock:
                for (item, _, _), future in zip(members, futures, strict=True):
                    self._held[item.submission.key] = future
                    if item.submission.chunk_group is not None:
                        # An item: nothing refers to its result once its outcome is out.
                        self._transient.add(item.submission.key)
                # Cancelled while on its way: it has a future now, so cancel that.
                late = [f for f in futures if f.key in self._cancelled]
                self._cancelled.difference_update(f.key for f in late)
            self._watch(
                client,
                [
                    (f, item.callback, not refs, item.submission.on_progress)
                    for (item, _, refs), f in zip(members, futures, strict=True)
                ],
            )
            for future in late:
                future.cancel()

    def _why(self, client: Client, exc: BaseException) -> BaseException:
        """What to fail a submission with when ``client.map`` raised ``exc``."""
        if client.status != "running":  # it lost the scheduler meanwhile
            return SchedulerLost(_lost_line(self._address, client.status))
        return exc

    def _submit_chunks(
        self,
        client: Client,
        items: list[_Pending],
        pickled: dict[int, tuple[Callable[..., Any], bytes, Any]],
    ) -> None:
        """Submit items of ``with_items`` tasks as chunks: one Dask task (:func:`run_chunk`)
        per ``chunk_size`` items of one group, in item order. The chunk's key is its first
        member's key plus ``-x{count}``, so the dashboard still shows workflow and task."""
        groups: dict[tuple[str, tuple[tuple[str, float], ...], int], list[_Pending]] = {}
        for item in items:
            sub = item.submission
            with self._lock:
                taken = sub.key in self._held or sub.key in self._chunk_of
            if taken:
                self._emit(
                    item.callback,
                    _failed(
                        sub.key,
                        "ValueError",
                        f"key {sub.key!r} was already submitted; every attempt needs a new key",
                    ),
                )
                continue
            group = (
                str(sub.chunk_group),
                tuple(sorted(item.needs.items())),
                int(sub.priority or 0),
            )
            groups.setdefault(group, []).append(item)
        for (_, needs, priority), members in groups.items():
            first = members[0].submission
            size = first.chunk_size or auto_chunk_size(
                first.chunk_span or len(members), self._nthreads
            )
            chunks: list[_Chunk] = []
            payloads: list[bytes] = []
            for start in range(0, len(members), size):
                part = members[start : start + size]
                try:
                    payload = self._chunk_payload(client, part, pickled)
                except Exception as exc:
                    payload = (type(exc).__name__, error_line(exc).partition(": ")[2])
                if isinstance(payload, tuple):  # the function cannot reach the workers
                    for item in part:
                        self._emit(item.callback, _failed(item.submission.key, *payload))
                    continue
                payloads.append(payload)
                chunks.append(_Chunk(f"{part[0].submission.key}-x{len(part)}", part))
            if not chunks:
                continue
            with self._lock:
                for chunk in chunks:
                    for item in chunk.members:
                        self._chunk_of[item.submission.key] = chunk
            try:
                futures = client.map(
                    run_chunk,
                    payloads,
                    [len(chunk.members) for chunk in chunks],
                    key=[chunk.key for chunk in chunks],
                    resources=dict(needs) or None,
                    priority=priority,
                    pure=False,
                    retries=0,
                )
            except Exception as exc:
                with self._lock:
                    for chunk in chunks:
                        for item in chunk.members:
                            self._chunk_of.pop(item.submission.key, None)
                for chunk in chunks:
                    for item in chunk.members:
                        self._emit(
                            item.callback, _failed_by(item.submission.key, self._why(client, exc))
                        )
                continue
            late: list[Future] = []
            with self._lock:
                for chunk, future in zip(chunks, futures, strict=True):
                    chunk.future = future
                    # Cancelled while on its way: a chunk all of whose members were goes.
                    gone = {m.submission.key for m in chunk.members} & self._cancelled
                    if gone:
                        self._cancelled.difference_update(gone)
                        chunk.cancelled.update(gone)
                        if len(chunk.cancelled) == len(chunk.members):
                            late.append(future)
            self._watch(
                client,
                [
                    (future, chunk, True, None)
                    for chunk, future in zip(chunks, futures, strict=True)
                ],
            )
            for future in late:
                future.cancel()

    def _chunk_payload(
        self,
        client: Client,
        part: list[_Pending],
        pickled: dict[int, tuple[Callable[..., Any], bytes, Any]],
    ) -> bytes | tuple[str, str]:
        """The pickled chunk, or ``(error type, message)`` when its function cannot be shipped
        (the function goes as :meth:`_prepare` sends it: its folder's code shipped, once)."""
        fn = part[0].submission.fn
        cached = pickled.get(id(fn))
        if cached is None:
            problem, code = self._ship_code(client, fn)
            if problem is not None:
                return "ShippingError", problem
            try:
                fn_bytes = cloudpickle.dumps(fn, protocol=5)
            except Exception as exc:
                return type(exc).__name__, _unshippable(fn, exc)
            cached = pickled[id(fn)] = (fn, fn_bytes, code)
        members = []
        for item in part:
            sub = item.submission
            if sub.fn is not fn:  # one group is one task: one function
                raise ValueError(f"{sub.key}: a chunk's members must share their function")
            members.append((sub.kwargs, sub.context))
        first = part[0].submission
        keep = _keep(first)
        return cloudpickle.dumps(
            (cached[1], first.wants_context, members, keep, cached[2]), protocol=5
        )

    def _deliver_chunk(self, chunk: _Chunk, future: Future, envelopes: Any) -> None:
        """In the drain thread: each member of a finished chunk gets its own outcome; when the
        chunk as a whole failed (a worker died every time, it was cancelled), all get that."""
        with self._lock:
            for item in chunk.members:
                if self._chunk_of.get(item.submission.key) is chunk:
                    del self._chunk_of[item.submission.key]
        members = chunk.members
        if isinstance(envelopes, list) and len(envelopes) == len(members):
            outcomes = [
                _replace(self._outcome(future, envelope), key=item.submission.key)
                for item, envelope in zip(members, envelopes, strict=True)
            ]
        else:
            failed = self._outcome(future, envelopes)
            outcomes = [_replace(failed, key=item.submission.key) for item in members]
        for item, outcome in zip(members, outcomes, strict=True):
            try:
                item.callback(outcome)
            except Exception:
                logger.exception("outcome callback for %s failed", outcome.key)

    # -- completions: watched in the client's loop, handed to the drain thread -----------------

    def _watch(self, client: Client, pairs: list[_Watched]) -> None:
        """Hand each future, with its envelope, to the drain thread once it is done.

        ``Future.add_done_callback`` costs a thread-safe loop wake-up per future and a hop
        through Dask's callback thread pool, and a ``client.gather`` from another thread costs
        a sync round trip into the loop: on a small machine, where the embedded scheduler shares
        this process's GIL, those were most of the engine's overhead. Here one loop callback per
        wave starts one light waiter per future (what Dask's own ``done_callback`` does, minus
        the thread pool), and finished futures are gathered from inside the loop, one gather at
        a time: whatever finishes while a gather is under way goes in the next one, so batches
        grow with the load and outcomes keep the order in which their futures finished.
        Without the ``FutureState.wait`` this relies on (another Dask version), it falls back
        to ``add_done_callback`` and gathers from the drain thread.

        ``pairs`` holds ``(future, callback, free)``; ``free`` says the task waits on no other
        future. Free pending futures are the queued work that decides whether the cluster is
        busy (see :data:`_BUSY_FACTOR`); a chain of dependent futures is not.
        """
        if not pairs:
            return
        if not _CAN_WATCH:
            for future, callback, _, _ in pairs:
                future.add_done_callback(functools.partial(self._on_done, callback))
            return
        loop = client.loop
        assert loop is not None, "a connected client has an event loop"
        loop.add_callback(self._watch_in_loop, client, pairs)

    def _on_done(self, callback: Callable[[Outcome], None], future: Future) -> None:
        # Runs in Dask's callback thread: only enqueue, never raise.
        self._done_queue.put((future, _UNGATHERED, callback))

    def _watch_in_loop(self, client: Client, pairs: list[_Watched]) -> None:
        if client.status != "running":
            # Submitted as the connection went: Dask cancelled the futures it had then, and
            # this one may never finish (see _submit_wave). Its attempt is abandoned.
            lost = SchedulerLost(_lost_line(self._address, client.status))
            for future, callback, _, _ in pairs:
                self._early.pop(_key_of(future), None)
                self._done_queue.put((future, lost, callback))
            return
        loop = asyncio.get_running_loop()
        for future, callback, free, on_progress in pairs:
            data = self._early.pop(_key_of(future), None)
            if data is not None:  # its outcome was published before we got here
                self._done_queue.put((future, _Pushed(data), callback))
                continue
            self._expected[_key_of(future)] = (future, callback)
            if on_progress is not None:
                self._on_progress[_key_of(future)] = on_progress
            if future.status != "pending":
                self._finished(client, future, callback)
            else:
                self._free_pending += free
                task = loop.create_task(self._wait_then_finish(client, future, callback, free))
                self._waiters.add(task)  # the loop keeps only weak references to tasks
                task.add_done_callback(self._waiters.discard)

    async def _wait_then_finish(
        self, client: Client, future: Future, callback: Callable[[Outcome], None], free: bool
    ) -> None:
        try:
            while future.status == "pending":
                state = future._state
                assert state is not None, "a pending future has a state"
                await state.wait()
        finally:  # never lose an outcome, whatever happened to the wait
            self._free_pending -= free
            self._finished(client, future, callback)

    def _on_pushed(self, event: tuple[float, list[Any]]) -> None:
        """In the loop: a worker published an outcome (see :func:`run_shipped`)."""
        message = event[1]
        if isinstance(message, (list, tuple)) and len(message) == 3:
            self._progressed(*message)
            return
        try:
            key, data = message
        except (TypeError, ValueError):  # not ours: the topic is private, but be safe
            return
        self._on_progress.pop(key, None)
        entry = self._expected.pop(key, None)
        if entry is None:
            # Not watched yet (or a re-run of a task whose outcome we already have).
            self._early[key] = data
            while len(self._early) > _BATCH:
                self._early.popitem(last=False)
            return
        future, callback = entry
        self._done_queue.put((future, _Pushed(data), callback))

    def _progressed(self, key: str, done: int, total: int) -> None:
        on_progress = self._on_progress.get(key)
        if on_progress is None:  # finished already, or not watched yet: nothing to update
            return
        try:
            on_progress(done, total)  # only queues an event for the orchestrator
        except Exception:
            logger.exception("progress callback for %s failed", key)

    def _finished(
        self, client: Client, future: Future, callback: Callable[[Outcome], None]
    ) -> None:
        """In the loop: queue ``future`` for the next gather, starting one if none is running.

        Nothing to do when its outcome was published (and so already handed on).
        """
        self._on_progress.pop(_key_of(future), None)
        if self._expected.pop(_key_of(future), None) is None:
            return
        self._early.pop(_key_of(future), None)
        self._finished_batch.append((future, callback))
        if not self._gathering:
            self._gathering = True
            task = asyncio.get_running_loop().create_task(self._gather_in_loop(client))
            self._waiters.add(task)
            task.add_done_callback(self._waiters.discard)

    async def _gather_in_loop(self, client: Client) -> None:
        try:
            while self._finished_batch:
                if self._free_pending > _BUSY_FACTOR * max(1, self._nthreads):
                    await asyncio.sleep(_GATHER_WINDOW_S)
                batch, self._finished_batch = self._finished_batch, []
                wanted = {f.key: f for f, _ in batch if f.status not in ("error", "cancelled")}
                envelopes: dict[str, Any] = {}
                if wanted:
                    try:
                        envelopes = await client.gather(wanted, errors="skip", asynchronous=True)
                    except Exception:  # the drain thread gathers these one by one
                        logger.debug("batch gather failed", exc_info=True)
                for future, callback in batch:
                    # Errored and cancelled futures have no envelope: _outcome reads their status.
                    envelope = (
                        envelopes.get(_key_of(future), _UNGATHERED)
                        if _key_of(future) in wanted
                        else None
                    )
                    self._done_queue.put((future, envelope, callback))
        finally:
            self._gathering = False
            for future, callback in self._finished_batch:  # only after a failure above
                self._done_queue.put((future, _UNGATHERED, callback))
            self._finished_batch = []

    def _emit(self, callback: Callable[[Outcome], None], outcome: Outcome) -> None:
        self._done_queue.put((outcome, None, callback))

    def _drain_loop(self) -> None:
        while True:
            batch = [self._done_queue.get()]
            while len(batch) < _BATCH and batch[-1] is not None:
                try:
                    batch.append(self._done_queue.get_nowait())
                except queue.Empty:
                    break
            entries = [entry for entry in batch if entry is not None]
            try:
                late = self._gather(
                    [f for f, env, _ in entries if env is _UNGATHERED and isinstance(f, Future)]
                )
            except Exception:  # pragma: no cover - _gather handles its own failures
                logger.exception("gathering results failed")
                late = {}
            for item, envelope, callback in entries:
                if isinstance(item, Outcome):
                    outcome = item
                else:
                    try:
                        if envelope is _UNGATHERED:
                            envelope = late.get(_key_of(item))
                        elif isinstance(envelope, _Pushed):
                            envelope = envelope.load()
                        if isinstance(callback, _Chunk):
                            self._deliver_chunk(callback, item, envelope)
                            continue
                        outcome = self._outcome(item, envelope)
                    except Exception as exc:  # a bug here must not lose the outcome: fail it
                        if isinstance(callback, _Chunk):  # no member has heard yet: all fail
                            logger.debug("reading the chunk %s failed", item.key, exc_info=True)
                            for member in callback.members:
                                key = member.submission.key
                                line = f"reading the outcome of {key} failed: {error_line(exc)}"
                                try:
                                    member.callback(_failed(key, "InternalError", line))
                                except Exception:
                                    logger.exception("outcome callback for %s failed", key)
                            continue
                        logger.debug("reading the outcome of %s failed", item.key, exc_info=True)
                        outcome = _failed(
                            _key_of(item),
                            "InternalError",
                            f"reading the outcome of {item.key} failed: {error_line(exc)}",
                        )
                    if item.key in self._transient:
                        with self._lock:  # let Dask forget it now, not when the run ends
                            self._transient.discard(item.key)
                            self._held.pop(item.key, None)
                try:
                    callback(outcome)
                except Exception:
                    logger.exception("outcome callback for %s failed", outcome.key)
            if len(entries) < len(batch):
                return

    def _gather(self, futures: list[Future]) -> dict[str, Any]:
        """Envelopes of the futures that finished, fetched in one round trip."""
        wanted = {_key_of(f): f for f in futures if f.status not in ("error", "cancelled")}
        client = self._client
        if not wanted or client is None:
            return {}
        try:
            return client.gather(wanted, errors="skip")
        except Exception:
            logger.debug("batch gather failed; gathering one by one", exc_info=True)
        envelopes: dict[str, Any] = {}
        for key, future in wanted.items():
            try:
                envelopes[key] = future.result(timeout=30)
            except BaseException as exc:  # becomes the outcome
                transport = (OSError, TimeoutError, asyncio.CancelledError, _FutureCancelled)
                if future.status != "finished" or isinstance(exc, transport):
                    envelopes[key] = exc  # the task or the connection failed
                else:  # it came back, and cannot be unpickled here
                    envelopes[key] = _Unreadable(exc)
        return envelopes

    def _outcome(self, future: Future, envelope: Any) -> Outcome:
        key = _key_of(future)
        if isinstance(envelope, Envelope):
            return envelope.outcome(key)
        if isinstance(envelope, _Unreadable):
            return envelope.outcome(key)
        if isinstance(envelope, BaseException):
            return _failed_by(key, envelope)
        status = future.status
        if status == "cancelled":
            if _cancelled_by_connection_loss(future):
                self._lost_seen = True  # set up again on the next submission
                client = self._client
                now = client.status if client is not None else "closed"
                return _failed_by(key, SchedulerLost(_lost_line(self._address, now)))
            reason, why = _cancel_reason(future)
            if reason == _NO_WORKERS and why:
                return _failed(key, "NoWorkers", why)
            return _failed(key, "CancelledError", f"{key} was cancelled")
        if status == "error":
            try:
                exc = future.exception(timeout=10)
            except BaseException as error:  # becomes the outcome
                exc = error
            if exc is not None:
                return _failed_by(key, exc)
        return _failed(key, "ExecutorError", f"no result for {key} (future {status})")


def _scheduler_id(client: Client) -> str | None:
    """The id of the scheduler ``client`` is connected to, as Dask last heard it (no round
    trip: the client refreshes it as it connects, and every few seconds)."""
    identity = getattr(client, "_scheduler_identity", None) or {}
    return cast("str | None", identity.get("id"))


def _scheduler_address(client: Client, scheduler: SchedulerSpec) -> str:
    try:
        return str(client.scheduler.address)
    except Exception:  # no rpc yet: the address it was given
        return scheduler if isinstance(scheduler, str) else "?"


def _key_of(future: Any) -> str:
    """A future's key: this executor submits every task under a string key (Dask's ``Key``
    type also allows ints and tuples, which never occur here)."""
    return cast(str, future.key)


_default: DaskExecutor | None = None
_default_lock = threading.Lock()
_UNSET: Any = object()


def get_default_executor(scheduler: SchedulerSpec = _UNSET) -> DaskExecutor:
    """The process-wide Dask executor: one embedded cluster (or one connection) per process.

    Without ``scheduler``: the current one, else one for ``$JUPYTER_WORKFLOWS_SCHEDULER``, else
    an embedded cluster. With a different ``scheduler`` than the current one, the current one is
    closed and replaced.
    """
    global _default
    with _default_lock:
        if scheduler is _UNSET:
            if _default is not None:
                return _default
            scheduler = os.environ.get("JUPYTER_WORKFLOWS_SCHEDULER") or None
        if _default is not None:
            same = _default.scheduler is scheduler or (
                isinstance(scheduler, str) and _default.scheduler == scheduler
            )
            if same:
                return _default
            _default.close()
        _default = DaskExecutor(scheduler)
        return _default


def shutdown_default_executor() -> None:
    """Close the process-wide executor (and its embedded cluster), if any."""
    global _default
    with _default_lock:
        executor, _default = _default, None
    if executor is not None:
        executor.close()


atexit.register(shutdown_default_executor)
