"""Engine overhead against raw Dask, measured in one process on one LocalCluster.

Shapes (CONTRACT §1 constructs, no-op tasks so only overhead is measured):

- fan-out: 2000 items with ``with_items`` vs ``client.map`` over 2000 inputs;
- diamond: 10 layers x 100 tasks, each using two results of the layer before (``needs`` and
  inputs that are exactly ``{{ task.X.result }}``) vs ``client.submit`` with futures;
- chain: 200 tasks in a row (``on_success``) vs 200 chained ``client.submit`` calls;
- many runs: 1000 concurrent runs of a 3-task workflow in one engine (engine only).

Prints one line per shape with both times and the engine/raw ratio; the target is a worst ratio
of at most 1.2. Raw and engine runs alternate (best of ``--repeat`` each), so a change of load on
the machine hits both alike. ``cpu ratio`` compares the CPU seconds used by this process (client,
engine and the embedded scheduler) and the worker processes: on a loaded machine it is steadier
than wall time. Usage::

    python bench/overhead.py                 # in-memory store (engine overhead alone)
    python bench/overhead.py --store sqlite  # with the durable SQLite store
    python bench/overhead.py --quick         # smaller shapes, for a smoke run
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time

import psutil
import yaml

import jupyter_workflows as jw
from jupyter_workflows.engine import api


def noop(x=None, y=None):
    return 1


def pair(a, b):
    return 1


def raw_fanout(client, n):
    futures = client.map(noop, range(n), pure=False)
    client.gather(futures)


def raw_diamond(client, layers, width):
    prev = [client.submit(noop, i, pure=False) for i in range(width)]
    for _ in range(1, layers):
        prev = [
            client.submit(pair, prev[i], prev[(i + 1) % width], pure=False) for i in range(width)
        ]
    client.gather(prev)


def raw_chain(client, n):
    f = client.submit(noop, 0, pure=False)
    for _ in range(n - 1):
        f = client.submit(noop, f, pure=False)
    f.result()


def wf_fanout(n):
    return jw.load(
        yaml.safe_dump(
            {
                "name": "fanout",
                "tasks": {
                    "fan": {
                        "action": "bench_noop",
                        "with_items": f"{{{{ range({n}) | list }}}}",
                        "input": {"x": "{{ item }}"},
                    }
                },
            }
        )
    )


def wf_diamond(layers, width):
    tasks = {}
    for i in range(width):
        tasks[f"l0_{i}"] = {"action": "bench_noop", "input": {"x": i}}
    for layer in range(1, layers):
        for i in range(width):
            a, b = f"l{layer - 1}_{i}", f"l{layer - 1}_{(i + 1) % width}"
            tasks[f"l{layer}_{i}"] = {
                "action": "bench_pair",
                "needs": [a, b] if a != b else [a],
                "input": {"a": f"{{{{ task.{a}.result }}}}", "b": f"{{{{ task.{b}.result }}}}"},
            }
    return jw.load(yaml.safe_dump({"name": "diamond", "tasks": tasks}))


def wf_chain(n):
    tasks = {}
    for i in range(n):
        body = {"action": "bench_noop", "input": {"x": i}}
        if i + 1 < n:
            body["on_success"] = f"c{i + 1}"
        tasks[f"c{i}"] = body
    return jw.load(yaml.safe_dump({"name": "chain", "tasks": tasks}))


def wf_small():
    return jw.load(
        """
name: small
tasks:
  a: {action: bench_noop, on_success: b}
  b: {action: bench_noop, on_success: c}
  c: {action: bench_noop}
"""
    )


def timed_pair(raw, engine, repeat, procs):
    """Best wall time and best CPU time (this process and the workers) of each, alternating
    raw and engine so that a load change on the machine hits both alike."""
    best = {"raw": [float("inf"), float("inf")], "engine": [float("inf"), float("inf")]}

    def cpu():
        return sum(sum(p.cpu_times()[:2]) for p in procs)

    for _ in range(repeat):
        for name, fn in (("raw", raw), ("engine", engine)):
            c0, t0 = cpu(), time.perf_counter()
            fn()
            wall, used = time.perf_counter() - t0, cpu() - c0
            best[name] = [min(best[name][0], wall), min(best[name][1], used)]
    return best["raw"], best["engine"]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", choices=["memory", "sqlite"], default="memory")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 2)
    args = parser.parse_args(argv)

    from distributed import Client, LocalCluster

    jw.task(name="bench_noop")(noop)
    jw.task(name="bench_pair")(pair)
    n_fan, layers, width, n_chain, n_runs = (2000, 10, 100, 200, 1000)
    if args.quick:
        n_fan, layers, width, n_chain, n_runs = (200, 4, 20, 30, 50)

    cluster = LocalCluster(
        n_workers=args.workers,
        threads_per_worker=1,
        processes=True,
        host="127.0.0.1",
        dashboard_address="127.0.0.1:0",
        silence_logs=40,
    )
    client = Client(cluster)
    tmp = tempfile.mkdtemp(prefix="jw-bench-")
    store = ":memory:" if args.store == "memory" else os.path.join(tmp, "state.db")
    api.configure(store=store, scheduler=client)
    try:
        client.run(lambda: None)  # workers warm
        procs = [psutil.Process()] + [psutil.Process(p) for p in client.run(os.getpid).values()]
        shapes = [
            (f"fan-out {n_fan} (with_items)", lambda: raw_fanout(client, n_fan), wf_fanout(n_fan)),
            (
                f"diamond {layers}x{width} (needs)",
                lambda: raw_diamond(client, layers, width),
                wf_diamond(layers, width),
            ),
            (
                f"chain {n_chain} (on_success)",
                lambda: raw_chain(client, n_chain),
                wf_chain(n_chain),
            ),
        ]
        print(
            f"# {args.workers} worker processes x 1 thread, store={args.store}, best of {args.repeat}"
        )
        print(
            f"{'shape':<32} {'raw dask s':>10} {'engine s':>10} {'ratio':>7} {'engine tasks/s':>15}"
            f" {'cpu ratio':>10}"
        )
        worst = 0.0
        for label, raw, wf in shapes:
            wf.validate()

            def engine_run(wf=wf):
                run = wf.run()
                assert run.status == "succeeded", (run.status, run.error)

            engine_run()  # warm: the first run of a workflow pays for its compilation
            (raw_s, raw_cpu), (eng_s, eng_cpu) = timed_pair(raw, engine_run, args.repeat, procs)
            ntasks = {"fan": n_fan, "dia": layers * width, "cha": n_chain}[label[:3]]
            ratio = eng_s / raw_s
            worst = max(worst, ratio)
            print(
                f"{label:<32} {raw_s:>10.3f} {eng_s:>10.3f} {ratio:>7.2f} {ntasks / eng_s:>15.0f}"
                f" {eng_cpu / raw_cpu:>10.2f}"
            )
            sys.stdout.flush()
        small = wf_small()
        t0 = time.perf_counter()
        started = [small.run(wait=False) for _ in range(n_runs)]
        for r in started:
            r.wait()
        took = time.perf_counter() - t0
        ok = sum(r.status == "succeeded" for r in started)
        print(
            f"{n_runs} concurrent runs x 3 tasks      {took:>10.3f}s  {ok}/{n_runs} succeeded, {3 * n_runs / took:.0f} tasks/s"
        )
        print(f"worst engine/raw ratio: {worst:.2f} (target <= 1.2)")
    finally:
        api.reset()
        client.close()
        cluster.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
