"""Benchmark: loading a 10,000-task run for showing and for resuming it.

Builds finished runs with the real engine (inline executor, SQLite store) in a temporary folder:

- ``wide``: 10,000 tasks (``core.noop``), all started by one start task (10,001 executions);
- ``items``: one ``with_items`` task over 10,000 items;
- ``loop``: one task that runs 10,000 times (``max_runs: 10000``, a self-transition).

Then, in a fresh process for each (nothing cached from the build), times:

- **show**: ``jw.get_run(run_id).to_dict()`` (the projections: what ``show --json`` prints);
- **replay**: what ``jw.resume`` does before it continues a run, step by step: read the run
  record, ``load_events``, ``engine.api.rebuild_workflow`` (parse and validate the stored YAML),
  ``orchestrator.prepare`` (resolve actions, compile) and the ``RunState`` replay of every event,
  exactly as ``Orchestrator.adopt`` does.

Run: ``python bench/resume_load.py [--shape wide|items|loop ...] [--profile]``; ``--profile``
prints the top functions of the replay under cProfile. Target: under 1 s to load a run for resume.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

N = 10_000
SHAPES = ("wide", "items", "loop")


def workflow_yaml(shape: str, n: int = N) -> str:
    if shape == "wide":
        names = [f"t{i:05d}" for i in range(n)]
        lines = [
            "name: wide",
            "tasks:",
            f"  start: {{action: core.noop, on_success: [{', '.join(names)}]}}",
        ]
        lines += [
            f"  {name}: {{action: core.echo, input: {{i: {i}}}}}" for i, name in enumerate(names)
        ]
        return "\n".join(lines) + "\n"
    if shape == "items":
        return (
            "name: items\ntasks:\n  fan:\n    action: core.echo\n"
            f'    with_items: "{{{{ range({n}) | list }}}}"\n'
            '    input: {i: "{{ item }}"}\n'
        )
    if shape == "loop":
        return (
            "name: loop\nvars: {i: 0}\ntasks:\n  again:\n    action: core.echo\n"
            f'    input: {{i: "{{{{ vars.i }}}}"}}\n    max_runs: {n}\n'
            "    next:\n"
            f'      - when: "{{{{ result.i + 1 < {n} }}}}"\n'
            '        publish: {i: "{{ vars.i + 1 }}"}\n'
            "        do: again\n"
        )
    raise ValueError(shape)


def build(folder: Path, shape: str) -> dict:
    """Run the workflow to the end; returns the run id and how long it took."""
    import jupyter_workflows as jw
    from jupyter_workflows.engine import api

    api.reset()
    jw.configure(store=str(folder / "state.db"), executor="inline")
    (folder / f"{shape}.yaml").write_text(workflow_yaml(shape))
    start = time.perf_counter()
    run = jw.load(folder / f"{shape}.yaml").run()
    seconds = time.perf_counter() - start
    assert run.status == "succeeded", run.error
    executions = len(run.tasks)
    api.reset()
    return {"run_id": run.run_id, "build_s": seconds, "executions": executions}


def measure(store: str, run_id: str) -> dict:
    """In a fresh process: time show and the replay path (see the module docstring)."""
    import jupyter_workflows as jw
    from jupyter_workflows.engine import api
    from jupyter_workflows.engine import events as E
    from jupyter_workflows.engine.orchestrator import prepare
    from jupyter_workflows.engine.state import RunState

    jw.configure(store=store, executor="inline")
    orch = api.get_orchestrator()
    out: dict[str, float | int] = {}

    t0 = time.perf_counter()
    shown = jw.get_run(run_id).to_dict()
    out["show_s"] = time.perf_counter() - t0
    out["shown_tasks"] = len(shown["tasks"])

    t0 = time.perf_counter()
    rec = dict(orch.store.get_run(run_id) or {})
    t1 = time.perf_counter()
    events = orch.store.load_events(run_id)
    t2 = time.perf_counter()
    workflow = api.rebuild_workflow(rec)
    t3 = time.perf_counter()
    _actions, compiled, inquiries, children = prepare(workflow)
    t4 = time.perf_counter()
    state = RunState(
        compiled, run_id, rec.get("parameters") or {}, inquiries=inquiries, children=children
    )
    for data in events:
        state.handle(E.event_from_dict(data))
    t5 = time.perf_counter()
    assert state.status == "succeeded", state.status
    out.update(
        events=len(events),
        get_run_s=t1 - t0,
        load_events_s=t2 - t1,
        rebuild_workflow_s=t3 - t2,
        prepare_s=t4 - t3,
        replay_s=t5 - t4,
        resume_load_s=t5 - t0,
    )
    api.reset()
    return out


def profile(store: str, run_id: str) -> None:
    import cProfile
    import pstats

    profiler = cProfile.Profile()
    profiler.enable()
    measure(store, run_id)
    profiler.disable()
    pstats.Stats(profiler).sort_stats("cumulative").print_stats(25)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shape", action="append", choices=SHAPES)
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--measure", nargs=2, metavar=("STORE", "RUN_ID"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.measure:
        if args.profile:
            profile(*args.measure)
        else:
            print(json.dumps(measure(*args.measure)))
        return 0
    worst = 0.0
    with tempfile.TemporaryDirectory() as tmp:
        for shape in args.shape or SHAPES:
            folder = Path(tmp) / shape
            folder.mkdir()
            built = build(folder, shape)
            store = str(folder / "state.db")
            cmd = [sys.executable, __file__, "--measure", store, built["run_id"]]
            if args.profile:
                subprocess.run([*cmd, "--profile"], check=True)
            got = json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout)
            size = sum(p.stat().st_size for p in folder.glob("state.db*") if p.is_file())
            worst = max(worst, got["resume_load_s"], got["show_s"])
            print(
                f"{shape:>5}: {built['executions']} task executions, {got['events']} events, "
                f"store {size / 1e6:.1f} MB, built in {built['build_s']:.1f} s"
            )
            print(f"       show  get_run().to_dict(): {got['show_s']:.3f} s")
            print(
                f"       resume load: {got['resume_load_s']:.3f} s = get_run {got['get_run_s']:.3f}"
                f" + load_events {got['load_events_s']:.3f} + rebuild_workflow "
                f"{got['rebuild_workflow_s']:.3f} + prepare {got['prepare_s']:.3f} + replay "
                f"{got['replay_s']:.3f}"
            )
    print(f"worst: {worst:.3f} s (target < 1 s)")
    return 0 if worst < 1.0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
