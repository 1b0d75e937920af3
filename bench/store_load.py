"""Benchmark of the store on the engine's resume path.

Builds a SqliteStore holding one finished run with 10,000 task executions and 20,000 events
(written as the engine writes them: batches of ~100 writes per commit), then times what resuming
that run costs the store: ``load_events`` + ``get_tasks`` + ``get_run`` on a freshly opened store
(a new process's view). The engine's replay of the events is not included.

Run: ``python bench/store_load.py [--keep DIR]``. Target: load under 1 s.
"""

from __future__ import annotations

import argparse
import datetime
import sys
import tempfile
import time
from pathlib import Path

from jupyter_workflows.store import SqliteStore

TASKS = 10_000
EVENTS = 20_000
BATCH = 100


def build(path: Path) -> float:
    """Write the run; returns the seconds the writes (encoding and commits) took."""
    store = SqliteStore(path)
    start = time.perf_counter()
    run_id = "bench-run"
    store.create_run(
        {
            "run_id": run_id,
            "workflow": "bench",
            "status": "running",
            "parameters": {"n": TASKS},
            "definition": "name: bench\ntasks: {t: {action: core.noop}}\n",
        }
    )
    store.commit()
    for batch_start in range(0, TASKS, BATCH // 3):
        batch = range(batch_start, min(batch_start + BATCH // 3, TASKS))
        events = []
        tasks = []
        for i in batch:
            exec_id = f"t{i}"
            result = {"value": i, "items": [i, i + 1], "pair": (i, "x")}  # the tuple is pickled
            events.append({"type": "task_started", "exec_id": exec_id, "at": 1.0 * i})
            events.append({"type": "task_succeeded", "exec_id": exec_id, "result": result})
            tasks.append(
                {
                    "exec_id": exec_id,
                    "task": f"task_{i % 50}",
                    "seq": i,
                    "status": "succeeded",
                    "attempts": 1,
                    "input": {"i": i, "when": datetime.date(2024, 1, 1)},
                    "result": result,
                    "started_at": 1.0 * i,
                    "ended_at": 1.0 * i + 0.5,
                    "logs": [f"task {i} says hello"],
                }
            )
        store.append_events(run_id, events)
        store.upsert_tasks(run_id, tasks)
        store.commit()
    store.update_run(run_id, status="succeeded", outputs={"total": TASKS}, ended_at=time.time())
    store.commit()
    elapsed = time.perf_counter() - start
    store.close()
    return elapsed


def load(path: Path) -> tuple[float, int, int]:
    """Time the resume path on a new store instance; returns (seconds, events, tasks)."""
    store = SqliteStore(path)
    start = time.perf_counter()
    events = store.load_events("bench-run")
    tasks = store.get_tasks("bench-run")
    run = store.get_run("bench-run")
    elapsed = time.perf_counter() - start
    assert run is not None and run["status"] == "succeeded"
    store.close()
    return elapsed, len(events), len(tasks)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keep", metavar="DIR", help="build the store in DIR and keep it")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(args.keep or tmp) / "bench.db"
        if path.exists():
            sys.exit(f"{path} exists already")
        write_s = build(path)
        load_s, n_events, n_tasks = load(path)
        size = path.stat().st_size + sum(
            p.stat().st_size for p in path.parent.glob(path.name + "-*")
        )
        print(f"write: {n_events} events + {n_tasks} task upserts in {write_s:.3f} s")
        print(f"store: {size / 1e6:.1f} MB")
        print(f"load_events + get_tasks + get_run: {load_s:.3f} s (target < 1 s)")
    return 0 if load_s < 1.0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
