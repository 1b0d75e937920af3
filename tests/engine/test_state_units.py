"""Focused tests of the run state machine: timing, item bookkeeping, invariants, recovery.

Some drive :func:`rehearse` and read a timeline of every event handled and every command given
(recorded by wrapping :meth:`RunState.handle`); others drive a :class:`RunState` by hand so the
order in which attempts finish, and crashes, are under the test's control.
"""

from __future__ import annotations

from dataclasses import asdict
from textwrap import dedent
from typing import Any

import pytest

from jupyter_workflows.engine import commands as C
from jupyter_workflows.engine import events as E
from jupyter_workflows.engine.rehearsal import Fail, Hang, rehearse
from jupyter_workflows.engine.state import RunState
from jupyter_workflows.spec import RetryPolicy, compile_workflow, load_spec
from jupyter_workflows.spec.params import resolve_parameters

Timeline = list[tuple[float, Any]]


@pytest.fixture
def timeline(monkeypatch: pytest.MonkeyPatch) -> Timeline:
    """``(time, event or command)`` for everything every ``RunState`` handles and asks for."""
    log: Timeline = []
    original = RunState.handle

    def handle(self: RunState, event: E.Event) -> list[C.Command]:
        log.append((event.time, event))
        cmds = original(self, event)
        log.extend((event.time, c) for c in cmds)
        return cmds

    monkeypatch.setattr(RunState, "handle", handle)
    return log


def _submits(log: Timeline, task: str | None = None) -> list[tuple[float, C.Submit]]:
    return [(t, c) for t, c in log if isinstance(c, C.Submit) and (task is None or c.task == task)]


def _in_flight_profile(log: Timeline) -> list[int]:
    """How many attempts are in flight after each step of the timeline."""
    live: set[str] = set()
    profile = []
    for _, x in log:
        if isinstance(x, C.Submit):
            live.add(x.key)
        elif isinstance(x, (E.AttemptDone, C.CancelAttempt)):
            live.discard(x.key)
        profile.append(len(live))
    return profile


class Driver:
    """A ``RunState`` driven by hand; every event is logged (to replay it) and validated."""

    def __init__(self, yaml_text: str, params: dict[str, Any] | None = None) -> None:
        spec, _ = load_spec(dedent(yaml_text))
        self.wf = compile_workflow(spec)
        self.params = resolve_parameters(spec, params)
        self.log: list[E.Event] = []
        self.state = self.fresh()

    def fresh(self) -> RunState:
        inquiries = frozenset(n for n, t in self.wf.tasks.items() if t.action == "core.inquiry")
        return RunState(self.wf, "run0000000001", self.params, inquiries=inquiries)

    def send(self, event: E.Event) -> list[C.Command]:
        cmds = self.state.handle(event)
        self.state.validate()
        self.log.append(event)
        return cmds

    def start(self) -> list[C.Command]:
        return self.send(E.RunStarted(0.0))


def _only_submits(cmds: list[C.Command]) -> list[C.Submit]:
    """Ordinary submissions (not the speculative ones queued behind another attempt)."""
    return [c for c in cmds if isinstance(c, C.Submit) and c.after is None]


def _speculative(cmds: list[C.Command]) -> list[C.Submit]:
    return [c for c in cmds if isinstance(c, C.Submit) and c.after is not None]


def _ok(sub: C.Submit, time: float, result: Any) -> E.AttemptDone:
    return E.AttemptDone(time, key=sub.key, ok=True, result=result)


def _fail(sub: C.Submit, time: float, error: str = "RuntimeError: boom") -> E.AttemptDone:
    return E.AttemptDone(time, key=sub.key, ok=False, error=error, error_type=error.split(":")[0])


# -- validate() is on by default in rehearse -------------------------------------------------------
def test_rehearse_validates_after_every_event(monkeypatch: pytest.MonkeyPatch) -> None:
    validated: list[RunState] = []
    handled: list[E.Event] = []
    validate, handle = RunState.validate, RunState.handle

    def counting_validate(self: RunState) -> None:
        validated.append(self)
        validate(self)

    def counting_handle(self: RunState, event: E.Event) -> list[C.Command]:
        handled.append(event)
        return handle(self, event)

    monkeypatch.setattr(RunState, "validate", counting_validate)
    monkeypatch.setattr(RunState, "handle", counting_handle)
    yaml_text = "name: w\ntasks:\n  a: {action: x, retry: 1, on_success: b}\n  b: {action: x}\n"
    r = rehearse(yaml_text, {"a": [Fail(), 1]})
    assert r.status == "succeeded"
    # RunStarted, a fails, b's speculative attempt (queued behind a) skips, retry timer,
    # a succeeds, b succeeds: each followed by validate().
    assert len(handled) == 6
    assert len(validated) == len(handled)
    validated.clear()
    handled.clear()
    rehearse(yaml_text, {"a": [Fail(), 1]}, check=False)
    assert handled and not validated


def test_validate_catches_broken_invariants() -> None:
    d = Driver("name: w\ntasks:\n  a: {action: x}\n  b: {action: x}\n")
    d.start()
    d.state.validate()
    ex = d.state.executions["a"]
    ex.status = "succeeded"  # but its attempt is still in flight
    ex.ended_at = 1.0
    with pytest.raises(AssertionError):
        d.state.validate()
    ex.status, ex.ended_at = "running", None
    d.state.validate()
    d.state.executions["b"].status = "failed"  # failed, with no error and no end
    with pytest.raises(AssertionError):
        d.state.validate()


def test_validate_catches_max_runs_overrun() -> None:
    d = Driver("name: w\ntasks:\n  a: {action: x, max_runs: 2}\n")
    d.start()
    d.state.runs_count["a"] = 3
    with pytest.raises(AssertionError):
        d.state.validate()


# -- retry delays, through simulated time ---------------------------------------------------------
@pytest.mark.parametrize(
    ("policy", "expected"),
    [
        ({"count": 3, "delay": 3}, [3, 3, 3]),
        ({"count": 4, "delay": 2, "backoff": "linear"}, [2, 4, 6, 8]),
        ({"count": 5, "delay": 1, "backoff": "exponential"}, [1, 2, 4, 8, 16]),
        ({"count": 4, "delay": 2, "backoff": "exponential", "max_delay": 5}, [2, 4, 5, 5]),
        ({"count": 4, "delay": 3, "backoff": "linear", "max_delay": 7}, [3, 6, 7, 7]),
        ({"count": 2, "delay": 0}, [0, 0]),
    ],
    ids=["constant", "linear", "exponential", "exponential-capped", "linear-capped", "no-delay"],
)
def test_retry_delays_follow_backoff(
    timeline: Timeline, policy: dict[str, Any], expected: list[float]
) -> None:
    assert [RetryPolicy(**policy).delay_for(n) for n in range(1, len(expected) + 1)] == expected
    retry = ", ".join(f"{k}: {v}" for k, v in policy.items())
    r = rehearse(
        f"name: w\ntasks:\n  a: {{action: x, retry: {{{retry}}}}}\n",
        {"a": Fail()},
        durations={"a": 2},
    )
    assert r.status == "failed"
    delays = [
        c.delay for _, c in timeline if isinstance(c, C.StartTimer) and c.timer.startswith("retry:")
    ]
    assert delays == expected
    # Attempt n+1 starts when attempt n ended (2 s) plus the n-th delay.
    starts = [t for t, _ in _submits(timeline, "a")]
    want, now = [], 0.0
    for delay in [*expected, None]:
        want.append(now)
        if delay is not None:
            now += 2 + delay
    assert starts == want
    assert [c.attempt for _, c in _submits(timeline, "a")] == list(range(1, len(expected) + 2))
    assert r.state.executions["a"].attempts == len(expected) + 1
    assert r.state.executions["a"].ended_at == 2 * (len(expected) + 1) + sum(expected)


def test_retry_stops_at_first_success(timeline: Timeline) -> None:
    r = rehearse(
        "name: w\ntasks:\n  a: {action: x, retry: {count: 5, delay: 10}}\n",
        {"a": [Fail(), Fail(), "ok"]},
    )
    assert r.status == "succeeded"
    assert [t for t, _ in _submits(timeline)] == [0, 11, 22]
    assert r.state.executions["a"].attempts == 3
    assert any("retrying in 10s" in line for line in r.state.executions["a"].logs)


# -- timeouts -----------------------------------------------------------------------------------
def test_timeout_cancels_hung_attempts_and_retries(timeline: Timeline) -> None:
    r = rehearse(
        "name: w\ntasks:\n  a: {action: x, timeout: 4, retry: {count: 2, delay: 1}}\n",
        {"a": Hang()},
    )
    assert r.status == "failed"
    subs = _submits(timeline, "a")
    assert [t for t, _ in subs] == [0, 5, 10]
    cancels = [(t, c.key) for t, c in timeline if isinstance(c, C.CancelAttempt)]
    assert cancels == [(4, subs[0][1].key), (9, subs[1][1].key), (14, subs[2][1].key)]
    ex = r.state.executions["a"]
    assert ex.ended_at == 14
    assert ex.error == "TimeoutError: task 'a' timed out after 4s"
    assert ex.timed_out
    assert r.error == "TimeoutError: task 'a' failed: task 'a' timed out after 4s"


def test_late_answer_of_timed_out_attempt_is_ignored() -> None:
    d = Driver("name: w\ntasks:\n  a: {action: x, timeout: 4, retry: {count: 1, delay: 1}}\n")
    (sub,) = _only_submits(d.start())
    (timer,) = [
        c
        for c in d.send(E.TimerFired(4.0, timer=f"timeout:{sub.key}"))
        if isinstance(c, C.StartTimer)
    ]
    assert timer.timer.startswith("retry:")
    assert d.send(_ok(sub, 4.5, "too late")) == []
    assert d.state.executions["a"].status == "retrying"
    (again,) = _only_submits(d.send(E.TimerFired(5.0, timer=timer.timer)))
    assert again.attempt == 2 and again.key != sub.key
    d.send(_ok(again, 6.0, "in time"))
    assert d.state.status == "succeeded"
    assert d.state.executions["a"].result == "in time"


def test_timeout_timer_after_success_does_nothing() -> None:
    d = Driver("name: w\ntasks:\n  a: {action: x, timeout: 4}\n")
    (sub,) = _only_submits(d.start())
    d.send(_ok(sub, 1.0, "fine"))
    assert d.state.status == "succeeded"
    assert d.send(E.TimerFired(4.0, timer=f"timeout:{sub.key}")) == []
    assert d.state.executions["a"].status == "succeeded"


def test_timeout_of_one_item_fails_the_with_items_task() -> None:
    r = rehearse(
        """
        name: w
        tasks:
          t:
            action: x
            with_items: [a, b, c]
            timeout: 3
            next: [{when: "{{ timed_out() }}", do: slow}]
          slow: {action: x}
        """,
        {"t": lambda s: Hang() if s.index == 1 else s.item},
    )
    assert r.sequence == ["t", "slow"]
    assert r.status == "succeeded"
    ex = r.state.executions["t"]
    assert ex.error == "TimeoutError: item 1: task 't' timed out after 3s"
    assert [it.status for it in ex.items or []] == ["succeeded", "failed", "succeeded"]


# -- with_items ---------------------------------------------------------------------------------
def test_with_items_results_in_item_order_whatever_the_finish_order() -> None:
    d = Driver(
        "name: w\ntasks:\n  t: {action: x, with_items: [a, b, c, d], input: {v: '{{ item }}-{{ index }}'}}\n"
    )
    subs = _only_submits(d.start())
    assert [(s.index, s.item, s.input) for s in subs] == [
        (0, "a", {"v": "a-0"}),
        (1, "b", {"v": "b-1"}),
        (2, "c", {"v": "c-2"}),
        (3, "d", {"v": "d-3"}),
    ]
    for time, i in enumerate([3, 1, 0, 2], start=1):
        d.send(_ok(subs[i], float(time), subs[i].input["v"].upper()))
    assert d.state.status == "succeeded"
    assert d.state.executions["t"].result == ["A-0", "B-1", "C-2", "D-3"]
    assert d.state.executions["t"].progress() == (4, 4)


def test_with_items_batch_size_timeline(timeline: Timeline) -> None:
    r = rehearse(
        "name: w\ntasks:\n  t: {action: x, with_items: [0, 1, 2, 3, 4, 5, 6], batch_size: 3}\n",
        {"t": lambda s: s.item},
    )
    assert r.status == "succeeded"
    assert r.result("t") == [0, 1, 2, 3, 4, 5, 6]
    assert [(t, s.index) for t, s in _submits(timeline)] == [
        (0, 0), (0, 1), (0, 2), (1, 3), (1, 4), (1, 5), (2, 6)
    ]  # fmt: skip
    profile = _in_flight_profile(timeline)
    assert max(profile) == 3


def test_with_items_batch_refills_as_items_end() -> None:
    d = Driver("name: w\ntasks:\n  t: {action: x, with_items: [0, 1, 2, 3, 4], batch_size: 2}\n")
    first = _only_submits(d.start())
    assert [s.index for s in first] == [0, 1]
    (third,) = _only_submits(d.send(_ok(first[1], 1.0, "one")))  # item 1 ends first
    assert third.index == 2
    assert len(d.state.inflight) == 2
    (fourth,) = _only_submits(d.send(_ok(third, 2.0, "two")))
    assert fourth.index == 3
    (fifth,) = _only_submits(d.send(_ok(first[0], 3.0, "zero")))
    assert fifth.index == 4
    assert _only_submits(d.send(_ok(fifth, 4.0, "four"))) == []
    d.send(_ok(fourth, 5.0, "three"))
    assert d.state.executions["t"].result == ["zero", "one", "two", "three", "four"]


def test_with_items_per_item_retry() -> None:
    d = Driver(
        "name: w\ntasks:\n  t: {action: x, with_items: [a, b], retry: {count: 2, delay: 3}}\n"
    )
    a, b = _only_submits(d.start())
    (timer,) = d.send(_fail(b, 1.0))
    assert timer == C.StartTimer("retry:t:1:1", 3)
    assert d.state.executions["t"].status == "retrying"
    d.send(_ok(a, 2.0, "A"))
    (b2,) = _only_submits(d.send(E.TimerFired(4.0, timer="retry:t:1:1")))
    assert (b2.index, b2.attempt, b2.item) == (1, 2, "b")
    d.send(_ok(b2, 5.0, "B"))
    ex = d.state.executions["t"]
    assert ex.result == ["A", "B"]
    assert [it.attempts for it in ex.items or []] == [1, 2]
    assert ex.attempts == 2


def test_with_items_failed_item_settles_in_flight_and_skips_the_rest() -> None:
    d = Driver(
        "name: w\ntasks:\n  t: {action: x, with_items: [0, 1, 2, 3], batch_size: 2, on_failure: h}\n  h: {action: x}\n"
    )
    a, b = _only_submits(d.start())
    assert (
        _only_submits(d.send(_fail(b, 1.0, "ValueError: bad"))) == []
    )  # no new item after a failure
    assert d.state.executions["t"].status == "running"  # item 0 still in flight
    (h,) = _only_submits(d.send(_ok(a, 2.0, "fine")))
    assert h.task == "h"
    ex = d.state.executions["t"]
    assert ex.status == "failed"
    assert ex.error == "ValueError: item 1: bad"
    assert [it.status for it in ex.items or []] == ["succeeded", "failed", "skipped", "skipped"]


def test_with_items_item_input_error_while_others_in_flight() -> None:
    d = Driver(
        "name: w\ntasks:\n  t: {action: x, with_items: [1, 0, 2], input: {v: '{{ 10 / item }}'}}\n"
    )
    subs = _only_submits(d.start())
    assert [s.index for s in subs] == [0]  # item 1 cannot render; item 2 is never started
    ex = d.state.executions["t"]
    assert ex.status == "running"
    d.send(_ok(subs[0], 1.0, 10))
    assert ex.status == "failed"
    assert ex.error is not None and ex.error.startswith("ExpressionError: item 1: ")
    assert [it.status for it in ex.items or []] == ["succeeded", "failed", "skipped"]
    assert d.state.status == "failed"
    assert "'t'" in (d.state.error or "")


def test_with_items_pending_items_wait_while_paused() -> None:
    d = Driver("name: w\ntasks:\n  t: {action: x, with_items: [0, 1, 2], batch_size: 1}\n")
    (s0,) = _only_submits(d.start())
    d.send(E.PauseRequested(0.5))
    assert _only_submits(d.send(_ok(s0, 1.0, "zero"))) == []
    assert d.state.status == "paused"
    (s1,) = _only_submits(d.send(E.ResumeRequested(5.0)))
    assert s1.index == 1
    (s2,) = _only_submits(d.send(_ok(s1, 6.0, "one")))
    d.send(_ok(s2, 7.0, "two"))
    assert d.state.status == "succeeded"
    assert d.state.executions["t"].result == ["zero", "one", "two"]


# -- order, pause, inquiry, late events ----------------------------------------------------------
def test_instant_tasks_cascade_depth_first_in_listed_order() -> None:
    r = rehearse(
        """
        name: w
        tasks:
          a: {action: x, on_success: [r, c]}
          r: {on_success: [r2, e]}
          r2: {on_success: d}
          d: {action: x}
          e: {action: x}
          c: {action: x}
        """
    )
    assert r.sequence == ["a", "r", "r2", "d", "e", "c"]
    assert r.status == "succeeded"


def test_do_fail_beside_routing_targets_and_keep_going() -> None:
    r = rehearse(
        """
        name: w
        keep_going: true
        tasks:
          a: {action: x, next: [{when: "{{ failed() }}", do: [note, fail]}]}
          note: {on_success: log}
          log: {action: x}
          b: {action: x, on_success: c}
          c: {action: x}
        """,
        {"a": Fail("RuntimeError: bad")},
        durations={"b": 3},
    )
    assert r.sequence == ["a", "b", "note", "log", "c"]
    assert r.status == "failed"
    assert r.error == "RuntimeError: task 'a' failed: bad"


def test_pause_while_inquiry_waits() -> None:
    d = Driver(
        "name: w\ntasks:\n  ask: {action: core.inquiry, on_success: go}\n  go: {action: x}\n"
    )
    cmds = d.start()
    assert cmds == [C.OpenInquiry("ask", "ask", "", None)]
    assert d.state.status == "waiting"
    d.send(E.PauseRequested(1.0))
    assert d.state.status == "paused"
    assert d.send(E.InquiryResponded(2.0, exec_id="ask", data={"ok": True})) == []
    assert d.state.executions["ask"].status == "succeeded"
    assert d.state.status == "paused"
    (go,) = _only_submits(d.send(E.ResumeRequested(3.0)))
    assert go.task == "go"
    d.send(_ok(go, 4.0, None))
    assert d.state.status == "succeeded"


def test_inquiry_response_to_unknown_or_closed_inquiry_is_ignored() -> None:
    d = Driver("name: w\ntasks:\n  ask: {action: core.inquiry}\n")
    d.start()
    assert d.send(E.InquiryResponded(1.0, exec_id="nope", data=1)) == []
    assert d.state.status == "waiting"
    d.send(E.InquiryResponded(2.0, exec_id="ask", data={"v": 1}))
    assert d.state.status == "succeeded"
    assert d.send(E.InquiryResponded(3.0, exec_id="ask", data={"v": 2})) == []
    assert d.state.executions["ask"].result == {"v": 1}


def test_events_after_the_end_change_nothing() -> None:
    d = Driver("name: w\ntasks:\n  a: {action: x}\n")
    (sub,) = _only_submits(d.start())
    d.send(_ok(sub, 1.0, 1))
    assert d.state.status == "succeeded"
    for event in (
        E.CancelRequested(2.0),
        E.PauseRequested(2.0),
        E.RunStarted(2.0),
        _ok(sub, 2.0, 2),
    ):
        assert d.send(event) == []
    assert d.state.status == "succeeded"
    assert d.state.executions["a"].result == 1


def test_run_started_twice_starts_tasks_once() -> None:
    d = Driver("name: w\ntasks:\n  a: {action: x}\n")
    assert len(_only_submits(d.start())) == 1
    assert d.send(E.RunStarted(0.5)) == []
    assert d.state.order == ["a"]


# -- recovery: replay the event log into a fresh state, then Recovered ----------------------------
def _replay(d: Driver, *, through_dicts: bool = True) -> RunState:
    fresh = d.fresh()
    for event in d.log:
        fresh.handle(E.event_from_dict(event.to_dict()) if through_dicts else event)
        fresh.validate()
    return fresh


def _snapshot(state: RunState) -> Any:
    return (
        state.status,
        state.vars,
        state.order,
        [asdict(e) for e in state.execution_list()],
        dict(state.inflight),
        dict(state.timers),
        state.submissions,
    )


def test_replay_rebuilds_the_same_state() -> None:
    d = Driver(
        """
        name: w
        vars: {n: 0}
        tasks:
          a: {action: x, publish: {n: "{{ result }}"}, on_success: [b, c]}
          b: {action: x, retry: {count: 2, delay: 5}}
          c: {action: x, with_items: [1, 2, 3], batch_size: 2}
        """
    )
    (a,) = _only_submits(d.start())
    b, _c0, c1 = _only_submits(d.send(_ok(a, 1.0, 7)))
    d.send(_fail(b, 2.0))
    d.send(_ok(c1, 2.5, "c1"))
    assert _snapshot(_replay(d)) == _snapshot(d.state)
    assert _snapshot(_replay(d, through_dicts=False)) == _snapshot(d.state)


def test_recovered_resubmits_in_flight_attempts_only() -> None:
    d = Driver(
        """
        name: w
        tasks:
          a: {action: x, on_success: b}
          b: {action: x}
          c: {action: x}
        """
    )
    cmds = d.start()
    a, c = _only_submits(cmds)
    (b,) = _speculative(cmds)  # b is queued behind a, gated on its success
    assert b.after == a.key and b.task == "b"
    assert _only_submits(d.send(_ok(a, 1.0, "A"))) == []  # a succeeded: b was already submitted
    # The orchestrator dies with b and c in flight; a new one replays the log and takes over.
    state = _replay(d)
    cmds = state.handle(E.Recovered(10.0))
    state.validate()
    again = _only_submits(cmds)
    assert sorted((s.task, s.exec_id, s.attempt) for s in again) == [("b", "b", 1), ("c", "c", 1)]
    assert {s.key for s in again}.isdisjoint({b.key, c.key})
    assert state.executions["a"].status == "succeeded"
    assert state.executions["a"].attempts == 1
    # Answers of the old attempts are ignored; the new ones finish the run.
    assert state.handle(_ok(b, 11.0, "old")) == []
    for s in again:
        state.handle(_ok(s, 12.0, s.task.upper()))
        state.validate()
    assert state.status == "succeeded"
    assert [(e.id, e.result, e.attempts) for e in state.execution_list()] == [
        ("a", "A", 1),
        ("c", "C", 1),
        ("b", "B", 1),
    ]


def test_recovered_keeps_the_attempt_number() -> None:
    d = Driver("name: w\ntasks:\n  a: {action: x, retry: {count: 3, delay: 0}}\n")
    (a1,) = _only_submits(d.start())
    (timer,) = d.send(_fail(a1, 1.0))
    (a2,) = _only_submits(d.send(E.TimerFired(1.0, timer=timer.timer)))
    assert a2.attempt == 2
    state = _replay(d)
    (again,) = _only_submits(state.handle(E.Recovered(5.0)))
    assert (again.exec_id, again.attempt) == ("a", 2)
    state.validate()


def test_recovered_with_items_resubmits_only_unfinished_items() -> None:
    d = Driver("name: w\ntasks:\n  t: {action: x, with_items: [a, b, c, d], batch_size: 2}\n")
    s0, _s1 = _only_submits(d.start())
    (_s2,) = _only_submits(d.send(_ok(s0, 1.0, "A")))
    state = _replay(d)
    again = _only_submits(state.handle(E.Recovered(9.0)))
    state.validate()
    assert sorted((s.index, s.item, s.attempt) for s in again) == [(1, "b", 1), (2, "c", 1)]
    x1, x2 = sorted(again, key=lambda s: s.index or 0)
    (x3,) = _only_submits(state.handle(_ok(x1, 10.0, "B")))
    assert x3.index == 3
    state.handle(_ok(x2, 11.0, "C"))
    state.handle(_ok(x3, 12.0, "D"))
    assert state.status == "succeeded"
    assert state.executions["t"].result == ["A", "B", "C", "D"]


def test_recovered_restarts_retry_timers_at_once() -> None:
    d = Driver("name: w\ntasks:\n  a: {action: x, retry: {count: 1, delay: 60}}\n")
    (a1,) = _only_submits(d.start())
    (timer,) = d.send(_fail(a1, 1.0))
    state = _replay(d)
    cmds = state.handle(E.Recovered(5.0))
    assert cmds == [C.StartTimer(timer.timer, 0.0)]
    (a2,) = _only_submits(state.handle(E.TimerFired(5.0, timer=timer.timer)))
    assert a2.attempt == 2


def test_recovered_reopens_inquiries_with_the_time_left() -> None:
    d = Driver(
        "name: w\ntasks:\n  ask: {action: core.inquiry, input: {prompt: 'Go?'}, timeout: 100}\n  b: {action: x}\n"
    )
    cmds = d.start()
    assert C.StartTimer("inquiry:ask", 100) in cmds
    (b,) = _only_submits(cmds)
    d.send(_ok(b, 1.0, None))
    state = _replay(d)
    cmds = state.handle(E.Recovered(30.0))
    assert C.OpenInquiry("ask", "ask", "Go?", None) in cmds
    assert C.StartTimer("inquiry:ask", 70.0) in cmds
    assert _only_submits(cmds) == []
    assert state.status == "waiting"
    state.handle(E.InquiryResponded(31.0, exec_id="ask", data={"go": True}))
    assert state.status == "succeeded"


def test_recovered_while_paused_waits_for_resume() -> None:
    d = Driver("name: w\ntasks:\n  a: {action: x}\n")
    (a,) = _only_submits(d.start())
    d.send(E.PauseRequested(0.5))
    state = _replay(d)
    assert _only_submits(state.handle(E.Recovered(2.0))) == []
    assert state.status == "paused"
    (again,) = _only_submits(state.handle(E.ResumeRequested(3.0)))
    assert again.exec_id == "a" and again.attempt == 1 and again.key != a.key
    state.validate()


def test_recovered_before_start_starts_the_run() -> None:
    d = Driver("name: w\ntasks:\n  a: {action: x}\n")
    (sub,) = _only_submits(d.state.handle(E.Recovered(1.0)))
    assert sub.task == "a"
    assert d.state.status == "running"


def test_recovered_after_the_end_does_nothing() -> None:
    d = Driver("name: w\ntasks:\n  a: {action: x}\n")
    (a,) = _only_submits(d.start())
    d.send(_ok(a, 1.0, 1))
    state = _replay(d)
    assert state.status == "succeeded"
    assert state.handle(E.Recovered(5.0)) == []


def test_every_event_type_has_exactly_one_handler() -> None:
    """Dispatch is by type from one table: a new event type without a handler fails here."""
    kinds = {cls for name in E.__all__ if isinstance(cls := getattr(E, name), type)}
    kinds.discard(E.Event)
    assert set(RunState._HANDLERS) == kinds
    for handler in (*RunState._HANDLERS.values(), *RunState._TIMERS.values()):
        assert callable(getattr(RunState, handler)), handler
