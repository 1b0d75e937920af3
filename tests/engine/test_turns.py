"""Bounded turns of the orchestrator's loop: a backlog of events is handled a few hundred at a
time, runs' first events go first, and ``barrier()`` still waits for everything queued before
it (real orchestrator, in-process executor)."""

from __future__ import annotations

import threading
import time

import pytest

import jupyter_workflows as jw
from jupyter_workflows.engine import events as E
from jupyter_workflows.engine.orchestrator import TURN_MAX, _Barrier, _take_turn

pytestmark = pytest.mark.timeout(180)


def test_a_turn_takes_at_most_turn_max_events_and_every_first_event() -> None:
    backlog = [("a", E.TimerFired(float(i), timer=f"t{i}")) for i in range(TURN_MAX + 44)]
    barrier = _Barrier()
    start_b = ("b", E.RunStarted(1.0))
    start_c = ("c", E.Recovered(2.0))
    pending = [*backlog[:10], start_b, *backlog[10:], ("", barrier), start_c]
    taken, rest = _take_turn(pending)
    assert taken == [*backlog[:10], start_b, *backlog[10:TURN_MAX], start_c]
    assert rest == [*backlog[TURN_MAX:], ("", barrier)]
    small = backlog[:5]
    assert _take_turn(small) == (small, [])


def test_first_events_beyond_a_turn_wait_with_their_runs_other_events() -> None:
    starts = [(f"r{i}", E.RunStarted(float(i))) for i in range(TURN_MAX + 3)]
    late = starts[TURN_MAX:]
    cancel = (late[0][0], E.CancelRequested(9.0))  # a run whose start waits: so does this
    other = ("x", E.TimerFired(9.0, timer="t"))
    taken, rest = _take_turn([*starts, cancel, other])
    assert taken == [*starts[:TURN_MAX], other]
    assert rest == [*late, cancel]


WF = """
name: turns
tasks:
  a: {action: core.noop, on_success: b}
  b: {action: core.noop}
"""


def test_many_runs_at_once_finish_in_bounded_turns(engine) -> None:
    sizes: list[tuple[int, int]] = []  # (events, first events) per turn
    plain = engine._drain_batch

    def spy(batch):
        firsts = sum(isinstance(event, (E.RunStarted, E.Recovered)) for _, event in batch)
        sizes.append((len(batch), firsts))
        return plain(batch)

    engine._drain_batch = spy
    wf = jw.load(WF)
    release = threading.Event()
    # Hold the loop so that a backlog builds up, as under load.
    engine._loop.call_soon_threadsafe(release.wait, 30)
    runs = [wf.run(wait=False) for _ in range(400)]
    for i in range(2 * TURN_MAX):
        engine.feed(runs[0].run_id, E.AttemptProgress(time.time(), key=f"nope-{i}"))
    release.set()
    for run in runs:
        assert run.wait(120)
    assert [run.status for run in runs] == ["succeeded"] * 400
    assert all(n - firsts <= TURN_MAX and firsts <= TURN_MAX for n, firsts in sizes)
    assert max(n for n, _ in sizes) > TURN_MAX  # the first events of the held runs joined in


def test_barrier_waits_for_every_event_queued_before_it_across_turns(engine) -> None:
    wf = jw.load(WF)
    run = wf.run()
    handled: list[int] = []
    plain = engine._drain_batch

    def spy(batch):
        handled.append(len(batch))
        return plain(batch)

    engine._drain_batch = spy
    release = threading.Event()
    engine._loop.call_soon_threadsafe(release.wait, 30)
    count = 3 * TURN_MAX + 7
    for i in range(count):
        engine.feed(run.run_id, E.AttemptProgress(time.time(), key=f"nope-{i}"))
    threading.Timer(0.2, release.set).start()
    engine.barrier()
    assert sum(handled) == count
    assert len(handled) >= 4  # it did take several turns
