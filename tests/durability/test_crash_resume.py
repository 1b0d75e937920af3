"""Runs killed with SIGKILL at random moments, then resumed with the CLI (CONTRACT §6).

Each scenario runs a workflow (a chain, a ``with_items`` fan-out in batches, and a join) with
``jupyter-workflows run`` in its own folder and store, kills the process with ``kill -9`` at a
moment drawn from a seeded random generator, checks the store (``PRAGMA integrity_check``), reads
what the store had committed, and resumes the run with ``jupyter-workflows resume --json``. Every
task appends ``NAME start`` and ``NAME end`` to ``log.txt`` in the folder, so the test counts
exactly how often each action ran:

* a task (or ``with_items`` item) whose success the store had committed before the resume never
  starts again;
* every other one starts exactly once during the resume: at least once for what was in flight
  when the process died (its ``end`` may be in the log while its success was not committed yet);
* the run succeeds, with every result, and the join receives the fan-out's full result list
  (loaded from the store when the fan-out had finished before the crash).

Kill moments: right after the run is created (before any task ran), after a random number of
log lines plus a few milliseconds, just after the last task ended (around the final commit),
after the run finished (``resume`` prints it and exits 0), and twice (the resuming process is
killed too, and a second ``resume`` finishes the run).

The seed is printed in every failure; ``JW_FAULT_SEED=N`` replays a batch. The harness is also
what ``bench/fault_tally.py`` runs 100 times.
"""

from __future__ import annotations

import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from jupyter_workflows.testing import run_cli

STEPS = textwrap.dedent(
    """\
    import os
    import time

    LOG = os.path.join(os.path.dirname(os.path.abspath(__file__)), "log.txt")
    FAN = [f"fan{i}" for i in range(6)]


    def _log(name, what):
        with open(LOG, "a") as f:
            f.write(f"{name} {what}\\n")


    def step(name, delay=0.03, got=None):
        _log(name, "start")
        time.sleep(delay)
        if got is not None and got != FAN:
            raise ValueError(f"{name} got {got!r}")
        _log(name, "end")
        return name
    """
)

WORKFLOW = textwrap.dedent(
    """\
    name: crashy
    tasks:
      first:
        action: steps:step
        input: {name: first}
        on_success: [fan, b]
      b:
        action: steps:step
        input: {name: b}
        on_success: c
      c:
        action: steps:step
        input: {name: c}
      fan:
        action: steps:step
        with_items: "{{ range(6) | list }}"
        batch_size: 2
        input: {name: "fan{{ item }}"}
      join:
        action: steps:step
        input: {name: join, got: "{{ task.fan.result }}"}
        needs: [c, fan]
        on_success: last
      last:
        action: steps:step
        input: {name: last}
    output_map:
      fan: "{{ task.fan.result }}"
      last: "{{ task.last.result }}"
    """
)

FAN = [f"fan{i}" for i in range(6)]
NAMES = ["first", "b", "c", *FAN, "join", "last"]
TASKS = ["first", "b", "c", "fan", "join", "last"]
#: Kill modes in the order scenarios cycle through them.
MODES = ["early", "lines", "lines", "twice", "lines", "lines", "late", "lines", "twice", "finished"]
CLI_TIMEOUT = 60.0


@dataclass
class Outcome:
    """What one scenario found; ``problems`` is empty when every check held."""

    index: int
    seed: int
    mode: str
    problems: list[str] = field(default_factory=list)
    kills: int = 0
    #: Where the first kill landed: ``no task ran``, ``mid-run`` or ``run ended``.
    landed: str = ""
    duplicates: int = 0
    #: Actions that had ended but whose success was not committed when the process died (so
    #: they ran again: the at-least-once window).
    reran_after_end: int = 0
    integrity_failures: int = 0
    completed: bool = False
    seconds: float = 0.0

    def describe(self) -> str:
        return f"scenario {self.index} (seed {self.seed}, mode {self.mode}): " + "; ".join(
            self.problems
        )


def cli_env_for(store: Path, scheduler: str | None = None) -> dict[str, str]:
    """Tasks in threads of the CLI process, or on the Dask scheduler ``scheduler``."""
    env = dict(os.environ)
    env.pop("JUPYTER_WORKFLOWS_SCHEDULER", None)
    env.pop("JUPYTER_WORKFLOWS_EXECUTOR", None)
    if scheduler:
        env["JUPYTER_WORKFLOWS_SCHEDULER"] = scheduler
    else:
        env["JUPYTER_WORKFLOWS_EXECUTOR"] = "inline"
    env["JUPYTER_WORKFLOWS_STORE"] = str(store)
    return env


def cli(folder: Path, *args: str, scheduler: str | None = None) -> subprocess.CompletedProcess[str]:
    return run_cli(
        *args, env=cli_env_for(folder / "state.db", scheduler), cwd=folder, timeout=CLI_TIMEOUT
    )


def spawn(folder: Path, *args: str, scheduler: str | None = None) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "jupyter_workflows", *args],
        cwd=folder,
        env=cli_env_for(folder / "state.db", scheduler),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def log_lines(folder: Path) -> list[str]:
    try:
        return (folder / "log.txt").read_text().splitlines()
    except FileNotFoundError:
        return []


def run_ids(db: Path) -> list[str]:
    """Committed run ids, read from outside like any other process would."""
    if not db.exists():
        return []
    try:
        conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)
        try:
            return [r for (r,) in conn.execute("SELECT run_id FROM runs")]
        finally:
            conn.close()
    except sqlite3.Error:
        return []  # not initialised yet


def integrity(db: Path) -> str:
    """``PRAGMA integrity_check`` through a read-only connection (it checkpoints nothing)."""
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10)
    try:
        return "\n".join(str(r[0]) for r in conn.execute("PRAGMA integrity_check"))
    finally:
        conn.close()


def committed_successes(folder: Path, run_id: str) -> tuple[set[str], dict[str, Any]]:
    """Names whose success the store holds: from ``show --json`` and the event log.

    ``show`` gives task-level successes (a with_items task lists its items' names); the event
    log also has the items of a fan-out that had not finished, which resume keeps too. (Only
    items: the log may also hold the outcome of a chain step the engine ran speculatively behind
    a predecessor whose success was not committed yet; that step had not succeeded as a task,
    and runs again after the predecessor does.)
    """
    shown = cli(folder, "show", run_id, "--json")
    if shown.returncode != 0:
        raise AssertionError(f"show exited {shown.returncode}: {shown.stderr.strip()}")
    data = json.loads(shown.stdout)
    names: set[str] = set()
    for t in data["tasks"]:
        if t["status"] == "succeeded":
            names.update(t["result"] if isinstance(t["result"], list) else [t["result"]])
    from jupyter_workflows.store import SqliteStore

    store = SqliteStore(folder / "state.db")
    try:
        for e in store.load_events(run_id):
            result = e.get("result")
            if e.get("type") == "attempt_done" and e.get("ok") and result in FAN:
                names.add(result)
    finally:
        store.close()
    return names, data


def kill_at(
    proc: subprocess.Popen[str], folder: Path, rng: random.Random, mode: str, offset: int
) -> str:
    """Wait for the moment ``mode`` picks, then ``kill -9``; returns what was reached."""
    db = folder / "state.db"
    deadline = time.monotonic() + 30
    total = 2 * len(NAMES)

    def alive() -> bool:
        return proc.poll() is None and time.monotonic() < deadline

    if mode == "early":
        while alive() and not run_ids(db):
            time.sleep(0.001)
    elif mode in ("lines", "twice"):
        target = offset + rng.randrange(1, total)
        while alive() and len(log_lines(folder)) < target:
            time.sleep(0.002)
        time.sleep(rng.uniform(0.0, 0.02))
    elif mode == "late":
        while alive() and "last end" not in log_lines(folder):
            time.sleep(0.0005)
        time.sleep(rng.uniform(0.0, 0.005))
    elif mode == "finished":
        proc.wait(CLI_TIMEOUT)
    if proc.poll() is None:
        os.kill(proc.pid, signal.SIGKILL)
    proc.communicate(timeout=CLI_TIMEOUT)
    return "exited" if proc.returncode != -signal.SIGKILL else "killed"


def check_segment(
    out: Outcome, lines: list[str], before: set[str], *, finished: bool, orphans: bool = False
) -> None:
    """The log lines written by one resuming process against what was committed before it.

    With ``orphans`` (Dask), attempts the killed process had queued on a worker may still start
    there, so what was not committed runs at least once rather than exactly once.
    """
    starts = Counter(line.split()[0] for line in lines if line.endswith(" start"))
    for name in NAMES:
        n = starts.get(name, 0)
        if name in before and n:
            out.duplicates += n
            out.problems.append(f"{name} started {n}x again after its success was committed")
        elif finished and orphans and name not in before and n < 1:
            out.problems.append(f"{name} (not committed) never started during the resume")
        elif finished and not orphans and name not in before and n != 1:
            out.problems.append(f"{name} (not committed) started {n}x during the resume, not once")
        elif not finished and not orphans and n > 1:
            out.problems.append(f"{name} started {n}x in one killed resume")


def scenario(folder: Path, index: int, seed: int, scheduler: str | None = None) -> Outcome:
    """Run, kill, check, resume (maybe kill and resume again), check.

    ``scheduler``: run the tasks on that Dask scheduler instead of in the CLI process.
    """
    start = time.monotonic()
    rng = random.Random(seed)
    mode = MODES[index % len(MODES)]
    out = Outcome(index, seed, mode)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "steps.py").write_text(STEPS)
    (folder / "wf.yaml").write_text(WORKFLOW)
    db = folder / "state.db"
    try:
        proc = spawn(folder, "run", "wf.yaml", "--json", scheduler=scheduler)
        how = kill_at(proc, folder, rng, mode, 0)
        out.kills += how == "killed"
        rounds = 2 if mode == "twice" else 1
        for round_ in range(rounds):
            check = integrity(db)
            if check != "ok":
                out.integrity_failures += 1
                out.problems.append(f"integrity_check after kill {round_ + 1}: {check}")
                return out
            ids = run_ids(db)
            if len(ids) != 1:
                out.problems.append(f"expected one run in the store, found {ids}")
                return out
            run_id = ids[0]
            before, shown = committed_successes(folder, run_id)
            if round_ == 0:
                lines = log_lines(folder)
                if not lines:
                    out.landed = "no task ran"
                elif shown["status"] == "succeeded":
                    out.landed = "run ended"
                else:
                    out.landed = "mid-run"
                if how == "killed" and shown["status"] not in ("interrupted", "succeeded"):
                    out.problems.append(f"after kill -9 the run shows {shown['status']!r}")
                # No action runs unless its own process starts it: nothing half-logged twice.
                ended = Counter(line.split()[0] for line in lines if line.endswith(" end"))
                if any(n > 1 for n in ended.values()):
                    out.problems.append(f"an action ended twice before any resume: {ended}")
                out.reran_after_end = sum(1 for name in ended if name not in before)
            if round_ < rounds - 1:  # kill the resuming process too
                offset = len(log_lines(folder))
                proc = spawn(folder, "resume", run_id, "--json", scheduler=scheduler)
                how = kill_at(proc, folder, rng, "twice", offset)
                out.kills += how == "killed"
                check_segment(
                    out, log_lines(folder)[offset:], before, finished=False, orphans=bool(scheduler)
                )
                continue
            offset = len(log_lines(folder))
            resumed = cli(folder, "resume", run_id, "--json", scheduler=scheduler)
            check_segment(
                out, log_lines(folder)[offset:], before, finished=True, orphans=bool(scheduler)
            )
            if resumed.returncode != 0:
                out.problems.append(
                    f"resume exited {resumed.returncode}: {resumed.stderr.strip()[-300:]}"
                )
                return out
            data = json.loads(resumed.stdout)
            if data["status"] != "succeeded":
                out.problems.append(f"resumed run {data['status']}: {data['error']}")
                return out
            got = [(t["task"], t["status"]) for t in data["tasks"]]
            if sorted(got) != sorted((t, "succeeded") for t in TASKS):
                out.problems.append(f"task executions after resume: {got}")
            if data["outputs"] != {"fan": FAN, "last": "last"}:
                out.problems.append(f"outputs after resume: {data['outputs']}")
            ends = Counter(line.split()[0] for line in log_lines(folder) if line.endswith(" end"))
            missing = [n for n in NAMES if not ends.get(n)]
            if missing:
                out.problems.append(f"never ran to the end: {missing}")
            check = integrity(db)
            if check != "ok":
                out.integrity_failures += 1
                out.problems.append(f"integrity_check after resume: {check}")
            out.completed = not out.problems
    except Exception as exc:  # a harness failure is a finding too, with the seed
        out.problems.append(f"{type(exc).__name__}: {exc}")
    finally:
        out.seconds = time.monotonic() - start
    return out


def run_scenarios(
    root: Path, count: int, seed: int, parallel: int = 3, scheduler: str | None = None
) -> list[Outcome]:
    """``count`` scenarios in folders under ``root``, ``parallel`` at a time."""
    with ThreadPoolExecutor(max_workers=parallel) as pool:
        futures = [
            pool.submit(scenario, root / f"s{i:03d}", i, seed * 1000 + i, scheduler)
            for i in range(count)
        ]
        return [f.result() for f in futures]


@pytest.mark.slow
def test_twenty_runs_killed_at_random_moments_all_resume(tmp_path: Path) -> None:
    seed = int(os.environ.get("JW_FAULT_SEED") or random.SystemRandom().randrange(1, 10**6))
    outcomes = run_scenarios(tmp_path, 20, seed)
    failures = [o.describe() for o in outcomes if o.problems]
    assert not failures, f"JW_FAULT_SEED={seed}\n" + "\n".join(failures)
    assert all(o.completed for o in outcomes)
    landed = Counter(o.landed for o in outcomes)
    # Every kind of moment was reached (a kill meant for mid-run may land elsewhere on a slow
    # machine, but not all of them).
    assert landed["mid-run"] >= 8, (seed, landed)
    assert landed["run ended"] >= 2, (seed, landed)
    assert sum(o.kills for o in outcomes) >= 15, (seed, [o.kills for o in outcomes])


def test_a_run_killed_before_any_task_ran_resumes(tmp_path: Path) -> None:
    """The run exists (its row is committed) but no action started: resume runs everything once."""
    outcomes = [scenario(tmp_path / f"e{i}", 0, 7 + i) for i in range(2)]  # mode "early"
    failures = [o.describe() for o in outcomes if o.problems]
    assert not failures, "\n".join(failures)


def test_resuming_a_finished_run_prints_it_and_exits_with_its_code(tmp_path: Path) -> None:
    (tmp_path / "steps.py").write_text(STEPS)
    (tmp_path / "wf.yaml").write_text(WORKFLOW)
    (tmp_path / "bad.yaml").write_text(
        "name: bad\ntasks:\n  x: {action: core.fail, input: {message: no}}\n"
    )
    ok = cli(tmp_path, "run", "wf.yaml", "--json")
    assert ok.returncode == 0, ok.stderr
    before = log_lines(tmp_path)
    again = cli(tmp_path, "resume", json.loads(ok.stdout)["run_id"], "--json")
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout) == json.loads(ok.stdout)
    assert log_lines(tmp_path) == before  # nothing ran
    bad = cli(tmp_path, "run", "bad.yaml", "--json")
    assert bad.returncode == 1
    again = cli(tmp_path, "resume", json.loads(bad.stdout)["run_id"])
    assert again.returncode == 1
    assert "failed" in again.stdout and again.stderr == ""


@pytest.mark.slow
def test_runs_on_the_dask_cluster_killed_and_resumed(tmp_path: Path, dask_cluster) -> None:
    """The default executor: tasks on worker processes outlive the killed orchestrator."""
    seed = int(os.environ.get("JW_FAULT_SEED") or random.SystemRandom().randrange(1, 10**6))
    address = dask_cluster.scheduler_address
    outcomes = [
        scenario(tmp_path / f"d{i}", index, seed * 1000 + i, scheduler=address)
        for i, index in enumerate([1, 3])  # modes "lines" and "twice"
    ]
    failures = [o.describe() for o in outcomes if o.problems]
    assert not failures, f"JW_FAULT_SEED={seed}\n" + "\n".join(failures)
