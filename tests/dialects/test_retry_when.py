"""``retry: {when, count, delay}``: a failed attempt is retried only when ``when`` holds, in
Orquesta files (YAQL and Jinja) and native ones, on the real engine; a bad ``when`` is one
positioned line at ``validate``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import jupyter_workflows as jw
from jupyter_workflows.exceptions import SpecError
from jupyter_workflows.testing import run_cli

_ERRORS = {"ConnectionError": ConnectionError, "ValueError": ValueError, "KeyError": KeyError}


@jw.task(name="retry_when_stub")
def retry_when_stub(kinds: list[str], context: Any = None) -> Any:
    """Attempt ``n`` plays ``kinds[n - 1]`` (the last repeats): ``"ok"`` succeeds, else raises."""
    kind = kinds[min(context.attempt, len(kinds)) - 1]
    if kind == "ok":
        return {"attempt": context.attempt}
    raise _ERRORS[kind](f"{kind.lower()} on attempt {context.attempt}")


# Orquesta, YAQL: the condition reads the workflow's context, as Orquesta's own examples do.
ORQUESTA_YAQL = """\
version: 1.0

input:
  - kinds
  - retry_enabled

tasks:
  call:
    action: retry_when_stub
    input:
      kinds: <% ctx(kinds) %>
    retry:
      when: <% failed() and ctx(retry_enabled) %>
      count: 3
    next:
      - when: <% succeeded() %>
        publish: attempt=<% result().attempt %>

output:
  - attempt: <% ctx(attempt) %>
"""

# Orquesta, Jinja: the condition tells failure kinds apart by the failed attempt's ``error``.
ORQUESTA_JINJA = """\
version: 1.0

input:
  - kinds

vars:
  - handled: null

tasks:
  call:
    action: retry_when_stub kinds={{ ctx('kinds') }}
    retry:
      when: "{{ failed() and error.startswith('ConnectionError') }}"
      count: 2
    next:
      - when: "{{ succeeded() }}"
        publish: handled={{ result().attempt }}
      - when: "{{ failed() }}"
        publish: handled=gave_up
        do: noop

output:
  - handled: "{{ ctx('handled') }}"
"""

NATIVE = """\
name: native_retry_when
parameters:
  kinds: {type: array}
tasks:
  call:
    action: retry_when_stub
    input: {kinds: "{{ parameters.kinds }}"}
    retry:
      count: 4
      when: "{{ 'ConnectionError' in error or timed_out() }}"
    on_failure: report
  report:
    action: core.echo
    input: {error: "{{ task.call.error }}", attempts: "{{ task.call.attempts }}"}
"""


def _write(tmp_path: Path, name: str, text: str, *, cli: bool = False) -> Path:
    """``cli``: for a ``jupyter-workflows`` process, which does not know this module's stub."""
    path = tmp_path / name
    path.write_text(text.replace("retry_when_stub", "core.echo") if cli else text)
    return path


def _call(run: Any) -> dict[str, Any]:
    return next(t for t in run.tasks if t["task"] == "call")


@pytest.mark.parametrize(
    ("retry_enabled", "status", "attempts"),
    [(True, "succeeded", 3), (False, "failed", 1)],
)
def test_orquesta_yaql_retry_when(
    retry_enabled: bool, status: str, attempts: int, tmp_path: Path, engine: Any
) -> None:
    wf = jw.load(_write(tmp_path, "w.yaml", ORQUESTA_YAQL))
    run = wf.run({"kinds": ["ValueError", "ValueError", "ok"], "retry_enabled": retry_enabled})
    assert run.status == status, run.error
    assert _call(run)["attempts"] == attempts
    if status == "succeeded":
        assert run.outputs == {"attempt": 3}
    else:
        assert "valueerror on attempt 1" in (run.error or "")


def test_orquesta_jinja_retry_when_tells_failure_kinds_apart(tmp_path: Path, engine: Any) -> None:
    wf = jw.load(_write(tmp_path, "w.yaml", ORQUESTA_JINJA))
    # A connection error is retried (true), a ValueError is not (false): 2 attempts, handled.
    run = wf.run({"kinds": ["ConnectionError", "ValueError", "ok"]})
    assert run.status == "succeeded", run.error
    assert _call(run)["status"] == "failed"
    assert _call(run)["attempts"] == 2
    assert run.outputs == {"handled": "gave_up"}
    # Only connection errors, then success: retried until it succeeds.
    run = wf.run({"kinds": ["ConnectionError", "ConnectionError", "ok"]})
    assert run.status == "succeeded", run.error
    assert _call(run)["attempts"] == 3
    assert run.outputs == {"handled": 3}
    # Connection errors beyond count: 1 + 2 attempts, then the failure transition.
    run = wf.run({"kinds": ["ConnectionError"]})
    assert run.status == "succeeded", run.error
    assert _call(run)["attempts"] == 3
    assert _call(run)["status"] == "failed"
    assert run.outputs == {"handled": "gave_up"}


def test_orquesta_retry_when_survives_convert(tmp_path: Path) -> None:
    proc = run_cli("convert", str(_write(tmp_path, "w.yaml", ORQUESTA_YAQL, cli=True)))
    assert proc.returncode == 0, proc.stderr
    assert "when:" in proc.stdout and "retry_enabled" in proc.stdout
    native = _write(tmp_path, "native.yaml", proc.stdout)
    check = run_cli("validate", str(native))
    assert check.returncode == 0, check.stderr
    assert jw.load(native).spec.tasks["call"].retry.when == (
        '{{ yaql("failed() and ctx(retry_enabled)") }}'
    )


def test_native_retry_when(tmp_path: Path, engine: Any) -> None:
    wf = jw.load(_write(tmp_path, "w.yaml", NATIVE))
    wf.validate()
    run = wf.run({"kinds": ["ConnectionError", "ConnectionError", "KeyError", "ok"]})
    assert run.status == "succeeded", run.error  # remediated by on_failure
    call = _call(run)
    assert call["status"] == "failed" and call["attempts"] == 3
    report = next(t for t in run.tasks if t["task"] == "report")
    assert report["result"]["attempts"] == 3
    assert report["result"]["error"].startswith("KeyError:")
    run = wf.run({"kinds": ["ConnectionError", "ok"]})
    assert run.status == "succeeded", run.error
    assert _call(run)["attempts"] == 2 and _call(run)["status"] == "succeeded"
    assert [t["task"] for t in run.tasks] == ["call"]


@pytest.mark.parametrize(
    ("text", "where", "message"),
    [
        (
            NATIVE.replace("'ConnectionError' in error", "'ConnectionError' in eror"),
            ":10:38: ",
            "unknown name 'eror' in template (did you mean 'error'?",
        ),
        (
            NATIVE.replace("or timed_out() }}", "or timed_out( }}"),
            ":10:13: ",
            "template error: unexpected '}', expected ')'",
        ),
        (
            "name: w\ntasks:\n  a:\n    action: core.noop\n    retry: {count: 2, when: [1]}\n",
            ":5:29: ",
            "field 'retry.when': Input should be a valid string or a valid boolean",
        ),
        (
            ORQUESTA_JINJA.replace("error.startswith", "eror.startswith"),
            ":13:13: ",
            "unknown name 'eror' in template (did you mean 'error'?",
        ),
        (
            ORQUESTA_YAQL.replace("failed() and ctx", "failed() and and ctx"),
            ":13:13: ",
            "YAQL syntax error in <% failed() and and ctx(retry_enabled) %>",
        ),
    ],
    ids=["unknown-name", "syntax", "not-a-string", "orquesta-jinja", "orquesta-yaql"],
)
def test_a_bad_retry_when_is_one_positioned_line(
    text: str, where: str, message: str, tmp_path: Path
) -> None:
    path = _write(tmp_path, "bad.yaml", text, cli=True)
    proc = run_cli("validate", str(path))
    assert proc.returncode != 0
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith(f"{path}{where}"), lines[0]
    assert message in lines[0], lines[0]
    assert "Traceback" not in proc.stderr
    with pytest.raises(SpecError):
        jw.load(path).validate()
