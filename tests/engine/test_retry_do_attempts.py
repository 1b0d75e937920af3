"""``do: retry`` starts the task again as a new execution whose attempt numbers go on from the
previous one (``context.attempt``, ``attempts``), while a ``retry:`` policy still counts each
execution's own attempts (audit, other observations)."""

from __future__ import annotations

from textwrap import dedent

import jupyter_workflows as jw
from jupyter_workflows.engine import commands as C
from jupyter_workflows.engine.rehearsal import Fail, rehearse


def _fails_until(n: int):
    def outcome(submit: C.Submit):
        return Fail(f"RuntimeError: attempt {submit.attempt}") if submit.attempt < n else "ok"

    return outcome


def test_attempt_numbers_go_on_across_do_retry():
    r = rehearse(
        dedent(
            """
            name: w
            tasks:
              a:
                action: act
                next: [{when: "{{ failed() }}", do: retry}]
            """
        ),
        {"a": _fails_until(3)},
    )
    assert r.status == "succeeded"
    assert r.sequence == ["a", "a#2", "a#3"]
    assert [s.attempt for s in r.submits] == [1, 2, 3]
    assert [r.state.executions[e].attempts for e in r.sequence] == [1, 2, 3]
    assert r.state.task_view["a"]["attempts"] == 3


def test_the_retry_policy_counts_per_execution():
    r = rehearse(
        dedent(
            """
            name: w
            tasks:
              a: {action: act, retry: {count: 1, delay: 2, backoff: linear}, on_failure: retry}
            """
        ),
        {"a": _fails_until(5)},
    )
    assert r.status == "succeeded"
    assert r.sequence == ["a", "a#2", "a#3"]
    assert [s.attempt for s in r.submits] == [1, 2, 3, 4, 5]
    assert [r.state.executions[e].attempts for e in r.sequence] == [2, 4, 5]
    # Each execution's first policy retry waits the first delay again.
    delays = [c.delay for c in r.commands if isinstance(c, C.StartTimer)]
    assert delays == [2.0, 2.0]


def test_a_loop_by_name_is_a_new_run_of_the_task_not_a_retry():
    r = rehearse(
        dedent(
            """
            name: w
            vars: {n: 0}
            tasks:
              a:
                action: act
                publish: {n: "{{ vars.n + 1 }}"}
                next: [{when: "{{ succeeded() and vars.n < 3 }}", do: a}]
            """
        )
    )
    assert r.sequence == ["a", "a#2", "a#3"]
    assert [s.attempt for s in r.submits] == [1, 1, 1]


def test_context_attempt_on_the_engine(engine):
    seen: list[int] = []

    @jw.task(name="audit_flaky_attempt")
    def flaky(context) -> int:
        seen.append(context.attempt)
        if context.attempt < 4:
            raise RuntimeError(f"attempt {context.attempt}")
        return context.attempt

    run = jw.load(
        "name: rt\ntasks:\n  a: {action: audit_flaky_attempt, retry: 1, on_failure: retry}\n"
    ).run()
    assert run.status == "succeeded"
    assert seen == [1, 2, 3, 4]
    assert [(t["status"], t["attempts"]) for t in run.tasks] == [
        ("failed", 2),
        ("succeeded", 4),
    ]
    assert run.tasks[-1]["result"] == 4
