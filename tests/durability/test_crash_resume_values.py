"""``kill -9`` in the middle of a pipeline whose finished tasks returned DataFrames, then
``resume`` (issue 9, "done means"): the finished tasks do not run again, and the downstream task
gets the DataFrame (and the numpy array, and the fitted model) back from the store.

``jupyter-workflows run`` runs in its own folder and store, on the inline executor and on a real
Dask LocalCluster; every task appends ``NAME start`` / ``NAME end`` to ``log.txt``, so the test
counts how often each ran. The process is killed once the slow task has started (the frames
before it are committed: the slow task only starts after their success was written).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections import Counter
from pathlib import Path

import pytest

from jupyter_workflows.testing import run_cli

STEPS = textwrap.dedent(
    """\
    import os
    import time

    import numpy as np
    import pandas as pd

    LOG = LOG_PATH  # noqa: F821 - written above this text by the test


    def _log(name, what):
        with open(LOG, "a") as f:
            f.write(f"{name} {what}\\n")


    def load():
        _log("load", "start")
        frame = pd.DataFrame(
            {
                "x": np.arange(1000, dtype=float),
                "label": ["a", None, "b", "c"] * 250,
            }
        )
        frame.loc[3, "x"] = np.nan
        _log("load", "end")
        return frame


    def features(frame):
        _log("features", "start")
        assert isinstance(frame, pd.DataFrame), type(frame)
        out = frame.assign(x2=frame["x"] ** 2, known=frame["label"].notna())
        _log("features", "end")
        return out


    def slow(frame, seconds):
        _log("slow", "start")
        assert isinstance(frame, pd.DataFrame), type(frame)
        with open(LOG) as f:
            first = f.read().count("slow start") == 1
        time.sleep(seconds if first else 0.05)  # the kill lands in the first one
        _log("slow", "end")
        return frame["x"].to_numpy()


    def report(frame, xs):
        _log("report", "start")
        if not isinstance(frame, pd.DataFrame):
            raise TypeError(f"report got a {type(frame).__name__}, not a DataFrame")
        if not isinstance(xs, np.ndarray):
            raise TypeError(f"report got a {type(xs).__name__}, not an ndarray")
        _log("report", "end")
        return {
            "rows": len(frame),
            "columns": list(frame.columns),
            "nan": int(frame["x"].isna().sum()),
            "sum": float(np.nansum(xs)),
        }
    """
)

WORKFLOW = textwrap.dedent(
    """\
    name: frames_resume
    parameters:
      seconds: {type: number, default: 2}
    tasks:
      load: {action: "frames_steps:load", on_success: features}
      features:
        action: "frames_steps:features"
        input: {frame: "{{ task.load.result }}"}
        on_success: slow
      slow:
        action: "frames_steps:slow"
        input: {frame: "{{ task.features.result }}", seconds: "{{ parameters.seconds }}"}
        on_success: report
      report:
        action: "frames_steps:report"
        input: {frame: "{{ task.features.result }}", xs: "{{ task.slow.result }}"}
    output_map:
      report: "{{ task.report.result }}"
      features: "{{ task.features.result }}"
    """
)

TIMEOUT = 120.0


def _env(folder: Path, scheduler: str | None) -> dict[str, str]:
    env = dict(os.environ)
    env.pop("JUPYTER_WORKFLOWS_SCHEDULER", None)
    env.pop("JUPYTER_WORKFLOWS_EXECUTOR", None)
    if scheduler:
        env["JUPYTER_WORKFLOWS_SCHEDULER"] = scheduler
    else:
        env["JUPYTER_WORKFLOWS_EXECUTOR"] = "inline"
    env["JUPYTER_WORKFLOWS_STORE"] = str(folder / "state.db")
    return env


def _log(folder: Path) -> list[str]:
    try:
        return (folder / "log.txt").read_text().splitlines()
    except FileNotFoundError:
        return []


def _run_id(folder: Path) -> str:
    from jupyter_workflows.store import SqliteStore

    store = SqliteStore(folder / "state.db")
    try:
        runs = store.list_runs()
    finally:
        store.close()
    assert len(runs) == 1, runs
    return runs[0]["run_id"]


@pytest.mark.parametrize("where", ["inline", "dask"])
def test_kill_mid_pipeline_of_dataframes_then_resume(where, tmp_path, request):
    scheduler = None
    if where == "dask":
        scheduler = request.getfixturevalue("dask_cluster").scheduler_address
    folder = tmp_path
    # An absolute path: on Dask the workers import a copy of the module from elsewhere.
    (folder / "frames_steps.py").write_text(f"LOG_PATH = {str(folder / 'log.txt')!r}\n" + STEPS)
    (folder / "wf.yaml").write_text(WORKFLOW)
    env = _env(folder, scheduler)
    proc = subprocess.Popen(
        [sys.executable, "-m", "jupyter_workflows", "run", "wf.yaml", "-p", "seconds=30"],
        cwd=folder,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + TIMEOUT
    while "slow start" not in _log(folder):
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, f"slow never started: {_log(folder)}"
        time.sleep(0.01)
    os.kill(proc.pid, signal.SIGKILL)
    proc.communicate(timeout=TIMEOUT)
    assert proc.returncode == -signal.SIGKILL
    run_id = _run_id(folder)

    shown = run_cli("show", run_id, "--json", cwd=folder, env=env, timeout=TIMEOUT)
    before = json.loads(shown.stdout)
    assert before["status"] == "interrupted"
    done = {t["task"]: t for t in before["tasks"] if t["status"] == "succeeded"}
    assert set(done) == {"load", "features"}, before["tasks"]
    assert done["features"]["result"]["type"] == "DataFrame"
    assert done["features"]["result"]["shape"] == [1000, 4]

    resumed = run_cli("resume", run_id, "--json", cwd=folder, env=env, timeout=TIMEOUT)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    data = json.loads(resumed.stdout)
    assert data["status"] == "succeeded", data
    assert data["outputs"]["report"] == {
        "rows": 1000,
        "columns": ["x", "label", "x2", "known"],
        "nan": 1,
        "sum": float(sum(range(1000)) - 3),
    }
    counts = Counter(_log(folder))
    assert counts["load start"] == 1 and counts["features start"] == 1, counts
    assert counts["slow start"] == 2 and counts["report start"] == 1, counts

    # The Python API in this process reads the DataFrame back as a DataFrame.
    import pandas as pd

    import jupyter_workflows as jw

    jw.configure(store=str(folder / "state.db"))
    run = jw.get_run(run_id)
    assert isinstance(run.outputs["features"], pd.DataFrame)
    assert run.outputs["features"]["known"].sum() == 750
