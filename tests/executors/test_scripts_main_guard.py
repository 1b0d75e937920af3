"""A plain Python script that runs a workflow on the embedded Dask cluster, with and without
the ``if __name__ == "__main__":`` guard (real ``python script.py`` processes, real
LocalCluster).

Dask starts its worker processes with ``spawn``, and each imports the script first. Without
the guard the script started its run again in every worker process, each of which started a
cluster of its own: the parent waited forever for workers that never came up, and they spun
at full CPU. Now the worker refuses at once, and the parent's run fails with one line that
says what to do.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from jupyter_workflows.executors.base import MAIN_GUARD

pytestmark = pytest.mark.timeout(300)

BODY = """
import jupyter_workflows as jw

@jw.task
def double(x: int) -> int:
    return 2 * x

WF = '''
name: script
tasks:
  a: {action: double, input: {x: 21}}
'''
"""


def _run(tmp_path: Path, code: str) -> subprocess.CompletedProcess[str]:
    script = tmp_path / "script.py"
    script.write_text(textwrap.dedent(BODY) + textwrap.dedent(code))
    env = {k: v for k, v in os.environ.items() if not k.startswith("JUPYTER_WORKFLOWS_")}
    env["JUPYTER_WORKFLOWS_STORE"] = str(tmp_path / "state.db")
    return subprocess.run(
        [sys.executable, str(script)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,  # it hung forever before
    )


def test_a_guarded_script_runs_its_workflow_on_the_embedded_cluster(tmp_path) -> None:
    done = _run(
        tmp_path,
        """
        if __name__ == "__main__":
            run = jw.load(WF).run()
            print("RESULT", run.status, run.outputs.get("a") if run.outputs else None, run.error)
        """,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "RESULT succeeded" in done.stdout, done.stdout + done.stderr[-2000:]


def test_an_unguarded_script_fails_its_run_with_one_line_instead_of_hanging(tmp_path) -> None:
    done = _run(
        tmp_path,
        """
        run = jw.load(WF).run()
        print("RESULT", run.status, run.error)
        """,
    )
    results = [line for line in done.stdout.splitlines() if line.startswith("RESULT")]
    # Printed once, by the script itself: no worker process got as far as running it.
    assert len(results) == 1, done.stdout + done.stderr[-3000:]
    status, _, error = results[0].removeprefix("RESULT ").partition(" ")
    assert status == "failed", results
    assert "could not start its worker processes" in error and MAIN_GUARD in error, error
    # Each worker process said why it refused, in the same words.
    assert MAIN_GUARD in done.stderr
