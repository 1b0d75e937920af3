"""Every construct of CONTRACT §1 end to end through ``jupyter-workflows run --json``.

The CLI runs as a subprocess on a real Dask cluster: the session's LocalCluster, and (marked
``cluster``) a hand-started ``dask scheduler`` with two ``dask worker`` processes, one offering
``GPU=1``, whose workers never had the workflow's task module installed.
"""

from __future__ import annotations

import json
import os
import subprocess
import textwrap
from pathlib import Path

import pytest

from jupyter_workflows.testing import run_cli

TASKS = """
import os
import time


def add(a, b):
    return a + b


def flaky(context, succeed_on=2):
    print(f"attempt {context.attempt}")
    if context.attempt < succeed_on:
        raise ValueError(f"attempt {context.attempt} failed")
    return context.attempt


def where():
    return os.environ.get("JUPYTER_WORKFLOWS_WORKER", "?")


def slow(seconds):
    time.sleep(seconds)
    return seconds


def boom():
    raise RuntimeError("boom")
"""

EVERYTHING = """
name: everything
parameters:
  n: {type: integer, default: 3}
  env: {type: string, enum: [dev, production], default: dev}
vars:
  total: 0
defaults:
  retry: {count: 0}
tasks:
  first:
    action: tasks:add
    input: {a: "{{ parameters.n }}", b: 1}
    publish: {total: "{{ result }}"}
    on_success: [fan, checks]
  fan:
    action: tasks:add
    with_items: "{{ range(parameters.n) | list }}"
    batch_size: 2
    input: {a: "{{ item }}", b: "{{ vars.total }}"}
  checks:
    type: parallel
    tasks:
      check_a: {action: core.echo, input: {ok: true}}
      check_b: {action: core.noop}
  joined:
    needs: [fan, checks]
    action: tasks:add
    input: {a: "{{ task.fan.result | sum }}", b: "{{ task.first.result }}"}
    on_success: decide
  decide:
    decision:
      - when: "{{ parameters.env == 'production' }}"
        next: never
      - default: retried
  never: {action: core.fail}
  retried:
    action: tasks:flaky
    retry: {count: 2, delay: 0.1, backoff: exponential}
    on_success: timed
  timed:
    action: tasks:slow
    input: {seconds: 5}
    timeout: 0.5
    on_failure: recovered
  recovered:
    action: core.echo
    input: {was_timeout: "{{ task.timed.status }}"}
    on_complete: loop
  loop:
    action: core.noop
    publish: {total: "{{ vars.total + 1 }}"}
    next:
      - when: "{{ vars.total < 6 }}"
        do: loop
      - when: "{{ vars.total >= 6 }}"
        do: child
  child:
    workflow: child
    input: {x: "{{ vars.total }}"}
output_map:
  total: "{{ vars.total }}"
  joined: "{{ task.joined.result }}"
  child: "{{ task.child.result }}"
"""

CHILD = """
name: child
parameters:
  x: {type: integer, required: true}
tasks:
  double: {action: core.echo, input: {v: "{{ parameters.x * 2 }}"}}
output_map:
  doubled: "{{ task.double.result.v }}"
"""


def _write(folder: Path) -> Path:
    (folder / "tasks.py").write_text(textwrap.dedent(TASKS))
    (folder / "child.yaml").write_text(CHILD)
    path = folder / "everything.yaml"
    path.write_text(EVERYTHING)
    return path


def _run(
    args: list[str], env: dict[str, str], cwd: Path, timeout: float = 180
) -> subprocess.CompletedProcess:
    return run_cli(*args, env=env, cwd=cwd, timeout=timeout)


def _check_everything(data: dict) -> None:
    assert data["status"] == "succeeded", data["error"]
    by_task: dict[str, list[dict]] = {}
    for t in data["tasks"]:
        by_task.setdefault(t["task"], []).append(t)
    assert set(data) == {"run_id", "workflow", "status", "outputs", "error", "tasks"}
    assert set(data["tasks"][0]) == {
        "task",
        "status",
        "attempts",
        "result",
        "error",
        "started_at",
        "ended_at",
    }
    assert by_task["first"][0]["result"] == 4
    assert by_task["fan"][0]["result"] == [4, 5, 6]  # item order, one entry for the with_items task
    assert len(by_task["fan"]) == 1
    assert by_task["checks"][0]["result"] == {"check_a": {"ok": True}, "check_b": None}
    assert by_task["joined"][0]["result"] == 15 + 4
    assert "never" not in by_task
    assert by_task["retried"][0]["attempts"] == 2 and by_task["retried"][0]["result"] == 2
    assert by_task["timed"][0]["status"] == "failed"
    assert by_task["timed"][0]["error"].startswith("TimeoutError")
    assert by_task["recovered"][0]["result"] == {"was_timeout": "failed"}
    assert len(by_task["loop"]) == 2  # total goes 4 -> 5 -> 6: the loop task ran twice
    assert data["outputs"] == {"total": 6, "joined": 19, "child": {"doubled": 12}}


def test_every_construct_on_the_local_cluster(tmp_path, cli_env):
    path = _write(tmp_path)
    proc = _run(["run", str(path), "--json"], cli_env, tmp_path)
    assert proc.returncode == 0, proc.stderr
    _check_everything(json.loads(proc.stdout))
    # The same run is in the store, with the same shape.
    data = json.loads(proc.stdout)
    shown = _run(["show", data["run_id"], "--json"], cli_env, tmp_path)
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout)["tasks"] == data["tasks"]


def test_failure_exit_code_and_error_names_the_task(tmp_path, cli_env):
    _write(tmp_path)
    (tmp_path / "bad.yaml").write_text(
        "name: bad\ntasks:\n  a: {action: tasks:boom, on_success: b}\n  b: {action: core.noop}\n"
    )
    proc = _run(["run", "bad.yaml", "--json"], cli_env, tmp_path)
    assert proc.returncode == 1
    data = json.loads(proc.stdout)
    assert data["status"] == "failed"
    assert "'a'" in data["error"] and "boom" in data["error"]
    assert [t["task"] for t in data["tasks"]] == ["a"]


def test_bad_parameter_creates_no_run(tmp_path, cli_env):
    path = _write(tmp_path)
    proc = _run(["run", str(path), "-p", "n=abc", "--json"], cli_env, tmp_path)
    assert proc.returncode == 2
    assert len(proc.stderr.strip().splitlines()) == 1 and "'n'" in proc.stderr
    runs = _run(["runs", "--json"], cli_env, tmp_path)
    assert json.loads(runs.stdout) == []


@pytest.mark.cluster
def test_every_construct_and_gpu_placement_on_a_hand_started_cluster(tmp_path):
    from jupyter_workflows.testing import scheduler_and_workers

    path = _write(tmp_path)
    (tmp_path / "gpu.yaml").write_text(
        textwrap.dedent(
            """
            name: gpu
            tasks:
              on_gpu:
                action: tasks:where
                resources: {GPU: 1}
                with_items: "{{ range(6) | list }}"
                input: {}
              anywhere: {action: tasks:where}
            """
        )
    )
    with scheduler_and_workers(
        2,
        resources_per_worker=[{"GPU": 1}, {}],
        env=[{"JUPYTER_WORKFLOWS_WORKER": "gpu-box"}, {"JUPYTER_WORKFLOWS_WORKER": "cpu-box"}],
    ) as address:
        env = dict(os.environ)
        env["JUPYTER_WORKFLOWS_STORE"] = str(tmp_path / "state.db")
        env.pop("JUPYTER_WORKFLOWS_EXECUTOR", None)
        proc = _run(["run", str(path), "--scheduler", str(address), "--json"], env, tmp_path)
        assert proc.returncode == 0, proc.stderr
        _check_everything(json.loads(proc.stdout))
        proc = _run(["run", "gpu.yaml", "--scheduler", str(address), "--json"], env, tmp_path)
        assert proc.returncode == 0, proc.stderr
        data = json.loads(proc.stdout)
        on_gpu = next(t for t in data["tasks"] if t["task"] == "on_gpu")
        assert on_gpu["result"] == ["gpu-box"] * 6
