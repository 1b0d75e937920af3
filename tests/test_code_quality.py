"""ruff (lint and format) and mypy are clean: the settings are pyproject.toml's ``[tool.ruff]``
and ``[tool.mypy]``.

CI runs only pytest, so the checks are tests: each runs the tool as a subprocess of this Python
(``sys.executable -m ...``) from the repository root and fails with the tool's own report.
mypy gets a fresh cache under the test's tmp path: the result never depends on a cache left in
the checkout, and the checkout gets no ``.mypy_cache``. A run from scratch takes about 40 s of CPU
(1-2 min on a busy machine), hence the ``slow`` marker and the longer timeout.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _run(*args: str, cwd: Path = ROOT, timeout: float = 120) -> tuple[int, str]:
    """``python -m ARGS`` in ``cwd``: its exit status and its stdout and stderr together."""
    try:
        result = subprocess.run(
            [sys.executable, "-m", *args],
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"`python -m {' '.join(args)}` took over {timeout:.0f} s: {exc.output!r}")
    report = result.stdout + result.stderr
    if "No module named" in report and result.returncode != 0:
        pytest.fail(f"{args[0]} is not installed (pip install -e '.[test]' installs it):\n{report}")
    return result.returncode, report


def test_ruff_check_is_clean() -> None:
    code, report = _run("ruff", "check", "--no-cache", ".")
    assert code == 0, f"`ruff check .` (fix with `ruff check --fix .`):\n{report}"


def test_ruff_format_has_nothing_to_change() -> None:
    code, report = _run("ruff", "format", "--check", "--no-cache", ".")
    assert code == 0, f"`ruff format --check .` (fix with `ruff format FILE`):\n{report}"


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_mypy_is_clean(tmp_path: Path) -> None:
    code, report = _run(
        "mypy", "jupyter_workflows", "--cache-dir", str(tmp_path / "mypy_cache"), timeout=840
    )
    assert code == 0, f"`mypy jupyter_workflows`:\n{report}"
    # It checked the package (not an empty selection) under the settings of pyproject.toml.
    checked = re.search(r"Success: no issues found in (\d+) source files", report)
    assert checked is not None, report
    assert int(checked.group(1)) >= 50, report


def test_mypy_settings_catch_a_misused_optional(tmp_path: Path) -> None:
    """The settings find the kind of error they are there for (no blanket ignore_errors)."""
    module = tmp_path / "optional_misuse.py"
    module.write_text(
        "from __future__ import annotations\n\n\n"
        "def first_line(text: str | None) -> str:\n"
        "    return text.splitlines()[0]\n"
    )
    code, report = _run(
        "mypy",
        "--config-file",
        str(ROOT / "pyproject.toml"),
        "--cache-dir",
        str(tmp_path / "mypy_cache"),
        str(module),
        cwd=tmp_path,
        timeout=300,
    )
    assert code == 1, report
    assert 'optional_misuse.py:5: error: Item "None" of "str | None" has no attribute' in report
