"""Scale: how the engine's cost grows with the work, side by side with raw Dask.

Fan-outs of no-op items (``with_items`` against ``client.map`` + ``gather`` of the same
function) at several sizes, each three ways: raw Dask, the engine unchunked (``chunk_size: 1``:
one Dask task per item, as raw Dask does) and the engine chunked (the automatic chunk size).
Then many runs of a 3-task workflow: N started at once, and N queued in a loop of
``run(wait=False)``, with runs/s and the latency from ``run()`` to the first task's dispatch
(the state machine submitting it) and to its start on a worker; raw Dask's side is N chains of
3 tasks submitted in a loop of ``client.submit`` (``--no-raw`` skips it).

By default the engine starts its own embedded LocalCluster (as a user's ``run()`` does, so the
Dask settings the engine applies to a cluster it owns are in effect) and raw Dask uses a client
of that same cluster; ``--cluster local`` brings a LocalCluster of the same size instead (the
engine then leaves its settings alone). One process, one cluster, SQLite store by default.
The orchestrating process's memory is its RSS growth over each engine run (it includes the
embedded scheduler's share, as raw Dask's does). Usage::

    python bench/scale.py                               # 2k and 10k items, 200 runs (quick)
    python bench/scale.py --items 2000,10000,50000,100000 --runs 1000 --queued 10000
    python bench/scale.py --items 50000 --modes chunked --no-raw
"""

from __future__ import annotations

import argparse
import gc
import os
import shutil
import statistics
import sys
import tempfile
import time

import psutil
import yaml

import jupyter_workflows as jw
from jupyter_workflows.engine import api


def noop(x=None):
    return 1


def fanout(n: int, chunk_size: int | None) -> jw.Workflow:
    body = {
        "action": "scale_noop",
        "with_items": f"{{{{ range({n}) | list }}}}",
        "input": {"x": "{{ item }}"},
    }
    if chunk_size is not None:
        body["chunk_size"] = chunk_size
    return jw.load(yaml.safe_dump({"name": "scale", "tasks": {"fan": body}}))


SMALL = """
name: small
tasks:
  a: {action: scale_noop, on_success: b}
  b: {action: scale_noop, on_success: c}
  c: {action: scale_noop}
"""


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    values = sorted(values)
    return values[min(len(values) - 1, round(q * (len(values) - 1)))]


def rss_mb() -> float:
    return psutil.Process().memory_info().rss / 1e6


def run_fanout(wf: jw.Workflow) -> tuple[float, float]:
    gc.collect()
    before = rss_mb()
    t0 = time.perf_counter()
    run = wf.run()
    took = time.perf_counter() - t0
    assert run.status == "succeeded", (run.status, run.error)
    grew = rss_mb() - before
    del run
    return took, grew


def run_raw(client, n: int) -> float:
    t0 = time.perf_counter()
    futures = client.map(noop, range(n), pure=False)
    client.gather(futures)
    took = time.perf_counter() - t0
    del futures
    return took


def stamp(x=None):
    return time.time()


def many_raw(client, n: int) -> dict[str, float]:
    """Raw Dask's side of :func:`many_runs`: ``n`` chains of 3 no-op tasks (a -> b -> c, as the
    workflow), submitted in a loop (timing each chain's three ``submit`` calls), then all
    gathered. The first task returns the time it ran on its worker."""
    calls: list[float] = []
    chains = []
    t0 = time.perf_counter()
    for _ in range(n):
        c0 = time.perf_counter()
        called = time.time()
        a = client.submit(stamp, pure=False)
        b = client.submit(noop, a, pure=False)
        c = client.submit(noop, b, pure=False)
        calls.append(time.perf_counter() - c0)
        chains.append((called, a, c))
    submitted = time.perf_counter() - t0
    client.gather([c for _, _, c in chains])
    took = time.perf_counter() - t0
    ran = client.gather([a for _, a, _ in chains])
    on_worker = [at - called for (called, _, _), at in zip(chains, ran, strict=True)]
    del chains
    tenth = max(1, n // 10)
    return {
        "seconds": took,
        "runs_per_s": n / took,
        "submit_ms_first10pct": 1000 * statistics.mean(calls[:tenth]),
        "submit_ms_last10pct": 1000 * statistics.mean(calls[-tenth:]),
        "submit_loop_s": submitted,
        "worker_start_p50_ms": 1000 * percentile(on_worker, 0.5),
        "worker_start_p99_ms": 1000 * percentile(on_worker, 0.99),
    }


def many_runs(n: int) -> dict[str, float]:
    """``n`` runs of the 3-task workflow, started in a loop of ``run(wait=False)`` (timing each
    call), then all waited for. Latencies: ``run()`` called -> the run's first attempt handed
    to the executor (dispatch), and -> the first task running on a worker (which on a small
    cluster is mostly the wait in Dask's queue behind the other runs' tasks)."""
    wf = jw.load(SMALL)
    wf.validate()
    wf.run()  # warm
    orch = api.get_orchestrator()
    executor = orch.executor
    submitted_at: dict[str, float] = {}
    plain_submit = executor.submit

    def submit(sub, callback):  # when each run's first attempt reaches the executor
        submitted_at.setdefault(sub.context.get("run_id", ""), time.time())
        plain_submit(sub, callback)

    executor.submit = submit  # type: ignore[method-assign]
    calls: list[float] = []
    started: list[tuple[float, jw.Run]] = []
    t0 = time.perf_counter()
    for _ in range(n):
        c0 = time.perf_counter()
        called = time.time()
        run = wf.run(wait=False)
        calls.append(time.perf_counter() - c0)
        started.append((called, run))
    submitted = time.perf_counter() - t0
    for _, run in started:
        run.wait(600)
    took = time.perf_counter() - t0
    dispatch, on_worker = [], []
    ok = 0
    for called, run in started:
        ok += run.status == "succeeded"
        if run.run_id in submitted_at:
            dispatch.append(submitted_at[run.run_id] - called)
        events = [
            e
            for e in orch.store.load_events(run.run_id)
            if e.get("type") == "attempt_done" and e.get("started_at")
        ]
        if events:
            on_worker.append(min(e["started_at"] for e in events) - called)
    executor.submit = plain_submit  # type: ignore[method-assign]
    tenth = max(1, n // 10)
    return {
        "runs": n,
        "ok": ok,
        "seconds": took,
        "runs_per_s": n / took,
        "run_call_ms_first10pct": 1000 * statistics.mean(calls[:tenth]),
        "run_call_ms_last10pct": 1000 * statistics.mean(calls[-tenth:]),
        "submit_loop_s": submitted,
        "dispatch_p50_ms": 1000 * percentile(dispatch, 0.5),
        "dispatch_p99_ms": 1000 * percentile(dispatch, 0.99),
        "worker_start_p50_ms": 1000 * percentile(on_worker, 0.5),
        "worker_start_p99_ms": 1000 * percentile(on_worker, 0.99),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", default="2000,10000", help="fan-out sizes, comma-separated")
    parser.add_argument("--modes", default="unchunked,chunked", help="unchunked,chunked")
    parser.add_argument("--no-raw", action="store_true", help="skip raw Dask")
    parser.add_argument("--runs", type=int, default=200, help="concurrent runs (0: skip)")
    parser.add_argument("--queued", type=int, default=0, help="queued runs (0: skip)")
    parser.add_argument("--store", choices=["sqlite", "memory"], default="sqlite")
    parser.add_argument("--cluster", choices=["embedded", "local"], default="embedded")
    args = parser.parse_args(argv)
    sizes = [int(s) for s in args.items.split(",") if s.strip()]
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]

    jw.task(name="scale_noop")(noop)
    tmp = tempfile.mkdtemp(prefix="jw-scale-")
    store = ":memory:" if args.store == "memory" else os.path.join(tmp, "state.db")
    cluster = None
    if args.cluster == "local":
        from distributed import Client, LocalCluster

        from jupyter_workflows.executors.dask import embedded_cluster_size

        workers, threads = embedded_cluster_size()
        cluster = LocalCluster(
            n_workers=workers,
            threads_per_worker=threads,
            host="127.0.0.1",
            dashboard_address="127.0.0.1:0",
            silence_logs=40,
        )
        client = Client(cluster, set_as_default=False)
        api.configure(store=store, scheduler=client)
    else:
        api.configure(store=store)
    try:
        jw.load(SMALL).run()  # starts the cluster (embedded) and warms the workers
        executor = api.get_orchestrator().executor
        client = executor.client  # type: ignore[attr-defined]
        nthreads = sum(client.nthreads().values())
        print(
            f"# {len(client.nthreads())} workers, {nthreads} threads, cluster={args.cluster}, "
            f"store={args.store}, cores={os.cpu_count()}, load={os.getloadavg()[0]:.1f}"
        )
        print(
            f"{'items':>8} {'raw s':>8} {'unchunked s':>12} {'ratio':>6} {'chunked s':>10}"
            f" {'raw/chunked':>12} {'chunked items/s':>16} {'MB/10k unch.':>13} {'MB/10k ch.':>11}"
        )
        for n in sizes:
            row: dict[str, float] = {}
            if not args.no_raw:
                row["raw"] = run_raw(client, n)
            if "unchunked" in modes:
                row["unchunked"], row["mem_u"] = run_fanout(fanout(n, 1))
            if "chunked" in modes:
                row["chunked"], row["mem_c"] = run_fanout(fanout(n, None))

            def cell(key: str, fmt: str, width: int, row=row) -> str:
                return f"{row[key]:>{width}{fmt}}" if key in row else f"{'-':>{width}}"

            ratio = row["unchunked"] / row["raw"] if {"raw", "unchunked"} <= row.keys() else None
            speed = row["raw"] / row["chunked"] if {"raw", "chunked"} <= row.keys() else None
            print(
                f"{n:>8} {cell('raw', '.2f', 8)} {cell('unchunked', '.2f', 12)}"
                f" {ratio if ratio is None else format(ratio, '.2f')!s:>6}"
                f" {cell('chunked', '.2f', 10)}"
                f" {speed if speed is None else format(speed, '.1f') + 'x'!s:>12}"
                f" {n / row['chunked'] if 'chunked' in row else '-'!s:>16.7}"
                f" {row['mem_u'] * 10000 / n if 'mem_u' in row else '-'!s:>13.5}"
                f" {row['mem_c'] * 10000 / n if 'mem_c' in row else '-'!s:>11.5}",
                flush=True,
            )
        for n in (args.runs, args.queued):
            if n <= 0:
                continue
            label = "runs at once" if n == args.runs else "queued runs"
            raw = None
            if not args.no_raw:
                raw = many_raw(client, n)
                print(
                    f"{n} raw Dask chains x 3 tasks ({label}): {raw['seconds']:.1f} s,"
                    f" {raw['runs_per_s']:.0f} chains/s; submit x 3"
                    f" {raw['submit_ms_first10pct']:.1f} ms (first 10%) /"
                    f" {raw['submit_ms_last10pct']:.1f} ms (last 10%);"
                    f" on a worker p50 {raw['worker_start_p50_ms']:.0f} ms"
                    f" p99 {raw['worker_start_p99_ms']:.0f} ms",
                    flush=True,
                )
            r = many_runs(n)
            print(
                f"{n} {label} x 3 tasks: {r['seconds']:.1f} s, {r['runs_per_s']:.0f} runs/s"
                f" ({r['ok']}/{n} succeeded); run() call {r['run_call_ms_first10pct']:.1f} ms"
                f" (first 10%) / {r['run_call_ms_last10pct']:.1f} ms (last 10%);"
                f" dispatch p50 {r['dispatch_p50_ms']:.0f} ms p99 {r['dispatch_p99_ms']:.0f} ms;"
                f" on a worker p50 {r['worker_start_p50_ms']:.0f} ms"
                f" p99 {r['worker_start_p99_ms']:.0f} ms"
                + (
                    ""
                    if raw is None
                    else f"; engine/raw wall time {r['seconds'] / raw['seconds']:.2f}"
                ),
                flush=True,
            )
    finally:
        api.reset()
        if cluster is not None:
            client.close()
            cluster.close()
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
