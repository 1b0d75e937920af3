"""A task error is always one line ``Type: message``, also for an exception raised without a
message (audit D14)."""

from __future__ import annotations

import pytest

import jupyter_workflows as jw
from jupyter_workflows.engine.context import error_line


@pytest.mark.parametrize(
    ("exc", "line"),
    [
        (KeyError(), "KeyError: (no message)"),
        (RuntimeError(""), "RuntimeError: (no message)"),
        (ValueError("  \n"), "ValueError: (no message)"),
        (ValueError("bad"), "ValueError: bad"),
        (ValueError("\nfirst\nsecond"), "ValueError: first"),
        (RuntimeError("-----------\nreal cause\n"), "RuntimeError: real cause"),
        (KeyError("k"), "KeyError: 'k'"),
        (TimeoutError(), "TimeoutError: (no message)"),
    ],
)
def test_error_line_is_always_type_colon_message(exc, line):
    assert error_line(exc) == line


def test_an_exception_without_a_message_gives_type_colon_message(engine):
    @jw.task(name="audit_no_message")
    def no_message() -> None:
        raise KeyError()

    run = jw.load("name: nm\ntasks:\n  a: {action: audit_no_message}\n").run()
    assert run.status == "failed"
    assert run.tasks[0]["error"] == "KeyError: (no message)"
    assert run.error == "KeyError: task 'a' failed: (no message)"
