"""``with_items`` on Dask in chunks: several items per Dask task, every per-item promise kept.

Each item function returns the key of the Dask task that ran it (``get_worker()``'s current
task), so the tests see the chunks themselves: their keys (``...-x{count}``, which the dashboard
groups under ``workflow.task``) and which items shared one. Real LocalCluster (the session's, two
worker processes), SQLite store; no timing asserts.
"""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path

import pytest
import yaml
from dask.utils import key_split

import jupyter_workflows as jw
from jupyter_workflows.executors.dask import auto_chunk_size

pytestmark = pytest.mark.timeout(180)


def _wait_for(predicate, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def _task(run, name: str) -> dict:
    found = [t for t in run.tasks if t["task"] == name]
    assert found, (name, run.tasks)
    return found[-1]


def _progress(run, name: str) -> tuple:
    live = run.live()["tasks"][name]
    return live["status"], live["done"], live["total"]


def _load(tasks: dict, **top) -> jw.Workflow:
    return jw.load(yaml.safe_dump({"name": "chunky", **top, "tasks": tasks}))


@jw.task(name="chunk_where")
def where(x: int) -> dict:
    """The item and the Dask key of the task that ran it."""
    from distributed import get_worker

    return {"x": x, "key": str(get_worker().get_current_task())}


def test_auto_chunk_size_spreads_items_over_the_threads() -> None:
    assert auto_chunk_size(8, 2) == 1  # few items: one per task
    assert auto_chunk_size(16, 2) == 1
    assert auto_chunk_size(17, 2) == 2
    assert auto_chunk_size(2000, 2) == 125  # 16 chunks: 8 per thread
    assert auto_chunk_size(50_000, 2) == 256  # capped
    assert auto_chunk_size(100, 0) == 13  # unknown cluster: counted as one thread


def test_results_in_item_order_from_chunks_named_after_workflow_and_task(dask_engine) -> None:
    wf = _load(
        {
            "fan": {
                "action": "chunk_where",
                "with_items": "{{ range(300) | list }}",
                "input": {"x": "{{ item }}"},
            }
        }
    )
    run = wf.run()
    assert run.status == "succeeded", run.error
    result = _task(run, "fan")["result"]
    assert [r["x"] for r in result] == list(range(300))
    keys = [r["key"] for r in result]
    sizes = Counter(keys)
    assert len(sizes) < 300 and max(sizes.values()) > 1, sizes  # chunked
    assert all(k.endswith(f"-x{n}") for k, n in sizes.items()), sizes
    assert {key_split(k) for k in keys} == {"chunky.fan"}
    # A chunk holds consecutive items, in order.
    for key in sizes:
        members = [r["x"] for r in result if r["key"] == key]
        assert members == list(range(members[0], members[0] + len(members)))
    assert _progress(run, "fan") == ("succeeded", 300, 300)


def test_chunk_size_sets_the_items_per_task_and_one_disables_chunks(dask_engine) -> None:
    tasks = {
        "seven": {
            "action": "chunk_where",
            "with_items": "{{ range(30) | list }}",
            "chunk_size": 7,
            "input": {"x": "{{ item }}"},
        },
        "single": {
            "action": "chunk_where",
            "with_items": "{{ range(30) | list }}",
            "chunk_size": 1,
            "input": {"x": "{{ item }}"},
        },
    }
    run = _load(tasks).run()
    assert run.status == "succeeded", run.error
    seven = Counter(r["key"] for r in _task(run, "seven")["result"])
    assert sorted(seven.values()) == [2, 7, 7, 7, 7]
    single = [r["key"] for r in _task(run, "single")["result"]]
    assert len(set(single)) == 30 and not any("-x" in k for k in single)
    assert {key_split(k) for k in single} == {"chunky.single"}
    assert [r["x"] for r in _task(run, "single")["result"]] == list(range(30))


def test_a_failing_item_is_retried_alone(dask_engine, tmp_path: Path) -> None:
    marks = tmp_path / "marks"
    marks.mkdir()

    @jw.task(name="chunk_flaky")
    def flaky(x: int, marks: str) -> int:
        import os

        path = os.path.join(marks, str(x))
        with open(path, "a") as f:
            f.write("run\n")
        if x % 10 == 3 and os.path.getsize(path) <= len("run\n"):
            raise RuntimeError(f"item {x} fails once")
        return x * x

    wf = _load(
        {
            "fan": {
                "action": "chunk_flaky",
                "with_items": "{{ range(40) | list }}",
                "chunk_size": 8,
                "retry": {"count": 2, "delay": 0},
                "input": {"x": "{{ item }}", "marks": str(marks)},
            }
        }
    )
    run = wf.run()
    assert run.status == "succeeded", run.error
    assert _task(run, "fan")["result"] == [x * x for x in range(40)]
    runs = {int(p.name): p.read_text().count("run") for p in marks.iterdir()}
    assert runs == {x: (2 if x % 10 == 3 else 1) for x in range(40)}
    assert _task(run, "fan")["attempts"] == 2


def _failing_workflow(keep_going: bool, release: Path) -> jw.Workflow:
    @jw.task(name="chunk_bad_item")
    def bad(x: int) -> int:
        if x == 13:
            raise ValueError("thirteen")
        return x

    @jw.task(name="chunk_hold")
    def hold(release: str) -> str:
        import os
        import time

        deadline = time.monotonic() + 60
        while not os.path.exists(release) and time.monotonic() < deadline:
            time.sleep(0.02)
        return "released"

    tasks = {
        "fan": {
            "action": "chunk_bad_item",
            "with_items": "{{ range(60) | list }}",
            "chunk_size": 5,
            "batch_size": 20,
            "input": {"x": "{{ item }}"},
        },
        "slow": {"action": "chunk_hold", "input": {"release": str(release)}, "on_success": "after"},
        "after": {"action": "core.echo", "input": {"message": "ran"}},
    }
    return _load(tasks, keep_going=keep_going)


@pytest.mark.parametrize("keep_going", [False, True])
def test_one_failed_item_fails_the_task_once_the_items_in_flight_settle(
    dask_engine, tmp_path: Path, keep_going: bool
) -> None:
    release = tmp_path / "release"
    run = _failing_workflow(keep_going, release).run(wait=False)
    try:  # the other branch goes on only once the fan-out has failed
        _wait_for(lambda: (run.live()["tasks"].get("fan") or {}).get("status") == "failed")
    finally:
        release.write_text("go")
    run.wait(120)
    assert run.status == "failed"
    fan = _task(run, "fan")
    assert fan["status"] == "failed"
    assert fan["error"] == "ValueError: item 13: thirteen"
    assert _progress(run, "fan") == ("failed", 60, 60)  # items not started count as skipped
    # fail-fast stops the other branch; keep_going lets it finish
    after = [t["status"] for t in run.tasks if t["task"] == "after"]
    assert after == (["succeeded"] if keep_going else [])


def test_a_failed_chunked_item_can_be_remediated(dask_engine) -> None:
    @jw.task(name="chunk_bad_item2")
    def bad(x: int) -> int:
        if x == 7:
            raise ValueError("seven")
        return x

    tasks = {
        "fan": {
            "action": "chunk_bad_item2",
            "with_items": "{{ range(30) | list }}",
            "input": {"x": "{{ item }}"},
            "on_failure": "fix",
        },
        "fix": {"action": "core.echo", "input": {"message": "{{ task.fan.error }}"}},
    }
    run = _load(tasks).run()
    assert run.status == "succeeded", run.error
    assert _task(run, "fix")["result"] == {"message": "ValueError: item 7: seven"}


def test_batch_size_bounds_the_items_in_flight(dask_engine, tmp_path: Path) -> None:
    spans = tmp_path / "spans"
    spans.mkdir()

    @jw.task(name="chunk_span")
    def span(x: int, spans: str) -> int:
        import os
        import time

        start = time.time()
        time.sleep(0.02)
        with open(os.path.join(spans, str(x)), "w") as f:
            f.write(f"{start} {time.time()}")
        return x

    wf = _load(
        {
            "fan": {
                "action": "chunk_span",
                "with_items": "{{ range(48) | list }}",
                "batch_size": 6,
                "chunk_size": 3,
                "input": {"x": "{{ item }}", "spans": str(spans)},
            }
        }
    )
    seen: list[int] = []

    def watch(active) -> None:
        seen.append(sum(1 for e in active.state.inflight.values() if e[1] is not None))

    run = wf.run(wait=False)
    active = jw.engine.api.get_orchestrator().runs[run.run_id]
    active.listeners.append(watch)
    run.wait(120)
    assert run.status == "succeeded", run.error
    assert _task(run, "fan")["result"] == list(range(48))
    assert seen and max(seen) <= 6, max(seen)
    # what the workers saw: never more than batch_size items started and not ended
    events = []
    for p in spans.iterdir():
        a, b = map(float, p.read_text().split())
        events += [(a, 1), (b, -1)]
    live = peak = 0
    for _, step in sorted(events):
        live += step
        peak = max(peak, live)
    assert peak <= 6


def test_items_done_grow_chunk_by_chunk_while_the_task_runs(dask_engine, tmp_path: Path) -> None:
    release = tmp_path / "release"

    @jw.task(name="chunk_gate")
    def gate(x: int, release: str) -> int:
        import os
        import time

        deadline = time.monotonic() + 240  # past the wait below: done stays at 20 until released
        while x >= 20 and not os.path.exists(release) and time.monotonic() < deadline:
            time.sleep(0.02)
        return x

    wf = _load(
        {
            "fan": {
                "action": "chunk_gate",
                "with_items": "{{ range(40) | list }}",
                "chunk_size": 5,
                "input": {"x": "{{ item }}", "release": str(release)},
            }
        }
    )
    run = wf.run(wait=False)
    try:
        # Generous: on a loaded 2-core machine the first four chunks may take a while.
        _wait_for(lambda: (run.live()["tasks"].get("fan") or {}).get("done") == 20, timeout=180)
        live = run.live()["tasks"]["fan"]
        assert (live["done"], live["total"], live["status"]) == (20, 40, "running")
    finally:
        release.write_text("go")
    run.wait(120)
    assert run.status == "succeeded", run.error
    assert _task(run, "fan")["result"] == list(range(40))


def test_cancelling_a_run_cancels_its_chunks(dask_engine, tmp_path: Path) -> None:
    started = tmp_path / "started"

    @jw.task(name="chunk_sleepy")
    def sleepy(x: int, started: str) -> int:
        import time

        open(started, "a").close()
        time.sleep(0.5)
        return x

    wf = _load(
        {
            "fan": {
                "action": "chunk_sleepy",
                "with_items": "{{ range(200) | list }}",
                "chunk_size": 10,
                "input": {"x": "{{ item }}", "started": str(started)},
            }
        }
    )
    run = wf.run(wait=False)
    _wait_for(started.exists)
    run.cancel()
    run.wait(60)
    assert run.status == "cancelled"
    assert _task(run, "fan")["status"] == "cancelled"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"action": "core.noop", "with_items": [1, 2], "chunk_size": 0}, "chunk_size"),
        ({"action": "core.noop", "chunk_size": 4}, "'chunk_size' needs 'with_items'"),
        ({"action": "core.noop", "with_items": [1], "chunk_size": "big"}, "chunk_size"),
    ],
)
def test_bad_chunk_size_is_one_positioned_line(tmp_path: Path, body: dict, message: str) -> None:
    path = tmp_path / "wf.yaml"
    path.write_text(yaml.safe_dump({"name": "bad", "tasks": {"t": body}}))
    with pytest.raises(jw.WorkflowError) as err:
        jw.load(path).validate()
    text = str(err.value)
    assert message in text and "\n" not in text.strip()
    assert text.startswith(f"{path}:"), text
    assert text.split(":")[1].isdigit() and text.split(":")[2].isdigit(), text  # FILE:LINE:COL
