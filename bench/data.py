"""Data benchmark: big results through the engine against raw Dask keeping them on the worker.

On a hand-started ``dask scheduler`` + two ``dask worker`` processes on 127.0.0.1, for each size:
one task makes a float64 array of that many bytes, the next sums it. Three ways:

* **raw Dask**: ``client.submit(make)`` then ``client.submit(total, future)``; the array stays on
  the workers and only the sum comes back;
* **raw + write**: the same, but ``make`` also writes its array once to a local file (pickle,
  fsync), the cost the engine's goal allows on top of raw Dask;
* **engine**: a two-task workflow (``input: {x: "{{ task.make.result }}"}``) run with the
  Python API on the same cluster, with a SQLite store and the default artifact location beside
  it: the worker writes the array there and the engine keeps a reference.

By default the three ways alternate in one process against the same cluster (round ``i`` runs
them in a rotated order), so drift of a shared machine hits all three alike; each reports the
median wall time of its ``--repeat`` runs, and how much the process's peak RSS (``ru_maxrss``,
not the workers') rose during its runs (the first round runs raw Dask first and the engine
last, so the engine's figure is what it adds above the raw runs). ``--separate`` runs each way
in a fresh process of its own instead (the method of earlier sessions). A warm-up run with a
tiny array comes first. Every run makes an array of different content, so content addressing
never skips a write. Below the table: the median of the per-round ratios engine / (raw +
write), which pairs runs taken moments apart.

Run: ``python bench/data.py [--sizes 1,100] [--repeat 3] [--separate]`` (sizes in MiB;
``--sizes 1,100,1000`` where the machine has a few GB to spare).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

MB = 2**20  # sizes are MiB: a "1 MB" result is just above the default 1 MiB threshold

TASKS = """
import os
import pickle
import numpy as np


def make(n, seed):
    return np.full(n, float(seed))


def total(x):
    return float(x.sum())


def make_and_write(n, seed, folder):
    x = np.full(n, float(seed))
    path = os.path.join(folder, f"{seed}.pkl")
    with open(path, "wb") as handle:
        pickle.dump(x, handle, protocol=5)
        handle.flush()
        os.fsync(handle.fileno())
    return x
"""

WORKFLOW = """
name: data
parameters:
  n: {type: integer}
  seed: {type: integer}
tasks:
  make:
    action: benchtasks:make
    input: {n: "{{ parameters.n }}", seed: "{{ parameters.seed }}"}
    on_success: total
  total:
    action: benchtasks:total
    input: {x: "{{ task.make.result }}"}
output_map:
  total: "{{ task.total.result }}"
"""

RUNNER = """
import json, random, resource, sys, time

modes, address, n, repeat, folder = sys.argv[1].split(","), sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
sys.path.insert(0, folder)


def peak_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


seeds = iter(random.sample(range(1, 10**9), len(modes) * (repeat + 1)))
runs = {}
if "engine" in modes:
    import jupyter_workflows as jw

    jw.configure(store=f"{folder}/state.db", scheduler=address)
    wf = jw.load(f"{folder}/wf.yaml")

    def engine(size):
        run = wf.run({"n": size, "seed": next(seeds)})
        assert run.status == "succeeded", run.error
        return run.outputs["total"]

    runs["engine"] = engine
if "raw" in modes or "raw+write" in modes:
    from distributed import Client

    import benchtasks

    client = Client(address, set_as_default=False)
    client.upload_file(f"{folder}/benchtasks.py")

    def raw(size, write=False):
        seed = next(seeds)
        if write:
            x = client.submit(benchtasks.make_and_write, size, seed, folder, pure=False)
        else:
            x = client.submit(benchtasks.make, size, seed, pure=False)
        s = client.submit(benchtasks.total, x, pure=False)
        value = s.result()
        del x, s
        return value

    runs["raw"] = raw
    runs["raw+write"] = lambda size: raw(size, write=True)

for mode in modes:
    runs[mode](1000)  # warm up: imports, connections, code on the workers
walls = {mode: [] for mode in modes}
grew = {mode: 0.0 for mode in modes}
for i in range(repeat):
    for mode in modes[i % len(modes):] + modes[: i % len(modes)]:
        before = peak_mb()
        start = time.perf_counter()
        runs[mode](n)
        walls[mode].append(time.perf_counter() - start)
        grew[mode] += peak_mb() - before
print(json.dumps({mode: {"walls": walls[mode], "grew_mb": grew[mode]} for mode in modes}))
"""


MODES = ("raw", "raw+write", "engine")


def measure(modes: list[str], address: str, size_mb: float, repeat: int, folder: Path) -> dict:
    """Run ``modes`` (alternating) in one fresh process; per mode: its walls and RSS growth."""
    n = int(size_mb * MB) // 8
    proc = subprocess.run(
        [sys.executable, "-c", RUNNER, ",".join(modes), address, str(n), str(repeat), str(folder)],
        capture_output=True,
        text=True,
        timeout=1800,
    )
    if proc.returncode != 0:
        raise SystemExit(f"{','.join(modes)} {size_mb} MB failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1,100", help="result sizes in MB, comma-separated")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument(
        "--separate", action="store_true", help="each way in a fresh process of its own"
    )
    args = parser.parse_args(argv)
    sizes = [float(s) for s in args.sizes.split(",") if s.strip()]
    from jupyter_workflows.testing import scheduler_and_workers

    rows = []
    with scheduler_and_workers(2) as address:
        for size in sizes:
            with tempfile.TemporaryDirectory(prefix="jw-bench-data-") as tmp:
                folder = Path(tmp)
                (folder / "benchtasks.py").write_text(textwrap.dedent(TASKS))
                (folder / "wf.yaml").write_text(WORKFLOW)
                if args.separate:
                    result = {
                        mode: measure([mode], address, size, args.repeat, folder)[mode]
                        for mode in MODES
                    }
                else:
                    result = measure(list(MODES), address, size, args.repeat, folder)
            rows.append((size, result))
            print(f"  {size:g} MB done", file=sys.stderr)
    print(
        f"{'size':>8}  {'raw dask':>9}  {'raw+write':>9}  {'engine':>9}  "
        f"{'eng/raw+w':>9}  {'eng/raw':>8}  {'RSS +MB raw':>11}  {'RSS +MB engine':>14}"
    )
    for size, r in rows:
        raw = statistics.median(r["raw"]["walls"])
        rw = statistics.median(r["raw+write"]["walls"])
        eng = statistics.median(r["engine"]["walls"])
        print(
            f"{size:>6g}MB  {raw:>8.3f}s  {rw:>8.3f}s  {eng:>8.3f}s  {eng / rw:>8.2f}x  "
            f"{eng / raw:>7.2f}x  {r['raw']['grew_mb']:>11.0f}  {r['engine']['grew_mb']:>14.0f}"
        )
    if not args.separate:
        for size, r in rows:
            paired = [
                e / w for e, w in zip(r["engine"]["walls"], r["raw+write"]["walls"], strict=True)
            ]
            print(
                f"{size:>6g}MB  engine / (raw + write), median of per-round ratios: "
                f"{statistics.median(paired):.2f}x"
            )
    method = "each way in its own process" if args.separate else "the ways alternating"
    print(
        f"(median of {args.repeat} runs each, {method}; RSS: growth of the orchestrating "
        f"process's peak during the runs; {os.cpu_count()} cores, "
        f"load {os.getloadavg()[0]:.1f})"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
