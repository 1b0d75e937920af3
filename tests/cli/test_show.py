"""``show RUN_ID``: the run with its tasks and its trace (CONTRACT §5), through the real CLI.

The text form lists every task execution's attempts (status, error, worker) with that attempt's
log lines; ``--json`` keeps exactly the ``run --json`` shape.
"""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from jupyter_workflows.testing import inline_env
from jupyter_workflows.testing import run_cli as jw

ACTS = textwrap.dedent(
    """\
    from pathlib import Path


    def double(n):
        print("doubling", n)
        return n * 2


    def flaky(n):
        marker = Path(__file__).with_name("flaky.marker")
        if not marker.exists():
            marker.write_text("once")
            print("first try, failing")
            raise RuntimeError("flaked on purpose")
        print("second try, fine")
        return n
    """
)

WORKFLOW = textwrap.dedent(
    """\
    name: logged
    tasks:
      d: {action: "acts:double", input: {n: 7}, on_success: f}
      f: {action: "acts:flaky", input: {n: 1}, retry: {count: 2, delay: 0}, on_success: fan}
      fan: {action: core.echo, with_items: [x, y], input: {item: "{{ item }}"}}
    """
)


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    (tmp_path / "acts.py").write_text(ACTS)
    (tmp_path / "logged.yaml").write_text(WORKFLOW)
    return tmp_path


def test_show_prints_attempts_and_logs(folder: Path) -> None:
    env = inline_env(folder)
    ran = jw("run", "logged.yaml", "--json", env=env, cwd=folder)
    assert ran.returncode == 0, ran.stderr
    run_id = json.loads(ran.stdout)["run_id"]
    shown = jw("show", run_id, env=env, cwd=folder)
    assert shown.returncode == 0, shown.stderr
    text = shown.stdout
    assert text.startswith(f"run {run_id} of 'logged': succeeded\n")
    summary, trace = text.split("\ntrace:\n")
    assert "  d " in summary and "attempts=2" in summary  # the tasks, as before
    lines = trace.splitlines()
    d = lines.index(next(line for line in lines if line.startswith("  d: succeeded")))
    assert lines[d + 1].startswith("    attempt 1: succeeded at ")
    assert lines[d + 2] == "      | doubling 7"
    f = lines.index(next(line for line in lines if line.startswith("  f: succeeded")))
    assert lines[f + 1].startswith("    attempt 1: failed at ")
    assert lines[f + 1].endswith(": RuntimeError: flaked on purpose")
    assert "      | first try, failing" in lines[f + 2 :]
    second = next(i for i in range(f + 2, len(lines)) if lines[i].startswith("    attempt 2: "))
    assert lines[second].startswith("    attempt 2: succeeded at ")
    assert lines[second + 1] == "      | second try, fine"
    fan = lines.index(next(line for line in lines if line.startswith("  fan: succeeded")))
    assert lines[fan + 1].startswith("    call 1: succeeded")
    assert lines[fan + 2].startswith("    call 2: succeeded")
    assert "  run events:" in lines
    assert any(line.endswith("  run started") for line in lines)


def test_show_json_is_the_run_json_shape(folder: Path) -> None:
    env = inline_env(folder)
    ran = jw("run", "logged.yaml", "--json", env=env, cwd=folder)
    run_id = json.loads(ran.stdout)["run_id"]
    shown = jw("show", run_id, "--json", env=env, cwd=folder)
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout) == json.loads(ran.stdout)


def test_show_a_waiting_run_and_a_failed_run(folder: Path) -> None:
    env = inline_env(folder)
    (folder / "waits.yaml").write_text(
        "name: waits\ntasks:\n  ask: {action: core.inquiry, input: {prompt: 'go?'}}\n"
    )
    (folder / "fails.yaml").write_text(
        "name: fails\ntasks:\n  boom: {action: core.fail, input: {message: broken}}\n"
    )
    waiting = jw("run", "waits.yaml", "--json", env=env, cwd=folder)
    assert waiting.returncode == 3, waiting.stderr
    shown = jw("show", json.loads(waiting.stdout)["run_id"], env=env, cwd=folder)
    assert shown.returncode == 0, shown.stderr
    assert "\ntrace:\n  ask: waiting" in shown.stdout
    failed = jw("run", "fails.yaml", "--json", env=env, cwd=folder)
    assert failed.returncode == 1
    shown = jw("show", json.loads(failed.stdout)["run_id"], env=env, cwd=folder)
    assert shown.returncode == 0, shown.stderr
    assert "    attempt 1: failed at " in shown.stdout
    assert "ActionFailed: broken" in shown.stdout
