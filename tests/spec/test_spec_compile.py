"""Sugar -> canonical transitions, as the docstring of ``jupyter_workflows.spec.compile`` says.

Each test writes one sugar and checks the exact ``(when, publish, do, kind)`` transitions, the
``join`` and the start tasks the engine will execute.
"""

from __future__ import annotations

import textwrap

import jupyter_workflows as jw
from jupyter_workflows.spec.compile import CompiledWorkflow, CTask, CTransition, compile_workflow

SUCCEEDED = "{{ succeeded() }}"
FAILED = "{{ failed() }}"


def compiled(text: str) -> CompiledWorkflow:
    return jw.load(textwrap.dedent(text)).compiled


def shape(task: CTask) -> list[tuple[object, tuple, tuple, str]]:
    """The transitions without their source paths."""
    return [(t.when, t.publish, t.do, t.kind) for t in task.next]


def test_on_success_failure_complete() -> None:
    cw = compiled(
        """\
        name: w
        tasks:
          a:
            action: core.noop
            on_success: b
            on_failure: [c, fail]
            on_complete: [d, e]
          b: {action: core.noop}
          c: {action: core.noop}
          d: {action: core.noop}
          e: {action: core.noop}
        """
    )
    assert shape(cw.tasks["a"]) == [
        (SUCCEEDED, (), ("b",), "success"),
        (FAILED, (), ("c", "fail"), "failure"),
        (None, (), ("d", "e"), "complete"),
    ]
    # `fail` is a command, not a task: it is not a target.
    assert cw.tasks["a"].next[1].targets == ("c",)
    assert cw.tasks["c"].sources == ("a",)
    assert cw.tasks["b"].join is None


def test_task_publish_comes_first() -> None:
    cw = compiled(
        """\
        name: w
        tasks:
          a:
            action: core.echo
            on_success: b
            next:
              - when: "{{ result.x > 1 }}"
                publish: {big: true}
                do: b
            publish:
              first: "{{ result.x }}"
              second: 2
          b: {action: core.noop}
        """
    )
    assert shape(cw.tasks["a"]) == [
        (SUCCEEDED, (("first", "{{ result.x }}"), ("second", 2)), (), "publish"),
        ("{{ result.x > 1 }}", (("big", True),), ("b",), "when"),
        (SUCCEEDED, (), ("b",), "success"),
    ]
    assert cw.tasks["a"].next[0].targets == ()


def test_publish_list_keeps_order_and_repeats() -> None:
    cw = compiled(
        """\
        name: w
        tasks:
          a:
            action: core.echo
            publish:
              - n: 1
              - n: "{{ vars.n + 1 }}"
        """
    )
    assert shape(cw.tasks["a"]) == [
        (SUCCEEDED, (("n", 1), ("n", "{{ vars.n + 1 }}")), (), "publish")
    ]


def test_canonical_next_is_kept_as_written() -> None:
    cw = compiled(
        """\
        name: w
        tasks:
          a:
            action: core.echo
            next:
              - when: "{{ failed() }}"
                do: [log, fail]
              - do: b
              - when: true
                do: noop
          log: {action: core.noop}
          b: {action: core.noop}
        """
    )
    assert shape(cw.tasks["a"]) == [
        ("{{ failed() }}", (), ("log", "fail"), "when"),
        (None, (), ("b",), "when"),
        (True, (), ("noop",), "when"),
    ]


def test_decision_first_match_and_default() -> None:
    cw = compiled(
        """\
        name: w
        tasks:
          decide:
            action: core.echo
            decision:
              - when: "{{ result == 1 }}"
                next: one
                publish: {picked: 1}
              - when: result == 2
                next: [two, also]
              - default: other
          one: {action: core.noop}
          two: {action: core.noop}
          also: {action: core.noop}
          other: {action: core.noop}
        """
    )
    assert shape(cw.tasks["decide"]) == [
        ("{{ succeeded() and (result == 1) }}", (("picked", 1),), ("one",), "decision"),
        # first match is RunState's: it skips later "decision" transitions once one fired
        ("{{ succeeded() and (result == 2) }}", (), ("two", "also"), "decision"),
        ("{{ succeeded() }}", (), ("other",), "decision"),
    ]


def test_decision_with_boolean_when() -> None:
    cw = compiled(
        """\
        name: w
        tasks:
          d:
            decision:
              - when: false
                next: a
              - default: b
          a: {action: core.noop}
          b: {action: core.noop}
        """
    )
    assert [t.when for t in cw.tasks["d"].next] == [
        "{{ succeeded() and (false) }}",
        "{{ succeeded() }}",
    ]
    assert cw.tasks["d"].kind == "routing"


def test_needs_is_a_join_on_all() -> None:
    cw = compiled(
        """\
        name: w
        tasks:
          a: {action: core.noop}
          b: {action: core.noop}
          c:
            action: core.noop
            needs: [a, b]
        """
    )
    for dep in ("a", "b"):
        assert shape(cw.tasks[dep]) == [(SUCCEEDED, (), ("c",), "needs")]
    assert cw.tasks["c"].join == "all"
    assert cw.tasks["c"].sources == ("a", "b")
    assert cw.start == ("a", "b")
    assert set(cw.needs) == {("c", "a"), ("c", "b")}


def test_explicit_join_wins_over_needs() -> None:
    cw = compiled(
        """\
        name: w
        tasks:
          a: {action: core.noop}
          b: {action: core.noop}
          c: {action: core.noop, needs: [a, b], join: 1}
        """
    )
    assert cw.tasks["c"].join == 1


def test_transitions_then_needs_order() -> None:
    cw = compiled(
        """\
        name: w
        tasks:
          a: {action: core.noop, on_failure: b}
          b: {action: core.noop, needs: a}
        """
    )
    assert shape(cw.tasks["a"]) == [
        (FAILED, (), ("b",), "failure"),
        (SUCCEEDED, (), ("b",), "needs"),
    ]
    assert cw.tasks["b"].sources == ("a",)


def test_groups_need_the_nearest_lower_group() -> None:
    cw = compiled(
        """\
        name: w
        tasks:
          e1: {action: core.noop, group: 1}
          e2: {action: core.noop, group: 1}
          t1: {action: core.noop, group: 5}
          l1: {action: core.noop, group: 9}
          l2: {action: core.noop, group: 9}
        """
    )
    assert set(cw.needs) == {
        ("t1", "e1"),
        ("t1", "e2"),
        ("l1", "t1"),
        ("l2", "t1"),
    }
    assert cw.start == ("e1", "e2")
    assert cw.tasks["t1"].join == "all"
    assert cw.tasks["t1"].sources == ("e1", "e2")
    assert cw.tasks["l1"].sources == ("t1",)
    assert shape(cw.tasks["t1"]) == [
        (SUCCEEDED, (), ("l1",), "needs"),
        (SUCCEEDED, (), ("l2",), "needs"),
    ]
    assert cw.tasks["e1"].join is None


def test_parallel_group_redirects_inbound_and_joins_members() -> None:
    cw = compiled(
        """\
        name: w
        tasks:
          before:
            action: core.noop
            on_success: checks
          checks:
            type: parallel
            tasks:
              db: {action: core.noop}
              cache: {action: core.noop}
            on_success: after
          after: {action: core.noop}
        """
    )
    assert list(cw.tasks) == ["before", "checks", "db", "cache", "after"]
    # Inbound transitions start the members instead of the group.
    assert shape(cw.tasks["before"]) == [(SUCCEEDED, (), ("db", "cache"), "success")]
    assert cw.tasks["db"].sources == ("before",)
    # The group joins over its members and carries its own transitions.
    group = cw.tasks["checks"]
    assert group.kind == "parallel"
    assert group.members == ("db", "cache")
    assert group.join == "all"
    assert group.sources == ("db", "cache")
    assert shape(group) == [(SUCCEEDED, (), ("after",), "success")]
    for member in ("db", "cache"):
        assert shape(cw.tasks[member]) == [(SUCCEEDED, (), ("checks",), "needs")]
    assert cw.start == ("before",)


def test_parallel_group_as_start_and_nested_groups() -> None:
    cw = compiled(
        """\
        name: w
        tasks:
          outer:
            type: parallel
            tasks:
              x: {action: core.noop}
              inner:
                type: parallel
                tasks:
                  y: {action: core.noop}
                  z: {action: core.noop}
          go:
            action: core.noop
            on_success: outer
        """
    )
    # A transition into `outer` starts x and, through `inner`, y and z.
    assert shape(cw.tasks["go"]) == [(SUCCEEDED, (), ("x", "y", "z"), "success")]
    assert cw.tasks["outer"].members == ("x", "inner")
    assert cw.tasks["inner"].members == ("y", "z")
    assert cw.tasks["outer"].sources == ("x", "inner")
    assert cw.start == ("go",)


def test_start_tasks_ignore_self_transitions() -> None:
    cw = compiled(
        """\
        name: w
        tasks:
          poll:
            action: core.echo
            max_runs: 5
            next:
              - when: "{{ not result }}"
                do: poll
            on_success: done
          done: {action: core.noop}
          other: {action: core.noop}
        """
    )
    assert cw.start == ("poll", "other")
    assert cw.tasks["poll"].sources == ("poll",)
    assert cw.tasks["done"].sources == ("poll",)


def test_no_start_when_every_task_is_targeted() -> None:
    cw = compiled(
        """\
        name: w
        tasks:
          a: {action: core.noop, on_success: b}
          b: {action: core.noop, on_success: a}
        """
    )
    assert cw.start == ()


def test_task_kinds() -> None:
    cw = compiled(
        """\
        name: w
        tasks:
          act: {action: core.noop}
          sub: {workflow: child}
          route: {on_success: act}
          group:
            type: parallel
            tasks:
              m: {action: core.noop}
        """
    )
    assert {n: t.kind for n, t in cw.tasks.items()} == {
        "act": "action",
        "sub": "workflow",
        "route": "routing",
        "group": "parallel",
        "m": "action",
    }
    assert cw.tasks["sub"].workflow == "child"


def test_transition_origins_point_at_the_sugar() -> None:
    cw = compiled(
        """\
        name: w
        tasks:
          a:
            action: core.echo
            publish: {x: 1}
            decision:
              - when: "{{ result }}"
                next: b
              - default: b
            on_failure: b
          b: {action: core.noop, needs: c}
          c: {action: core.noop}
        """
    )
    assert [t.origin for t in cw.tasks["a"].next] == [
        ("tasks", "a", "publish"),
        ("tasks", "a", "decision", 0),
        ("tasks", "a", "decision", 1),
        ("tasks", "a", "on_failure"),
    ]
    assert cw.tasks["c"].next[0].origin == ("tasks", "b", "needs")


def test_compiled_values_and_equality() -> None:
    text = """\
    name: w
    tasks:
      a:
        action: core.echo
        input: {x: "{{ item }}"}
        with_items: [1, 2, 3]
        batch_size: 2
        description: echoes
    """
    first, second = compiled(text), compiled(text)
    assert first.tasks == second.tasks
    a = first.tasks["a"]
    assert a.input == {"x": "{{ item }}"}
    assert a.with_items == [1, 2, 3]
    assert a.batch_size == 2
    assert a.description == "echoes"
    assert first.name == "w"
    assert isinstance(a.next, tuple)
    assert compile_workflow(first.spec).tasks == first.tasks


def test_ctransition_targets_skip_commands() -> None:
    t = CTransition(None, (), ("a", "fail", "noop", "retry", "b"), "when")
    assert t.targets == ("a", "b")
