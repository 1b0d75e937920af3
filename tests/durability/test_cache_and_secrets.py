"""Result caching across runs (CONTRACT §1.6) and secrets that never reach the store or any
output (CONTRACT §1.3), through real ``jupyter-workflows`` processes.

Cache: a ``cache: true`` task's action runs once across runs (its side effect, a line appended to
a file, is not repeated, and the task shows ``cached``) until its rendered input or its function's
code changes; ``--no-cache`` bypasses the cache; ``expire`` ends an entry; ``key`` chooses what
the entry depends on.

Secrets: the value of ``{{ secret('API_TOKEN') }}`` (and of ``context.secret()``) is printed,
logged, returned, published, put in outputs and in an error by the tasks, and must appear nowhere:
not in the database, its WAL (read while the run's process is dead mid-run, so nothing was
checkpointed away) nor its artifact files, nor on stdout or stderr of ``run``, ``show``,
``trace`` (both formats) and ``resume``. Each shows ``***`` instead.
"""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from jupyter_workflows.testing import inline_env
from jupyter_workflows.testing import run_cli as jw

SECRET = "tok-5ecr3t-Zq81"

# -- cache ------------------------------------------------------------------------------------------

WORK = textwrap.dedent(
    """\
    import os

    SIDE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "side.txt")


    def work(x, label="a"):
        with open(SIDE, "a") as f:
            f.write(f"{label}:{x}\\n")
        return x * 2
    """
)

CACHED = textwrap.dedent(
    """\
    name: cached
    parameters:
      x: {type: integer, default: 1}
      label: {type: string, default: a}
    tasks:
      w:
        action: work:work
        input: {x: "{{ parameters.x }}"}
        cache: true
        on_success: fan
      fan:
        action: work:work
        with_items: [10, 20]
        input: {x: "{{ item }}", label: fan}
        cache: true
      keyed:
        action: work:work
        input: {x: "{{ parameters.x }}", label: "{{ parameters.label }}"}
        cache: {key: "only-x-{{ parameters.x }}"}
    output_map:
      w: "{{ task.w.result }}"
    """
)


def side(tmp_path: Path) -> list[str]:
    path = tmp_path / "side.txt"
    lines = path.read_text().splitlines() if path.exists() else []
    path.unlink(missing_ok=True)
    return lines


def run_cached(tmp_path: Path, *args: str) -> dict[str, tuple[str, object]]:
    done = jw("run", "cached.yaml", "--json", *args, env=inline_env(tmp_path), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    return {t["task"]: (t["status"], t["result"]) for t in data["tasks"]}


def test_cache_across_runs(tmp_path: Path) -> None:
    (tmp_path / "work.py").write_text(WORK)
    (tmp_path / "cached.yaml").write_text(CACHED)
    tasks = ["w", "fan", "keyed"]

    first = run_cached(tmp_path)
    assert {t: s for t, (s, _) in first.items()} == dict.fromkeys(tasks, "succeeded")
    assert sorted(side(tmp_path)) == ["a:1", "a:1", "fan:10", "fan:20"]

    second = run_cached(tmp_path)  # nothing changed: every action is skipped
    assert second == {t: ("cached", r) for t, (_, r) in first.items()}
    assert second["fan"] == ("cached", [20, 40])  # with_items: per item, results in order
    assert side(tmp_path) == []

    # A key that leaves the label out: a new label is still a hit.
    keyed = run_cached(tmp_path, "-p", "label=b")
    assert keyed["keyed"] == ("cached", 2)
    assert side(tmp_path) == []

    changed = run_cached(tmp_path, "-p", "x=2")  # a new input: a miss where it is used
    assert changed["w"] == ("succeeded", 4) and changed["keyed"] == ("succeeded", 4)
    assert changed["fan"][0] == "cached"  # its input did not change
    assert sorted(side(tmp_path)) == ["a:2", "a:2"]

    bypass = run_cached(tmp_path, "--no-cache")
    assert {t: s for t, (s, _) in bypass.items()} == dict.fromkeys(tasks, "succeeded")
    assert len(side(tmp_path)) == 4

    # The function's code changed: every task using it misses.
    (tmp_path / "work.py").write_text(WORK.replace("return x * 2", "return x * 3"))
    recoded = run_cached(tmp_path)
    assert recoded["w"] == ("succeeded", 3) and recoded["fan"] == ("succeeded", [30, 60])
    assert recoded["keyed"] == ("succeeded", 3)
    assert len(side(tmp_path)) == 4


def test_cache_through_the_python_api(engine, tmp_path: Path) -> None:
    """The same store, two runs in one process: the second reuses the first's result."""
    import jupyter_workflows as jw_api

    calls: list[int] = []

    @jw_api.task(name="counted_square", cache=True)
    def counted_square(n: int) -> int:
        calls.append(n)
        return n * n

    wf = jw_api.load("name: sq\ntasks:\n  s: {action: counted_square, input: {n: 7}}\n")
    first = wf.run()
    second = wf.run()
    assert [t["status"] for t in first.tasks] == ["succeeded"]
    assert [(t["status"], t["result"]) for t in second.tasks] == [("cached", 49)]
    assert calls == [7]
    assert [t["status"] for t in wf.run(no_cache=True).tasks] == ["succeeded"]
    assert calls == [7, 7]


def test_a_cache_entry_expires(engine) -> None:
    import jupyter_workflows as jw_api

    calls: list[int] = []

    @jw_api.task(name="counted_cube")
    def counted_cube(n: int) -> int:
        calls.append(n)
        return n**3

    wf = jw_api.load(
        "name: cube\ntasks:\n  c: {action: counted_cube, input: {n: 2}, cache: {expire: 1}}\n"
    )
    statuses = [wf.run().tasks[0]["status"], wf.run().tasks[0]["status"]]
    time.sleep(1.05)
    statuses.append(wf.run().tasks[0]["status"])
    assert statuses == ["succeeded", "cached", "succeeded"]
    assert calls == [2, 2]


# -- secrets --------------------------------------------------------------------------------------

LEAKY = textwrap.dedent(
    """\
    import logging
    import os
    import time

    FLAG = os.path.join(os.path.dirname(os.path.abspath(__file__)), "go")
    BIG = 70_000  # over the 64 KiB inline limit: the value goes to an artifact file


    def shout(token):
        print("printed", token)
        logging.getLogger("leaky").warning("logged %s", token)
        return {"token": token, "again": f"<{token}>", "big": ("x" * BIG, token)}


    def fetch(context):
        token = context.secret("API_TOKEN")
        print("fetched", token)
        context.logger.warning("context logger %s", token)
        return token


    def hold():
        deadline = time.monotonic() + 60
        while not os.path.exists(FLAG) and time.monotonic() < deadline:
            time.sleep(0.02)


    def explode(token):
        raise RuntimeError(f"refused {token}")
    """
)

SECRETS = textwrap.dedent(
    """\
    name: secretive
    tasks:
      shout:
        action: leaky:shout
        input: {token: "{{ secret('API_TOKEN') }}"}
        publish: {tok: "{{ result.token }}"}
        on_success: [fetch, echo]
      fetch:
        action: leaky:fetch
        next: [{do: noop}]  # on a Dask worker without API_TOKEN it fails: swallow that
      echo:
        action: core.echo
        input: {text: "with {{ vars.tok }} inside"}
        on_success: hold
      hold:
        action: leaky:hold
        on_success: explode
      explode:
        action: leaky:explode
        input: {token: "{{ secret('API_TOKEN') }}"}
        on_failure: done
      done: {action: core.noop}
    output_map:
      tok: "{{ vars.tok }}"
      echo: "{{ task.echo.result.text }}"
    """
)


def stored_bytes(tmp_path: Path) -> dict[str, bytes]:
    """The database, its WAL and shared memory, and every artifact file."""
    files = {p.name: p.read_bytes() for p in tmp_path.glob("state.db*") if p.is_file()}
    artifacts = tmp_path / "state.db.artifacts"
    if artifacts.exists():
        for p in artifacts.rglob("*"):
            if p.is_file():
                files[str(p.relative_to(tmp_path))] = p.read_bytes()
    return files


def assert_nowhere(what: dict[str, bytes | str]) -> None:
    leaks = [
        name
        for name, data in what.items()
        if SECRET.encode() in (data.encode() if isinstance(data, str) else data)
    ]
    assert not leaks, f"the secret leaked into {leaks}"


def task_status(db: Path, task: str) -> str | None:
    try:
        conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)
        try:
            row = conn.execute("SELECT status FROM tasks WHERE task = ?", (task,)).fetchone()
        finally:
            conn.close()
    except sqlite3.Error:
        return None
    return row[0] if row else None


@pytest.mark.slow
@pytest.mark.parametrize("executor", ["inline", "dask"])
def test_a_secret_appears_nowhere(
    tmp_path: Path, executor: str, request: pytest.FixtureRequest
) -> None:
    env = inline_env(tmp_path) if executor == "inline" else dict(request.getfixturevalue("cli_env"))
    env["API_TOKEN"] = SECRET
    (tmp_path / "leaky.py").write_text(LEAKY)
    (tmp_path / "secrets.yaml").write_text(SECRETS)
    db = tmp_path / "state.db"

    # Kill the run while `hold` sleeps: the WAL is left as the crash left it.
    runner = subprocess.Popen(
        [sys.executable, "-m", "jupyter_workflows", "run", "secrets.yaml"],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 60
    while (
        task_status(db, "hold") != "running"
        and time.monotonic() < deadline
        and runner.poll() is None
    ):
        time.sleep(0.05)
    runner.send_signal(signal.SIGKILL)
    out, err = runner.communicate(timeout=30)
    assert task_status(db, "hold") == "running", err
    assert (tmp_path / "state.db-wal").exists()
    assert any(p.is_file() for p in (tmp_path / "state.db.artifacts").rglob("*"))  # the big value
    assert_nowhere({"stdout": out, "stderr": err, **stored_bytes(tmp_path)})
    assert "] shout: succeeded" in err  # progress lines were printed

    # Resume it (no more holding) to the end, with progress on stderr and the run on stdout.
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    (run_id,) = conn.execute("SELECT run_id FROM runs").fetchone()
    conn.close()
    (tmp_path / "go").touch()
    resumed = jw("resume", run_id, "--json", env=env, cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    data = json.loads(resumed.stdout)
    assert data["status"] == "succeeded", data["error"]
    outputs = {
        "resume stdout": resumed.stdout,
        "resume stderr": resumed.stderr,
        **{
            f"{' '.join(args)}": jw(*args, env=env, cwd=tmp_path)
            for args in [
                ("show", run_id),
                ("show", run_id, "--json"),
                ("trace", run_id),
                ("trace", run_id, "--format", "chrome"),
                ("runs",),
                ("runs", "--json"),
            ]
        },
    }
    texts: dict[str, bytes | str] = {}
    for name, value in outputs.items():
        if isinstance(value, subprocess.CompletedProcess):
            assert value.returncode == 0, (name, value.stderr)
            texts[name + " stdout"], texts[name + " stderr"] = value.stdout, value.stderr
        else:
            texts[name] = value
    assert_nowhere({**texts, **stored_bytes(tmp_path)})

    # ... and every place shows the mask instead.
    tasks = {t["task"]: t for t in data["tasks"]}
    assert tasks["shout"]["result"]["token"] == "***"
    assert tasks["shout"]["result"]["again"] == "<***>"
    assert tasks["echo"]["result"] == {"text": "with *** inside"}
    assert tasks["explode"]["error"] == "RuntimeError: refused ***"
    assert data["outputs"] == {"tok": "***", "echo": "with *** inside"}
    trace = json.loads(texts["trace " + run_id + " stdout"])
    logs = {t["task"]: t["logs"] for t in trace["tasks"]}
    assert "printed ***" in logs["shout"] and "WARNING leaky: logged ***" in logs["shout"]
    assert any("refused ***" in line for line in logs["explode"])  # the traceback too
    if executor == "inline":  # context.secret() in this process: registered where it masks
        assert tasks["fetch"]["result"] == "***"
        assert "fetched ***" in logs["fetch"]
    else:
        # The worker has no API_TOKEN in its environment (context.secret() reads the worker's).
        assert tasks["fetch"]["status"] == "failed" or tasks["fetch"]["result"] == "***"


def test_a_secret_is_masked_in_a_failed_run_and_its_progress(tmp_path: Path) -> None:
    env = inline_env(tmp_path)
    env["API_TOKEN"] = SECRET
    (tmp_path / "leaky.py").write_text(LEAKY)
    (tmp_path / "boom.yaml").write_text(
        "name: boom\ntasks:\n  explode:\n    action: leaky:explode\n"
        "    input: {token: \"{{ secret('API_TOKEN') }}\"}\n"
        "output_map: {t: \"{{ secret('API_TOKEN') }}\"}\n"
    )
    for args in (("run", "boom.yaml"), ("run", "boom.yaml", "--json")):
        done = jw(*args, env=env, cwd=tmp_path)
        assert done.returncode == 1
        assert_nowhere({"stdout": done.stdout, "stderr": done.stderr, **stored_bytes(tmp_path)})
        assert "refused ***" in done.stdout
    data = json.loads(done.stdout)
    assert data["error"] == "RuntimeError: task 'explode' failed: refused ***"
    assert data["outputs"] == {"t": "***"}


def test_a_secret_a_task_looks_up_itself_never_leaves_it_unmasked(engine, monkeypatch):
    from jupyter_workflows.engine.context import run_task

    monkeypatch.setenv("JW_TASK_ONLY_TOKEN", "tok-7f3a9c-unique")

    def leaky(context):
        value = context.secret("JW_TASK_ONLY_TOKEN")
        print("using", value)
        return {"token": value, "note": f"made with {value}"}

    envelope = run_task(leaky, {}, {"run_id": "r", "task": "t"}, wants_context=True)
    assert envelope.ok
    assert envelope.value == {"token": "***", "note": "made with ***"}
    assert envelope.logs == ["using ***"]
