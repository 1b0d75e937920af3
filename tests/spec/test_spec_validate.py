"""Whole-graph validation: positioned errors (``Workflow.validate()``) and warnings.

The corpus in ``bad/`` covers one error per document through the CLI; these tests go through
the Python API and pin the variants (each kind of transition, commands, nested workflows,
warnings and their positions).
"""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

import pytest

import jupyter_workflows as jw
from jupyter_workflows import SpecError
from jupyter_workflows.actions import registry
from jupyter_workflows.definition import register_workflow
from jupyter_workflows.spec.validate import Warning_, iter_templates


def load(text: str, **kwargs) -> jw.Workflow:
    return jw.load(textwrap.dedent(text), **kwargs)


def error_of(text: str) -> SpecError:
    with pytest.raises(SpecError) as info:
        load(text).validate()
    return info.value


@pytest.fixture
def isolated(monkeypatch: pytest.MonkeyPatch) -> None:
    """Resolving actions and workflows touches process state: undo it after the test."""
    from jupyter_workflows import sources as workflow_module

    monkeypatch.setattr(sys, "path", list(sys.path))
    monkeypatch.setattr(registry, "_REGISTRY", dict(registry._REGISTRY))
    monkeypatch.setattr(workflow_module, "_WORKFLOWS", dict(workflow_module._WORKFLOWS))


def test_clean_workflow_has_no_warnings() -> None:
    workflow = load(
        """\
        name: clean
        tasks:
          a: {action: core.echo, on_success: b, on_failure: c}
          b: {action: core.noop}
          c: {action: core.fail, input: {message: boom}}
        """
    )
    assert workflow.validate() == []


# -- unknown targets, for every way of naming one ------------------------------------------------


@pytest.mark.parametrize(
    ("field", "where"),
    [
        ("on_success: [b, nope]", (4, 21)),
        ("on_failure: nope", (4, 17)),
        ("on_complete: [nope]", (4, 19)),
        ("needs: nope", (4, 12)),
        ("next: [{when: '{{ failed() }}', do: [b, nope]}]", (4, 45)),
        ("decision: [{when: '{{ result }}', next: nope}, {default: b}]", (4, 45)),
        ("decision: [{when: '{{ result }}', next: b}, {default: [nope]}]", (4, 60)),
    ],
)
def test_unknown_targets(field: str, where: tuple[int, int]) -> None:
    error = error_of(
        f"""\
        name: w
        tasks:
          a:
            {field}
            action: core.echo
          b: {{action: core.noop}}
        """
    )
    assert "unknown task 'nope'" in error.message
    assert (error.line, error.col) == where


def test_unknown_target_hint() -> None:
    error = error_of(
        """\
        name: w
        tasks:
          build: {action: core.noop, on_success: tset}
          test: {action: core.noop}
        """
    )
    assert (
        error.message == "task 'build': on_success names unknown task 'tset' (did you mean 'test'?)"
    )


def test_commands_are_not_tasks_except_in_needs() -> None:
    workflow = load(
        """\
        name: w
        tasks:
          a:
            action: core.echo
            on_failure: [log, fail]
            on_complete: noop
            next:
              - when: "{{ failed() }}"
                do: retry
            decision:
              - when: "{{ result }}"
                next: fail
              - default: noop
          log: {action: core.noop}
        """
    )
    assert workflow.validate() == []
    error = error_of(
        """\
        name: w
        tasks:
          a: {action: core.noop}
          b: {action: core.noop, needs: fail}
        """
    )
    assert "needs names unknown task 'fail'" in error.message


def test_transitions_into_parallel_group_members_and_group() -> None:
    workflow = load(
        """\
        name: w
        tasks:
          start: {action: core.noop, on_success: checks}
          checks:
            type: parallel
            tasks:
              x: {action: core.noop, on_failure: cleanup}
              y: {action: core.noop}
            on_success: done
          done: {action: core.noop, needs: x}
          cleanup: {action: core.noop}
        """
    )
    assert workflow.validate() == []


# -- cycles and joins ------------------------------------------------------------------------------


def test_self_need_is_a_cycle() -> None:
    error = error_of(
        """\
        name: w
        tasks:
          a: {action: core.noop}
          b: {action: core.noop, needs: [a, b]}
        """
    )
    assert error.message == "dependency cycle through needs/group: b -> b"
    assert (error.line, error.col) == (4, 33)


def test_group_with_needs_backwards_is_a_cycle() -> None:
    error = error_of(
        """\
        name: w
        tasks:
          one: {action: core.noop, group: 1, needs: two}
          two: {action: core.noop, group: 2}
        """
    )
    assert "cycle" in error.message
    assert "one" in error.message and "two" in error.message


def test_groups_alone_never_cycle() -> None:
    workflow = load(
        """\
        name: w
        tasks:
          c: {action: core.noop, group: 3}
          a: {action: core.noop, group: 1}
          b: {action: core.noop, group: 2}
        """
    )
    assert workflow.validate() == []
    assert workflow.compiled.start == ("a",)


def test_transition_loops_are_not_dependency_cycles() -> None:
    workflow = load(
        """\
        name: w
        tasks:
          init: {action: core.noop, on_success: poll}
          poll:
            action: core.echo
            next:
              - when: "{{ not result }}"
                do: wait
              - when: "{{ result }}"
                do: done
          wait: {action: core.sleep, input: {seconds: 0}, on_success: poll}
          done: {action: core.noop}
        """
    )
    assert workflow.validate() == []


@pytest.mark.parametrize(("join", "ok"), [(1, True), (2, True), (3, False), ("all", True)])
def test_join_counts(join: object, ok: bool) -> None:
    workflow = load(
        f"""\
        name: w
        tasks:
          a: {{action: core.noop, on_success: c}}
          b: {{action: core.noop, on_complete: c}}
          c: {{action: core.noop, join: {join}}}
        """
    )
    if ok:
        assert workflow.validate() == []
    else:
        with pytest.raises(SpecError, match="joins on 3 inbound transitions but only 2"):
            workflow.validate()


def test_join_counts_distinct_sources() -> None:
    """Two transitions from one task are one source."""
    with pytest.raises(SpecError, match="only 1 task"):
        load(
            """\
            name: w
            tasks:
              a: {action: core.noop, on_success: c, on_failure: c}
              c: {action: core.noop, join: 2}
            """
        ).validate()


# -- templates, everywhere the engine renders ----------------------------------------------------


@pytest.mark.parametrize(
    ("snippet", "where"),
    [
        ("vars: {v: '{{ 1 + }}'}", (2, 11)),
        ("output_map: {o: '{{ vars.x | }}'}", (2, 17)),
        ("tasks: {a: {action: core.echo, with_items: '{{ [1, }}'}}", (2, 44)),
        ("tasks: {a: {action: core.echo, cache: {key: '{% if %}'}}}", (2, 45)),
        ("tasks: {a: {action: core.echo, input: {deep: [1, {x: '{{ ( }}'}]}}}", (2, 54)),
        ("tasks: {a: {action: core.echo, next: [{publish: {p: '{{ ] }}'}}]}}", (2, 53)),
        ("tasks: {a: {action: core.echo, decision: [{when: '{{ ! }}', next: a}]}}", (2, 50)),
    ],
)
def test_template_errors_everywhere(snippet: str, where: tuple[int, int]) -> None:
    text = "name: w\n" + snippet + "\n"
    if not snippet.startswith("tasks"):
        text += "tasks: {a: {action: core.noop}}\n"
    with pytest.raises(SpecError) as info:
        jw.load(text).validate()
    assert info.value.message.startswith("template error: ")
    assert (info.value.line, info.value.col) == where


def test_unknown_filter_is_positioned_at_the_filter() -> None:
    text = "name: w\ntasks: {a: {action: core.echo, input: {x: '{{ parameters | no_such_filter }}'}}}\n"
    with pytest.raises(SpecError) as info:
        jw.load(text).validate()
    assert info.value.message.startswith("unknown filter 'no_such_filter' in template")
    assert (info.value.line, info.value.col) == (2, 60)


def test_template_error_line_inside_a_literal_block() -> None:
    error = error_of(
        """\
        name: w
        tasks:
          a:
            action: core.shell
            input:
              command: |
                echo one

                echo "{{ parameters.x ]] }}"
        """
    )
    assert (error.line, error.col) == (9, 9)


def test_templates_in_plain_text_are_fine() -> None:
    workflow = load(
        """\
        name: w
        vars: {brace: "a { b } c", json: '{"k": 1}'}
        tasks:
          a: {action: core.echo, input: {raw: "{not a template}", ok: "{{ vars.brace }}"}}
        """
    )
    assert workflow.validate() == []


def test_iter_templates_paths() -> None:
    spec = load(
        """\
        name: w
        vars: {v: "{{ 1 }}"}
        tasks:
          a:
            action: core.echo
            input: {x: ["{{ item }}"]}
            publish: {p: "{{ result }}"}
            on_success: g
          g:
            type: parallel
            tasks:
              m: {action: core.echo, with_items: "{{ [1] }}"}
        """
    ).spec
    paths = dict(iter_templates(spec))
    assert paths[("vars", "v")] == "{{ 1 }}"
    assert paths[("tasks", "a", "input", "x", 0)] == "{{ item }}"
    assert paths[("tasks", "a", "publish", 0, "p")] == "{{ result }}"
    assert paths[("tasks", "g", "tasks", "m", "with_items")] == "{{ [1] }}"


# -- actions and nested workflows ----------------------------------------------------------------


def test_action_import_path_from_the_workflow_folder(tmp_path: Path, isolated: None) -> None:
    (tmp_path / "wf_helpers_mod.py").write_text("def go(x=1):\n    return x\n\nVALUE = 3\n")
    path = tmp_path / "w.yaml"
    path.write_text("name: w\ntasks:\n  a: {action: 'wf_helpers_mod:go'}\n")
    try:
        assert jw.load(path).validate() == []
        path.write_text("name: w\ntasks:\n  a: {action: 'wf_helpers_mod:nope'}\n")
        with pytest.raises(SpecError, match="has no 'nope'") as info:
            jw.load(path).validate()
        assert (info.value.line, info.value.col) == (3, 15)
        path.write_text("name: w\ntasks:\n  a: {action: 'wf_helpers_mod:VALUE'}\n")
        with pytest.raises(SpecError, match="not callable"):
            jw.load(path).validate()
    finally:
        sys.modules.pop("wf_helpers_mod", None)


def test_registered_task_resolves(isolated: None) -> None:
    text = "name: w\ntasks:\n  a: {action: my_registered_thing}\n"
    with pytest.raises(SpecError, match="unknown action 'my_registered_thing'"):
        jw.load(text).validate()

    @jw.task(name="my_registered_thing")
    def thing() -> int:
        return 1

    assert jw.load(text).validate() == []


def test_unknown_action_hint() -> None:
    with pytest.raises(SpecError, match=r"did you mean 'core\.echo'"):
        jw.load("name: w\ntasks:\n  a: {action: core.ecko}\n").validate()


def test_nested_workflow_beside_the_file(tmp_path: Path) -> None:
    (tmp_path / "child.yaml").write_text("name: child\ntasks:\n  c: {action: core.noop}\n")
    parent = tmp_path / "parent.yaml"
    parent.write_text("name: parent\ntasks:\n  p: {workflow: child}\n")
    assert jw.load(parent).validate() == []
    parent.write_text("name: parent\ntasks:\n  p: {workflow: kid}\n")
    with pytest.raises(SpecError, match="unknown workflow 'kid'") as info:
        jw.load(parent).validate()
    assert (info.value.line, info.value.col) == (3, 17)


def test_registered_workflow_by_workflow_or_action(isolated: None) -> None:
    register_workflow(jw.load("name: registered_child\ntasks:\n  c: {action: core.noop}\n"))
    assert jw.load("name: p\ntasks:\n  a: {workflow: registered_child}\n").validate() == []
    assert jw.load("name: p\ntasks:\n  a: {action: registered_child}\n").validate() == []


def test_workflow_cannot_nest_itself() -> None:
    with pytest.raises(SpecError, match="cannot nest itself"):
        jw.load("name: me\ntasks:\n  a: {workflow: me}\n").validate()


# -- parameters ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("param", "says"),
    [
        ("{type: string, default: 3}", "must be of type string"),
        ("{type: number, default: true}", "must be of type number"),
        ("{type: array, default: {a: 1}}", "must be of type array"),
        ("{type: object, default: [1]}", "must be of type object"),
        ("{type: boolean, default: 'yes'}", "must be of type boolean"),
        ("{type: string, enum: [a, b], default: c}", "must be one of"),
    ],
)
def test_parameter_defaults_must_fit(param: str, says: str) -> None:
    with pytest.raises(SpecError, match=says) as info:
        jw.load(
            f"name: w\nparameters:\n  p: {param}\ntasks:\n  a: {{action: core.noop}}\n"
        ).validate()
    assert info.value.line == 3


def test_fitting_parameter_defaults() -> None:
    workflow = load(
        """\
        name: w
        parameters:
          n: {type: integer, default: 3}
          f: {type: number, default: 3}
          s: {type: string, enum: [a, b], default: b}
          l: {type: array, default: []}
          o: {type: object, default: {}}
          b: {type: boolean, default: false}
          anything: {default: [1, {x: 2}]}
        tasks:
          a: {action: core.noop}
        """
    )
    assert workflow.validate() == []


# -- warnings --------------------------------------------------------------------------------------


def test_unreachable_tasks_warn() -> None:
    workflow = load(
        """\
        name: w
        tasks:
          a: {action: core.noop}
          island:
            action: core.noop
            on_success: loop
          loop:
            action: core.noop
            on_success: island
        """,
    )
    warnings = workflow.validate()
    assert [str(w) for w in warnings] == [
        "<string>:4:3: warning: task 'island' is unreachable from the start tasks",
        "<string>:7:3: warning: task 'loop' is unreachable from the start tasks",
    ]
    assert all(isinstance(w, Warning_) for w in warnings)


def test_unconditional_loop_warns_unless_bounded() -> None:
    text = """\
name: w
tasks:
  a: {action: core.noop, on_success: b}
  b:
    action: core.noop
    on_complete: c
  c:
    action: core.noop
    next:
      - do: b
"""
    warnings = load(text).validate()
    assert len(warnings) == 1
    warning = warnings[0]
    assert "unconditional loop b -> c -> b" in warning.message
    assert "max_runs (1000)" in warning.message
    assert (warning.line, warning.col) == (4, 3)
    bounded = text.replace("    next:", "    max_runs: 3\n    next:")
    assert bounded != text
    assert load(bounded).validate() == []
    via_defaults = text.replace("tasks:", "defaults: {max_runs: 10}\ntasks:")
    assert load(via_defaults).validate() == []


def test_unconditional_self_loop_warns() -> None:
    warnings = load(
        """\
        name: w
        tasks:
          spin: {action: core.noop, on_complete: spin}
        """
    ).validate()
    assert len(warnings) == 1
    assert "spin -> spin" in warnings[0].message


def test_conditional_loops_do_not_warn() -> None:
    workflow = load(
        """\
        name: w
        tasks:
          a: {action: core.noop, on_success: b}
          b: {action: core.echo, on_success: c}
          c: {action: core.noop, on_failure: b}
        """
    )
    assert workflow.validate() == []


def test_warning_str_with_file(tmp_path: Path) -> None:
    path = tmp_path / "w.yaml"
    path.write_text(
        "name: w\ntasks:\n  a: {action: core.noop}\n  b: {action: core.noop, next: [{do: c}]}\n"
        "  c: {action: core.noop, on_complete: b}\n"
    )
    warnings = jw.load(path).validate()
    texts = [str(w) for w in warnings]
    assert f"{path}:4:3: warning: task 'b' is unreachable from the start tasks" in texts
    assert any("unconditional loop" in t for t in texts)
