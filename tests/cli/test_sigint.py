"""Ctrl-C (SIGINT) during ``run`` and ``resume`` through a real subprocess (CONTRACT §5, §6).

The command stops at once with exit 130 and one line, no traceback; the run is left
``interrupted`` with its finished tasks kept, and ``resume`` finishes it.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from jupyter_workflows.testing import inline_env
from jupyter_workflows.testing import run_cli as jw

SLOW = textwrap.dedent(
    """\
    name: slow
    tasks:
      s1: {action: core.sleep, input: {seconds: 0.2}, on_success: s2}
      s2: {action: core.sleep, input: {seconds: 30}, on_success: s3}
      s3: {action: core.sleep, input: {seconds: 0.2}}
    """
)


def _interrupt(folder: Path, env: dict[str, str], *args: str) -> tuple[int, str, str, float]:
    """Start the CLI, send SIGINT once task s2 runs, and return (rc, stdout, stderr, seconds)."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "jupyter_workflows", *args],
        cwd=folder,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:  # wait until s1 is done and s2 runs
        listed = jw("runs", "--json", env=env, cwd=folder)
        runs = json.loads(listed.stdout or "[]")
        if runs:
            shown = jw("show", runs[0]["run_id"], "--json", env=env, cwd=folder)
            tasks = {t["task"]: t["status"] for t in json.loads(shown.stdout)["tasks"]}
            if tasks.get("s2") == "running" and tasks.get("s1") == "succeeded":
                break
        time.sleep(0.2)
    else:
        proc.kill()
        raise AssertionError("s2 never started")
    sent = time.monotonic()
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    return proc.returncode, out, err, time.monotonic() - sent


def test_ctrl_c_during_run_leaves_it_interrupted_and_resumable(tmp_path: Path) -> None:
    (tmp_path / "slow.yaml").write_text(SLOW.replace("seconds: 30", "seconds: 3"))
    env = inline_env(tmp_path)
    rc, out, err, took = _interrupt(tmp_path, env, "run", "slow.yaml", "--json")
    assert rc == 130
    assert took < 2.5  # at once, not after s2 (3 s) and s3
    assert out == ""
    assert "Traceback" not in err
    run_id = json.loads(jw("runs", "--json", env=env, cwd=tmp_path).stdout)[0]["run_id"]
    assert err.splitlines()[-1] == (
        f"interrupted: run {run_id} stopped; `jupyter-workflows resume {run_id}` continues it"
    )
    shown = json.loads(jw("show", run_id, "--json", env=env, cwd=tmp_path).stdout)
    assert shown["status"] == "interrupted"
    assert [t["task"] for t in shown["tasks"] if t["status"] == "succeeded"] == ["s1"]
    assert "s3" not in [t["task"] for t in shown["tasks"]]  # nothing started after Ctrl-C
    time.sleep(3.5)  # s2 would have finished by now, had the process gone on
    again = json.loads(jw("show", run_id, "--json", env=env, cwd=tmp_path).stdout)
    assert again == shown
    resumed = jw("resume", run_id, "--json", env=env, cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    final = json.loads(resumed.stdout)
    assert final["status"] == "succeeded"
    assert [t["task"] for t in final["tasks"]] == ["s1", "s2", "s3"]


def test_ctrl_c_during_resume(tmp_path: Path) -> None:
    (tmp_path / "slow.yaml").write_text(SLOW)
    env = inline_env(tmp_path)
    rc, _, err, took = _interrupt(tmp_path, env, "run", "slow.yaml")
    assert (rc, took < 2.5) == (130, True)
    run_id = json.loads(jw("runs", "--json", env=env, cwd=tmp_path).stdout)[0]["run_id"]
    # resume reruns s2 (30 s): interrupt it again
    proc = subprocess.Popen(
        [sys.executable, "-m", "jupyter_workflows", "resume", run_id],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:  # until the resume process drives the run
        shown = json.loads(jw("show", run_id, "--json", env=env, cwd=tmp_path).stdout)
        if shown["status"] == "running":
            break
        time.sleep(0.2)
    sent = time.monotonic()
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130
    assert time.monotonic() - sent < 2.5
    assert "Traceback" not in err
    assert err.splitlines()[-1].startswith(f"interrupted: run {run_id} stopped")
    shown = json.loads(jw("show", run_id, "--json", env=env, cwd=tmp_path).stdout)
    assert shown["status"] == "interrupted"
