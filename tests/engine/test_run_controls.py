"""Run controls return once the request is applied, so ``run.status`` right after reflects it
(audit D6): ``pause``, ``resume``, ``cancel``, ``jw.resume(wait=False)``, in this process and
for a run another process drives."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

import jupyter_workflows as jw
from jupyter_workflows.engine import api

TWO_SLEEPS = """
name: pr
tasks:
  a: {action: core.sleep, input: {seconds: 0.4}, on_success: b}
  b: {action: core.sleep, input: {seconds: 0.4}}
"""


def test_pause_resume_cancel_apply_before_they_return(engine):
    wf = jw.load(TWO_SLEEPS)
    for _ in range(3):
        run = wf.run(wait=False)
        time.sleep(0.05)
        run.pause()
        assert run.status == "paused"
        run.resume()
        assert run.status == "running"
        run.cancel()
        assert run.status == "cancelled"
        run.wait(10)
        assert run.status == "cancelled"


def test_pause_right_after_start(engine):
    run = jw.load(TWO_SLEEPS).run(wait=False)
    run.pause()
    assert run.status == "paused"
    run.wait(10)  # a finishes; b does not start
    assert [t["task"] for t in run.tasks] == ["a"]
    run.cancel()
    assert run.status == "cancelled"


def test_module_resume_without_wait_applies_the_resume(engine):
    run = jw.load(TWO_SLEEPS).run(wait=False)
    run.pause()
    resumed = jw.resume(run.run_id, wait=False)
    assert resumed.status == "running"
    assert resumed.wait(10).status == "succeeded"


def test_retry_failed_without_wait_applies_the_retry(engine):
    run = jw.load("name: f\ntasks:\n  a: {action: core.fail}\n").run()
    assert run.status == "failed"
    again = run.resume(retry_failed=True)  # wait=False
    assert again.tasks[-1]["status"] in ("scheduled", "running", "failed")
    assert again.wait(10).status == "failed"
    assert len(again.tasks) == 2


DRIVER = """
import sys, time
import jupyter_workflows as jw
jw.configure(store=sys.argv[1], executor="inline")
run = jw.load('''
name: remote
tasks:
  a: {action: core.sleep, input: {seconds: 4}, on_success: b}
  b: {action: core.sleep, input: {seconds: 0.2}}
''').run(wait=False)
print(run.run_id, flush=True)
run.wait(60)
print(run.status, flush=True)
"""


@pytest.mark.slow
def test_controls_of_a_run_another_process_drives(tmp_path: Path):
    store = tmp_path / "shared.db"
    script = tmp_path / "driver.py"
    script.write_text(textwrap.dedent(DRIVER))
    env = {k: v for k, v in os.environ.items() if not k.startswith("JUPYTER_WORKFLOWS_")}
    proc = subprocess.Popen(
        [sys.executable, str(script), str(store)],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
        cwd=tmp_path,
    )
    try:
        assert proc.stdout is not None
        run_id = proc.stdout.readline().strip()
        api.configure(store=str(store), executor="inline")
        run = jw.get_run(run_id)
        deadline = time.monotonic() + 10
        while run.status != "running" and time.monotonic() < deadline:
            time.sleep(0.05)
        run.pause()
        assert run.status == "paused"
        assert proc.stdout.readline().strip() == "paused"  # the driver's wait() returned
    finally:
        proc.kill()
        proc.wait()
