"""A 300 MB result stays where it was made: the orchestrating process never holds it.

A hand-started ``dask scheduler`` + two ``dask worker`` processes on 127.0.0.1 (the workers do
not have the workflow's folder). The engine runs in a subprocess of its own, which reports its
own peak RSS (``ru_maxrss`` of itself, not of any worker) before and after a run in which one
task makes a 300 MB numpy array and the next sums it. Before this, every result was gathered
into the orchestrating process and pickled there: +560 MB.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

import jupyter_workflows as jw
from jupyter_workflows.engine import api
from jupyter_workflows.store.artifacts import ArtifactRef
from jupyter_workflows.testing import RunningCluster, scheduler_and_workers

pytestmark = [pytest.mark.cluster, pytest.mark.slow, pytest.mark.timeout(300)]

MB = 2**20
SIZE = 300 * MB

ENGINE = textwrap.dedent(
    """
    import json, resource, sys
    import jupyter_workflows as jw

    store, address, size = sys.argv[1], sys.argv[2], int(sys.argv[3])
    jw.configure(store=store, scheduler=address)

    def peak_mb():
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux

    # Warm up: imports, the Dask client, the shipped module, one small run of the same tasks.
    warm = jw.load("wf.yaml").run({"n": 1000})
    assert warm.status == "succeeded", warm.error
    before = peak_mb()
    run = jw.load("wf.yaml").run({"n": size // 8})
    after = peak_mb()
    outputs = run.outputs
    print(json.dumps({
        "status": run.status, "error": run.error, "run_id": run.run_id,
        "total": outputs["total"] if outputs else None,
        "before": before, "after": after,
    }))
    """
)


@pytest.fixture(scope="module")
def pair() -> Iterator[RunningCluster]:
    with scheduler_and_workers(2) as cluster:
        yield cluster


def _write(folder: Path) -> None:
    (folder / "bigarrays.py").write_text(
        "import numpy as np\n\n\ndef make(n):\n    return np.ones(n)\n\n\n"
        "def total(x):\n    return float(x.sum())\n"
    )
    (folder / "wf.yaml").write_text(
        textwrap.dedent(
            """
            name: big
            parameters:
              n: {type: integer}
            tasks:
              make:
                action: bigarrays:make
                input: {n: "{{ parameters.n }}"}
                on_success: total
              total:
                action: bigarrays:total
                input: {x: "{{ task.make.result }}"}
            output_map:
              total: "{{ task.total.result }}"
              shape: "{{ task.make.result.shape }}"
            """
        )
    )
    (folder / "engine.py").write_text(ENGINE)


def test_a_300_mb_array_passes_worker_to_worker_and_the_orchestrator_stays_flat(
    pair: RunningCluster, tmp_path: Path
) -> None:
    _write(tmp_path)
    store = tmp_path / "state.db"
    proc = subprocess.run(
        [sys.executable, "engine.py", str(store), pair.address, str(SIZE)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    assert report["status"] == "succeeded", report["error"]
    assert report["total"] == float(SIZE // 8)
    grew = report["after"] - report["before"]
    print(f"orchestrator peak RSS {report['before']:.0f} -> {report['after']:.0f} MB")
    assert grew < 100, f"the orchestrating process grew by {grew:.0f} MB ({report})"

    # What the store says, read by another process (this one): succeeded, and the big result
    # is a reference (type, shape, dtype, size, hash, location) to a file the worker wrote.
    api.configure(store=str(store), executor="inline")
    try:
        run = jw.get_run(report["run_id"])
        assert run.status == "succeeded"
        make = next(t for t in run._task_records() if t["task"] == "make")
        ref = make["result"]
        assert isinstance(ref, ArtifactRef)
        assert ref.type_name == "numpy.ndarray"
        assert ref.shape == (SIZE // 8,) and ref.dtype == "float64"
        assert ref.nbytes >= SIZE
        assert ref.location == (tmp_path / "state.db.artifacts").as_uri()
        path = tmp_path / "state.db.artifacts" / ref.digest[:2] / f"{ref.digest}.pkl"
        assert path.stat().st_size == ref.nbytes
        assert run.outputs["shape"] == (SIZE // 8,)
        # Read lazily, and only here: the real array, from the artifact.
        value = run.tasks[0]["result"]
        assert value.shape == (SIZE // 8,) and float(value[:10].sum()) == 10.0
    finally:
        api.reset()
