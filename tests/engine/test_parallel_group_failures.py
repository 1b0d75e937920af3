"""``type: parallel``: a member's failure fails its group, whose transitions handle it (audit D3).

The rule (docs/deviations.md): a member's failure first goes through the member's own
transitions. Remediated there, the member counts as done for the group (its result in the
group's mapping is null). Otherwise the group takes the failure: once no member is active, the
group ends ``failed`` with ``Type: member 'x' failed: message``, and its own ``on_failure`` /
``on_complete`` fire; the run fails only if nothing handles the group's failure.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from textwrap import dedent
from typing import Any

import pytest

import jupyter_workflows as jw
from jupyter_workflows.engine import commands as C
from jupyter_workflows.engine import events as E
from jupyter_workflows.engine.rehearsal import Fail, Hang, Rehearsal, rehearse

ERROR_LINE = re.compile(r"^[A-Za-z_][A-Za-z0-9_.]*: [^\n]+$")


@dataclass
class Case:
    id: str
    yaml: str
    outcomes: dict[str, Any] = field(default_factory=dict)
    durations: dict[str, float] = field(default_factory=dict)
    events: list[tuple[float, E.Event]] = field(default_factory=list)
    sequence: list[str] | None = None
    status: str = "succeeded"
    error: tuple[str, ...] | None = None
    statuses: dict[str, str] = field(default_factory=dict)
    results: dict[str, Any] = field(default_factory=dict)
    task_errors: dict[str, str] = field(default_factory=dict)
    ended: dict[str, float] = field(default_factory=dict)
    check: Callable[[Rehearsal], None] | None = None


def _first_execution_fails(submit: C.Submit) -> Any:
    return Fail("RuntimeError: flaky") if "#" not in submit.exec_id else "fixed"


def _retry_then_fixed(r: Rehearsal) -> None:
    r.send(E.RetryRequested(r.time + 1))
    assert r.status == "succeeded", r.error
    assert r.sequence[-3:] == ["x#2", "checks#2", "after"]
    assert r.result("checks#2") == {"x": "fixed", "y": {}}
    assert "y#2" not in r.state.executions  # the member that succeeded is not run again


def _nested_retry_then_fixed(r: Rehearsal) -> None:
    r.send(E.RetryRequested(r.time + 1))
    assert r.status == "succeeded", r.error
    assert r.sequence[-4:] == ["p#2", "inner#2", "outer#2", "done"]


CASES = [
    Case(
        "member_failure_fails_the_group_and_its_on_failure_handles_it",
        """
        name: w
        tasks:
          checks:
            type: parallel
            tasks:
              ok1: {action: act}
              bad: {action: core.fail}
            on_success: done
            on_failure: cleanup
          done: {action: act}
          cleanup: {action: act}
        """,
        sequence=["ok1", "bad", "checks", "cleanup"],
        statuses={"ok1": "succeeded", "bad": "failed", "checks": "failed"},
        task_errors={"checks": "ActionFailed: member 'bad' failed: failed on purpose"},
    ),
    Case(
        "member_failure_and_the_groups_on_complete",
        """
        name: w
        tasks:
          checks:
            type: parallel
            tasks:
              bad: {action: core.fail}
            on_complete: after
          after: {action: act, input: {s: "{{ task.checks.status }}", e: "{{ task.checks.error }}"}}
        """,
        sequence=["bad", "checks", "after"],
        results={
            "after": {"s": "failed", "e": "ActionFailed: member 'bad' failed: failed on purpose"}
        },
    ),
    Case(
        "unhandled_group_failure_fails_the_run_naming_group_and_member",
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
        sequence=["x", "y", "checks"],
        status="failed",
        error=("RuntimeError: task 'checks' failed: member 'x' failed: x down",),
        statuses={"y": "succeeded", "checks": "failed"},
    ),
    Case(
        "the_group_ends_once_the_other_members_settle",
        """
        name: w
        tasks:
          checks:
            type: parallel
            tasks:
              x: {action: act}
              y: {action: act}
            on_failure: cleanup
          cleanup: {action: act}
        """,
        outcomes={"x": Fail("RuntimeError: x down")},
        durations={"x": 1, "y": 5},
        sequence=["x", "y", "checks", "cleanup"],
        ended={"x": 1, "y": 5, "checks": 5, "cleanup": 6},
    ),
    Case(
        "a_member_that_fails_as_it_starts_waits_for_the_others",
        """
        name: w
        tasks:
          checks:
            type: parallel
            tasks:
              x: {action: act, input: {v: "{{ 1 / 0 }}"}}
              y: {action: act}
            on_failure: cleanup
          cleanup: {action: act}
        """,
        durations={"y": 2},
        sequence=["x", "y", "checks", "cleanup"],
        ended={"x": 0, "checks": 2},
        task_errors={"checks": "ExpressionError: member 'x' failed"},
    ),
    Case(
        "member_remediated_by_its_own_on_failure_counts_as_done",
        """
        name: w
        tasks:
          checks:
            type: parallel
            tasks:
              bad: {action: core.fail, on_failure: fix}
              good: {action: act, input: {v: 1}}
            on_success: after
            on_failure: cleanup
          fix: {action: act}
          after: {action: act}
          cleanup: {action: act}
        """,
        sequence=["bad", "good", "fix", "checks", "after"],
        statuses={"bad": "failed", "checks": "succeeded"},
        results={"checks": {"bad": None, "good": {"v": 1}}},
    ),
    Case(
        "member_that_retries_itself_counts_when_the_new_execution_ends",
        """
        name: w
        tasks:
          checks:
            type: parallel
            tasks:
              flaky: {action: act, on_failure: retry}
              other: {action: act}
            on_success: after
          after: {action: act}
        """,
        outcomes={"flaky": _first_execution_fails},
        durations={"other": 5},
        sequence=["flaky", "other", "flaky#2", "checks", "after"],
        results={"checks": {"flaky": "fixed", "other": {}}},
        ended={"checks": 5},
    ),
    Case(
        "retry_policy_of_a_member_runs_out_before_the_group_fails",
        """
        name: w
        tasks:
          checks:
            type: parallel
            tasks:
              x: {action: act, retry: {count: 2, delay: 1}}
            on_failure: cleanup
          cleanup: {action: act}
        """,
        outcomes={"x": Fail("RuntimeError: down")},
        sequence=["x", "checks", "cleanup"],
        ended={"checks": 5},
        check=lambda r: _expect(r.state.executions["x"].attempts == 3),
    ),
    Case(
        "several_failed_members_are_named",
        """
        name: w
        tasks:
          checks:
            type: parallel
            tasks:
              x: {action: act}
              y: {action: act}
              z: {action: act}
        """,
        outcomes={"x": Fail("RuntimeError: x down"), "y": Fail("ValueError: y down")},
        durations={"y": 2},
        status="failed",
        error=("task 'checks' failed: member 'x' failed (and 'y'): x down",),
    ),
    Case(
        "nested_groups_pass_the_failure_up",
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
            on_failure: cleanup
          done: {action: act}
          cleanup: {action: act}
        """,
        outcomes={"p": Fail("RuntimeError: p down")},
        sequence=["p", "q", "z", "inner", "outer", "cleanup"],
        task_errors={
            "inner": "RuntimeError: member 'p' failed: p down",
            "outer": "RuntimeError: member 'inner' failed: member 'p' failed: p down",
        },
    ),
    Case(
        "do_fail_on_a_member_still_fails_the_run",
        """
        name: w
        tasks:
          checks:
            type: parallel
            tasks:
              bad: {action: core.fail, on_failure: [log, fail]}
              good: {action: act}
            on_failure: cleanup
          log: {action: act}
          cleanup: {action: act}
        """,
        sequence=["bad", "good", "log"],
        status="failed",
        error=("task 'bad' failed",),
    ),
    Case(
        "retry_failed_reruns_only_the_failed_member",
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
        outcomes={"x": _first_execution_fails},
        sequence=["x", "y", "checks"],
        status="failed",
        error=("task 'checks' failed: member 'x' failed: flaky",),
        check=_retry_then_fixed,
    ),
    Case(
        "retry_failed_through_nested_groups",
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
        outcomes={"p": _first_execution_fails},
        sequence=["p", "q", "z", "inner", "outer"],
        status="failed",
        error=("task 'outer' failed: member 'inner' failed: member 'p' failed: flaky",),
        check=_nested_retry_then_fixed,
    ),
    Case(
        "cancel_while_the_group_waits_for_a_member",
        """
        name: w
        tasks:
          checks:
            type: parallel
            tasks:
              x: {action: act}
              y: {action: act}
            on_failure: cleanup
          cleanup: {action: act}
        """,
        outcomes={"x": Fail("RuntimeError: x down"), "y": Hang()},
        events=[(2.0, E.CancelRequested(2.0))],
        sequence=["x", "y"],
        status="cancelled",
        error=("RunCancelled",),
        statuses={"y": "cancelled"},
    ),
    Case(
        "keep_going_lets_other_branches_finish",
        """
        name: w
        keep_going: true
        tasks:
          checks:
            type: parallel
            tasks:
              x: {action: act}
          other: {action: act, on_success: more}
          more: {action: act}
        """,
        outcomes={"x": Fail("RuntimeError: x down")},
        durations={"other": 3},
        sequence=["x", "other", "checks", "more"],
        status="failed",
        error=("task 'checks' failed: member 'x' failed",),
    ),
]


def _expect(condition: bool) -> None:
    assert condition


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_parallel_group_failure(case: Case) -> None:
    r = rehearse(dedent(case.yaml), case.outcomes, durations=case.durations, events=case.events)
    if case.sequence is not None:
        assert r.sequence == case.sequence
    assert r.status == case.status, r.error
    if case.error is None:
        assert r.error is None
    else:
        for part in case.error:
            assert part in (r.error or ""), r.error
    for error in [r.error, *(e.error for e in r.state.executions.values())]:
        assert error is None or ERROR_LINE.match(error), error
    ex = r.state.executions
    for exec_id, value in case.statuses.items():
        assert ex[exec_id].status == value, exec_id
    for exec_id, value in case.results.items():
        assert ex[exec_id].result == value, exec_id
    for exec_id, value in case.task_errors.items():
        assert value in (ex[exec_id].error or ""), (exec_id, ex[exec_id].error)
    for exec_id, value in case.ended.items():
        assert ex[exec_id].ended_at == value, exec_id
    assert not r.state.group_failures
    if case.check is not None:
        case.check(r)


def test_the_audit_workflow_on_the_engine(engine):
    run = jw.load(
        dedent(
            """
            name: par1
            tasks:
              checks:
                type: parallel
                tasks:
                  ok1: {action: core.noop}
                  bad: {action: core.fail}
                on_success: done
                on_failure: cleanup
              done: {action: core.noop}
              cleanup: {action: core.noop}
            """
        )
    ).run()
    assert run.status == "succeeded"
    by_task = {t["task"]: t for t in run.tasks}
    assert set(by_task) == {"ok1", "bad", "checks", "cleanup"}
    assert by_task["checks"]["status"] == "failed"
    assert by_task["checks"]["error"] == "ActionFailed: member 'bad' failed: failed on purpose"


def test_a_loop_through_a_parallel_group_runs_the_group_each_time(engine):
    """A transition back into a group that ended runs its members and the group again (a task
    runs each time a transition into it fires); each round's result is its members' results."""
    run = jw.load(
        dedent(
            """
            name: rounds
            vars: {i: 0, seen: []}
            tasks:
              start: {action: core.noop, on_success: grp}
              grp:
                type: parallel
                tasks:
                  x: {action: core.echo, input: {round: "{{ vars.i }}", who: x}}
                  y: {action: core.echo, input: {round: "{{ vars.i }}", who: y}}
                publish:
                  i: "{{ vars.i + 1 }}"
                  seen: "{{ vars.seen + [task.grp.result.x.round] }}"
                next:
                  - when: "{{ vars.i < 3 }}"
                    do: grp
                  - when: "{{ vars.i >= 3 }}"
                    do: done
              done: {action: core.noop}
            output_map: {rounds: "{{ vars.i }}", seen: "{{ vars.seen }}"}
            """
        )
    ).run()
    assert run.status == "succeeded", run.error
    assert run.outputs == {"rounds": 3, "seen": [0, 1, 2]}
    names = [t["task"] for t in run.tasks]
    assert names.count("grp") == 3 and names.count("x") == 3 and names.count("y") == 3
    assert names[-1] == "done"
