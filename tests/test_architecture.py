"""The layers point one way (docs/architecture.md): ``lint-imports`` checks the import-linter
contracts of pyproject.toml over every import in the package, those inside functions included.

CI runs only pytest, so the check is a test: any upward import fails it, with import-linter's
report (which module imports which, on which line) as the failure message.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _lint_imports(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    exe = shutil.which("lint-imports") or str(Path(sys.executable).parent / "lint-imports")
    if not Path(exe).exists():
        pytest.fail(
            "lint-imports is not installed (pip install -e '.[test]' installs import-linter)"
        )
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
    }
    return subprocess.run(
        [exe, "--no-cache", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=120
    )


def test_the_layers_point_one_way() -> None:
    result = _lint_imports()
    report = result.stdout + result.stderr
    assert result.returncode == 0, report
    assert "Layers point one way: nothing imports a layer above its own KEPT" in report
    assert "0 broken" in report


def test_the_check_sees_an_upward_import_inside_a_function(tmp_path: Path) -> None:
    """A contract that puts ``cli`` below ``engine`` is broken by ``cli.logic``'s imports of
    ``engine.api``, which all sit inside functions: the real check would see such an arrow."""
    config = tmp_path / "upside_down.toml"
    config.write_text(
        "[tool.importlinter]\n"
        'root_package = "jupyter_workflows"\n'
        "[[tool.importlinter.contracts]]\n"
        'name = "upside down"\n'
        'type = "layers"\n'
        'containers = ["jupyter_workflows"]\n'
        'layers = ["engine", "cli"]\n'
    )
    result = _lint_imports("--config", str(config), cwd=tmp_path)
    report = result.stdout + result.stderr
    assert result.returncode == 1, report
    assert "upside down BROKEN" in report
    assert "jupyter_workflows.cli.logic -> jupyter_workflows.engine.api" in report
