"""Fault tally: runs killed with ``kill -9`` at random moments and resumed, many times.

The same scenarios as ``tests/durability/test_crash_resume.py`` (its harness is loaded from
there): each runs a workflow with a chain, a ``with_items`` fan-out and a join through
``jupyter-workflows run``, kills the process at a seeded random moment (before any task, mid-run,
around the final commit, after the end, or twice: the resuming process too), checks
``PRAGMA integrity_check``, and resumes with ``jupyter-workflows resume --json``.

Prints a tally: runs that completed, duplicate starts of tasks whose success had been
committed (must be 0), integrity failures (must be 0), where the first kill landed, and seconds.

With ``--dask``, tasks run on a LocalCluster (2 worker processes) instead of in threads of the
CLI process: attempts the killed process had queued there may still run, so what was not
committed runs at least once rather than exactly once.

Run: ``python bench/fault_tally.py [--runs 100] [--seed N] [--parallel 3] [--dask] [--keep DIR]``.
Exit status 1 when any scenario failed (each is printed with its seed).
"""

from __future__ import annotations

import argparse
import importlib.util
import random
import shutil
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

HARNESS = Path(__file__).resolve().parent.parent / "tests" / "durability" / "test_crash_resume.py"


def load_harness():
    spec = importlib.util.spec_from_file_location("crash_resume_harness", HARNESS)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=100)
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--parallel", type=int, default=3)
    parser.add_argument("--keep", metavar="DIR", help="keep the run folders here")
    parser.add_argument("--dask", action="store_true", help="run tasks on a local Dask cluster")
    args = parser.parse_args(argv)
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(1, 10**6)
    harness = load_harness()
    root = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="fault-tally-"))
    root.mkdir(parents=True, exist_ok=True)
    cluster = None
    if args.dask:
        from distributed import LocalCluster

        cluster = LocalCluster(
            n_workers=2,
            threads_per_worker=2,
            processes=True,
            host="127.0.0.1",
            dashboard_address="127.0.0.1:0",
            silence_logs=40,
        )
    start = time.perf_counter()
    try:
        outcomes = harness.run_scenarios(
            root,
            args.runs,
            seed,
            parallel=args.parallel,
            scheduler=cluster.scheduler_address if cluster else None,
        )
    finally:
        if cluster is not None:
            cluster.close()
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)
    seconds = time.perf_counter() - start
    failed = [o for o in outcomes if o.problems]
    modes = Counter(o.mode for o in outcomes)
    landed = Counter(o.landed or "?" for o in outcomes)
    per_run = sorted(o.seconds for o in outcomes)
    where = "Dask LocalCluster" if args.dask else "inline executor"
    print(
        f"fault tally (seed {seed}, {where}): {len(outcomes)} runs, "
        f"{sum(o.kills for o in outcomes)} kills (kill -9)"
    )
    print(
        f"  completed after resume:          {sum(o.completed for o in outcomes)}/{len(outcomes)}"
    )
    print(f"  duplicate starts of committed:   {sum(o.duplicates for o in outcomes)}")
    print(f"  integrity_check failures:        {sum(o.integrity_failures for o in outcomes)}")
    print(
        f"  ended, not committed, re-run:    {sum(o.reran_after_end for o in outcomes)} (at-least-once)"
    )
    print(f"  scenarios with any problem:      {len(failed)}")
    print(f"  modes:                           {dict(sorted(modes.items()))}")
    print(f"  first kill landed:               {dict(sorted(landed.items()))}")
    print(
        f"  seconds: {seconds:.1f} in all ({args.parallel} at a time); per scenario "
        f"median {per_run[len(per_run) // 2]:.2f}, max {per_run[-1]:.2f}"
    )
    for o in failed:
        print("  FAILED " + o.describe())
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
