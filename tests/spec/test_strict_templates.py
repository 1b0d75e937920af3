"""Strict templates (CONTRACT §1.3): names that cannot resolve are refused before a run starts,
and an undefined lookup at run time is an error unless the template asks for a default."""

from __future__ import annotations

from pathlib import Path

import pytest

import jupyter_workflows as jw
from jupyter_workflows.exceptions import SpecError
from jupyter_workflows.testing import run_cli


def _error(text: str) -> SpecError:
    with pytest.raises(SpecError) as info:
        jw.load(text).validate()
    return info.value


def _all(text: str) -> list[str]:
    try:
        jw.load(text).validate()
    except SpecError as exc:
        return [str(e) for e in getattr(exc, "errors", None) or [exc]]
    return []


@pytest.mark.parametrize(
    ("template", "message", "word"),
    [
        (
            "{{ workflow.x }}",
            "unknown name 'workflow' in template (known: parameters, vars, task, system, kv",
            "workflow",
        ),
        (
            "{{ paramters.x }}",
            "unknown name 'paramters' in template (did you mean 'parameters'?",
            "paramters",
        ),
        ("{{ task.nope.result }}", "unknown task 'nope' in template (known tasks: a, b)", "nope"),
        (
            "{{ task.b.results }}",
            "unknown attribute 'results' of task.b in template (did you mean 'result'?",
            "results",
        ),
        (
            "{{ task['b'].stats }}",
            "unknown attribute 'stats' of task.b in template (did you mean 'status'?",
            "stats",
        ),
        ("{{ now() }}", "unknown function 'now' in template", "now"),
        (
            "{{ parameters.x | uper }}",
            "unknown filter 'uper' in template (did you mean 'upper'?",
            "uper",
        ),
        (
            "{{ system.execution_id }}",
            "unknown attribute 'execution_id' of system in template",
            "execution_id",
        ),
        ("x {{ result }}", "unknown name 'result' in template", "result"),  # not in an input
        ("{{ item }}", "unknown name 'item' in template", "item"),  # not a with_items task
        ("{{ parameters is flat }}", "unknown test 'flat' in template", "flat"),
    ],
)
def test_unknown_names_are_refused_with_a_position(template: str, message: str, word: str) -> None:
    text = (
        "name: w\n"
        "tasks:\n"
        "  a:\n"
        "    action: core.echo\n"
        f'    input: {{x: "{template}"}}\n'
        "    on_success: b\n"
        "  b: {action: core.noop}\n"
    )
    error = _error(text)
    assert error.message.startswith(message), error.message
    # the column of the name itself: the value's text starts at column 17
    assert (error.line, error.col) == (5, 17 + template.index(word))
    assert "\n" not in str(error)


def test_known_names_pass_everywhere_they_resolve() -> None:
    text = """\
name: w
parameters: {xs: {type: array, default: [1, 2]}}
vars:
  v: "{{ parameters.xs | length }}"
  w: "{% set n = 2 %}{% for k in parameters.xs %}{{ k * n }}{% endfor %}"
tasks:
  a:
    action: core.echo
    with_items: "{{ parameters.xs }}"
    input: {i: "{{ item }}", n: "{{ index }}", s: "{{ system.run_id }}", k: "{{ kv.get('k', 1) }}"}
    next:
      - when: "{{ succeeded() and result | length == 2 }}"
        publish: {r: "{{ result }}", e: "{{ error }}", m: "{{ task.a.status }}"}
        do: b
      - when: failed() or timed_out() or completed()
        do: b
  b:
    action: core.echo
    input: {x: "{{ task.a.result }}", y: "{{ task['a'].attempts }}", z: "{{ vars.r | default([]) }}"}
output_map:
  r: "{{ task.b.result }}"
  d: "{{ namespace(x=1).x + range(3) | list | length }}"
"""
    assert _all(text) == []


def test_every_problem_is_one_line_and_all_are_reported() -> None:
    text = """\
name: w
tasks:
  a:
    action: core.echo
    input:
      x: "{{ workflow.x }}"
      y: "{{ pack.config.token }}"
    publish: {r: "{{ reslt.id }}"}
output_map: {o: "{{ task.a.reslt }}"}
"""
    lines = _all(text)
    assert lines == [
        "<string>:6:14: unknown name 'workflow' in template (known: parameters, vars, task,"
        " system, kv, secret)",
        "<string>:7:14: unknown name 'pack' in template (known: parameters, vars, task, system,"
        " kv, secret)",
        "<string>:8:22: unknown name 'reslt' in template (did you mean 'result'? known:"
        " parameters, vars, task, system, kv, result, error, completed, failed, secret,"
        " succeeded, timed_out)",
        "<string>:9:28: unknown attribute 'reslt' of task.a in template (did you mean 'result'?"
        " known: attempts, done, error, failed_items, result, status, total)",
    ]


def test_a_run_refuses_before_it_starts() -> None:
    w = jw.load("name: w\ntasks:\n  a: {action: core.echo, input: {x: '{{ workflow.x }}'}}\n")
    with pytest.raises(SpecError, match="unknown name 'workflow'"):
        w.run()


def test_undefined_at_run_time_fails_the_task_not_null() -> None:
    w = jw.load(
        """\
name: w
tasks:
  a:
    action: core.echo
    input: {x: {id: 1}}
    publish: {y: "{{ result.x.nope }}"}
"""
    )
    run = w.run()
    assert run.status == "failed"
    assert "UndefinedError" in run.error and "nope" in run.error


def test_a_default_is_honoured_at_run_time() -> None:
    w = jw.load(
        """\
name: w
tasks:
  a:
    action: core.echo
    input: {x: {id: 1}}
    publish:
      y: "{{ result.x.nope | default('none') }}"
      z: "{{ result.x.nope.deeper | default(7) }}"
      d: "{{ result.x.id is defined }}"
output_map: {y: "{{ vars.y }}", z: "{{ vars.z }}", d: "{{ vars.d }}"}
"""
    )
    run = w.run()
    assert run.status == "succeeded", run.error
    assert run.outputs == {"y": "none", "z": 7, "d": True}


def test_unconditional_retry_warns_like_a_self_loop(tmp_path: Path) -> None:
    path = tmp_path / "w.yaml"
    path.write_text("name: w\ntasks:\n  a:\n    action: core.echo\n    next:\n      - do: retry\n")
    proc = run_cli("validate", str(path))
    assert proc.returncode == 0, proc.stderr
    assert f"{path}:6:13: warning: task 'a': an unconditional 'do: retry' runs it until" in (
        proc.stdout + proc.stderr
    )
    # a bounded or conditional retry does not warn
    path.write_text(
        "name: w\ntasks:\n  a:\n    action: core.echo\n    next:\n"
        "      - {when: '{{ failed() }}', do: retry}\n"
    )
    proc = run_cli("validate", str(path))
    assert "warning" not in proc.stdout + proc.stderr
