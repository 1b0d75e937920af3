"""``jupyter-workflows transition`` / ``states`` / ``objects`` as real subprocesses.

Exit codes: 0 transitioned, 1 refused (the object stays), 2 bad usage. Two processes moving one
object at once are serialized by the store (one wins, the other is refused against the new
state). An approval opened by one process is answered by ``respond`` in another and applied by a
third (``states``).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from jupyter_workflows.testing import inline_env
from jupyter_workflows.testing import run_cli as jw

FILES = {
    "check.yaml": """\
name: check
parameters:
  path: {type: string}
tasks:
  look: {action: core.shell, input: {command: "test -s {{ parameters.path }}"}}
""",
    "slow.yaml": """\
name: slow
tasks:
  wait: {action: core.sleep, input: {seconds: 3}}
""",
    "dataset.yaml": """\
lifecycle: dataset
states:
  draft: {type: draft}
  checked: {type: processing, entry: [check, slow]}
  review:
    type: approval
    approval: {approved: published, rejected: draft}
  published: {type: published}
transitions:
  - {from: draft, to: checked}
  - {from: checked, to: review}
  - {from: [checked, review, published], to: draft}
""",
}


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    for name, text in FILES.items():
        (tmp_path / name).write_text(text)
    (tmp_path / "sales.csv").write_text("region,sales\neu,1.5\nus,\n")
    return tmp_path


def test_transition_exit_codes_and_states(folder: Path) -> None:
    env = inline_env(folder)
    gone = jw("transition", "sales", "--to", "checked", env=env, cwd=folder)
    assert (
        gone.returncode == 2 and gone.stderr.strip() == "no lifecycle object 'sales' in the store"
    )

    made = jw(
        "transition",
        "sales",
        "--to",
        "checked",
        "--lifecycle",
        "dataset.yaml",
        "-p",
        "path=sales.csv",
        env=env,
        cwd=folder,
    )
    assert made.returncode == 0, made.stderr
    assert made.stdout.strip() == "sales: checked"

    refused = jw("transition", "sales", "--to", "published", env=env, cwd=folder)
    assert refused.returncode == 1
    assert refused.stderr.strip() == (
        "sales: checked -> published refused: no transition from 'checked' to 'published' is "
        "declared (from 'checked': review, draft)"
    )
    unknown = jw("transition", "sales", "--to", "nowhere", env=env, cwd=folder)
    assert unknown.returncode == 2 and "has no state 'nowhere'" in unknown.stderr
    assert len(unknown.stderr.strip().splitlines()) == 1

    shown = jw("states", "sales", "--json", env=env, cwd=folder)
    view = json.loads(shown.stdout)
    assert view["state"] == "checked" and view["type"] == "processing"
    assert view["transitions"] == ["review", "draft"]
    assert [h["outcome"] for h in view["history"]] == ["created", "transitioned", "refused"]
    text = jw("states", "sales", env=env, cwd=folder).stdout
    assert " * checked (processing) -> review, draft" in text
    listed = jw("objects", "--json", env=env, cwd=folder)
    assert json.loads(listed.stdout) == [
        {"object": "sales", "lifecycle": "dataset", "state": "checked"}
    ]


def test_an_entry_workflow_that_fails_refuses_with_exit_1(folder: Path) -> None:
    env = inline_env(folder)
    (folder / "empty.csv").write_text("")
    done = jw(
        "transition",
        "e",
        "--to",
        "checked",
        "--lifecycle",
        "dataset.yaml",
        "-p",
        "path=empty.csv",
        env=env,
        cwd=folder,
    )
    assert done.returncode == 1
    assert "entry workflow 'check' of state 'checked' failed" in done.stderr
    assert jw("states", "e", "--json", env=env, cwd=folder).stdout.count('"state": "draft"') == 1


def test_two_processes_transition_one_object_one_at_a_time(folder: Path) -> None:
    env = inline_env(folder)
    first = jw(
        "transition",
        "race",
        "--to",
        "draft",
        "--lifecycle",
        "dataset.yaml",
        "-p",
        "path=sales.csv",
        env=env,
        cwd=folder,
    )
    assert first.returncode == 1  # already in draft: created, then refused
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "jupyter_workflows", "transition", "race", "--to", "checked"],
            cwd=folder,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    results = [(p.wait(180), p.stdout.read(), p.stderr.read()) for p in procs]  # type: ignore[union-attr]
    codes = sorted(code for code, _, _ in results)
    assert codes == [0, 1], results
    loser = next(err for code, _, err in results if code == 1)
    assert "already in state 'checked'" in loser
    view = json.loads(jw("states", "race", "--json", env=env, cwd=folder).stdout)
    assert view["version"] == 1
    assert [h["outcome"] for h in view["history"]].count("transitioned") == 1


def test_an_approval_across_processes(folder: Path) -> None:
    env = inline_env(folder)
    assert (
        jw(
            "transition",
            "ds",
            "--to",
            "checked",
            "--lifecycle",
            "dataset.yaml",
            "-p",
            "path=sales.csv",
            env=env,
            cwd=folder,
        ).returncode
        == 0
    )
    assert jw("transition", "ds", "--to", "review", env=env, cwd=folder).returncode == 0
    view = json.loads(jw("states", "ds", "--json", env=env, cwd=folder).stdout)
    run_id = view["pending"]["run_id"]
    gated = jw("transition", "ds", "--to", "published", env=env, cwd=folder)
    assert gated.returncode == 1 and f"answer task 'approve' of run {run_id}" in gated.stderr
    answered = jw("respond", run_id, "approve", "--data", '{"approved": true}', env=env, cwd=folder)
    assert answered.returncode == 0, answered.stderr
    view = json.loads(jw("states", "ds", "--json", env=env, cwd=folder).stdout)
    assert view["state"] == "published" and view["pending"] is None
    assert view["history"][-1]["reason"] == "approved"
    run = json.loads(jw("show", run_id, "--json", env=env, cwd=folder).stdout)
    assert run["status"] == "succeeded" and run["outputs"] == {"answer": {"approved": True}}


def test_validate_reads_lifecycle_and_trigger_files(folder: Path) -> None:
    env = inline_env(folder)
    ok = jw("validate", "dataset.yaml", env=env, cwd=folder)
    assert (
        ok.returncode == 0
        and ok.stdout.strip() == "dataset.yaml: ok (lifecycle dataset: 4 states, 3 transitions)"
    )
    (folder / "broken.yaml").write_text(
        "lifecycle: broken\nstates:\n  draft: {entry: nope}\n  odd: {}\ntransitions:\n  - {from: draft, to: gone}\n"
    )
    bad = jw("validate", "broken.yaml", env=env, cwd=folder)
    assert bad.returncode == 2
    assert bad.stderr.splitlines() == [
        "broken.yaml:4:3: state 'odd' needs a 'type' (one of draft, pending, processing, approval, approved, published, failure)",
        "broken.yaml:6:23: transition to unknown state 'gone'",
    ]
    (folder / "triggers.yaml").write_text("traits:\n  t: {patterns: '*.csv', workflows: [check]}\n")
    ok = jw("validate", "triggers.yaml", env=env, cwd=folder)
    assert ok.returncode == 0 and ok.stdout.strip() == "triggers.yaml: ok (1 traits, 0 hooks)"
    (folder / "triggers.yaml").write_text("traits:\n  t: {patterns: '*.csv', workflows: [nope]}\n")
    bad = jw("validate", "triggers.yaml", env=env, cwd=folder)
    assert bad.returncode == 2
    assert bad.stderr.startswith(
        "triggers.yaml:2:38: trait 't': workflow 'nope': unknown workflow 'nope'"
    )
