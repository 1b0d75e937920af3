"""The scale bench still runs end to end, at sizes that take seconds (a real embedded cluster,
a real SQLite store, a real ``python bench/scale.py`` process). Functional only: the figures
are printed, never asserted (see docs/performance.md for measured ones)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.timeout(300)

ROOT = Path(__file__).resolve().parents[1]


def test_scale_bench_prints_every_row_side_by_side_with_raw_dask(tmp_path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("JUPYTER_WORKFLOWS_")}
    done = subprocess.run(
        [
            sys.executable,
            str(ROOT / "bench" / "scale.py"),
            *("--items", "300", "--runs", "30", "--queued", "40"),
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    out = done.stdout
    # The fan-out row: raw, unchunked, ratio, chunked, raw/chunked, items/s, MB per 10k x 2.
    row = next(line.split() for line in out.splitlines() if line.strip().startswith("300 "))
    assert len(row) == 9 and row[5].endswith("x"), out
    assert all(float(cell.rstrip("x")) > 0 for cell in row[1:6]), out
    for n, label in ((30, "runs at once"), (40, "queued runs")):
        assert re.search(rf"^{n} raw Dask chains x 3 tasks \({label}\): ", out, re.M), out
        line = next(x for x in out.splitlines() if x.startswith(f"{n} {label} x 3 tasks"))
        assert f"({n}/{n} succeeded)" in line, line
        assert re.search(r"dispatch p50 \d+ ms p99 \d+ ms", line), line
        assert "engine/raw wall time" in line, line
