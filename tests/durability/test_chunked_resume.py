"""``kill -9`` in the middle of a chunked ``with_items`` fan-out on Dask, then ``resume``.

The fan-out runs in chunks of 4 items per Dask task. The first ~24 items to run end at once;
every later one waits for a ``go`` file, so the kill always lands with some chunks committed and
most items unfinished. After the kill: the items whose success the store had committed never
start again, every other item starts during the resume, and the resumed run's result is every
item, in order. Each item logs the Dask key it ran under, so the test also sees that the resume
ran its items in chunks. Real ``dask`` LocalCluster (the session's), real CLI processes.
"""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from collections import Counter
from pathlib import Path

import pytest

from jupyter_workflows.testing import run_cli

pytestmark = pytest.mark.timeout(240)

N = 60

ITEMS = textwrap.dedent(
    """\
    import os
    import time

    HERE = {here!r}  # not __file__: a worker elsewhere imports a shipped copy of this module
    LOG = os.path.join(HERE, "log.txt")
    GO = os.path.join(HERE, "go")


    def _log(line):
        with open(LOG, "a") as f:
            f.write(line + "\\n")


    def _ended():
        try:
            with open(LOG) as f:
                return sum(1 for line in f if " end " in line)
        except FileNotFoundError:
            return 0


    def step(x):
        from distributed import get_worker

        key = str(get_worker().get_current_task())
        _log(f"{x} start {key}")
        deadline = time.monotonic() + 120
        while _ended() >= 24 and not os.path.exists(GO) and time.monotonic() < deadline:
            time.sleep(0.02)
        _log(f"{x} end {key}")
        return x
    """
)

WORKFLOW = textwrap.dedent(
    f"""\
    name: chunked_crash
    tasks:
      fan:
        action: items:step
        with_items: "{{{{ range({N}) | list }}}}"
        chunk_size: 4
        input: {{x: "{{{{ item }}}}"}}
    output_map:
      fan: "{{{{ task.fan.result }}}}"
    """
)


def _env(folder: Path, scheduler: str) -> dict[str, str]:
    import os

    env = dict(os.environ)
    env.pop("JUPYTER_WORKFLOWS_EXECUTOR", None)
    env["JUPYTER_WORKFLOWS_SCHEDULER"] = scheduler
    env["JUPYTER_WORKFLOWS_STORE"] = str(folder / "state.db")
    return env


def _committed(db: Path) -> tuple[str | None, set[int]]:
    """The run id and the items whose success the store holds (read like another process)."""
    if not db.exists():
        return None, set()
    try:
        conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)
    except sqlite3.Error:
        return None, set()
    try:
        runs = [r for (r,) in conn.execute("SELECT run_id FROM runs")]
    except sqlite3.Error:
        return None, set()
    finally:
        conn.close()
    if not runs:
        return None, set()
    from jupyter_workflows.store import SqliteStore

    store = SqliteStore(db)
    try:
        done = {
            e["result"]
            for e in store.load_events(runs[0])
            if e.get("type") == "attempt_done" and e.get("ok") and isinstance(e.get("result"), int)
        }
    finally:
        store.close()
    return runs[0], done


def _log(folder: Path) -> list[str]:
    try:
        return (folder / "log.txt").read_text().splitlines()
    except FileNotFoundError:
        return []


def test_kill_9_mid_chunked_fan_out_then_resume_reruns_only_unfinished_items(
    tmp_path: Path, dask_cluster
) -> None:
    scheduler = dask_cluster.scheduler_address
    (tmp_path / "items.py").write_text(ITEMS.replace("{here!r}", repr(str(tmp_path))))
    (tmp_path / "wf.yaml").write_text(WORKFLOW)
    db = tmp_path / "state.db"
    proc = subprocess.Popen(
        [sys.executable, "-m", "jupyter_workflows", "run", "wf.yaml", "--json"],
        cwd=tmp_path,
        env=_env(tmp_path, scheduler),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 120
        run_id, before = None, set()
        while proc.poll() is None and time.monotonic() < deadline:
            run_id, before = _committed(db)
            if len(before) >= 12:
                break
            time.sleep(0.01)
        assert proc.poll() is None, proc.communicate(timeout=10)
        proc.send_signal(signal.SIGKILL)
        proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    run_id, before = _committed(db)
    assert run_id is not None
    assert 12 <= len(before) < N, before  # the kill landed mid-fan-out
    started_before = Counter(int(line.split()[0]) for line in _log(tmp_path) if " start " in line)
    assert all(started_before[x] == 1 for x in before), started_before

    (tmp_path / "go").write_text("go")
    offset = len(_log(tmp_path))
    resumed = run_cli(
        "resume", run_id, "--json", cwd=tmp_path, env=_env(tmp_path, scheduler), timeout=180
    )
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    data = json.loads(resumed.stdout)
    assert data["status"] == "succeeded", data["error"]
    assert data["outputs"] == {"fan": list(range(N))}

    after = [line.split() for line in _log(tmp_path)[offset:] if " start " in line]
    again = Counter(int(x) for x, _, _ in after)
    # What the store had committed never ran again; everything else ran during the resume
    # (items the killed process had queued on a worker may also have run there: at least once).
    assert not set(again) & before, sorted(set(again) & before)
    assert set(range(N)) - before <= set(again), sorted(set(range(N)) - before - set(again))
    # and the resume ran them in chunks of 4, named after the workflow and task
    keys = Counter(key for _, _, key in after)
    assert any(key.endswith("-x4") for key in keys), keys
    assert all(key.startswith("chunked_crash.fan-") for key in keys), keys
