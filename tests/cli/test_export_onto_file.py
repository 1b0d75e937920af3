"""``export`` to a path that is a file: one line on stderr and exit 2, nothing written."""

from __future__ import annotations

import subprocess
from pathlib import Path

from jupyter_workflows.testing import inline_env, run_cli


def _cli(*argv: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return run_cli(*argv, env=inline_env(cwd), cwd=cwd)


def test_export_to_an_existing_file_is_a_one_line_error(tmp_path: Path) -> None:
    (tmp_path / "hello.yaml").write_text("name: hello\ntasks:\n  a: {action: core.noop}\n")
    (tmp_path / "notadir").write_text("x")
    done = _cli("export", "hello.yaml", "notadir", cwd=tmp_path)
    assert done.returncode == 2
    assert done.stderr.strip() == "cannot export to 'notadir': it is a file, not a folder"
    assert (tmp_path / "notadir").read_text() == "x"

    done = _cli("export", "hello.yaml", "notadir/job", cwd=tmp_path)
    assert done.returncode == 2
    assert done.stderr.strip() == (
        "cannot export to 'notadir/job': 'notadir' is a file, not a folder"
    )
