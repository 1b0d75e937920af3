"""Table-driven rehearsals of the run state machine (CONTRACT §1.1, §1.4, §1.5, §2).

Every entry of :data:`SCENARIOS` is one workflow, the scripted outcomes of its tasks, the
parameters and injected events, and what must come out: the start order of task executions, the
run's final status and error, its outputs, task results and statuses, and simulated times. One
parametrised test runs them all (ids are the scenario names); :func:`rehearse` calls
``RunState.validate()`` after every event, so every scenario also checks the invariants.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from textwrap import dedent
from typing import Any

import pytest

from jupyter_workflows.engine import commands as C
from jupyter_workflows.engine import events as E
from jupyter_workflows.engine.rehearsal import Fail, Hang, Rehearsal, rehearse

ERROR_LINE = re.compile(r"^[A-Za-z_][A-Za-z0-9_.]*: [^\n]+$")


@dataclass
class Scenario:
    """One rehearsal and what it must give."""

    id: str
    yaml: str
    outcomes: dict[str, Any] = field(default_factory=dict)
    params: dict[str, Any] | None = None
    events: list[tuple[float, E.Event]] = field(default_factory=list)
    durations: dict[str, float] = field(default_factory=dict)
    #: Execution ids in start order.
    sequence: list[str] | None = None
    status: str = "succeeded"
    #: ``None``: the run has no error; a string (or tuple): substrings of the run's error.
    error: str | tuple[str, ...] | None = None
    outputs: dict[str, Any] | None = None
    #: exec id -> result.
    results: dict[str, Any] = field(default_factory=dict)
    #: exec id -> task execution status.
    statuses: dict[str, str] = field(default_factory=dict)
    #: exec id -> number of attempts.
    attempts: dict[str, int] = field(default_factory=dict)
    #: exec id -> simulated start / end time.
    started: dict[str, float] = field(default_factory=dict)
    ended: dict[str, float] = field(default_factory=dict)
    #: exec id -> substring of the execution's error.
    task_errors: dict[str, str] = field(default_factory=dict)
    #: When the run ended (simulated).
    run_ended: float | None = None
    #: Anything else, as a function of the rehearsal.
    check: Callable[[Rehearsal], None] | None = None
    xfail: str | None = None


def _counter_outcome(*script: Any) -> Callable[[C.Submit], Any]:
    """An outcome following ``script`` across executions (per-attempt lists restart per execution)."""
    calls = itertools.count()

    def outcome(submit: C.Submit) -> Any:
        n = next(calls)
        return script[min(n, len(script) - 1)]

    return outcome


def _times_ten(submit: C.Submit) -> Any:
    return submit.item * 10


def _first_item_fails_once(submit: C.Submit) -> Any:
    if submit.index == 0 and submit.attempt == 1:
        return Fail("RuntimeError: flaky")
    return submit.item * 10


def _item_one_fails(submit: C.Submit) -> Any:
    return Fail("ValueError: bad item") if submit.index == 1 else submit.item


def _items(r: Rehearsal, exec_id: str) -> list[tuple[str, int]]:
    items = r.state.executions[exec_id].items
    assert items is not None
    return [(it.status, it.attempts) for it in items]


def _timer_delays(r: Rehearsal, prefix: str) -> list[float]:
    return [
        c.delay for c in r.commands if isinstance(c, C.StartTimer) and c.timer.startswith(prefix)
    ]


# -- checks that need more than the table's columns ---------------------------------------------
def _check_items_stop(r: Rehearsal) -> None:
    # Batch of 2: items 0 and 1 start; 0 succeeds and item 2 takes its place; 1 fails; 2 settles;
    # 3 and 4 are never started.
    assert _items(r, "t") == [
        ("succeeded", 1),
        ("failed", 1),
        ("succeeded", 1),
        ("skipped", 0),
        ("skipped", 0),
    ]
    assert [s.index for s in r.submits if s.task == "t"] == [0, 1, 2]
    assert r.state.executions["t"].error == "ValueError: item 1: bad item"


def _check_items_retry(r: Rehearsal) -> None:
    assert _items(r, "t") == [("succeeded", 2), ("succeeded", 1), ("succeeded", 1)]
    assert [(s.index, s.attempt) for s in r.submits] == [(0, 1), (1, 1), (2, 1), (0, 2)]


def _check_retry_when_logs(r: Rehearsal) -> None:
    logs = r.state.executions["a"].logs
    assert logs[-1] == "attempt 3 failed: ValueError: bad input; not retried (retry.when)"
    assert sum("retrying in 2s" in line for line in logs) == 2


def _check_retry_when_items(r: Rehearsal) -> None:
    # Items 0 and 2 fail once and are retried; item 1 (value 2) is not: the task fails there.
    assert _items(r, "t") == [("succeeded", 2), ("failed", 1), ("succeeded", 2)]


def _check_retry_when_broken(r: Rehearsal) -> None:
    error = r.state.executions["a"].error
    assert error is not None and ERROR_LINE.match(error), error
    assert "RuntimeError: first" in error  # the attempt's own failure is kept in the line


def _check_batch(r: Rehearsal) -> None:
    subs = [s for s in r.submits if s.task == "t"]
    assert [s.index for s in subs] == [0, 1, 2, 3, 4]
    assert [s.input for s in subs] == [{"x": i} for i in range(5)]


def _check_items_expression_error(r: Rehearsal) -> None:
    # Item 0 cannot render its input: the task fails once, its handler runs once, and the items
    # after it are never submitted.
    assert [s for s in r.submits if s.task == "t"] == []
    assert _items(r, "t")[0] == ("failed", 1)
    assert all(status == "skipped" for status, _ in _items(r, "t")[1:])
    assert "ExpressionError" in r.state.executions["t"].error


def _check_no_items_submitted(r: Rehearsal) -> None:
    assert [s for s in r.submits if s.task == "t"] == []


def _check_fail_fast(r: Rehearsal) -> None:
    assert "c" not in r.state.executions
    assert r.state.ended_at == 3.0  # b (running when a failed) was allowed to finish


def _check_parallel_together(r: Rehearsal) -> None:
    ex = r.state.executions
    assert ex["x"].started_at == ex["y"].started_at == ex["start"].ended_at


def _check_pause_then_resume(r: Rehearsal) -> None:
    assert r.status == "paused"
    assert r.sequence == ["a"]
    assert r.task_status("a") == "succeeded"  # running tasks finish while paused
    r.send(E.ResumeRequested(20.0))
    assert r.sequence == ["a", "b"]
    assert r.state.executions["b"].started_at == 20.0
    assert r.status == "succeeded"


def _check_cancel(r: Rehearsal) -> None:
    key = r.submits[0].key
    assert C.CancelAttempt(key) in r.commands
    assert r.state.ended_at == 2.0
    assert isinstance(r.commands[-1], C.RunFinished) and r.commands[-1].status == "cancelled"


def _check_cancel_items(r: Rehearsal) -> None:
    keys = [s.key for s in r.submits]
    assert len(keys) == 2  # the batch in flight; the rest never started
    assert [c.key for c in r.commands if isinstance(c, C.CancelAttempt)] == keys
    assert [status for status, _ in _items(r, "t")] == ["cancelled"] * 4


def _check_inquiry_waiting(r: Rehearsal) -> None:
    assert r.status == "waiting"
    assert r.task_status("approve") == "waiting"
    assert [c for c in r.commands if isinstance(c, C.OpenInquiry)] == [
        C.OpenInquiry("approve", "approve", "Ship it?", {"type": "object"})
    ]
    r.send(E.InquiryResponded(30.0, exec_id="approve", data={"approved": True}))
    assert r.sequence == ["approve", "ship"]
    assert r.result("approve") == {"approved": True}
    assert r.status == "succeeded"


def _check_recursion_free(r: Rehearsal) -> None:
    assert len(r.sequence) == 501


def _check_max_runs_default(r: Rehearsal) -> None:
    assert len(r.sequence) == 1000
    assert r.sequence[-1] == "spin#1000"


def _check_child(r: Rehearsal) -> None:
    (child,) = [c for c in r.commands if isinstance(c, C.StartChild)]
    assert child.workflow == "notify"
    assert child.input == {"text": "hi shop"}


def _check_output_map_failure(r: Rehearsal) -> None:
    assert isinstance(r.commands[-1], C.RunFinished)
    assert r.commands[-1].outputs == {"made": 7, "state": "failed"}


def _check_routing_instant(r: Rehearsal) -> None:
    assert [s.task for s in r.submits] == ["work"]
    ex = r.state.executions["route"]
    assert ex.started_at == ex.ended_at == 0.0


def _check_timeout_cancels(r: Rehearsal) -> None:
    keys = [s.key for s in r.submits]
    assert [c.key for c in r.commands if isinstance(c, C.CancelAttempt)] == keys


def _check_keep_going(r: Rehearsal) -> None:
    assert r.task_status("c") == "succeeded"
    assert "a2" not in r.state.executions


SCENARIOS: list[Scenario] = [
    # -- sequences and the sugar ---------------------------------------------------------------
    Scenario(
        "sequence_linear",
        """
        name: w
        tasks:
          a: {action: act, on_success: b}
          b: {action: act, on_success: c}
          c: {action: act}
        """,
        outcomes={"a": 1, "b": 2, "c": 3},
        sequence=["a", "b", "c"],
        results={"a": 1, "b": 2, "c": 3},
        started={"a": 0, "b": 1, "c": 2},
        run_ended=3,
    ),
    Scenario(
        "fan_out_in_listed_order",
        """
        name: w
        tasks:
          a: {action: act, on_success: [c, b, d]}
          b: {action: act}
          c: {action: act}
          d: {action: act}
        """,
        sequence=["a", "c", "b", "d"],
        started={"b": 1, "c": 1, "d": 1},
    ),
    Scenario(
        "several_start_tasks",
        """
        name: w
        tasks:
          a: {action: act}
          b: {action: act, on_success: c}
          c: {action: act}
        """,
        sequence=["a", "b", "c"],
        started={"a": 0, "b": 0, "c": 1},
    ),
    Scenario(
        "on_failure_branch",
        """
        name: w
        tasks:
          a: {action: act, on_success: b, on_failure: c}
          b: {action: act}
          c: {action: act}
        """,
        outcomes={"a": Fail("RuntimeError: boom")},
        sequence=["a", "c"],
        statuses={"a": "failed", "c": "succeeded"},
        task_errors={"a": "RuntimeError: boom"},
    ),
    Scenario(
        "on_complete_after_success",
        """
        name: w
        tasks:
          a: {action: act, on_success: b, on_complete: c}
          b: {action: act}
          c: {action: act}
        """,
        sequence=["a", "b", "c"],
    ),
    Scenario(
        "on_complete_remediates_failure",
        """
        name: w
        tasks:
          a: {action: act, on_success: b, on_complete: c}
          b: {action: act}
          c: {action: act}
        """,
        outcomes={"a": Fail()},
        sequence=["a", "c"],
        statuses={"a": "failed"},
    ),
    Scenario(
        "next_every_true_when_fires_in_order",
        """
        name: w
        tasks:
          a:
            action: act
            next:
              - {when: "{{ result.n > 1 }}", do: b}
              - {when: "{{ result.n > 3 }}", do: [c, d]}
              - {when: "{{ result.n > 10 }}", do: x}
              - {do: e}
          b: {action: act}
          c: {action: act}
          d: {action: act}
          e: {action: act}
          x: {action: act}
        """,
        outcomes={"a": {"n": 5}},
        sequence=["a", "b", "c", "d", "e"],
    ),
    Scenario(
        "next_without_when_fires_on_failure_too",
        """
        name: w
        tasks:
          a:
            action: act
            next:
              - {when: "{{ succeeded() }}", do: ok}
              - {do: always}
          ok: {action: act}
          always: {action: act}
        """,
        outcomes={"a": Fail()},
        sequence=["a", "always"],
    ),
    Scenario(
        "completed_function",
        """
        name: w
        tasks:
          a:
            action: act
            next:
              - {when: "{{ completed() and failed() }}", do: h}
          h: {action: act}
        """,
        outcomes={"a": Fail()},
        sequence=["a", "h"],
    ),
    # -- publish -----------------------------------------------------------------------------
    Scenario(
        "publish_task_level_visible_to_later_tasks_and_outputs",
        """
        name: w
        vars: {aid: null}
        tasks:
          a: {action: act, publish: {aid: "{{ result.id }}"}, on_success: b}
          b: {action: act, input: {v: "{{ vars.aid }}"}}
        output_map: {aid: "{{ vars.aid }}", b: "{{ task.b.result.v }}"}
        """,
        outcomes={"a": {"id": 7}},
        sequence=["a", "b"],
        results={"b": {"v": 7}},
        outputs={"aid": 7, "b": 7},
    ),
    Scenario(
        "publish_list_applied_in_order",
        """
        name: w
        tasks:
          a:
            action: act
            publish:
              - x: 1
              - y: "{{ vars.x + 1 }}"
              - x: "{{ vars.y * 10 }}"
        output_map: {x: "{{ vars.x }}", y: "{{ vars.y }}"}
        """,
        outputs={"x": 20, "y": 2},
    ),
    Scenario(
        "publish_task_level_seen_by_next_when",
        """
        name: w
        tasks:
          a:
            action: act
            publish: {n: "{{ result.n }}"}
            next:
              - {when: "{{ vars.n == 3 }}", do: three}
              - {when: "{{ vars.n != 3 }}", do: other}
          three: {action: act}
          other: {action: act}
        """,
        outcomes={"a": {"n": 3}},
        sequence=["a", "three"],
    ),
    Scenario(
        "publish_in_next_entries_in_order",
        """
        name: w
        tasks:
          a:
            action: act
            next:
              - publish: [{x: 1}, {y: "{{ vars.x + 1 }}"}]
              - when: "{{ vars.y == 2 }}"
                publish: {z: "{{ vars.x + vars.y }}"}
                do: b
          b: {action: act, input: {z: "{{ vars.z }}"}}
        output_map: {x: "{{ vars.x }}", y: "{{ vars.y }}", z: "{{ vars.z }}"}
        """,
        sequence=["a", "b"],
        results={"b": {"z": 3}},
        outputs={"x": 1, "y": 2, "z": 3},
    ),
    Scenario(
        "publish_task_level_not_applied_on_failure",
        """
        name: w
        vars: {v: initial}
        tasks:
          a: {action: act, publish: {v: changed}, on_failure: h}
          h: {action: act}
        output_map: {v: "{{ vars.v }}"}
        """,
        outcomes={"a": Fail()},
        sequence=["a", "h"],
        outputs={"v": "initial"},
    ),
    Scenario(
        "publish_error_in_failure_transition",
        """
        name: w
        tasks:
          a:
            action: act
            next:
              - when: "{{ failed() }}"
                publish: {why: "{{ error }}"}
                do: h
          h: {action: act, input: {why: "{{ vars.why }}"}}
        output_map: {why: "{{ vars.why }}"}
        """,
        outcomes={"a": Fail("ValueError: no disk")},
        sequence=["a", "h"],
        outputs={"why": "ValueError: no disk"},
        results={"h": {"why": "ValueError: no disk"}},
    ),
    # -- the commands fail, noop, retry ------------------------------------------------------
    Scenario(
        "do_fail_after_success",
        """
        name: w
        tasks:
          a: {action: act, next: [{do: fail}]}
        """,
        sequence=["a"],
        status="failed",
        error=("'a'", "fail"),
        statuses={"a": "succeeded"},
    ),
    Scenario(
        "do_fail_siblings_still_start_and_run_fails_when_they_settle",
        """
        name: w
        tasks:
          a:
            action: act
            next:
              - {when: "{{ failed() }}", do: [log, fail]}
          log: {action: act, on_success: after}
          after: {action: act}
        """,
        outcomes={"a": Fail("RuntimeError: disk full")},
        durations={"log": 5},
        sequence=["a", "log"],
        status="failed",
        error=("'a'", "disk full"),
        statuses={"log": "succeeded"},
        run_ended=6,
    ),
    Scenario(
        "do_noop_swallows_failure",
        """
        name: w
        tasks:
          a:
            action: act
            next:
              - {when: "{{ failed() }}", do: noop}
        """,
        outcomes={"a": Fail()},
        sequence=["a"],
        statuses={"a": "failed"},
    ),
    Scenario(
        "do_retry_runs_the_task_again",
        """
        name: w
        tasks:
          a:
            action: act
            next:
              - {when: "{{ failed() }}", do: retry}
              - {when: "{{ succeeded() }}", do: b}
          b: {action: act}
        """,
        outcomes={"a": _counter_outcome(Fail(), Fail(), "ok")},
        sequence=["a", "a#2", "a#3", "b"],
        statuses={"a": "failed", "a#2": "failed", "a#3": "succeeded"},
        results={"a#3": "ok"},
    ),
    Scenario(
        "do_retry_bounded_by_max_runs",
        """
        name: w
        tasks:
          a:
            action: act
            max_runs: 3
            next: [{when: "{{ failed() }}", do: retry}]
        """,
        outcomes={"a": Fail()},
        sequence=["a", "a#2", "a#3"],
        status="failed",
        error=("MaxRunsExceeded", "'a'", "3"),
    ),
    # -- remediation rule ---------------------------------------------------------------------
    Scenario(
        "failure_with_only_on_success_fails_run_naming_task",
        """
        name: w
        tasks:
          a: {action: act, on_success: b}
          b: {action: act}
        """,
        outcomes={"a": Fail("RuntimeError: kaput")},
        sequence=["a"],
        status="failed",
        error="RuntimeError: task 'a' failed: kaput",
    ),
    Scenario(
        "failure_without_transitions_fails_run",
        """
        name: w
        tasks:
          a: {action: act}
        """,
        outcomes={"a": Fail("RuntimeError: kaput")},
        sequence=["a"],
        status="failed",
        error=("'a'", "kaput"),
    ),
    Scenario(
        "when_failed_expression_remediates",
        """
        name: w
        tasks:
          a:
            action: act
            next: [{when: "{{ failed() and 'kaput' in error }}", do: h}]
          h: {action: act}
        """,
        outcomes={"a": Fail("RuntimeError: kaput")},
        sequence=["a", "h"],
    ),
    Scenario(
        "when_false_for_failure_does_not_remediate",
        """
        name: w
        tasks:
          a:
            action: act
            next: [{when: "{{ failed() and 'other' in error }}", do: h}]
          h: {action: act}
        """,
        outcomes={"a": Fail("RuntimeError: kaput")},
        sequence=["a"],
        status="failed",
        error="'a'",
    ),
    Scenario(
        "timed_out_routes_timeouts",
        """
        name: w
        tasks:
          a:
            action: act
            timeout: 2
            next:
              - {when: "{{ timed_out() }}", do: slow}
              - {when: "{{ failed() and not timed_out() }}", do: broken}
          slow: {action: act}
          broken: {action: act}
        """,
        outcomes={"a": Hang()},
        sequence=["a", "slow"],
        statuses={"a": "failed"},
        task_errors={"a": "TimeoutError"},
        ended={"a": 2},
    ),
    Scenario(
        "timed_out_false_for_other_failures",
        """
        name: w
        tasks:
          a:
            action: act
            timeout: 2
            next:
              - {when: "{{ timed_out() }}", do: slow}
              - {when: "{{ failed() and not timed_out() }}", do: broken}
          slow: {action: act}
          broken: {action: act}
        """,
        outcomes={"a": Fail()},
        sequence=["a", "broken"],
    ),
    Scenario(
        "remediation_that_does_fail_still_fails",
        """
        name: w
        tasks:
          a: {action: act, next: [{when: "{{ failed() }}", do: fail}]}
        """,
        outcomes={"a": Fail("RuntimeError: kaput")},
        sequence=["a"],
        status="failed",
        error=("'a'", "kaput"),
    ),
    # -- fail-fast and keep_going -------------------------------------------------------------
    Scenario(
        "fail_fast_running_tasks_finish_no_new_starts",
        """
        name: w
        tasks:
          a: {action: act}
          b: {action: act, on_success: c}
          c: {action: act}
        """,
        outcomes={"a": Fail("RuntimeError: first")},
        durations={"b": 3},
        sequence=["a", "b"],
        status="failed",
        error=("'a'", "first"),
        statuses={"a": "failed", "b": "succeeded"},
        check=_check_fail_fast,
    ),
    Scenario(
        "keep_going_independent_branches_continue",
        """
        name: w
        keep_going: true
        tasks:
          a: {action: act, on_success: a2}
          a2: {action: act}
          b: {action: act, on_success: c}
          c: {action: act}
        """,
        outcomes={"a": Fail("RuntimeError: first")},
        durations={"b": 3},
        sequence=["a", "b", "c"],
        status="failed",
        error=("'a'", "first"),
        run_ended=4,
        check=_check_keep_going,
    ),
    Scenario(
        "keep_going_first_failure_names_the_run_error",
        """
        name: w
        keep_going: true
        tasks:
          a: {action: act}
          b: {action: act}
        """,
        outcomes={"a": Fail("RuntimeError: one"), "b": Fail("RuntimeError: two")},
        durations={"b": 2},
        sequence=["a", "b"],
        status="failed",
        error=("'a'", "one"),
        statuses={"b": "failed"},
    ),
    # -- joins -------------------------------------------------------------------------------
    Scenario(
        "join_all_waits_for_every_inbound",
        """
        name: w
        tasks:
          a: {action: act, on_success: j}
          b: {action: act, on_success: j}
          j: {action: act, join: all}
        """,
        durations={"b": 3},
        sequence=["a", "b", "j"],
        started={"j": 3},
    ),
    Scenario(
        "join_two_of_three_runs_once",
        """
        name: w
        tasks:
          a: {action: act, on_success: j}
          b: {action: act, on_success: j}
          c: {action: act, on_success: j}
          j: {action: act, join: 2}
        """,
        durations={"a": 1, "b": 2, "c": 5},
        sequence=["a", "b", "c", "j"],
        started={"j": 2},
        statuses={"c": "succeeded"},
        run_ended=5,
    ),
    Scenario(
        "needs_is_a_join",
        """
        name: w
        tasks:
          a: {action: act}
          b: {action: act}
          c: {action: act, needs: [a, b], input: {s: "{{ task.a.result + task.b.result }}"}}
        """,
        outcomes={"a": 1, "b": 2},
        durations={"a": 4},
        sequence=["a", "b", "c"],
        started={"c": 4},
        results={"c": {"s": 3}},
    ),
    Scenario(
        "needs_dependency_unhandled_failure_fails_run",
        """
        name: w
        tasks:
          a: {action: act}
          b: {action: act}
          c: {action: act, needs: [a, b]}
        """,
        outcomes={"a": Fail("RuntimeError: nope")},
        sequence=["a", "b"],
        status="failed",
        error=("'a'", "nope"),
    ),
    Scenario(
        "unreachable_join_after_remediated_failure",
        """
        name: w
        tasks:
          a: {action: act}
          b: {action: act, on_failure: cleanup}
          cleanup: {action: act}
          c: {action: act, needs: [a, b]}
        """,
        outcomes={"b": Fail()},
        sequence=["a", "b", "cleanup"],
        status="failed",
        error=("JoinError", "'c'"),
    ),
    Scenario(
        "unreachable_explicit_join",
        """
        name: w
        tasks:
          a: {action: act, on_success: j}
          b: {action: act, on_success: j, on_failure: h}
          h: {action: act}
          j: {action: act, join: all}
        """,
        outcomes={"b": Fail()},
        sequence=["a", "b", "h"],
        status="failed",
        error=("JoinError", "'j'", "b"),
    ),
    Scenario(
        "task_without_join_runs_once_per_inbound_transition",
        """
        name: w
        tasks:
          a: {action: act, on_success: c}
          b: {action: act, on_success: c}
          c: {action: act}
        """,
        durations={"b": 2, "c": 5},
        sequence=["a", "b", "c", "c#2"],
        started={"c": 1, "c#2": 2},
        run_ended=7,
    ),
    Scenario(
        "keep_going_dependents_of_failed_task_never_run",
        """
        name: w
        keep_going: true
        tasks:
          a: {action: act}
          b: {action: act}
          c: {action: act, needs: [a, b]}
          d: {action: act}
        """,
        outcomes={"a": Fail("RuntimeError: nope")},
        sequence=["a", "b", "d"],
        status="failed",
        error="RuntimeError: task 'a' failed: nope",
    ),
    # -- loops -------------------------------------------------------------------------------
    Scenario(
        "loop_with_counter_in_vars",
        """
        name: w
        vars: {i: 0}
        tasks:
          step:
            action: act
            input: {i: "{{ vars.i }}"}
            publish: {i: "{{ vars.i + 1 }}"}
            next:
              - {when: "{{ vars.i < 3 }}", do: step}
              - {when: "{{ vars.i >= 3 }}", do: done}
          done: {action: act}
        output_map: {i: "{{ vars.i }}", last: "{{ task.step.result }}"}
        """,
        sequence=["step", "step#2", "step#3", "done"],
        results={"step": {"i": 0}, "step#2": {"i": 1}, "step#3": {"i": 2}},
        outputs={"i": 3, "last": {"i": 2}},
    ),
    Scenario(
        "loop_through_two_tasks",
        """
        name: w
        vars: {i: 0}
        tasks:
          init: {action: act, on_success: work}
          work: {action: act, publish: {i: "{{ vars.i + 1 }}"}, on_success: check}
          check:
            next:
              - {when: "{{ vars.i < 2 }}", do: work}
        """,
        sequence=["init", "work", "check", "work#2", "check#2"],
        outputs=None,
    ),
    Scenario(
        "loop_max_runs_exceeded",
        """
        name: w
        tasks:
          step:
            action: act
            max_runs: 3
            next: [{do: step}]
        """,
        sequence=["step", "step#2", "step#3"],
        status="failed",
        error=("MaxRunsExceeded", "'step'", "max_runs (3)"),
    ),
    Scenario(
        "loop_max_runs_from_defaults",
        """
        name: w
        defaults: {max_runs: 2}
        tasks:
          step: {action: act, next: [{do: step}]}
        """,
        sequence=["step", "step#2"],
        status="failed",
        error=("MaxRunsExceeded", "'step'"),
    ),
    Scenario(
        "routing_loop_500_iterations",
        """
        name: w
        vars: {i: 0}
        tasks:
          spin:
            next:
              - when: "{{ vars.i < 500 }}"
                publish: {i: "{{ vars.i + 1 }}"}
                do: spin
        output_map: {i: "{{ vars.i }}"}
        """,
        outputs={"i": 500},
        check=_check_recursion_free,
    ),
    Scenario(
        "routing_runaway_loop_stopped_by_default_max_runs",
        """
        name: w
        tasks:
          spin: {next: [{do: spin}]}
        """,
        status="failed",
        error=("MaxRunsExceeded", "'spin'", "1000"),
        check=_check_max_runs_default,
    ),
    # -- decision ------------------------------------------------------------------------------
    Scenario(
        "decision_first_match_wins",
        """
        name: w
        tasks:
          a:
            action: act
            decision:
              - {when: "{{ result.n > 1 }}", next: b}
              - {when: "{{ result.n > 3 }}", next: c}
              - default: d
          b: {action: act}
          c: {action: act}
          d: {action: act}
        """,
        outcomes={"a": {"n": 5}},
        sequence=["a", "b"],
    ),
    Scenario(
        "decision_second_branch",
        """
        name: w
        tasks:
          a:
            action: act
            decision:
              - {when: "{{ result.n > 10 }}", next: b}
              - {when: "{{ result.n > 3 }}", next: c}
              - default: d
          b: {action: act}
          c: {action: act}
          d: {action: act}
        """,
        outcomes={"a": {"n": 5}},
        sequence=["a", "c"],
    ),
    Scenario(
        "decision_default",
        """
        name: w
        tasks:
          a:
            action: act
            decision:
              - {when: "{{ result.n > 1 }}", next: b}
              - default: [c, d]
          b: {action: act}
          c: {action: act}
          d: {action: act}
        """,
        outcomes={"a": {"n": 0}},
        sequence=["a", "c", "d"],
    ),
    Scenario(
        "decision_bare_expression_and_publish",
        """
        name: w
        parameters:
          environment: {type: string, default: production}
        tasks:
          decide:
            decision:
              - when: parameters.environment == 'production'
                publish: {lane: prod}
                next: approve
              - default: finish
          approve: {action: act, input: {lane: "{{ vars.lane }}"}}
          finish: {action: act}
        """,
        sequence=["decide", "approve"],
        results={"approve": {"lane": "prod"}},
    ),
    Scenario(
        "decision_on_parameter_default_branch",
        """
        name: w
        parameters:
          environment: {type: string, enum: [dev, production], default: production}
        tasks:
          decide:
            decision:
              - when: "{{ parameters.environment == 'production' }}"
                next: approve
              - default: finish
          approve: {action: act}
          finish: {action: act}
        """,
        params={"environment": "dev"},
        sequence=["decide", "finish"],
    ),
    Scenario(
        "decision_does_not_handle_failure",
        """
        name: w
        tasks:
          a:
            action: act
            decision:
              - {when: "{{ true }}", next: b}
              - default: c
          b: {action: act}
          c: {action: act}
        """,
        outcomes={"a": Fail("RuntimeError: down")},
        sequence=["a"],
        status="failed",
        error=("'a'", "down"),
    ),
    # -- parallel and execution groups --------------------------------------------------------
    Scenario(
        "parallel_members_start_together_group_result_is_mapping",
        """
        name: w
        tasks:
          start: {action: act, on_success: checks}
          checks:
            type: parallel
            tasks:
              x: {action: act}
              y: {action: act}
            on_success: after
          after: {action: act, input: {g: "{{ task.checks.result }}"}}
        """,
        outcomes={"x": "X", "y": "Y"},
        durations={"y": 3},
        sequence=["start", "x", "y", "checks", "after"],
        results={"checks": {"x": "X", "y": "Y"}, "after": {"g": {"x": "X", "y": "Y"}}},
        started={"checks": 4, "after": 4},
        check=_check_parallel_together,
    ),
    Scenario(
        "parallel_group_as_start_task",
        """
        name: w
        tasks:
          checks:
            type: parallel
            tasks:
              x: {action: act}
              y: {action: act}
            on_success: after
          after: {action: act}
        """,
        sequence=["x", "y", "checks", "after"],
        started={"x": 0, "y": 0},
    ),
    Scenario(
        "parallel_member_failure_fails_run",
        """
        name: w
        tasks:
          checks:
            type: parallel
            tasks:
              x: {action: act}
              y: {action: act}
            on_success: after
          after: {action: act}
        """,
        outcomes={"x": Fail("RuntimeError: x down")},
        durations={"y": 2},
        sequence=["x", "y", "checks"],  # the group ends failed once y settles
        status="failed",
        error=("'checks'", "member 'x'", "x down"),
        statuses={"y": "succeeded", "checks": "failed"},
    ),
    Scenario(
        "execution_groups",
        """
        name: w
        tasks:
          a: {action: act, group: 1}
          b: {action: act, group: 1}
          c: {action: act, group: 2}
          d: {action: act, group: 2}
          e: {action: act, group: 3}
        """,
        durations={"b": 2, "d": 3},
        sequence=["a", "b", "c", "d", "e"],
        started={"a": 0, "b": 0, "c": 2, "d": 2, "e": 5},
    ),
    Scenario(
        "nested_parallel_groups",
        """
        name: w
        tasks:
          outer:
            type: parallel
            tasks:
              inner:
                type: parallel
                tasks:
                  p: {action: act}
                  q: {action: act}
              z: {action: act}
            on_success: done
          done: {action: act}
        """,
        outcomes={"p": 1, "q": 2, "z": 3},
        sequence=["p", "q", "z", "inner", "outer", "done"],
        results={"inner": {"p": 1, "q": 2}, "outer": {"inner": {"p": 1, "q": 2}, "z": 3}},
    ),
    Scenario(
        "loop_through_parallel_group",
        """
        name: w
        vars: {i: 0}
        tasks:
          start: {action: act, on_success: grp}
          grp:
            type: parallel
            tasks:
              x: {action: act}
              y: {action: act}
            publish: {i: "{{ vars.i + 1 }}"}
            next: [{when: "{{ vars.i < 3 }}", do: grp}]
        output_map: {i: "{{ vars.i }}"}
        """,
        sequence=["start", "x", "y", "grp", "x#2", "y#2", "grp#2", "x#3", "y#3", "grp#3"],
        outputs={"i": 3},
    ),
    # -- with_items ----------------------------------------------------------------------------
    Scenario(
        "with_items_results_in_item_order",
        """
        name: w
        tasks:
          t:
            action: act
            with_items: [1, 2, 3]
            retry: {count: 1, delay: 5}
        """,
        outcomes={"t": _first_item_fails_once},
        sequence=["t"],
        results={"t": [10, 20, 30]},
        ended={"t": 7},
        check=_check_items_retry,
    ),
    Scenario(
        "with_items_item_and_index_from_parameters",
        """
        name: w
        parameters:
          regions: {type: array, default: [eu, us]}
        tasks:
          t:
            action: act
            with_items: "{{ parameters.regions }}"
            input: {region: "{{ item }}", n: "{{ index }}"}
        """,
        params={"regions": ["eu", "us", "ap"]},
        results={
            "t": [{"region": "eu", "n": 0}, {"region": "us", "n": 1}, {"region": "ap", "n": 2}]
        },
    ),
    Scenario(
        "with_items_batch_size_limits_in_flight",
        """
        name: w
        tasks:
          t:
            action: act
            with_items: [0, 1, 2, 3, 4]
            batch_size: 2
            input: {x: "{{ item }}"}
        """,
        ended={"t": 3},
        check=_check_batch,
    ),
    Scenario(
        "with_items_failed_item_stops_new_items",
        """
        name: w
        tasks:
          t:
            action: act
            with_items: [0, 1, 2, 3, 4]
            batch_size: 2
            on_failure: h
          h: {action: act}
        """,
        outcomes={"t": _item_one_fails},
        durations={"t": 1},
        sequence=["t", "h"],
        statuses={"t": "failed"},
        ended={"t": 2},
        check=_check_items_stop,
    ),
    Scenario(
        "with_items_failed_item_unhandled_fails_run",
        """
        name: w
        tasks:
          t: {action: act, with_items: [0, 1, 2]}
        """,
        outcomes={"t": _item_one_fails},
        status="failed",
        error=("'t'", "item 1", "bad item"),
    ),
    Scenario(
        "with_items_empty_list_succeeds",
        """
        name: w
        tasks:
          t: {action: act, with_items: [], on_success: after}
          after: {action: act, input: {r: "{{ task.t.result }}"}}
        """,
        sequence=["t", "after"],
        results={"t": [], "after": {"r": []}},
        check=_check_no_items_submitted,
    ),
    Scenario(
        "with_items_not_a_list_fails_task",
        """
        name: w
        parameters: {x: {type: any, default: 5}}
        tasks:
          t: {action: act, with_items: "{{ parameters.x }}", on_failure: h}
          h: {action: act}
        """,
        sequence=["t", "h"],
        statuses={"t": "failed"},
        task_errors={"t": "with_items"},
        check=_check_no_items_submitted,
    ),
    Scenario(
        "with_items_mapping_is_not_a_list",
        """
        name: w
        tasks:
          t: {action: act, with_items: "{{ {'a': 1} }}"}
        """,
        status="failed",
        error=("'t'", "with_items"),
    ),
    Scenario(
        "with_items_item_input_expression_error_fails_task_once",
        """
        name: w
        tasks:
          t:
            action: act
            with_items: [0, 1, 2]
            input: {v: "{{ 10 / item }}"}
            on_failure: h
          h: {action: act}
        """,
        sequence=["t", "h"],
        statuses={"t": "failed", "h": "succeeded"},
        check=_check_items_expression_error,
    ),
    # -- retries ---------------------------------------------------------------------------------
    Scenario(
        "retry_constant_exhausted",
        """
        name: w
        tasks:
          a: {action: act, retry: {count: 2, delay: 3}}
        """,
        outcomes={"a": Fail("RuntimeError: flaky")},
        status="failed",
        error=("'a'", "flaky"),
        attempts={"a": 3},
        ended={"a": 9},
    ),
    Scenario(
        "retry_linear_backoff",
        """
        name: w
        tasks:
          a: {action: act, retry: {count: 3, delay: 2, backoff: linear}}
        """,
        outcomes={"a": Fail()},
        status="failed",
        error="'a'",
        attempts={"a": 4},
        ended={"a": 16},
    ),
    Scenario(
        "retry_exponential_backoff",
        """
        name: w
        tasks:
          a: {action: act, retry: {count: 3, delay: 2, backoff: exponential}}
        """,
        outcomes={"a": Fail()},
        status="failed",
        error="'a'",
        attempts={"a": 4},
        ended={"a": 18},
    ),
    Scenario(
        "retry_exponential_capped_by_max_delay",
        """
        name: w
        tasks:
          a: {action: act, retry: {count: 3, delay: 2, backoff: exponential, max_delay: 5}}
        """,
        outcomes={"a": Fail()},
        status="failed",
        error="'a'",
        attempts={"a": 4},
        ended={"a": 15},
    ),
    Scenario(
        "retry_succeeds_on_a_later_attempt",
        """
        name: w
        tasks:
          a: {action: act, retry: 2, on_success: b}
          b: {action: act, input: {n: "{{ task.a.attempts }}"}}
        """,
        outcomes={"a": [Fail(), Fail(), "third time"]},
        sequence=["a", "b"],
        attempts={"a": 3},
        results={"a": "third time", "b": {"n": 3}},
        statuses={"a": "succeeded"},
    ),
    Scenario(
        "retry_from_defaults_then_on_failure",
        """
        name: w
        defaults: {retry: {count: 1, delay: 4}}
        tasks:
          a: {action: act, on_failure: h}
          h: {action: act, retry: {count: 0}}
        """,
        outcomes={"a": Fail(), "h": Fail("RuntimeError: handler broke")},
        sequence=["a", "h"],
        attempts={"a": 2, "h": 1},
        started={"h": 6},
        status="failed",
        error=("'h'", "handler broke"),
    ),
    Scenario(
        "retry_when_retries_only_the_failures_it_holds_for",
        """
        name: w
        tasks:
          a:
            action: act
            retry: {count: 5, delay: 2, when: "{{ error.startswith('ConnectionError') }}"}
            on_failure: h
          h: {action: act, input: {e: "{{ task.a.error }}", n: "{{ task.a.attempts }}"}}
        """,
        outcomes={
            "a": [
                Fail("ConnectionError: reset"),
                Fail("ConnectionError: reset"),
                Fail("ValueError: bad input"),
                "never reached",
            ]
        },
        sequence=["a", "h"],
        attempts={"a": 3},
        statuses={"a": "failed", "h": "succeeded"},
        results={"h": {"e": "ValueError: bad input", "n": 3}},
        ended={"a": 7},
        check=_check_retry_when_logs,
    ),
    Scenario(
        "retry_when_false_fails_at_the_first_attempt",
        """
        name: w
        tasks:
          a: {action: act, retry: {count: 3, delay: 1, when: "timed_out()"}}
        """,
        outcomes={"a": [Fail("RuntimeError: flaky"), "never reached"]},
        status="failed",
        error=("'a'", "flaky"),
        attempts={"a": 1},
        ended={"a": 1},
    ),
    Scenario(
        "retry_when_timed_out_retries_timeouts",
        """
        name: w
        tasks:
          a: {action: act, timeout: 5, retry: {count: 3, delay: 1, when: "timed_out()"}}
        """,
        outcomes={"a": [Hang(), "finally"]},
        attempts={"a": 2},
        results={"a": "finally"},
        ended={"a": 7},
    ),
    Scenario(
        "retry_when_sees_parameters_vars_and_its_attempts",
        """
        name: w
        parameters: {budget: {type: integer, default: 2}}
        tasks:
          a:
            action: act
            retry:
              count: 10
              when: "{{ failed() and result is none and task.a.attempts < parameters.budget }}"
        """,
        outcomes={"a": Fail("RuntimeError: down")},
        status="failed",
        error=("'a'", "down"),
        attempts={"a": 2},
    ),
    Scenario(
        "retry_when_per_item_sees_item_and_index",
        """
        name: w
        tasks:
          t:
            action: act
            with_items: [1, 2, 3]
            retry: {count: 2, when: "{{ item != 2 }}"}
        """,
        outcomes={"t": lambda s: Fail("RuntimeError: item") if s.attempt == 1 else s.item * 10},
        status="failed",
        error=("'t'", "item 1"),
        check=_check_retry_when_items,
    ),
    Scenario(
        "retry_when_from_defaults",
        """
        name: w
        defaults: {retry: {count: 2, when: "{{ 'Transient' in error }}"}}
        tasks:
          a: {action: act, on_success: b}
          b: {action: act}
        """,
        outcomes={"a": [Fail("TransientError: busy"), "ok"], "b": Fail("KeyError: 'x'")},
        sequence=["a", "b"],
        attempts={"a": 2, "b": 1},
        status="failed",
        error=("'b'", "KeyError"),
    ),
    Scenario(
        "retry_when_that_breaks_fails_the_task_in_one_line",
        """
        name: w
        tasks:
          a: {action: act, retry: {count: 3, when: "{{ vars.missing.deeper }}"}, on_failure: h}
          h: {action: act, input: {e: "{{ task.a.error }}"}}
        """,
        outcomes={"a": [Fail("RuntimeError: first"), "never reached"]},
        sequence=["a", "h"],
        attempts={"a": 1},
        task_errors={"a": "ExpressionError: retry.when:"},
        check=_check_retry_when_broken,
    ),
    # -- timeouts --------------------------------------------------------------------------------
    Scenario(
        "timeout_fails_attempt_with_timeout_error",
        """
        name: w
        tasks:
          a: {action: act, timeout: 5}
        """,
        outcomes={"a": Hang()},
        status="failed",
        error=("'a'", "TimeoutError"),
        task_errors={"a": "TimeoutError"},
        ended={"a": 5},
        check=_check_timeout_cancels,
    ),
    Scenario(
        "timeout_is_retried",
        """
        name: w
        tasks:
          a: {action: act, timeout: 5, retry: {count: 2, delay: 1}}
        """,
        outcomes={"a": [Hang(), Hang(), "finally"]},
        attempts={"a": 3},
        results={"a": "finally"},
        ended={"a": 13},
    ),
    Scenario(
        "timeout_not_reached",
        """
        name: w
        tasks:
          a: {action: act, timeout: 5}
        """,
        outcomes={"a": "quick"},
        durations={"a": 2},
        results={"a": "quick"},
        ended={"a": 2},
    ),
    # -- inquiries -------------------------------------------------------------------------------
    Scenario(
        "inquiry_waits_then_response_continues",
        """
        name: w
        tasks:
          approve:
            action: core.inquiry
            input: {prompt: "Ship it?", schema: {type: object}}
            decision:
              - {when: "{{ result.approved }}", next: ship}
              - default: cleanup
          ship: {action: act}
          cleanup: {action: act}
        """,
        sequence=["approve"],
        status="waiting",
        check=_check_inquiry_waiting,
    ),
    Scenario(
        "inquiry_response_before_timeout",
        """
        name: w
        tasks:
          approve:
            action: core.inquiry
            input: {prompt: "Ship it?"}
            timeout: 100
            decision:
              - {when: "{{ result.approved }}", next: ship}
              - default: cleanup
          ship: {action: act}
          cleanup: {action: act}
        """,
        events=[(5.0, E.InquiryResponded(5.0, exec_id="approve", data={"approved": False}))],
        sequence=["approve", "cleanup"],
        results={"approve": {"approved": False}},
        ended={"approve": 5},
        started={"cleanup": 5},
    ),
    Scenario(
        "inquiry_timeout_fails_with_timeout_error",
        """
        name: w
        tasks:
          approve: {action: core.inquiry, input: {prompt: "Ship it?"}, timeout: 60}
        """,
        sequence=["approve"],
        status="failed",
        error=("'approve'", "TimeoutError"),
        task_errors={"approve": "TimeoutError"},
        ended={"approve": 60},
    ),
    Scenario(
        "inquiry_timeout_remediated",
        """
        name: w
        tasks:
          approve:
            action: core.inquiry
            timeout: 60
            next: [{when: "{{ timed_out() }}", do: cleanup}]
          cleanup: {action: act}
        """,
        sequence=["approve", "cleanup"],
        started={"cleanup": 60},
    ),
    Scenario(
        "inquiry_empty_response_takes_default",
        """
        name: w
        tasks:
          approve:
            action: core.inquiry
            decision:  # strict templates: an empty response has no 'approved'
              - {when: "{{ result.approved | default(false) }}", next: ship}
              - default: cleanup
          ship: {action: act}
          cleanup: {action: act}
        """,
        events=[(2.0, E.InquiryResponded(2.0, exec_id="approve", data=None))],
        sequence=["approve", "cleanup"],
    ),
    Scenario(
        "inquiry_open_while_other_tasks_run_status_running",
        """
        name: w
        tasks:
          approve: {action: core.inquiry, on_success: ship}
          work: {action: act}
          ship: {action: act}
        """,
        durations={"work": 10},
        events=[(20.0, E.InquiryResponded(20.0, exec_id="approve", data={"ok": 1}))],
        sequence=["approve", "work", "ship"],
        started={"ship": 20},
    ),
    # -- pause, resume, cancel -----------------------------------------------------------------
    Scenario(
        "pause_stops_new_starts_resume_continues",
        """
        name: w
        tasks:
          a: {action: act, on_success: b}
          b: {action: act}
        """,
        events=[(0.5, E.PauseRequested(0.5)), (10.0, E.ResumeRequested(10.0))],
        sequence=["a", "b"],
        ended={"a": 1},
        started={"b": 10},
        run_ended=11,
    ),
    Scenario(
        "pause_without_resume_stays_paused",
        """
        name: w
        tasks:
          a: {action: act, on_success: b}
          b: {action: act}
        """,
        events=[(0.5, E.PauseRequested(0.5))],
        status="paused",
        sequence=["a"],
        check=_check_pause_then_resume,
    ),
    Scenario(
        "pause_defers_retries",
        """
        name: w
        tasks:
          a: {action: act, retry: {count: 1, delay: 1}}
        """,
        outcomes={"a": [Fail(), "ok"]},
        events=[(1.5, E.PauseRequested(1.5)), (10.0, E.ResumeRequested(10.0))],
        attempts={"a": 2},
        ended={"a": 11},
    ),
    Scenario(
        "cancel_cancels_in_flight",
        """
        name: w
        tasks:
          a: {action: act, on_success: b}
          b: {action: act}
        """,
        durations={"a": 10},
        events=[(2.0, E.CancelRequested(2.0))],
        sequence=["a"],
        status="cancelled",
        error="RunCancelled",
        statuses={"a": "cancelled"},
        check=_check_cancel,
    ),
    Scenario(
        "cancel_with_items_in_flight",
        """
        name: w
        tasks:
          t: {action: act, with_items: [1, 2, 3, 4], batch_size: 2}
        """,
        durations={"t": 10},
        events=[(3.0, E.CancelRequested(3.0))],
        status="cancelled",
        error="RunCancelled",
        statuses={"t": "cancelled"},
        check=_check_cancel_items,
    ),
    Scenario(
        "cancel_while_paused",
        """
        name: w
        tasks:
          a: {action: act, on_success: b}
          b: {action: act}
        """,
        events=[(0.5, E.PauseRequested(0.5)), (4.0, E.CancelRequested(4.0))],
        sequence=["a"],
        status="cancelled",
        error="RunCancelled",
        statuses={"a": "succeeded"},
        run_ended=4,
    ),
    Scenario(
        "cancel_open_inquiry",
        """
        name: w
        tasks:
          approve: {action: core.inquiry, timeout: 100}
        """,
        events=[(3.0, E.CancelRequested(3.0))],
        status="cancelled",
        error="RunCancelled",
        statuses={"approve": "cancelled"},
        run_ended=3,
    ),
    Scenario(
        "cancel_during_retry_delay",
        """
        name: w
        tasks:
          a: {action: act, retry: {count: 3, delay: 10}}
        """,
        outcomes={"a": Fail()},
        events=[(5.0, E.CancelRequested(5.0))],
        status="cancelled",
        error="RunCancelled",
        attempts={"a": 1},
        statuses={"a": "cancelled"},
    ),
    # -- output_map ----------------------------------------------------------------------------
    Scenario(
        "output_map_rendered_on_failure",
        """
        name: w
        vars: {made: null}
        tasks:
          a: {action: act, publish: {made: "{{ result }}"}, on_success: b}
          b: {action: act}
        output_map: {made: "{{ vars.made }}", state: "{{ task.b.status }}"}
        """,
        outcomes={"a": 7, "b": Fail()},
        status="failed",
        error="'b'",
        outputs={"made": 7, "state": "failed"},
        check=_check_output_map_failure,
    ),
    Scenario(
        "output_map_expression_error_fails_run",
        """
        name: w
        tasks:
          a: {action: act}
        output_map: {bad: "{{ 1 / 0 }}"}
        """,
        status="failed",
        error=("ExpressionError", "output_map"),
        outputs=None,
    ),
    # -- expressions, parameters, vars ---------------------------------------------------------
    Scenario(
        "input_expression_error_fails_task",
        """
        name: w
        tasks:
          a: {action: act, input: {x: "{{ 1 / 0 }}"}}
        """,
        sequence=["a"],
        status="failed",
        error=("'a'", "ExpressionError"),
        statuses={"a": "failed"},
        task_errors={"a": "ZeroDivisionError"},
    ),
    Scenario(
        "input_expression_error_remediated",
        """
        name: w
        tasks:
          a: {action: act, input: {x: "{{ 1 / 0 }}"}, on_failure: h}
          h: {action: act, input: {e: "{{ task.a.error }}"}}
        """,
        sequence=["a", "h"],
        check=lambda r: _assert("ExpressionError" in r.result("h")["e"]),
    ),
    Scenario(
        "when_expression_error_fails_run",
        """
        name: w
        tasks:
          a: {action: act, next: [{when: "{{ 1 / 0 }}", do: b}]}
          b: {action: act}
        """,
        sequence=["a"],
        status="failed",
        error=("ExpressionError", "'a'"),
    ),
    Scenario(
        "parameters_in_inputs_native_types",
        """
        name: w
        parameters:
          app: {type: string, required: true}
          regions: {type: array, default: [eu, us]}
          n: {type: integer, default: 3}
        tasks:
          a:
            action: act
            input:
              app: "{{ parameters.app }}"
              regions: "{{ parameters.regions }}"
              n: "{{ parameters.n }}"
              text: "deploy {{ parameters.app }} x{{ parameters.n }}"
        """,
        params={"app": "shop"},
        results={"a": {"app": "shop", "regions": ["eu", "us"], "n": 3, "text": "deploy shop x3"}},
    ),
    Scenario(
        "vars_rendered_in_order_from_parameters",
        """
        name: w
        parameters: {n: {type: integer, default: 2}}
        vars:
          a: "{{ parameters.n * 10 }}"
          b: "{{ vars.a + 1 }}"
          c: "{{ [vars.a, vars.b] }}"
        tasks:
          t: {action: act, input: {c: "{{ vars.c }}"}}
        output_map: {a: "{{ vars.a }}", b: "{{ vars.b }}"}
        """,
        params={"n": 4},
        results={"t": {"c": [40, 41]}},
        outputs={"a": 40, "b": 41},
    ),
    Scenario(
        "vars_expression_error_fails_run",
        """
        name: w
        vars: {a: "{{ 1 / 0 }}"}
        tasks:
          t: {action: act}
        """,
        sequence=[],
        status="failed",
        error=("vars", "ZeroDivisionError"),
    ),
    Scenario(
        "routing_task_succeeds_instantly",
        """
        name: w
        tasks:
          route: {on_success: work}
          work: {action: act}
        """,
        sequence=["route", "work"],
        statuses={"route": "succeeded"},
        attempts={"route": 1},
        check=_check_routing_instant,
    ),
    Scenario(
        "task_scope_result_status_attempts",
        """
        name: w
        tasks:
          a: {action: act, retry: 1, on_success: b}
          b:
            action: act
            input:
              r: "{{ task.a.result.v }}"
              s: "{{ task.a.status }}"
              n: "{{ task.a.attempts }}"
        """,
        outcomes={"a": [Fail(), {"v": 42}]},
        results={"b": {"r": 42, "s": "succeeded", "n": 2}},
    ),
    Scenario(
        "task_scope_sees_latest_execution_of_a_loop",
        """
        name: w
        vars: {i: 0}
        tasks:
          step:
            action: act
            input: {i: "{{ vars.i }}"}
            publish: {i: "{{ vars.i + 1 }}"}
            next: [{when: "{{ vars.i < 2 }}", do: step}, {when: "{{ vars.i == 2 }}", do: end}]
          end: {action: act, input: {last: "{{ task.step.result.i }}"}}
        """,
        sequence=["step", "step#2", "end"],
        results={"end": {"last": 1}},
    ),
    Scenario(
        "system_scope",
        """
        name: sysflow
        tasks:
          a: {action: act, input: {run: "{{ system.run_id }}", wf: "{{ system.workflow }}"}}
        """,
        results={"a": {"run": "rehearsal0000", "wf": "sysflow"}},
    ),
    Scenario(
        "nested_workflow_task_starts_child",
        """
        name: w
        parameters: {app: {type: string, default: shop}}
        tasks:
          finish: {workflow: notify, input: {text: "hi {{ parameters.app }}"}, on_success: after}
          after: {action: act, input: {r: "{{ task.finish.result }}"}}
        """,
        outcomes={"finish": {"sent": True}},
        sequence=["finish", "after"],
        results={"after": {"r": {"sent": True}}},
        check=_check_child,
    ),
    Scenario(
        "nested_workflow_failure_fails_task",
        """
        name: w
        tasks:
          finish: {workflow: notify}
        """,
        outcomes={"finish": Fail("ChildRunFailed: child run failed")},
        status="failed",
        error=("'finish'", "ChildRunFailed"),
    ),
    Scenario(
        "core_fail_action_fails_by_default",
        """
        name: w
        tasks:
          a: {action: core.fail, input: {message: "on purpose"}, on_failure: h}
          h: {action: act}
        """,
        sequence=["a", "h"],
        task_errors={"a": "on purpose"},
    ),
]


def _assert(condition: bool) -> None:
    assert condition


def _params() -> list[Any]:
    out = []
    for s in SCENARIOS:
        marks = [pytest.mark.xfail(strict=True, reason=s.xfail)] if s.xfail else []
        out.append(pytest.param(s, id=s.id, marks=marks))
    return out


def test_scenario_names_are_unique() -> None:
    names = [s.id for s in SCENARIOS]
    assert len(names) == len(set(names))
    assert len(names) >= 60


@pytest.mark.parametrize("s", _params())
def test_scenario(s: Scenario) -> None:
    r = rehearse(
        dedent(s.yaml), s.outcomes, parameters=s.params, events=s.events, durations=s.durations
    )
    if s.sequence is not None:
        assert r.sequence == s.sequence
    assert r.status == s.status, r.error
    if s.error is None:
        assert r.error is None
    else:
        for part in (s.error,) if isinstance(s.error, str) else s.error:
            assert part in (r.error or ""), r.error
    # CONTRACT §2: errors of runs and task executions are null or one line `Type: message`.
    for error in [r.error, *(e.error for e in r.state.executions.values())]:
        assert error is None or ERROR_LINE.match(error), error
    if s.outputs is not None:
        assert r.outputs == s.outputs
    ex = r.state.executions
    for exec_id, value in s.results.items():
        assert r.result(exec_id) == value, exec_id
    for exec_id, value in s.statuses.items():
        assert r.task_status(exec_id) == value, exec_id
    for exec_id, value in s.attempts.items():
        assert ex[exec_id].attempts == value, exec_id
    for exec_id, value in s.started.items():
        assert ex[exec_id].started_at == value, exec_id
    for exec_id, value in s.ended.items():
        assert ex[exec_id].ended_at == value, exec_id
    for exec_id, value in s.task_errors.items():
        assert value in (ex[exec_id].error or ""), (exec_id, ex[exec_id].error)
    if s.run_ended is not None:
        assert r.state.ended_at == s.run_ended
    if r.status in ("succeeded", "failed", "cancelled"):
        # Every execution has settled; the run's last command says how it ended.
        assert all(
            e.status not in ("running", "retrying", "waiting", "pending") for e in ex.values()
        )
        assert isinstance(r.commands[-1], C.RunFinished)
        assert (r.commands[-1].status, r.commands[-1].error) == (r.status, r.error)
    if s.check is not None:
        s.check(r)
