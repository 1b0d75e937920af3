"""Transitions through the Python API: declared, guarded, gated by workflows and approvals.

Workflows are real runs of the engine (the ``engine`` fixture: in-process threads, a SQLite
store in the test's folder); their files sit beside the lifecycle file, as users keep them.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

import jupyter_workflows as jw
from jupyter_workflows.exceptions import WorkflowError
from jupyter_workflows.lifecycles import TransitionRefused
from jupyter_workflows.store.sqlite import SqliteStore

FILES = {
    "profile.yaml": """\
name: profile
parameters:
  path: {type: string}
  object: {type: string}
tasks:
  read:
    action: tasks:profile
    input: {path: "{{ parameters.path }}"}
output_map:
  rows: "{{ task.read.result.rows }}"
""",
    "tasks.py": """\
import pandas as pd

def profile(path):
    frame = pd.read_csv(path)
    return {"rows": int(len(frame)), "nan": int(frame.isna().sum().sum())}

def slow(seconds=0.5):
    import time
    time.sleep(seconds)
    return "slept"
""",
    "retract.yaml": """\
name: retract
parameters:
  reason: {type: string, default: none}
tasks:
  refuse: {action: core.fail, input: {message: "retraction is switched off"}}
""",
    "slow.yaml": """\
name: slow
tasks:
  wait: {action: "tasks:slow", input: {seconds: 0.6}}
""",
    "announce.yaml": """\
name: announce
parameters:
  object: {type: string}
  to_state: {type: string}
tasks:
  say: {action: core.echo, input: {text: "{{ parameters.object }} is {{ parameters.to_state }}"}}
""",
    "dataset.yaml": """\
lifecycle: dataset
states:
  draft: {type: draft}
  checked:
    type: processing
    entry: [profile, slow]
  review:
    type: approval
    approval:
      prompt: "Publish {{ object.id }} ({{ data.path }})?"
      approved: published
      rejected: draft
  published:
    type: published
    exit: {workflow: retract, parameters: {reason: "{{ transition.to }}"}}
    workflows: [announce]
  failure: {type: failure}
transitions:
  - {from: draft, to: checked}
  - {from: checked, to: review, when: "{{ data.rows > 0 }}"}
  - {from: [draft, checked, review], to: draft}
  - {from: published, to: draft}
  - {from: "*", to: failure}
""",
}


@pytest.fixture
def folder(tmp_path: Path, engine: Any) -> Path:
    for name, text in FILES.items():
        (tmp_path / name).write_text(text)
    pd.DataFrame({"region": ["eu", "us", None], "sales": [1.5, np.nan, 3.0]}).to_csv(
        tmp_path / "sales.csv", index=False
    )
    return tmp_path


def test_a_dataset_goes_from_draft_to_published(folder: Path) -> None:
    lc = jw.lifecycle(folder / "dataset.yaml")
    obj = lc.object("sales", data={"path": str(folder / "sales.csv"), "rows": np.int64(3)})
    assert obj.state == "draft"
    assert obj.transition("checked") is obj
    assert obj.state == "checked"
    entry = obj.history[-1]
    assert entry["outcome"] == "transitioned" and len(entry["runs"]) == 2  # profile, slow
    profile_run = jw.get_run(entry["runs"][0])
    assert profile_run.workflow == "profile" and profile_run.outputs == {"rows": 3}

    obj.transition("review")
    assert obj.state == "review"
    approval = obj.approval
    assert approval is not None and approval.status == "waiting"
    assert "Publish sales (" in str(approval._task_records()[0]["input"])
    obj.approve(comment="numbers look right")
    assert obj.state == "published" and obj.pending is None
    last = obj.history[-1]
    assert (last["from_state"], last["to_state"], last["reason"]) == (
        "review",
        "published",
        "approved",
    )
    (announce,) = last["started"]
    run = jw.get_run(announce).wait(60)
    assert run.status == "succeeded" and run.tasks[0]["result"] == {"text": "sales is published"}


def test_refusals_leave_the_state_and_say_why(folder: Path) -> None:
    obj = jw.lifecycle(
        folder / "dataset.yaml", "empty", data={"path": str(folder / "sales.csv"), "rows": 0}
    )
    with pytest.raises(
        TransitionRefused,
        match=r"no transition from 'draft' to 'published' is declared \(from 'draft': checked, failure\)",
    ):
        obj.transition("published")
    obj.transition("checked")
    with pytest.raises(TransitionRefused, match=r"guard '\{\{ data.rows > 0 \}\}' is false"):
        obj.transition("review")
    with pytest.raises(TransitionRefused, match="already in state 'checked'"):
        obj.transition("checked")
    with pytest.raises(WorkflowError, match="has no state 'nowhere'"):
        obj.transition("nowhere")
    assert obj.state == "checked"
    refusals = [h for h in obj.history if h["outcome"] == "refused"]
    assert len(refusals) == 3
    assert all("\n" not in h["reason"] for h in refusals)


def test_a_failed_exit_workflow_keeps_the_object_published(folder: Path) -> None:
    obj = jw.lifecycle(
        folder / "dataset.yaml", "pub", data={"path": str(folder / "sales.csv"), "rows": 3}
    )
    obj.transition("checked")
    obj.transition("review")
    approval_run = obj.pending["run_id"]  # type: ignore[index]
    with pytest.raises(TransitionRefused, match="needs the approval of state 'review'"):
        obj.transition("published")
    obj.approve()
    assert obj.state == "published"
    assert jw.get_run(approval_run).status == "succeeded"
    with pytest.raises(TransitionRefused) as caught:
        obj.transition("draft")
    assert "exit workflow 'retract' of state 'published' failed" in str(caught.value)
    assert "retraction is switched off" in str(caught.value)
    assert obj.state == "published"
    refused = obj.history[-1]
    assert refused["outcome"] == "refused" and len(refused["runs"]) == 1
    assert jw.get_run(refused["runs"][0]).status == "failed"


def test_a_failed_entry_workflow_keeps_the_draft(folder: Path) -> None:
    obj = jw.lifecycle(folder / "dataset.yaml", "missing", data={"path": str(folder / "nope.csv")})
    with pytest.raises(
        TransitionRefused,
        match=r"entry workflow 'profile' of state 'checked' failed \(run \w+: .*FileNotFoundError",
    ):
        obj.transition("checked")
    assert obj.state == "draft"


def test_a_rejection_goes_back_to_draft(folder: Path) -> None:
    obj = jw.lifecycle(
        folder / "dataset.yaml", "rej", data={"path": str(folder / "sales.csv"), "rows": 3}
    )
    obj.transition("checked")
    obj.transition("review")
    run_id = obj.pending["run_id"]  # type: ignore[index]
    obj.reject(comment="not yet")
    assert obj.state == "draft" and obj.pending is None
    last = obj.history[-1]
    assert (last["from_state"], last["to_state"], last["outcome"]) == (
        "review",
        "draft",
        "transitioned",
    )
    assert last["reason"] == "not approved (answered)"
    assert jw.get_run(run_id).outputs == {"answer": {"approved": False, "comment": "not yet"}}


def test_leaving_the_approval_state_by_hand_cancels_the_approval(folder: Path) -> None:
    obj = jw.lifecycle(
        folder / "dataset.yaml", "hand", data={"path": str(folder / "sales.csv"), "rows": 3}
    )
    obj.transition("checked")
    obj.transition("review")
    run_id = obj.pending["run_id"]  # type: ignore[index]
    obj.transition("failure")
    assert obj.state == "failure" and obj.pending is None
    assert jw.get_run(run_id).status == "cancelled"


def test_concurrent_transitions_of_one_object_are_serialized(folder: Path) -> None:
    """Two threads move one object draft -> checked (entry workflows take a while): one wins,
    the other is refused against the new state; the history has one transition, no lost update."""
    obj = jw.lifecycle(
        folder / "dataset.yaml", "race", data={"path": str(folder / "sales.csv"), "rows": 3}
    )
    outcomes: list[str] = []
    barrier = threading.Barrier(2)

    def move() -> None:
        barrier.wait(10)
        try:
            jw.get_object("race").transition("checked", timeout=120)
            outcomes.append("ok")
        except TransitionRefused as refused:
            outcomes.append(refused.reason)

    threads = [threading.Thread(target=move) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(180)
    assert sorted(outcomes) == ["ok", "the object is already in state 'checked'"]
    moves = [h for h in obj.history if h["outcome"] == "transitioned"]
    assert len(moves) == 1
    rec = SqliteStore(folder / "state.db").object_get("race")
    assert rec is not None and rec["version"] == 1 and rec["lock_owner"] is None


def test_the_picture_highlights_the_current_state(folder: Path) -> None:
    obj = jw.lifecycle(
        folder / "dataset.yaml", "pic", data={"path": str(folder / "sales.csv"), "rows": 3}
    )
    obj.transition("checked")
    bundle = obj._repr_mimebundle_()
    page = bundle["text/html"]
    assert page.count("<svg") == 1
    assert 'class="jw-state jw-current" data-state="checked"' in page
    assert page.count("jw-current") == 1
    assert 'data-from="checked" data-to="review"' in page
    assert " * checked (processing)" in bundle["text/plain"]


def test_a_held_lock_refuses_after_the_timeout_and_a_dead_holder_is_taken_over(
    folder: Path,
) -> None:
    import os
    import socket

    from jupyter_workflows.engine.api import current_store

    obj = jw.lifecycle(
        folder / "dataset.yaml", "held", data={"path": str(folder / "sales.csv"), "rows": 3}
    )
    store = current_store()
    alive = f"{socket.gethostname()}:{os.getpid()}:other-transition"
    assert store.object_lock("held", alive)
    with pytest.raises(
        TransitionRefused,
        match=r"held: draft -> failure refused: busy: another transition holds the object \(.*other-transition\) after 0.3s",
    ):
        obj.transition("failure", timeout=0.3)
    store.object_unlock("held", alive)
    # A process that died holding the lock (kill -9 mid-transition) does not block for ever.
    dead = subprocess_pid_that_exited()
    assert store.object_lock("held", f"{socket.gethostname()}:{dead}:crashed")
    obj.transition("failure", timeout=5)
    assert obj.state == "failure"


def subprocess_pid_that_exited() -> int:
    import subprocess
    import sys

    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait(30)
    return proc.pid
