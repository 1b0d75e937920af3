"""``jupyter-workflows serve``: start-up as a real subprocess, and the scheduler with a fake clock.

Waiting for a real cron minute would make the suite slow, so the scheduler's clock, its run
starter and the loop's sleep are injected: the loop is driven through simulated hours in
milliseconds. The subprocess test checks what a user sees: the API answering with the token,
refusing without it, and the schedule it will run.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

import httpx
import pytest

from jupyter_workflows import SpecError
from jupyter_workflows.server.schedules import MAX_SLEEP_SECONDS, Scheduler

TOKEN = "serve-test-token"
EVERY_MINUTE = """\
name: minutely
schedule: "* * * * *"
parameters:
  who: {type: string, default: cron}
tasks:
  greet:
    action: core.echo
    input: {text: "hello {{ parameters.who }}"}
output_map:
  text: "{{ task.greet.result.text }}"
"""
UNSCHEDULED = "name: manual\ntasks:\n  a: {action: core.noop}\n"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _env(tmp_path: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        JUPYTER_TOKEN=TOKEN,
        JUPYTER_WORKFLOWS_EXECUTOR="inline",
        JUPYTER_WORKFLOWS_STORE=str(tmp_path / "state.db"),
        JUPYTER_CONFIG_DIR=str(tmp_path / "jupyter-config"),
        JUPYTER_RUNTIME_DIR=str(tmp_path / "jupyter-runtime"),
    )
    return env


def _serve(tmp_path: Path, *args: str) -> subprocess.Popen[bytes]:
    stderr = open(tmp_path / "serve.err", "wb")  # noqa: SIM115 - closed with the process
    proc = subprocess.Popen(
        [sys.executable, "-m", "jupyter_workflows", "serve", *args],
        stdout=subprocess.DEVNULL,
        stderr=stderr,
        cwd=tmp_path,
        env=_env(tmp_path),
    )
    stderr.close()
    return proc


def _stop(proc: subprocess.Popen[bytes], sig: int = signal.SIGTERM) -> int:
    if proc.poll() is None:
        proc.send_signal(sig)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=15)
    return proc.returncode


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    (tmp_path / "minutely.yaml").write_text(EVERY_MINUTE)
    (tmp_path / "manual.yaml").write_text(UNSCHEDULED)
    port = _free_port()
    proc = _serve(tmp_path, "minutely.yaml", "manual.yaml", "--port", str(port))
    url = f"http://127.0.0.1:{port}/workflows/api"
    try:
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                pytest.fail(
                    f"serve exited with {proc.returncode}:\n{(tmp_path / 'serve.err').read_text()}"
                )
            try:
                if (
                    httpx.get(f"{url}/", headers={"Authorization": f"token {TOKEN}"}).status_code
                    == 200
                ):
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, (tmp_path / "serve.err").read_text()
            time.sleep(0.2)
        yield proc, url
    finally:
        _stop(proc)


def test_serve_answers_with_the_token_and_shows_its_schedules(served, tmp_path: Path) -> None:
    proc, url = served
    auth = {"Authorization": f"token {TOKEN}"}
    assert httpx.get(f"{url}/runs").status_code == 403
    assert httpx.get(f"{url}/runs", headers={"Authorization": "token wrong"}).status_code == 403
    # Only scheduled runs so far (one fires if the test crosses a minute boundary).
    assert {r["workflow"] for r in httpx.get(f"{url}/runs", headers=auth).json()} <= {"minutely"}

    schedules = httpx.get(f"{url}/schedules", headers=auth).json()
    by_name = {s["workflow"]: s for s in schedules}
    assert set(by_name) == {"minutely", "manual"}
    assert by_name["minutely"]["schedule"] == "* * * * *"
    next_at = datetime.fromisoformat(by_name["minutely"]["next_at"])
    assert timedelta(seconds=-2) < next_at - datetime.now() <= timedelta(seconds=61)
    assert next_at.second == 0
    assert by_name["manual"]["next_at"] is None

    workflows = {w["name"]: w for w in httpx.get(f"{url}/workflows", headers=auth).json()}
    assert workflows["minutely"]["source"] == "registered"
    assert workflows["minutely"]["schedule"] == "* * * * *"
    assert workflows["minutely"]["path"] == "minutely.yaml"
    assert len([w for w in workflows.values() if w["name"] == "minutely"]) == 1

    # The served files start through the API by name.
    run = httpx.post(f"{url}/workflows/manual/runs?wait=true", headers=auth, json={}, timeout=60)
    assert run.status_code == 201, run.text
    assert run.json()["status"] == "succeeded"

    # No JupyterLab: the root redirects to the API, /lab is not there.
    assert httpx.get(f"{url.rsplit('/workflows', 1)[0]}/lab", headers=auth).status_code == 404

    err = (tmp_path / "serve.err").read_text()
    port = url.split(":")[2].split("/")[0]
    assert f"REST API at http://127.0.0.1:{port}/workflows/api/" in err
    assert f"?token={TOKEN}" in err
    assert "'minutely' (minutely.yaml) on schedule '* * * * *', next run " in err
    assert "'manual' (manual.yaml) has no schedule" in err

    assert _stop(proc, signal.SIGINT) == 0


def test_serve_refuses_an_invalid_file_before_listening(tmp_path: Path) -> None:
    (tmp_path / "bad.yaml").write_text(
        "name: bad\nschedule: '0 25 * * *'\ntasks:\n  a: {action: core.noop}\n"
    )
    proc = _serve(tmp_path, "bad.yaml", "--port", str(_free_port()))
    assert proc.wait(timeout=60) == 2
    err = (tmp_path / "serve.err").read_text().strip()
    assert (
        err
        == "bad.yaml:2:11: invalid schedule '0 25 * * *': [0 25 * * *] is not acceptable, out of range"
    )


def test_serve_reports_a_busy_port(tmp_path: Path) -> None:
    (tmp_path / "manual.yaml").write_text(UNSCHEDULED)
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        proc = _serve(tmp_path, "manual.yaml", "--port", str(port))
        code = proc.wait(timeout=60)
    assert code != 0
    assert f"{port}" in (tmp_path / "serve.err").read_text()


# -- the scheduler, on a fake clock -----------------------------------------------------------
@dataclass
class FakeClock:
    now: datetime

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


@dataclass
class FakeRun:
    run_id: str


@dataclass
class Starter:
    started: list[tuple[str, datetime]] = field(default_factory=list)
    clock: FakeClock | None = None
    fail_with: Exception | None = None

    def __call__(self, workflow) -> FakeRun:
        if self.fail_with is not None:
            raise self.fail_with
        assert self.clock is not None
        self.started.append((workflow.name, self.clock.now))
        return FakeRun(f"run{len(self.started)}")


@pytest.fixture
def files(tmp_path: Path) -> list[Path]:
    (tmp_path / "minutely.yaml").write_text(EVERY_MINUTE)
    (tmp_path / "hourly.yaml").write_text(
        EVERY_MINUTE.replace("minutely", "hourly").replace("* * * * *", "0 * * * *")
    )
    (tmp_path / "manual.yaml").write_text(UNSCHEDULED)
    return [tmp_path / "minutely.yaml", tmp_path / "hourly.yaml", tmp_path / "manual.yaml"]


def _scheduler(files: list[Path], start: datetime) -> tuple[Scheduler, FakeClock, Starter]:
    clock = FakeClock(start)
    starter = Starter(clock=clock)
    scheduler = Scheduler(files, clock=clock, start=starter)
    scheduler.load()
    return scheduler, clock, starter


def test_tick_starts_due_workflows_once(files: list[Path]) -> None:
    scheduler, clock, starter = _scheduler(files, datetime(2024, 3, 1, 9, 58, 30))
    assert [e.next_at for e in scheduler.entries] == [
        datetime(2024, 3, 1, 9, 59),
        datetime(2024, 3, 1, 10, 0),
        None,
    ]
    assert scheduler.tick() == []
    clock.advance(seconds=30)  # 09:59:00
    assert scheduler.tick() == ["run1"]
    assert scheduler.tick() == []  # not twice for the same fire
    clock.advance(seconds=60)  # 10:00:00: both fire
    assert scheduler.tick() == ["run2", "run3"]
    assert starter.started == [
        ("minutely", datetime(2024, 3, 1, 9, 59)),
        ("minutely", datetime(2024, 3, 1, 10, 0)),
        ("hourly", datetime(2024, 3, 1, 10, 0)),
    ]
    minutely = scheduler.entries[0]
    assert minutely.fired == ["run1", "run2"] and minutely.last_run_id == "run2"
    assert minutely.next_at == datetime(2024, 3, 1, 10, 1)
    assert scheduler.snapshot()[0]["next_at"] == "2024-03-01T10:01:00"
    assert scheduler.snapshot()[2]["next_at"] is None


def test_missed_fires_are_not_replayed(files: list[Path]) -> None:
    scheduler, clock, _ = _scheduler(files[:1], datetime(2024, 3, 1, 9, 58, 30))
    clock.advance(hours=3)  # the machine slept through 180 fires
    assert scheduler.tick() == ["run1"]
    assert scheduler.entries[0].next_at == datetime(2024, 3, 1, 12, 59)


def test_seconds_until_next(files: list[Path]) -> None:
    scheduler, clock, _ = _scheduler(files, datetime(2024, 3, 1, 9, 58, 30))
    assert scheduler.seconds_until_next() == 30
    clock.advance(seconds=45)
    assert scheduler.seconds_until_next() == 0
    alone, _, _ = _scheduler(files[2:], datetime(2024, 3, 1, 9, 58, 30))
    assert alone.seconds_until_next() == MAX_SLEEP_SECONDS


def test_run_forever_sleeps_until_each_fire(files: list[Path]) -> None:
    scheduler, clock, starter = _scheduler(files[:2], datetime(2024, 3, 1, 9, 58, 30))
    slept: list[float] = []

    async def fake_sleep(seconds: float) -> None:
        slept.append(seconds)
        clock.advance(seconds=seconds)
        if len(starter.started) >= 4:
            scheduler.stop()

    asyncio.run(asyncio.wait_for(scheduler.run_forever(sleep=fake_sleep, in_thread=False), 10))
    assert slept == [30, 60, 60, 60]
    assert [name for name, _ in starter.started] == ["minutely", "minutely", "hourly", "minutely"]
    assert [t.strftime("%H:%M:%S") for _, t in starter.started] == [
        "09:59:00",
        "10:00:00",
        "10:00:00",
        "10:01:00",
    ]


def test_run_forever_ticks_in_a_thread(files: list[Path]) -> None:
    scheduler, clock, starter = _scheduler(files[:1], datetime(2024, 3, 1, 9, 58, 59, 900000))
    import threading

    threads: list[str] = []
    original = scheduler._start

    def start(workflow):
        threads.append(threading.current_thread().name)
        return original(workflow)

    scheduler._start = start

    async def fake_sleep(seconds: float) -> None:
        clock.advance(seconds=seconds)
        if starter.started:
            scheduler.stop()

    asyncio.run(asyncio.wait_for(scheduler.run_forever(sleep=fake_sleep), 10))
    assert len(starter.started) == 1
    assert threads and threads[0] != threading.main_thread().name


def test_a_failing_start_is_logged_and_the_schedule_goes_on(files: list[Path], caplog) -> None:
    scheduler, clock, starter = _scheduler(files[:1], datetime(2024, 3, 1, 9, 58, 30))
    starter.fail_with = SpecError("minutely.yaml:7:5: task 'greet': unknown action 'nope'")
    clock.advance(seconds=30)
    with caplog.at_level(logging.ERROR):
        assert scheduler.tick() == []
    assert "no run started: minutely.yaml:7:5: task 'greet': unknown action 'nope'" in caplog.text
    entry = scheduler.entries[0]
    assert entry.last_error == "minutely.yaml:7:5: task 'greet': unknown action 'nope'"
    assert entry.next_at == datetime(2024, 3, 1, 10, 0)
    starter.fail_with = None
    clock.advance(seconds=60)
    assert scheduler.tick() == ["run1"]
    assert entry.last_error is None


def test_an_edited_file_is_reloaded(files: list[Path], caplog) -> None:
    scheduler, clock, _ = _scheduler(files[:1], datetime(2024, 3, 1, 9, 58, 30))
    path = files[0]
    entry = scheduler.entries[0]

    def edit(text: str) -> None:
        path.write_text(text)
        stamp = (entry.mtime or 0) + 10
        os.utime(path, (stamp, stamp))

    # Broken: its fires are skipped, and said so once.
    edit(EVERY_MINUTE.replace("action: core.echo", "action: core.echo\n    retrys: 2"))
    clock.advance(seconds=30)
    with caplog.at_level(logging.ERROR):
        assert scheduler.tick() == []
    assert "no longer loads" in caplog.text and "retrys" in caplog.text
    assert entry.broken is not None and "retrys" in entry.broken
    assert entry.next_at == datetime(2024, 3, 1, 10, 0)

    # Fixed, with a new schedule: it takes effect at once.
    edit(EVERY_MINUTE.replace("* * * * *", "30 10 * * *"))
    clock.advance(seconds=5)
    assert scheduler.tick() == []
    assert entry.broken is None
    assert entry.schedule == "30 10 * * *"
    assert entry.next_at == datetime(2024, 3, 1, 10, 30)
    clock.now = datetime(2024, 3, 1, 10, 30)
    assert scheduler.tick() == ["run1"]


def test_load_refuses_an_invalid_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "name: bad\nschedule: 'RRULE:FREQ=SOMETIMES'\ntasks:\n  a: {action: core.noop}\n"
    )
    with pytest.raises(SpecError, match="invalid schedule"):
        Scheduler([bad]).load()


def test_the_default_starter_runs_the_workflow(files: list[Path], engine) -> None:
    import jupyter_workflows as jw

    clock = FakeClock(datetime(2024, 3, 1, 9, 58, 30))
    scheduler = Scheduler(files[:1], clock=clock)
    scheduler.load()
    clock.advance(seconds=30)
    [run_id] = scheduler.tick()
    run = jw.get_run(run_id).wait(30)
    assert run.status == "succeeded"
    assert run.outputs == {"text": "hello cron"}


def test_sigterm_stops_serve_while_a_request_still_waits(tmp_path: Path) -> None:
    """Issue 11: a request thread waiting on a long run must not keep ``serve`` alive."""
    import contextlib
    import threading

    (tmp_path / "slow.yaml").write_text(
        "name: slow\ntasks:\n  a: {action: core.shell, input: {command: 'sleep 120'}}\n"
    )
    port = _free_port()
    proc = _serve(tmp_path, "slow.yaml", "--port", str(port))
    url = f"http://127.0.0.1:{port}/workflows/api"
    auth = {"Authorization": f"token {TOKEN}"}
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, (tmp_path / "serve.err").read_text()
            try:
                if httpx.get(f"{url}/", headers=auth).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, (tmp_path / "serve.err").read_text()
            time.sleep(0.2)

        def wait_on_the_run() -> None:
            with contextlib.suppress(httpx.HTTPError):
                httpx.post(f"{url}/workflows/slow/runs?wait=true", headers=auth, timeout=180)

        threading.Thread(target=wait_on_the_run, daemon=True).start()
        time.sleep(3)  # the request is in a worker thread, waiting on the run
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=40)  # it used to never exit
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=15)
