"""The package passes ``ruff check`` and ``mypy`` (configured in pyproject.toml).

CI runs only ``python -m pytest``, so these two checks run here as subprocesses; a failure shows
the tools' own output. ``mypy`` on a clean checkout has no cache: about a minute of CPU.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _run(argv: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        argv, cwd=ROOT, capture_output=True, text=True, timeout=600, stdin=subprocess.DEVNULL
    )


def _ruff() -> list[str]:
    found = shutil.which("ruff")
    if found is None:
        pytest.skip("ruff is not installed (it is in the `test` extra)")
    return [found]


def test_ruff_check_is_clean(tmp_path: Path) -> None:
    done = _run([*_ruff(), "check", "--no-cache", "."])
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.slow
def test_mypy_is_clean(tmp_path: Path) -> None:
    pytest.importorskip("mypy", reason="mypy is in the `test` extra")
    done = _run([sys.executable, "-m", "mypy", "--cache-dir", str(tmp_path / "mypy-cache")])
    assert done.returncode == 0, done.stdout + done.stderr
