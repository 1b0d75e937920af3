"""Errors in a notebook read by the CLI are ``FILE:LINE:COL: message (cell N)`` (CONTRACT §5).

LINE and COL are counted in cell N (cells counted from 1, markdown included). The real command
runs in a subprocess: ``validate`` and ``run`` read the notebook with the same loader.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import nbformat
import pytest
from nbformat import v4

from jupyter_workflows.testing import inline_env, run_cli

POSITIONED = re.compile(r"^[^:]+:\d+:\d+: ")


def _notebook(path: Path, *cells: str) -> Path:
    nb = v4.new_notebook()
    nb.cells = [v4.new_markdown_cell("# a title")] + [v4.new_code_cell(c) for c in cells]
    nbformat.write(nb, str(path))
    return path


def _cli(*argv: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return run_cli(*argv, env=inline_env(cwd), cwd=cwd)


CASES = {
    "unknown-target": (
        ["x = 1", "%%workflow bad\ntasks:\n  a: {action: core.noop, on_success: q}\n"],
        "nb.ipynb:3:38: task 'a': on_success names unknown task 'q' (cell 3)",
    ),
    "yaml-syntax": (
        ["%%workflow\ntasks: {a: {action: core.noop}\n"],
        "nb.ipynb:2:8: YAML syntax error: expected ',' or '}', but got '<stream end>': "
        "the flow mapping that starts here is never closed (cell 2)",
    ),
    "cell-raises": (
        ["x = 1", "y = 2\nz = (x +\n  1) / 0\n"],
        "nb.ipynb:2:5: ZeroDivisionError: division by zero (cell 3)",
    ),
    "raises-in-an-earlier-cell's-function": (
        ["def f():\n    return 1 / 0\n", "x = 1\n\ny = f()\n"],
        "nb.ipynb:3:5: ZeroDivisionError: division by zero (cell 3)",
    ),
    "syntax-error": (
        ["def f(:\n    pass\n"],
        "nb.ipynb:1:7: SyntaxError: invalid syntax (cell 2)",
    ),
    "magic-arguments": (
        ["\n%%workflow x y z\ntasks: {a: {action: core.noop}}\n"],
        "nb.ipynb:2:1: unrecognized arguments: y z (cell 2)",
    ),
    "nested-file": (
        ["%%workflow parent\ntasks:\n  c: {workflow: child}\n"],
        "child.yaml:3:26: unknown field 'retrys' in task 'a' (did you mean 'retry'?) "
        "(in nested workflow 'child', run by nb.ipynb:3:17 task 'c') (cell 2)",
    ),
}


# `run` reads the notebook with the same loader: two cases show it (each is a subprocess).
@pytest.mark.parametrize(
    ("command", "case"),
    [("validate", case) for case in CASES] + [("run", "unknown-target"), ("run", "cell-raises")],
)
def test_notebook_errors_are_positioned(tmp_path: Path, case: str, command: str) -> None:
    cells, expected = CASES[case]
    (tmp_path / "child.yaml").write_text(
        "name: child\ntasks:\n  a: {action: core.noop, retrys: 1}\n"
    )
    _notebook(tmp_path / "nb.ipynb", *cells)
    done = _cli(command, "nb.ipynb", cwd=tmp_path)
    assert done.returncode == 2, done
    assert done.stderr.strip() == expected
    assert POSITIONED.match(done.stderr)
    assert not (tmp_path / "state.db").exists()  # no run created


def test_a_valid_notebook_still_validates(tmp_path: Path) -> None:
    _notebook(tmp_path / "ok.ipynb", "%%workflow ok\ntasks:\n  a: {action: core.noop}\n")
    done = _cli("validate", "ok.ipynb", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
