"""Human in the loop, headless (CONTRACT §1.5, §5): ``run`` stops waiting, ``respond`` records a
schema-checked answer, ``resume`` continues from it.

A headless ``run`` whose only way forward is an inquiry exits 3 at once (nothing is left to drive),
so an inquiry's ``timeout`` fires only while some orchestrator is alive: in a kernel (the Python
API with ``wait=True`` here), or in a ``resume`` after the deadline passed (the timer restarts
with the time left, which is none).
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

import jupyter_workflows as jw
from jupyter_workflows.testing import inline_env
from jupyter_workflows.testing import run_cli as jwcli

APPROVAL = textwrap.dedent(
    """\
    name: approval
    tasks:
      prepare:
        action: core.echo
        input: {what: release}
        on_success: ask
      ask:
        action: core.inquiry
        input:
          prompt: "Ship it?"
          schema:
            type: object
            properties: {approved: {type: boolean}, note: {type: string}}
            required: [approved]
            additionalProperties: false
        decision:
          - when: "{{ result.approved }}"
            next: ship
          - default: hold
      ship: {action: core.echo, input: {did: shipped}}
      hold: {action: core.echo, input: {did: held}}
    output_map:
      answer: "{{ task.ask.result }}"
    """
)

TIMED = textwrap.dedent(
    """\
    name: timed
    tasks:
      ask:
        action: core.inquiry
        input: {prompt: "Anyone?", schema: {type: object}}
        timeout: 1
        next:
          - when: "{{ timed_out() }}"
            do: fallback
          - when: "{{ succeeded() }}"
            do: answered
      fallback: {action: core.echo, input: {did: fallback}}
      answered: {action: core.echo, input: {did: answered}}
    """
)


TIMED_BARE = textwrap.dedent(
    """\
    name: timed_bare
    tasks:
      ask:
        action: core.inquiry
        input: {prompt: "Anyone?"}
        timeout: 1
        on_success: after
      after: {action: core.noop}
    """
)


def one_line_error(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 2, (result.returncode, result.stdout, result.stderr)
    assert result.stdout == ""
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr, result.stderr
    return result.stderr.strip()


def store_bytes(tmp_path: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(tmp_path.glob("state.db*")) if p.is_file()}


def started_waiting(tmp_path: Path, env: dict[str, str]) -> str:
    (tmp_path / "approval.yaml").write_text(APPROVAL)
    waiting = jwcli("run", "approval.yaml", "--json", env=env, cwd=tmp_path)
    assert waiting.returncode == 3, waiting.stderr
    data = json.loads(waiting.stdout)
    assert data["status"] == "waiting"
    assert [(t["task"], t["status"]) for t in data["tasks"]] == [
        ("prepare", "succeeded"),
        ("ask", "waiting"),
    ]
    listed = json.loads(jwcli("runs", "--json", env=env, cwd=tmp_path).stdout)
    assert listed[0]["status"] == "waiting"  # not interrupted: nothing was lost
    return data["run_id"]


def refused_answers_record_nothing(tmp_path: Path, env: dict[str, str], run_id: str) -> None:
    untouched = store_bytes(tmp_path)
    refused = {  # (task, --data) -> part of the one-line error
        ("ask", '{"approved": "x"}'): "does not fit its schema at approved",
        ("ask", "{}"): "'approved' is a required property",
        ("ask", '{"approved": true, "x": 1}'): "does not fit its schema",
        ("ask", "{approved: yes"): "--data is not JSON",
        ("prepare", "{}"): "'prepare' is not waiting",
        ("nope", "{}"): "'nope' is not waiting",
    }
    with ThreadPoolExecutor(max_workers=len(refused)) as pool:  # independent: all at once
        results = pool.map(
            lambda args: jwcli(
                "respond", run_id, args[0], "--data", args[1], env=env, cwd=tmp_path
            ),
            refused,
        )
        for (args, expected), result in zip(refused.items(), results, strict=True):
            assert expected in one_line_error(result), args
    assert store_bytes(tmp_path) == untouched  # refused answers record nothing


@pytest.mark.parametrize(
    ("answer", "branch"),
    [({"approved": True, "note": "go"}, "ship"), ({"approved": False}, "hold")],
)
def test_run_waits_respond_records_resume_continues(
    tmp_path: Path, answer: dict, branch: str
) -> None:
    env = inline_env(tmp_path)
    run_id = started_waiting(tmp_path, env)
    if branch == "ship":
        refused_answers_record_nothing(tmp_path, env, run_id)

    good = jwcli("respond", run_id, "ask", "--data", json.dumps(answer), env=env, cwd=tmp_path)
    assert good.returncode == 0, good.stderr
    assert "recorded" in good.stdout
    # One answer per inquiry: a second one would be ignored by the resume, so it is refused.
    second = one_line_error(
        jwcli("respond", run_id, "ask", "--data", '{"approved": true}', env=env, cwd=tmp_path)
    )
    assert "already has a response" in second

    resumed = jwcli("resume", run_id, "--json", env=env, cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    data = json.loads(resumed.stdout)
    assert data["status"] == "succeeded"
    assert [(t["task"], t["status"]) for t in data["tasks"]] == [
        ("prepare", "succeeded"),
        ("ask", "succeeded"),
        (branch, "succeeded"),
    ]
    assert data["tasks"][1]["result"] == answer
    assert data["outputs"] == {"answer": answer}
    assert data["tasks"][2]["result"] == {"did": "shipped" if branch == "ship" else "held"}


def test_respond_reaches_a_live_orchestrator_in_another_process(tmp_path: Path) -> None:
    """A kernel drives the run: ``respond`` queues the answer and that process continues."""
    env = inline_env(tmp_path)
    (tmp_path / "approval.yaml").write_text(APPROVAL)
    script = (
        "import jupyter_workflows as jw\n"
        "run = jw.load('approval.yaml').run()\n"
        "print(run.run_id, run.status, flush=True)\n"
        "deadline = __import__('time').monotonic() + 60\n"
        "while run.status == 'waiting' and __import__('time').monotonic() < deadline:\n"
        "    __import__('time').sleep(0.05)\n"
        "run.wait(60)\n"
        "print(run.status, [t['task'] for t in run.tasks], flush=True)\n"
    )
    owner = subprocess.Popen(
        [sys.executable, "-c", script],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert owner.stdout is not None
        run_id, status = owner.stdout.readline().split()
        assert status == "waiting"
        bad = one_line_error(
            jwcli("respond", run_id, "ask", "--data", '{"approved": 1}', env=env, cwd=tmp_path)
        )
        assert "does not fit its schema" in bad
        good = jwcli(
            "respond", run_id, "ask", "--data", '{"approved": true}', env=env, cwd=tmp_path
        )
        assert good.returncode == 0, good.stderr
        out, err = owner.communicate(timeout=60)
    finally:
        if owner.poll() is None:
            owner.kill()
            owner.communicate()
    assert out.strip() == "succeeded ['prepare', 'ask', 'ship']", err
    shown = json.loads(jwcli("show", run_id, "--json", env=env, cwd=tmp_path).stdout)
    assert shown["status"] == "succeeded"


def test_inquiry_timeout_fails_the_task_with_timeout_error(engine) -> None:
    """Through the Python API (an orchestrator alive while the inquiry waits)."""
    wf = jw.load(TIMED_BARE)
    began = time.monotonic()
    run = wf.run(wait=False)
    run.wait(30)
    assert run.status == "waiting"
    deadline = time.monotonic() + 30
    while run.status == "waiting" and time.monotonic() < deadline:
        time.sleep(0.05)
    run.wait(30)
    assert time.monotonic() - began >= 1.0
    assert run.status == "failed"
    (ask,) = [t for t in run.tasks if t["task"] == "ask"]
    assert ask["status"] == "failed"
    assert ask["error"].startswith("TimeoutError: inquiry 'ask' got no response within 1s")
    assert run.error.startswith("TimeoutError: task 'ask' failed")


def test_inquiry_timeout_remediated_by_timed_out(engine) -> None:
    run = jw.load(TIMED).run(wait=False)
    deadline = time.monotonic() + 30
    while run.status not in ("succeeded", "failed") and time.monotonic() < deadline:
        time.sleep(0.05)
    assert run.status == "succeeded", run.error
    assert [(t["task"], t["status"]) for t in run.tasks] == [
        ("ask", "failed"),
        ("fallback", "succeeded"),
    ]


def test_a_resume_after_the_deadline_times_the_inquiry_out(tmp_path: Path) -> None:
    """Headless: the run exits 3 waiting; resumed after its timeout, the inquiry fails at once."""
    env = inline_env(tmp_path)
    (tmp_path / "timed.yaml").write_text(TIMED)
    waiting = jwcli("run", "timed.yaml", "--json", env=env, cwd=tmp_path)
    assert waiting.returncode == 3, waiting.stderr
    run_id = json.loads(waiting.stdout)["run_id"]
    time.sleep(1.1)
    resumed = jwcli("resume", run_id, "--json", env=env, cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    data = json.loads(resumed.stdout)
    assert [(t["task"], t["status"]) for t in data["tasks"]] == [
        ("ask", "failed"),
        ("fallback", "succeeded"),
    ]
    assert data["tasks"][0]["error"].startswith("TimeoutError:")


def test_a_respond_after_the_inquiry_timed_out_is_refused(tmp_path: Path) -> None:
    """Issue 11: the timer died with the process, but a late answer is still late."""
    env = inline_env(tmp_path)
    (tmp_path / "timed.yaml").write_text(TIMED)
    waiting = jwcli("run", "timed.yaml", "--json", env=env, cwd=tmp_path)
    assert waiting.returncode == 3, waiting.stderr
    run_id = json.loads(waiting.stdout)["run_id"]
    time.sleep(1.2)
    late = jwcli("respond", run_id, "ask", "--data", "{}", env=env, cwd=tmp_path)
    assert late.returncode == 2, (late.stdout, late.stderr)
    assert late.stderr.count("\n") == 1 and "timed out" in late.stderr, late.stderr
    resumed = jwcli("resume", run_id, "--json", env=env, cwd=tmp_path)
    data = json.loads(resumed.stdout)
    assert [(t["task"], t["status"]) for t in data["tasks"]] == [
        ("ask", "failed"),
        ("fallback", "succeeded"),
    ]


def test_a_respond_in_time_is_still_recorded(tmp_path: Path) -> None:
    env = inline_env(tmp_path)
    (tmp_path / "approval.yaml").write_text(APPROVAL)
    waiting = jwcli("run", "approval.yaml", "--json", env=env, cwd=tmp_path)
    run_id = json.loads(waiting.stdout)["run_id"]
    ok = jwcli("respond", run_id, "ask", "--data", '{"approved": true}', env=env, cwd=tmp_path)
    assert ok.returncode == 0, ok.stderr  # no timeout on this inquiry: never late
