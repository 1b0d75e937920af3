"""InlineExecutor: the thread-pool executor keeps the Dask executor's callback semantics."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator

import pytest

from jupyter_workflows.executors.base import Outcome, ResultRef, Submission
from jupyter_workflows.executors.inline import InlineExecutor

pytestmark = pytest.mark.timeout(30)


class Collector:
    """An outcome callback that remembers outcomes and the threads that delivered them."""

    def __init__(self) -> None:
        self.outcomes: dict[str, Outcome] = {}
        self.threads: set[str] = set()
        self._cond = threading.Condition()

    def __call__(self, outcome: Outcome) -> None:
        with self._cond:
            assert outcome.key not in self.outcomes, f"second callback for {outcome.key}"
            self.outcomes[outcome.key] = outcome
            self.threads.add(threading.current_thread().name)
            self._cond.notify_all()

    def wait(self, *keys: str, timeout: float = 10) -> list[Outcome]:
        with self._cond:
            assert self._cond.wait_for(lambda: all(k in self.outcomes for k in keys), timeout), (
                f"no outcome for {[k for k in keys if k not in self.outcomes]}"
            )
            return [self.outcomes[k] for k in keys]


@pytest.fixture
def executor() -> Iterator[InlineExecutor]:
    ex = InlineExecutor()
    yield ex
    ex.close()


def add(x: int, y: int = 1) -> int:
    return x + y


def noisy_failure(n: int) -> None:
    print(f"printed {n}")
    logging.getLogger("user.task").warning("logged %d", n)
    raise ValueError(f"bad input {n}\nsecond line")


def test_submit_calls_back_once_from_the_dispatcher_thread(executor: InlineExecutor) -> None:
    got = Collector()
    executor.submit(Submission("wf.add-abcdef12-1", add, {"x": 41}), got)
    (outcome,) = got.wait("wf.add-abcdef12-1")
    assert outcome.ok and outcome.result == 42 and outcome.error is None
    assert outcome.started_at is not None and outcome.ended_at is not None
    assert outcome.started_at <= outcome.ended_at
    assert outcome.worker
    assert got.threads == {"jupyter-workflows-inline-callbacks"}


def test_failure_is_one_line_with_logging_captured(executor: InlineExecutor) -> None:
    got = Collector()
    executor.submit(Submission("wf.fail-abcdef12-1", noisy_failure, {"n": 7}), got)
    (outcome,) = got.wait("wf.fail-abcdef12-1")
    assert not outcome.ok
    assert outcome.error == "ValueError: bad input 7"
    assert outcome.error_type == "ValueError"
    assert "WARNING user.task: logged 7" in outcome.logs
    assert any("noisy_failure" in line for line in outcome.logs)  # the traceback's tail


def test_print_is_captured_in_process(executor: InlineExecutor) -> None:
    got = Collector()
    executor.submit(Submission("wf.fail-abcdef12-1", noisy_failure, {"n": 8}), got)
    (outcome,) = got.wait("wf.fail-abcdef12-1")
    assert "printed 8" in outcome.logs


def test_result_ref_passes_the_held_result(executor: InlineExecutor) -> None:
    got = Collector()
    executor.submit(Submission("wf.a-abcdef12-1", add, {"x": 1, "y": 2}), got)
    got.wait("wf.a-abcdef12-1")
    executor.submit(
        Submission("wf.b-abcdef12-2", add, {"x": ResultRef("wf.a-abcdef12-1"), "y": 10}), got
    )
    (outcome,) = got.wait("wf.b-abcdef12-2")
    assert outcome.ok and outcome.result == 13


def test_result_ref_to_a_running_upstream_waits_for_it(executor: InlineExecutor) -> None:
    release = threading.Event()
    got = Collector()
    executor.submit(Submission("wf.slow-abcdef12-1", lambda: release.wait(5) and 5, {}), got)
    executor.submit(
        Submission("wf.next-abcdef12-2", add, {"x": ResultRef("wf.slow-abcdef12-1")}), got
    )
    release.set()
    slow, after = got.wait("wf.slow-abcdef12-1", "wf.next-abcdef12-2")
    assert slow.result == 5 and after.result == 6


def test_forget_drops_held_results(executor: InlineExecutor) -> None:
    got = Collector()
    executor.submit(Submission("wf.a-abcdef12-1", add, {"x": 1}), got)
    got.wait("wf.a-abcdef12-1")
    assert executor.held_keys() == ["wf.a-abcdef12-1"]
    executor.forget(["wf.a-abcdef12-1"])
    assert executor.held_keys() == []
    executor.submit(Submission("wf.b-abcdef12-2", add, {"x": ResultRef("wf.a-abcdef12-1")}), got)
    (outcome,) = got.wait("wf.b-abcdef12-2")
    assert not outcome.ok and outcome.error_type == "KeyError"
    assert "wf.a-abcdef12-1" in (outcome.error or "")


def test_context_is_passed_when_wanted(executor: InlineExecutor) -> None:
    def describe(context: object) -> tuple[object, ...]:
        return (context.run_id, context.task, context.attempt, context.item)  # type: ignore[attr-defined]

    got = Collector()
    ctx = {"run_id": "r1", "task": "describe", "attempt": 2, "item": "eu", "index": 0}
    executor.submit(
        Submission("wf.describe-abcdef12-1", describe, {}, context=ctx, wants_context=True), got
    )
    (outcome,) = got.wait("wf.describe-abcdef12-1")
    assert outcome.result == ("r1", "describe", 2, "eu")


def test_cancel_before_start_calls_back_cancelled() -> None:
    ex = InlineExecutor(max_workers=1)
    release = threading.Event()
    got = Collector()
    try:
        ex.submit(Submission("wf.block-abcdef12-1", release.wait, {"timeout": 5}), got)
        ex.submit(Submission("wf.queued-abcdef12-2", add, {"x": 1}), got)
        ex.cancel("wf.queued-abcdef12-2")
        release.set()
        blocked, queued = got.wait("wf.block-abcdef12-1", "wf.queued-abcdef12-2")
        assert blocked.ok
        assert not queued.ok and queued.error_type == "CancelledError"
    finally:
        ex.close()


def test_reused_key_fails_instead_of_aliasing(executor: InlineExecutor) -> None:
    results: list[Outcome] = []
    done = threading.Semaphore(0)

    def callback(outcome: Outcome) -> None:
        results.append(outcome)
        done.release()

    executor.submit(Submission("wf.a-abcdef12-1", add, {"x": 1}), callback)
    assert done.acquire(timeout=5)
    executor.submit(Submission("wf.a-abcdef12-1", add, {"x": 2}), callback)
    assert done.acquire(timeout=5)
    assert results[0].ok and not results[1].ok and results[1].error_type == "ValueError"


def test_a_callback_that_raises_does_not_stop_later_callbacks(executor: InlineExecutor) -> None:
    got = Collector()

    def bad(outcome: Outcome) -> None:
        raise RuntimeError("callback bug")

    executor.submit(Submission("wf.a-abcdef12-1", add, {"x": 1}), bad)
    executor.submit(Submission("wf.b-abcdef12-2", add, {"x": 1}), got)
    (outcome,) = got.wait("wf.b-abcdef12-2")
    assert outcome.ok


def test_callbacks_may_submit_more_work(executor: InlineExecutor) -> None:
    got = Collector()

    def chain(outcome: Outcome) -> None:
        got(outcome)
        n = int(outcome.key.rsplit("-", 1)[1])
        if n < 20:
            executor.submit(
                Submission(f"wf.step-abcdef12-{n + 1}", add, {"x": ResultRef(outcome.key)}), chain
            )

    executor.submit(Submission("wf.step-abcdef12-0", add, {"x": 0}), chain)
    (last,) = got.wait("wf.step-abcdef12-20")
    assert last.result == 21
