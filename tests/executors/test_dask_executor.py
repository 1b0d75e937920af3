"""DaskExecutor on a real LocalCluster (2 worker processes, 1 thread each, on 127.0.0.1)."""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Iterator

import psutil
import pytest
from dask.utils import key_split

from jupyter_workflows.executors.base import Outcome, ResultRef, Submission
from jupyter_workflows.executors.dask import (
    DaskExecutor,
    embedded_cluster_size,
    get_default_executor,
    shutdown_default_executor,
)
from jupyter_workflows.testing import local_cluster

pytestmark = pytest.mark.timeout(60)


class Collector:
    """An outcome callback that remembers outcomes and the threads that delivered them."""

    def __init__(self) -> None:
        self.outcomes: dict[str, Outcome] = {}
        self.threads: set[str] = set()
        self.duplicates: list[str] = []
        self._cond = threading.Condition()

    def __call__(self, outcome: Outcome) -> None:
        with self._cond:
            if outcome.key in self.outcomes:
                self.duplicates.append(outcome.key)
            self.outcomes[outcome.key] = outcome
            self.threads.add(threading.current_thread().name)
            self._cond.notify_all()

    def wait(self, *keys: str, timeout: float = 20) -> list[Outcome]:
        with self._cond:
            assert self._cond.wait_for(lambda: all(k in self.outcomes for k in keys), timeout), (
                f"no outcome for {[k for k in keys if k not in self.outcomes][:5]}"
            )
            return [self.outcomes[k] for k in keys]


@pytest.fixture(scope="module")
def client() -> Iterator[object]:
    with local_cluster(n_workers=2, threads_per_worker=1) as c:
        yield c


@pytest.fixture
def executor(client: object) -> Iterator[DaskExecutor]:
    ex = DaskExecutor(client, resource_wait=2.0)
    yield ex
    ex.close()


def noop() -> None:
    return None


def numbers(n: int) -> list[int]:
    return list(range(n))


def total(values: list[int], plus: int = 0) -> int:
    return sum(values) + plus


def chatty(n: int) -> int:
    print(f"printed {n}")
    logging.getLogger("user.task").warning("logged %d", n)
    return n


def broken(n: int) -> None:
    print("about to fail")
    raise ValueError(f"bad input {n}\nsecond line")


def nap(seconds: float) -> float:
    time.sleep(seconds)
    return seconds


def test_many_submissions_each_call_back_once(executor: DaskExecutor) -> None:
    got = Collector()
    keys = [f"bulk.noop-abcdef12-{i}" for i in range(500)]
    for key in keys:
        executor.submit(Submission(key, noop, {}), got)
    outcomes = got.wait(*keys, timeout=50)
    assert all(o.ok for o in outcomes)
    assert got.duplicates == []
    assert got.threads == {"jupyter-workflows-dask-drain"}
    assert sorted(executor.held_keys()) == sorted(keys)
    workers = {o.worker for o in outcomes}
    assert all(w and w.split(":")[1] != str(os.getpid()) for w in workers)  # ran elsewhere


def test_result_ref_passes_data_between_tasks(executor: DaskExecutor) -> None:
    got = Collector()
    executor.submit(Submission("data.make-abcdef12-1", numbers, {"n": 100}), got)
    (made,) = got.wait("data.make-abcdef12-1")
    assert made.ok and made.result == list(range(100))
    executor.submit(
        Submission(
            "data.sum-abcdef12-2", total, {"values": ResultRef("data.make-abcdef12-1"), "plus": 1}
        ),
        got,
    )
    (summed,) = got.wait("data.sum-abcdef12-2")
    assert summed.ok and summed.result == 4951


def test_ref_to_an_unheld_result_fails_cleanly(executor: DaskExecutor) -> None:
    got = Collector()
    executor.submit(Submission("data.make-abcdef12-1", numbers, {"n": 3}), got)
    got.wait("data.make-abcdef12-1")
    executor.forget(["data.make-abcdef12-1"])
    assert executor.held_keys() == []
    executor.submit(
        Submission("data.sum-abcdef12-2", total, {"values": ResultRef("data.make-abcdef12-1")}), got
    )
    (outcome,) = got.wait("data.sum-abcdef12-2")
    assert not outcome.ok and outcome.error_type == "KeyError"


def test_task_error_is_one_line_and_keeps_logs(executor: DaskExecutor) -> None:
    got = Collector()
    executor.submit(Submission("err.broken-abcdef12-1", broken, {"n": 3}), got)
    (outcome,) = got.wait("err.broken-abcdef12-1")
    assert not outcome.ok
    assert outcome.error == "ValueError: bad input 3"
    assert outcome.error_type == "ValueError"
    assert "about to fail" in outcome.logs


def test_print_and_logging_inside_the_task_reach_the_outcome(executor: DaskExecutor) -> None:
    got = Collector()
    executor.submit(Submission("logs.chatty-abcdef12-1", chatty, {"n": 5}), got)
    (outcome,) = got.wait("logs.chatty-abcdef12-1")
    assert outcome.ok and outcome.result == 5
    assert outcome.logs == ["printed 5", "WARNING user.task: logged 5"]
    assert outcome.started_at is not None and outcome.ended_at is not None


def test_context_reaches_the_worker(executor: DaskExecutor) -> None:
    def describe(context: object) -> tuple[object, ...]:
        return (context.run_id, context.task, context.attempt, context.index)  # type: ignore[attr-defined]

    got = Collector()
    ctx = {"run_id": "abc", "task": "describe", "attempt": 3, "index": 4}
    executor.submit(
        Submission("ctx.describe-abcdef12-1", describe, {}, context=ctx, wants_context=True), got
    )
    (outcome,) = got.wait("ctx.describe-abcdef12-1")
    assert outcome.result == ("abc", "describe", 3, 4)


@pytest.mark.parametrize(
    ("key", "prefix"),
    [
        ("deploy.build-1a2b3c4d-3", "deploy.build"),
        ("deploy.build-deadbeef-12", "deploy.build"),
        ("deploy.build-12345678-0", "deploy.build"),
        ("my_flow.train_model-0f9e8d7c-41", "my_flow.train_model"),
        ("etl.check-db-abcdef12-1", "etl.check-db"),
    ],
)
def test_engine_key_format_groups_by_workflow_and_task(key: str, prefix: str) -> None:
    assert key_split(key) == prefix


def test_scheduler_sees_keys_named_after_workflow_and_task(
    executor: DaskExecutor, client: object
) -> None:
    got = Collector()
    key = "deploy.build-1a2b3c4d-7"
    executor.submit(Submission(key, numbers, {"n": 2}), got)
    got.wait(key)

    def task_groups(dask_scheduler: object) -> dict[str, str]:
        return {str(k): ts.group_key for k, ts in dask_scheduler.tasks.items()}  # type: ignore[attr-defined]

    groups = client.run_on_scheduler(task_groups)  # type: ignore[attr-defined]
    assert groups[key] == "deploy.build"


def test_missing_resource_fails_with_resource_error_in_time(executor: DaskExecutor) -> None:
    got = Collector()
    started = time.monotonic()
    executor.submit(Submission("res.train-abcdef12-1", noop, {}, resources={"GPU": 1}), got)
    executor.submit(Submission("res.other-abcdef12-2", noop, {}), got)
    other, train = got.wait("res.other-abcdef12-2", "res.train-abcdef12-1", timeout=10)
    waited = time.monotonic() - started
    assert other.ok
    assert not train.ok and train.error_type == "ResourceError"
    assert train.error is not None
    assert train.error.startswith("ResourceError: no worker offers GPU=1")
    assert "\n" not in train.error
    assert 1.5 <= waited < 6
    # the wait for GPU did not hold back the other submission
    assert got.outcomes and next(iter(got.outcomes)) == "res.other-abcdef12-2"


def test_missing_queue_names_the_way_to_serve_it(executor: DaskExecutor) -> None:
    got = Collector()
    executor.submit(Submission("res.gpu_job-abcdef12-1", noop, {}, queue="gpu"), got)
    (outcome,) = got.wait("res.gpu_job-abcdef12-1", timeout=10)
    assert not outcome.ok and outcome.error_type == "ResourceError"
    assert "queue-gpu=1" in (outcome.error or "")
    assert "--resources queue-gpu=1e9" in (outcome.error or "")


def test_resources_that_exist_run() -> None:
    offered = {"GPU": 2, "queue-gpu": 1e9}
    with (
        local_cluster(n_workers=1, threads_per_worker=1, processes=False, resources=offered) as c,
        DaskExecutor(c, resource_wait=2) as ex,
    ):
        got = Collector()
        needs = Submission(
            "res.fit-abcdef12-1", numbers, {"n": 2}, resources={"GPU": 2}, queue="gpu"
        )
        ex.submit(needs, got)
        (outcome,) = got.wait("res.fit-abcdef12-1")
        assert outcome.ok and outcome.result == [0, 1]


def test_cancel_a_running_task(executor: DaskExecutor) -> None:
    got = Collector()
    # Dask cannot stop a running thread: the nap goes on after the cancel, keeping its worker
    # busy, so it is kept short for the tests that follow.
    executor.submit(Submission("cancel.nap-abcdef12-1", nap, {"seconds": 3}), got)
    time.sleep(0.5)
    executor.cancel("cancel.nap-abcdef12-1")
    (outcome,) = got.wait("cancel.nap-abcdef12-1", timeout=2)  # before the nap would end
    assert not outcome.ok and outcome.error_type == "CancelledError"


def test_reused_key_fails_instead_of_returning_the_old_result(executor: DaskExecutor) -> None:
    first, second = Collector(), Collector()
    executor.submit(Submission("dup.a-abcdef12-1", numbers, {"n": 1}), first)
    first.wait("dup.a-abcdef12-1")
    executor.submit(Submission("dup.a-abcdef12-1", numbers, {"n": 5}), second)
    (outcome,) = second.wait("dup.a-abcdef12-1")
    assert not outcome.ok and outcome.error_type == "ValueError"


def test_forget_releases_results_on_the_cluster(executor: DaskExecutor, client: object) -> None:
    got = Collector()
    executor.submit(Submission("gc.make-abcdef12-1", numbers, {"n": 10}), got)
    got.wait("gc.make-abcdef12-1")

    def has(dask_scheduler: object, key: str) -> bool:
        return key in dask_scheduler.tasks  # type: ignore[attr-defined]

    assert client.run_on_scheduler(has, key="gc.make-abcdef12-1")  # type: ignore[attr-defined]
    executor.forget(["gc.make-abcdef12-1"])
    deadline = time.monotonic() + 10
    while client.run_on_scheduler(has, key="gc.make-abcdef12-1"):  # type: ignore[attr-defined]
        assert time.monotonic() < deadline, "the scheduler still holds a forgotten result"
        time.sleep(0.1)


def test_unpicklable_input_fails_the_attempt_only(executor: DaskExecutor) -> None:
    got = Collector()
    executor.submit(Submission("bad.input-abcdef12-1", total, {"values": threading.Lock()}), got)
    executor.submit(Submission("bad.fine-abcdef12-2", numbers, {"n": 1}), got)
    bad, fine = got.wait("bad.input-abcdef12-1", "bad.fine-abcdef12-2")
    assert not bad.ok and "lock" in (bad.error or "").lower()
    assert fine.ok


def test_closing_a_borrowed_client_leaves_it_open(client: object) -> None:
    ex = DaskExecutor(client)
    got = Collector()
    ex.submit(Submission("borrow.n-abcdef12-1", numbers, {"n": 1}), got)
    got.wait("borrow.n-abcdef12-1")
    ex.close()
    assert client.status == "running"  # type: ignore[attr-defined]


def test_default_executor_is_one_per_process(client: object) -> None:
    first = get_default_executor(client)
    try:
        assert get_default_executor() is first
        assert get_default_executor(client) is first
        shutdown_default_executor()
        assert client.status == "running"  # type: ignore[attr-defined]
        second = get_default_executor(client)
        assert second is not first
        got = Collector()
        second.submit(Submission("default.n-abcdef12-1", numbers, {"n": 2}), got)
        assert got.wait("default.n-abcdef12-1")[0].result == [0, 1]
    finally:
        shutdown_default_executor()


def test_embedded_cluster_size() -> None:
    assert embedded_cluster_size(1) == (1, 2)
    assert embedded_cluster_size(2) == (2, 1)
    assert embedded_cluster_size(16) == (16, 1)


def _listening() -> set[tuple[int, str, int]]:
    """(pid, ip, port) of every listening socket of this process and its children."""
    me = psutil.Process()
    found = set()
    for proc in [me, *me.children(recursive=True)]:
        try:
            conns = proc.net_connections(kind="inet")
        except psutil.Error:  # a child that just exited
            continue
        found |= {
            (proc.pid, c.laddr.ip, c.laddr.port) for c in conns if c.status == psutil.CONN_LISTEN
        }
    return found


@pytest.mark.slow
def test_embedded_cluster_starts_lazily_on_loopback_and_closes() -> None:
    before = _listening()
    ex = DaskExecutor(resource_wait=1)
    try:
        assert not ex.started and ex.dashboard_link is None
        got = Collector()
        ex.submit(Submission("embedded.n-abcdef12-1", numbers, {"n": 3}), got)
        (outcome,) = got.wait("embedded.n-abcdef12-1", timeout=60)
        assert outcome.ok and outcome.result == [0, 1, 2]
        info = ex.client.scheduler_info(n_workers=-1)
        n_workers, _ = embedded_cluster_size()
        assert len(info["workers"]) == n_workers
        assert sum(w["nthreads"] for w in info["workers"].values()) >= 2
        assert all(addr.startswith("tcp://127.0.0.1:") for addr in info["workers"])
        assert ex.client.scheduler.address.startswith("tcp://127.0.0.1:")
        assert ex.dashboard_link is not None and ex.dashboard_link.startswith("http://127.0.0.1:")
        # nothing this cluster started listens beyond loopback
        new = _listening() - before
        assert new, "the embedded cluster should listen somewhere"
        assert {ip for _, ip, _ in new} == {"127.0.0.1"}, new
        cluster = ex._cluster
    finally:
        ex.close()
    assert cluster is not None and cluster.status.name == "closed"


def blob(n: int) -> bytes:
    return b"x" * n


def test_published_and_gathered_outcomes_each_arrive_once(executor: DaskExecutor) -> None:
    """Small envelopes come back on the event topic, large ones by gather: all exactly once."""
    assert executor.start()._pushing  # subscribed to its topic on this cluster
    got = Collector()
    sizes = {f"mixed.blob-abcdef12-{i}": (10 if i % 3 else 100_000) for i in range(90)}
    for key, size in sizes.items():
        executor.submit(Submission(key, blob, {"n": size}), got)
    outcomes = got.wait(*sizes, timeout=50)
    assert [len(o.result) for o in outcomes] == list(sizes.values())
    assert got.duplicates == []


def test_outcomes_without_the_event_topic(client: object) -> None:
    """If subscribing failed (or workers cannot publish), every outcome is gathered."""
    ex = DaskExecutor(client).start()
    try:
        ex._pushing = False
        got = Collector()
        keys = [f"nopush.noop-abcdef12-{i}" for i in range(50)]
        for key in keys:
            ex.submit(Submission(key, chatty, {"n": 3}), got)
        outcomes = got.wait(*keys, timeout=50)
        assert all(o.ok and o.result == 3 for o in outcomes)
        assert any("printed 3" in line for line in outcomes[0].logs)
        assert got.duplicates == []
    finally:
        ex.close()


def test_an_address_that_is_not_a_dask_scheduler_fails_in_bounded_time(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A port that accepts and never answers, a refused port, a malformed address: one line."""
    import socket

    import jupyter_workflows.executors.dask as dask_executor

    monkeypatch.setattr(dask_executor, "_CONNECT_TIMEOUT_S", 2.0)
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(5)
    try:
        for address in (f"tcp://127.0.0.1:{silent.getsockname()[1]}", "notanaddress"):
            started = time.monotonic()
            with pytest.raises(ConnectionError) as info:
                DaskExecutor(address).start()
            assert time.monotonic() - started < 10
            assert str(info.value).startswith(f"cannot reach a Dask scheduler at {address}: ")
            assert "\n" not in str(info.value)
    finally:
        silent.close()


def _batches_on_workers(client: object, topic: str) -> list[list[tuple[str, str]]]:
    """What the workers sent the scheduler lately, one list of ``(op, key)`` per batch, for the
    batches that published on ``topic``."""

    def sent(dask_worker: object, topic: str = topic) -> list[list[tuple[str, str]]]:
        batches = []
        for payload in list(dask_worker.batched_stream.recent_message_log):  # type: ignore[attr-defined]
            if not isinstance(payload, list):
                continue
            ops = []
            for msg in payload:
                if not isinstance(msg, dict):
                    continue
                if msg.get("op") == "log-event" and msg.get("topic") == topic:
                    ops.append(("log-event", str(msg["msg"][0])))
                elif msg.get("op") == "task-finished":
                    ops.append(("task-finished", str(msg.get("key"))))
            if any(op == "log-event" for op, _ in ops):
                batches.append(ops)
        return batches

    per_worker = client.run(sent)  # type: ignore[attr-defined]
    return [batch for batches in per_worker.values() for batch in batches]


def test_outcomes_are_published_as_the_task_ends_with_dask_own_message(
    executor: DaskExecutor, client: object
) -> None:
    """A worker publishes a task's outcome in the same batch as Dask's ``task-finished``, not
    in a batch of its own from the task's thread (which delayed ``task-finished``, and the
    start of the tasks that wait on it); nothing is left behind in the publisher."""
    from jupyter_workflows.executors.dask import _PUBLISHER, _OutcomePublisher

    executor.start()
    has = client.run(  # type: ignore[attr-defined]
        lambda dask_worker: isinstance(dask_worker.plugins.get(_PUBLISHER), _OutcomePublisher)
    )
    assert has and all(has.values())
    got = Collector()
    executor.submit(Submission("pub.numbers-abcdef12-0", numbers, {"n": 4}), got)
    executor.submit(
        Submission("pub.total-abcdef12-0", total, {"values": ResultRef("pub.numbers-abcdef12-0")}),
        got,
    )
    keys = [f"pub.noop-abcdef12-{i}" for i in range(3)]
    for key in keys:
        executor.submit(Submission(key, chatty, {"n": 1}), got)
    outcomes = got.wait("pub.numbers-abcdef12-0", "pub.total-abcdef12-0", *keys)
    assert [o.ok for o in outcomes] == [True] * 5 and outcomes[1].result == 6
    assert got.duplicates == []
    batches = _batches_on_workers(client, executor._topic)
    published = {key for batch in batches for op, key in batch if op == "log-event"}
    assert published == {o.key for o in outcomes}
    for batch in batches:
        for op, key in batch:
            if op == "log-event":
                assert ("task-finished", key) in batch, batch
    left = client.run(  # type: ignore[attr-defined]
        lambda dask_worker: len(dask_worker.plugins[_PUBLISHER].outbox)
    )
    assert set(left.values()) == {0}


def test_a_worker_without_the_publisher_publishes_from_the_task(
    executor: DaskExecutor, client: object
) -> None:
    """Where the plugin is missing (removed, or it could not be registered) the outcome is
    still published, from the task's thread, and arrives once."""
    from jupyter_workflows.executors.dask import _PUBLISHER

    executor.start()
    client.unregister_worker_plugin(_PUBLISHER)  # type: ignore[attr-defined]
    try:
        got = Collector()
        keys = [f"nopub.chatty-abcdef12-{i}" for i in range(4)]
        for key in keys:
            executor.submit(Submission(key, chatty, {"n": 2}), got)
        outcomes = got.wait(*keys)
        assert all(o.ok and o.result == 2 for o in outcomes)
        assert got.duplicates == []
        batches = _batches_on_workers(client, executor._topic)
        assert {key for batch in batches for op, key in batch if op == "log-event"} == set(keys)
    finally:
        from jupyter_workflows.executors.dask import _OutcomePublisher

        client.register_plugin(_OutcomePublisher(), name=_PUBLISHER)  # type: ignore[attr-defined]


def test_forgotten_results_are_released_after_the_next_submission(
    executor: DaskExecutor, client: object
) -> None:
    """The scheduler hears of the next submission before the release of a finished run's
    results (so the workers get the task before the ``free-keys``), and a release with no
    submission after it still goes out."""
    got = Collector()
    executor.submit(Submission("rel.numbers-abcdef12-0", numbers, {"n": 3}), got)
    got.wait("rel.numbers-abcdef12-0")
    executor.forget(["rel.numbers-abcdef12-0"])
    executor.submit(Submission("rel.numbers-abcdef12-1", numbers, {"n": 4}), got)
    got.wait("rel.numbers-abcdef12-1")
    sent: list[tuple[str, object]] = []
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        sent = [
            (msg.get("op"), msg.get("keys"))
            for payload in list(client.scheduler_comm.recent_message_log)  # type: ignore[attr-defined]
            if isinstance(payload, list)
            for msg in payload
            if isinstance(msg, dict)
        ]
        if ("client-releases-keys", ["rel.numbers-abcdef12-0"]) in sent:
            break
        time.sleep(0.05)
    released = sent.index(("client-releases-keys", ["rel.numbers-abcdef12-0"]))
    submitted = [
        i
        for i, (op, keys) in enumerate(sent)
        if op == "update-graph" and "rel.numbers-abcdef12-1" in str(keys)
    ]
    assert submitted and submitted[-1] < released
    executor.forget(["rel.numbers-abcdef12-1"])  # nothing follows: released all the same

    def has(dask_scheduler: object, key: str) -> bool:
        return key in dask_scheduler.tasks  # type: ignore[attr-defined]

    while client.run_on_scheduler(has, key="rel.numbers-abcdef12-1"):  # type: ignore[attr-defined]
        assert time.monotonic() < deadline + 20, "the scheduler still holds a forgotten result"
        time.sleep(0.1)
