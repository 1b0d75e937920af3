"""A CLI run on the embedded cluster ends without Dask's shutdown warnings on stderr.

Results still held by the cluster when it shuts down make the scheduler warn, once per worker,
that removing it "caused the cluster to lose already computed task(s)". The executor lets go of
every result, and waits for the scheduler to forget them, before it closes the workers.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from jupyter_workflows.testing import run_cli

pytestmark = [pytest.mark.slow, pytest.mark.timeout(240)]

ROOT = Path(__file__).resolve().parents[2]


def _embedded_env(tmp_path: Path) -> dict[str, str]:
    env = dict(os.environ)
    for var in ("JUPYTER_WORKFLOWS_SCHEDULER", "JUPYTER_WORKFLOWS_EXECUTOR"):
        env.pop(var, None)
    env["JUPYTER_WORKFLOWS_STORE"] = str(tmp_path / "state.db")
    return env


def test_hello_on_the_embedded_cluster_leaves_stderr_clean(tmp_path: Path) -> None:
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "jupyter_workflows",
            "run",
            "notebooks/hello.yaml",
            "-p",
            "name=world",
        ],
        cwd=ROOT,
        env=_embedded_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert proc.returncode == 0, proc.stderr
    assert "succeeded" in proc.stdout
    lines = proc.stderr.splitlines()
    assert not [line for line in lines if "lose" in line or "Removing worker" in line], proc.stderr
    # (Under heavy load a nanny may still warn that a worker process took over 4 s to exit:
    # Dask's shutdown timing, not results lost; only tracebacks are refused besides.)
    assert not [line for line in lines if "Traceback" in line], proc.stderr


def test_a_chain_of_held_array_results_leaves_stderr_clean(tmp_path: Path) -> None:
    (tmp_path / "arrays.py").write_text(
        "import numpy as np\n\n\ndef make(n):\n    return np.arange(n)\n\n\n"
        "def total(x):\n    return int(x.sum())\n"
    )
    (tmp_path / "wf.yaml").write_text(
        "name: chain\ntasks:\n"
        "  make: {action: 'arrays:make', input: {n: 1000}, on_success: total}\n"
        "  total: {action: 'arrays:total', input: {x: '{{ task.make.result }}'}}\n"
        "output_map: {total: '{{ task.total.result }}'}\n"
    )
    proc = run_cli(
        "run", "wf.yaml", "--json", cwd=tmp_path, env=_embedded_env(tmp_path), timeout=180
    )
    assert proc.returncode == 0, proc.stderr
    assert '"total": 499500' in proc.stdout
    lines = proc.stderr.splitlines()
    assert not [line for line in lines if "lose" in line or "Removing worker" in line], proc.stderr
