"""A run's life through real ``jupyter-workflows`` subprocesses (CONTRACT §2, §5, §6).

The JSON shapes of ``run``, ``show``, ``runs`` and ``trace``; exit codes; and control across
processes: a run started by one ``run`` process is paused, resumed or cancelled from others.
Most tests run tasks inline (threads of the CLI process: fast); the trace and the cross-process
control tests use the session's Dask LocalCluster (``cli_env``), where tasks land on two workers.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from jupyter_workflows.testing import inline_env
from jupyter_workflows.testing import run_cli as jw

SHAPE = textwrap.dedent(
    """\
    name: shape
    vars: {round: 0}
    tasks:
      tick:
        action: core.echo
        input: {round: "{{ vars.round }}"}
        next:
          - when: "{{ result.round == 0 }}"
            publish: {round: 1}
            do: tick
          - when: "{{ result.round == 1 }}"
            do: fan
      fan:
        action: core.echo
        with_items: [a, b, c]
        input: {item: "{{ item }}", index: "{{ index }}"}
    output_map:
      items: "{{ task.fan.result | map(attribute='item') | list }}"
    """
)

FAILS = textwrap.dedent(
    """\
    name: fails
    tasks:
      ok: {action: core.noop, on_success: boom}
      boom: {action: core.fail, input: {message: broken on purpose}}
    """
)

INVALID = "name: invalid\ntasks:\n  a: {action: core.noop, on_sucess: b}\n"

WAITS = textwrap.dedent(
    """\
    name: waits
    tasks:
      ask: {action: core.inquiry, input: {prompt: "go?"}}
    """
)

SLOW = textwrap.dedent(
    """\
    name: slow
    tasks:
      s1: {action: core.sleep, input: {seconds: 1}, on_success: s2}
      s2: {action: core.sleep, input: {seconds: 1}, on_success: s3}
      s3: {action: core.sleep, input: {seconds: 1}, on_success: s4}
      s4: {action: core.sleep, input: {seconds: 1}, on_success: s5}
      s5: {action: core.sleep, input: {seconds: 1}}
    """
)

SPREAD = textwrap.dedent(
    """\
    name: spread
    tasks:
      talk:
        action: talkers:talk
        with_items: [0, 1, 2, 3, 4, 5]
        input: {n: "{{ item }}"}
    """
)

TALKERS = textwrap.dedent(
    """\
    import logging
    import time


    def talk(n):
        print(f"printed by item {n}")
        logging.getLogger("talkers").warning("logged by item %s", n)
        time.sleep(0.3)
        return n
    """
)

RUN_KEYS = {"run_id", "workflow", "status", "outputs", "error", "tasks"}
TASK_KEYS = {"task", "status", "attempts", "result", "error", "started_at", "ended_at"}
SUMMARY_KEYS = {"run_id", "workflow", "status", "started_at", "ended_at"}


def start(*args: str, env: dict[str, str], cwd: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "jupyter_workflows", *args],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def one_line_error(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 2, (result.returncode, result.stdout, result.stderr)
    assert result.stdout == ""
    assert result.stderr.endswith("\n") and result.stderr.count("\n") == 1, result.stderr
    assert "Traceback" not in result.stderr
    return result.stderr.strip()


def stored_runs(env: dict[str, str]) -> list[tuple[str, str]]:
    """``(run_id, status)`` as committed (read directly: polling through the CLI is slow)."""
    db = Path(env["JUPYTER_WORKFLOWS_STORE"])
    if not db.exists():
        return []
    try:
        conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)
        try:
            return list(conn.execute("SELECT run_id, status FROM runs ORDER BY created_at DESC"))
        finally:
            conn.close()
    except sqlite3.Error:
        return []


def wait_for_status(
    run_id: str, wanted: set[str], *, env: dict[str, str], timeout: float = 30
) -> None:
    deadline = time.monotonic() + timeout
    while dict(stored_runs(env)).get(run_id) not in wanted:
        if time.monotonic() > deadline:
            raise AssertionError(f"run {run_id} never reached {wanted}: {stored_runs(env)}")
        time.sleep(0.05)


def first_run_id(env: dict[str, str], timeout: float = 30) -> str:
    deadline = time.monotonic() + timeout
    while not stored_runs(env):
        if time.monotonic() > deadline:
            raise AssertionError("the run never appeared in the store")
        time.sleep(0.05)
    return stored_runs(env)[0][0]


# -- shapes ---------------------------------------------------------------------------------------


def test_run_json_shape_show_equals_it_and_runs_lists_newest_first(tmp_path: Path) -> None:
    env = inline_env(tmp_path)
    (tmp_path / "shape.yaml").write_text(SHAPE)
    (tmp_path / "fails.yaml").write_text(FAILS)

    done = jw("run", "shape.yaml", "--json", env=env, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)  # one JSON object, nothing else on stdout
    assert set(data) == RUN_KEYS
    assert data["workflow"] == "shape" and data["status"] == "succeeded" and data["error"] is None
    assert data["outputs"] == {"items": ["a", "b", "c"]}
    for t in data["tasks"]:
        assert set(t) == TASK_KEYS
        assert t["status"] == "succeeded" and t["error"] is None and t["attempts"] == 1
        assert t["started_at"].endswith("Z") and t["ended_at"] >= t["started_at"]
    # One entry per execution: the loop twice, the with_items task once with the list.
    assert [t["task"] for t in data["tasks"]] == ["tick", "tick", "fan"]
    assert [t["result"] for t in data["tasks"][:2]] == [{"round": 0}, {"round": 1}]
    assert data["tasks"][2]["result"] == [
        {"item": "a", "index": 0},
        {"item": "b", "index": 1},
        {"item": "c", "index": 2},
    ]

    shown = jw("show", data["run_id"], "--json", env=env, cwd=tmp_path)
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout) == data
    prefix = jw("show", data["run_id"][:8], "--json", env=env, cwd=tmp_path)
    assert json.loads(prefix.stdout) == data  # a unique prefix is enough

    failed = jw("run", "fails.yaml", "--json", env=env, cwd=tmp_path)
    assert failed.returncode == 1
    fdata = json.loads(failed.stdout)
    assert fdata["status"] == "failed"
    assert fdata["error"] == "ActionFailed: task 'boom' failed: broken on purpose"
    assert [(t["task"], t["status"]) for t in fdata["tasks"]] == [
        ("ok", "succeeded"),
        ("boom", "failed"),
    ]

    listed = jw("runs", "--json", env=env, cwd=tmp_path)
    assert listed.returncode == 0
    runs = json.loads(listed.stdout)
    assert [r["run_id"] for r in runs] == [fdata["run_id"], data["run_id"]]  # newest first
    assert all(set(r) == SUMMARY_KEYS for r in runs)
    assert [r["status"] for r in runs] == ["failed", "succeeded"]
    plain = jw("runs", env=env, cwd=tmp_path)
    assert plain.returncode == 0 and data["run_id"] in plain.stdout


def test_runs_in_a_fresh_folder_is_empty_and_creates_nothing(tmp_path: Path) -> None:
    env = dict(os.environ)
    for var in ("JUPYTER_WORKFLOWS_STORE", "JUPYTER_WORKFLOWS_SCHEDULER"):
        env.pop(var, None)
    listed = jw("runs", "--json", env=env, cwd=tmp_path)
    assert listed.returncode == 0, listed.stderr
    assert json.loads(listed.stdout) == []
    assert list(tmp_path.iterdir()) == []  # no .jupyter_workflows/ left behind
    plain = jw("runs", env=env, cwd=tmp_path)
    assert plain.returncode == 0 and plain.stdout == "no runs\n"
    assert list(tmp_path.iterdir()) == []


def test_exit_codes(tmp_path: Path) -> None:
    env = inline_env(tmp_path)
    (tmp_path / "shape.yaml").write_text(SHAPE)
    (tmp_path / "fails.yaml").write_text(FAILS)
    (tmp_path / "invalid.yaml").write_text(INVALID)
    (tmp_path / "waits.yaml").write_text(WAITS)
    assert jw("run", "shape.yaml", env=env, cwd=tmp_path).returncode == 0
    assert jw("run", "fails.yaml", env=env, cwd=tmp_path).returncode == 1
    waiting = jw("run", "waits.yaml", "--json", env=env, cwd=tmp_path)
    assert waiting.returncode == 3 and json.loads(waiting.stdout)["status"] == "waiting"
    store_before = (tmp_path / "state.db").read_bytes()
    invalid = jw("run", "invalid.yaml", "--json", env=env, cwd=tmp_path)
    line = one_line_error(invalid)
    assert line.startswith("invalid.yaml:3:") and "on_sucess" in line
    assert (
        len(json.loads(jw("runs", "--json", env=env, cwd=tmp_path).stdout)) == 3
    )  # no run created
    assert (tmp_path / "state.db").read_bytes() == store_before
    one_line_error(jw("run", "shape.yaml", "-p", "nope=1", env=env, cwd=tmp_path))
    one_line_error(jw("run", "missing.yaml", env=env, cwd=tmp_path))
    one_line_error(jw("frobnicate", env=env, cwd=tmp_path))


@pytest.fixture(scope="module")
def store_with_a_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("one-run")
    (folder / "shape.yaml").write_text(SHAPE)
    assert jw("run", "shape.yaml", env=inline_env(folder), cwd=folder).returncode == 0
    return folder


@pytest.mark.parametrize(
    "args",
    [
        ["show", "nope"],
        ["show", "nope", "--json"],
        ["resume", ""],
        ["resume", "   "],
        ["pause", "123"],
        ["cancel", "deadbeef"],
        ["trace", "../../etc/passwd"],
        ["respond", "nope", "task", "--data", "{}"],
    ],
)
def test_garbage_run_ids_exit_2_with_one_line(store_with_a_run: Path, args: list[str]) -> None:
    env = inline_env(store_with_a_run)
    before = (store_with_a_run / "state.db").read_bytes()
    one_line_error(jw(*args, env=env, cwd=store_with_a_run))
    assert (store_with_a_run / "state.db").read_bytes() == before


def test_control_of_an_ended_run_is_refused(tmp_path: Path) -> None:
    env = inline_env(tmp_path)
    (tmp_path / "shape.yaml").write_text(SHAPE)
    run_id = json.loads(jw("run", "shape.yaml", "--json", env=env, cwd=tmp_path).stdout)["run_id"]
    for verb in ("pause", "cancel"):
        line = one_line_error(jw(verb, run_id, env=env, cwd=tmp_path))
        assert "already ended (succeeded)" in line
    assert jw("resume", run_id, env=env, cwd=tmp_path).returncode == 0


# -- traces (on the Dask cluster) ---------------------------------------------------------------


def test_traces_show_workers_and_task_logs(tmp_path: Path, cli_env: dict[str, str]) -> None:
    (tmp_path / "spread.yaml").write_text(SPREAD)
    (tmp_path / "talkers.py").write_text(TALKERS)
    done = jw("run", "spread.yaml", "--json", env=cli_env, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    run_id = json.loads(done.stdout)["run_id"]

    chrome = jw("trace", run_id, "--format", "chrome", env=cli_env, cwd=tmp_path)
    assert chrome.returncode == 0, chrome.stderr
    trace = json.loads(chrome.stdout)
    spans = [e for e in trace["traceEvents"] if e["ph"] == "X"]
    assert spans and all({"name", "ts", "dur", "pid", "tid"} <= set(e) for e in spans)
    assert all(e["dur"] >= 0 for e in spans)
    named = {
        e["tid"]: e["args"]["name"]
        for e in trace["traceEvents"]
        if e["ph"] == "M" and e["name"] == "thread_name"
    }
    assert {e["tid"] for e in spans} <= set(named)  # every track is named after its worker

    done_json = jw("trace", run_id, "--format", "json", env=cli_env, cwd=tmp_path)
    assert done_json.returncode == 0, done_json.stderr
    data = json.loads(done_json.stdout)
    assert data["run_id"] == run_id and data["status"] == "succeeded"
    (talk,) = [t for t in data["tasks"] if t["task"] == "talk"]
    for n in range(6):
        assert f"printed by item {n}" in talk["logs"]
        assert f"WARNING talkers: logged by item {n}" in talk["logs"]
    # The items' attempts ran on both worker processes of the cluster.
    workers = {e["worker"] for e in data["events"] if e["type"] == "attempt_done"}
    assert len(workers) == 2, workers


def test_chrome_trace_has_one_track_per_worker(tmp_path: Path, cli_env: dict[str, str]) -> None:
    """Separate tasks (not items of one task) on two workers give two ``tid`` s."""
    wf = textwrap.dedent(
        """\
        name: pair
        tasks:
          start: {action: core.noop, on_success: [left, right]}
          left: {action: talkers:talk, input: {n: 0}}
          right: {action: talkers:talk, input: {n: 1}}
        """
    )
    (tmp_path / "pair.yaml").write_text(wf)
    (tmp_path / "talkers.py").write_text(TALKERS)
    done = jw("run", "pair.yaml", "--json", env=cli_env, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    run_id = json.loads(done.stdout)["run_id"]
    trace = json.loads(jw("trace", run_id, "--format", "chrome", env=cli_env, cwd=tmp_path).stdout)
    spans = {e["name"]: e for e in trace["traceEvents"] if e["ph"] == "X"}
    assert {"left", "right"} <= set(spans)
    assert spans["left"]["tid"] != spans["right"]["tid"]  # 2 single-threaded workers, 0.3 s each


# -- control across processes ---------------------------------------------------------------------


@pytest.mark.slow
def test_pause_from_another_process_then_resume_elsewhere(
    tmp_path: Path, cli_env: dict[str, str]
) -> None:
    (tmp_path / "slow.yaml").write_text(SLOW)
    runner = start("run", "slow.yaml", "--json", env=cli_env, cwd=tmp_path)
    try:
        run_id = first_run_id(cli_env)
        wait_for_status(run_id, {"running"}, env=cli_env)
        paused = jw("pause", run_id, env=cli_env, cwd=tmp_path)
        assert paused.returncode == 0, paused.stderr
        out, err = runner.communicate(timeout=60)
    finally:
        if runner.poll() is None:
            runner.kill()
    assert runner.returncode == 3, err
    data = json.loads(out)
    assert data["status"] == "paused"
    ran = [t["task"] for t in data["tasks"]]
    assert 1 <= len(ran) < 5 and all(t["status"] == "succeeded" for t in data["tasks"])
    listed = json.loads(jw("runs", "--json", env=cli_env, cwd=tmp_path).stdout)
    assert listed[0]["status"] == "paused"  # stays paused with no process: nothing was lost

    resumed = jw("resume", run_id, "--json", env=cli_env, cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    final = json.loads(resumed.stdout)
    assert final["status"] == "succeeded"
    assert [t["task"] for t in final["tasks"]] == ["s1", "s2", "s3", "s4", "s5"]  # none twice
    assert final["tasks"][: len(ran)] == data["tasks"]  # the paused part as it was


def test_resume_from_another_process_while_the_owner_is_alive(tmp_path: Path) -> None:
    """The owner of a paused run is still alive (a kernel): ``resume`` asks it, and waits."""
    env = inline_env(tmp_path)
    (tmp_path / "slow.yaml").write_text(SLOW.replace("seconds: 1", "seconds: 0.3"))
    script = (
        "import sys\n"
        "import jupyter_workflows as jw\n"
        "run = jw.load('slow.yaml').run(wait=False)\n"
        "print(run.run_id, flush=True)\n"
        "run.pause()\n"
        "run.wait(30)\n"
        "print(run.status, flush=True)\n"
        "sys.stdin.readline()\n"
        "run.wait(60)\n"
        "print(run.status, flush=True)\n"
    )
    owner = subprocess.Popen(
        [sys.executable, "-c", script],
        cwd=tmp_path,
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert owner.stdout is not None and owner.stdin is not None
        run_id = owner.stdout.readline().strip()
        assert owner.stdout.readline().strip() == "paused"
        resumed = jw("resume", run_id, "--json", env=env, cwd=tmp_path)
        assert resumed.returncode == 0, resumed.stderr
        assert json.loads(resumed.stdout)["status"] == "succeeded"
        owner.stdin.write("\n")
        owner.stdin.flush()
        assert owner.stdout.readline().strip() == "succeeded"
    finally:
        if owner.poll() is None:
            owner.kill()
        owner.communicate()


@pytest.mark.slow
def test_cancel_from_another_process(tmp_path: Path, cli_env: dict[str, str]) -> None:
    (tmp_path / "slow.yaml").write_text(SLOW)
    runner = start("run", "slow.yaml", "--json", env=cli_env, cwd=tmp_path)
    try:
        run_id = first_run_id(cli_env)
        wait_for_status(run_id, {"running"}, env=cli_env)
        cancelled = jw("cancel", run_id, env=cli_env, cwd=tmp_path)
        assert cancelled.returncode == 0, cancelled.stderr
        out, err = runner.communicate(timeout=60)
    finally:
        if runner.poll() is None:
            runner.kill()
    assert runner.returncode == 1, err
    data = json.loads(out)
    assert data["status"] == "cancelled"
    assert data["error"] == "RunCancelled: the run was cancelled"
    assert data["tasks"][-1]["status"] == "cancelled"
    assert len(data["tasks"]) < 5
    again = jw("resume", run_id, "--json", env=cli_env, cwd=tmp_path)
    assert again.returncode == 1 and json.loads(again.stdout) == data  # ended: printed as it is


def test_cancel_an_interrupted_run(tmp_path: Path) -> None:
    """Nobody drives a run whose process died: ``cancel`` ends it in the store."""
    env = inline_env(tmp_path)
    (tmp_path / "slow.yaml").write_text(SLOW)
    runner = start("run", "slow.yaml", "--json", env=env, cwd=tmp_path)
    run_id = first_run_id(env)
    wait_for_status(run_id, {"running"}, env=env)
    runner.kill()
    runner.communicate()
    shown = json.loads(jw("show", run_id, "--json", env=env, cwd=tmp_path).stdout)
    assert shown["status"] == "interrupted"  # its process is gone
    assert jw("cancel", run_id, env=env, cwd=tmp_path).returncode == 0
    shown = json.loads(jw("show", run_id, "--json", env=env, cwd=tmp_path).stdout)
    assert shown["status"] == "cancelled"
    again = jw("resume", run_id, env=env, cwd=tmp_path)
    assert again.returncode == 1 and "cancelled" in again.stdout


# -- controls on runs whose process is gone (issue 11) -------------------------------------------


def _killed_mid_run(tmp_path: Path) -> tuple[str, dict[str, str]]:
    env = inline_env(tmp_path)
    (tmp_path / "slow.yaml").write_text(SLOW)
    runner = start("run", "slow.yaml", "--json", env=env, cwd=tmp_path)
    run_id = first_run_id(env)
    wait_for_status(run_id, {"running"}, env=env)
    runner.kill()
    runner.communicate()
    return run_id, env


def test_cancel_an_interrupted_run_cancels_its_running_tasks(tmp_path: Path) -> None:
    run_id, env = _killed_mid_run(tmp_path)
    assert jw("cancel", run_id, env=env, cwd=tmp_path).returncode == 0
    shown = json.loads(jw("show", run_id, "--json", env=env, cwd=tmp_path).stdout)
    assert shown["status"] == "cancelled"
    statuses = {t["status"] for t in shown["tasks"]}
    assert "running" not in statuses and "cancelled" in statuses, shown["tasks"]


def test_pause_an_interrupted_run_makes_it_paused_then_resume_finishes(tmp_path: Path) -> None:
    run_id, env = _killed_mid_run(tmp_path)
    paused = jw("pause", run_id, env=env, cwd=tmp_path)
    assert paused.returncode == 0, paused.stderr
    shown = json.loads(jw("show", run_id, "--json", env=env, cwd=tmp_path).stdout)
    assert shown["status"] == "paused"
    resumed = jw("resume", run_id, "--json", env=env, cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    assert json.loads(resumed.stdout)["status"] == "succeeded"


@pytest.mark.slow
def test_cancel_a_paused_run_whose_process_exited(tmp_path: Path) -> None:
    env = inline_env(tmp_path)
    (tmp_path / "slow.yaml").write_text(SLOW)
    runner = start("run", "slow.yaml", "--json", env=env, cwd=tmp_path)
    try:
        run_id = first_run_id(env)
        wait_for_status(run_id, {"running"}, env=env)
        assert jw("pause", run_id, env=env, cwd=tmp_path).returncode == 0
        runner.communicate(timeout=60)  # a paused run's process exits (exit code 3)
    finally:
        if runner.poll() is None:
            runner.kill()
    assert json.loads(jw("show", run_id, "--json", env=env, cwd=tmp_path).stdout)["status"] == (
        "paused"
    )
    cancelled = jw("cancel", run_id, env=env, cwd=tmp_path)
    assert cancelled.returncode == 0, cancelled.stderr
    shown = json.loads(jw("show", run_id, "--json", env=env, cwd=tmp_path).stdout)
    assert shown["status"] == "cancelled"  # it used to stay paused until a resume
    assert all(t["status"] in ("succeeded", "cancelled") for t in shown["tasks"]), shown["tasks"]
