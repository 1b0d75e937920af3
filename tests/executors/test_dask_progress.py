"""``context.progress`` from a task on a Dask worker reaches the run live, then with the outcome."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

import jupyter_workflows as jw

pytestmark = pytest.mark.timeout(120)


def _wait_for(predicate, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_progress_from_a_worker_is_live_then_final(dask_engine, tmp_path: Path) -> None:
    release = tmp_path / "release"

    @jw.task(name="dask_progress")
    def work(context, release: str) -> str:
        import os
        import time

        context.progress(1, 4)
        deadline = time.monotonic() + 60
        while not os.path.exists(release) and time.monotonic() < deadline:
            time.sleep(0.05)
        context.progress(4, 4)
        return "done"

    wf = jw.load(
        "name: dpg\ntasks:\n  a: {action: dask_progress, input: {release: '{{ parameters.r }}'}}\n"
        "parameters:\n  r: {type: string}\n"
    )
    run = wf.run({"r": str(release)}, wait=False)
    try:
        _wait_for(lambda: run.live()["tasks"].get("a", {}).get("done") is not None)
        live = run.live()["tasks"]["a"]
        assert (live["done"], live["total"], live["status"]) == (1, 4, "running"), run.error
    finally:
        release.write_text("go")
    run.wait(60)
    assert run.status == "succeeded", run.error
    final = run.live()["tasks"]["a"]
    assert (final["done"], final["total"]) == (4, 4)
