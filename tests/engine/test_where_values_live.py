"""Where values live: results above the threshold are written by the worker and referenced.

A real Dask cluster (threads of this process, so a ``memory://`` artifact location is shared by
workers and engine, as ``s3://`` would be across machines) and a real SQLite store. The engine
keeps an :class:`ArtifactRef` (type, size, shape, dtype, hash, location); templates pass it whole,
read its preview, or fail with one line; resume and the cache hand the reference on without
loading it; ``Run.outputs`` and ``Run.tasks[i]["result"]`` load the value when read.
"""

from __future__ import annotations

import json
import sys
import textwrap
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import fsspec
import numpy as np
import pandas as pd
import pytest

import jupyter_workflows as jw
from jupyter_workflows.engine import api
from jupyter_workflows.exceptions import StoreError
from jupyter_workflows.executors.dask import DaskExecutor, start_local_cluster
from jupyter_workflows.store.artifacts import ArtifactRef
from jupyter_workflows.testing import run_cli

pytestmark = [pytest.mark.timeout(120)]

N = 50_000  # 400 KB of float64: above the 1 KiB threshold these tests use


class RecordingExecutor(DaskExecutor):
    """A DaskExecutor that remembers the plain arguments each submission carried."""

    def __init__(self, client: Any) -> None:
        super().__init__(client)
        self.inputs: dict[str, dict[str, Any]] = {}

    def submit(self, submission, callback) -> None:  # type: ignore[no-untyped-def]
        self.inputs[submission.context.get("task", "")] = dict(submission.kwargs)
        super().submit(submission, callback)


@pytest.fixture(scope="module")
def client() -> Iterator[Any]:
    cluster, client = start_local_cluster(1, 2, processes=False)
    yield client
    client.close()
    cluster.close()


@pytest.fixture
def location() -> Iterator[str]:
    url = f"memory://jw-test-{uuid.uuid4().hex[:8]}"
    yield url
    fs = fsspec.filesystem("memory")
    if fs.exists(url):
        fs.rm(url, recursive=True)


def _configure(tmp_path: Path, client: Any, location: str) -> RecordingExecutor:
    executor = RecordingExecutor(client)
    api.configure(
        store=str(tmp_path / "state.db"),
        executor=executor,
        artifacts=location,
        artifact_threshold=1024,
    )
    return executor


def make(n: int) -> np.ndarray:
    return np.arange(n, dtype="float64")


def frame(n: int) -> pd.DataFrame:
    return pd.DataFrame({"a": np.arange(n), "b": np.arange(n) * 0.5})


def total(x: np.ndarray) -> float:
    assert isinstance(x, np.ndarray), type(x)
    return float(x.sum())


def fit(x: np.ndarray, df: pd.DataFrame) -> dict[str, Any]:
    return {"score": float(df["b"].sum() + x.sum()), "weights": x * 2}


def _register() -> None:
    for fn in (make, frame, total, fit):
        jw.task(name=f"wv_{fn.__name__}")(fn)


PIPELINE = textwrap.dedent(
    """
    name: values
    parameters:
      n: {type: integer}
    tasks:
      make:
        action: wv_make
        input: {n: "{{ parameters.n }}"}
        on_success: [total, frame]
      frame:
        action: wv_frame
        input: {n: "{{ parameters.n }}"}
        on_success: fit
      total:
        action: wv_total
        input: {x: "{{ task.make.result }}"}
      fit:
        action: wv_fit
        input: {x: "{{ task.make.result }}", df: "{{ task.frame.result }}"}
    output_map:
      total: "{{ task.total.result }}"
      columns: "{{ task.frame.result.columns }}"
      shape: "{{ task.make.result.shape }}"
      score: "{{ task.fit.result.score }}"
      weights: "{{ task.fit.result.weights }}"
    """
)


def test_big_results_are_references_that_load_when_read(
    tmp_path: Path, client: Any, location: str
) -> None:
    _register()
    _configure(tmp_path, client, location)
    run = jw.load(PIPELINE).run({"n": N})
    assert run.status == "succeeded", run.error
    expected = np.arange(N, dtype="float64")

    # Small values stay values; templates read the preview (columns, shape) of big ones.
    raw = run._raw_outputs()
    assert raw["total"] == float(expected.sum())
    assert raw["columns"] == ["a", "b"]
    assert tuple(raw["shape"]) == (N,)
    assert raw["score"] == float(expected.sum() * 1.5)
    weights = raw["weights"]
    assert isinstance(weights, ArtifactRef)  # a dict result: only its big part is a reference
    assert weights.type_name == "numpy.ndarray" and weights.dtype == "float64"
    assert weights.shape == (N,) and weights.nbytes > N * 8
    assert (
        weights.location == location
        and weights.hash_name == "xxh3_128"
        and len(weights.digest) == 32
    )
    assert fsspec.filesystem("memory").exists(
        f"{location}/{weights.digest[:2]}/{weights.digest}.pkl"
    )

    # Run.outputs and Run.tasks load the real value when it is read.
    assert "artifact" in repr(run.outputs)  # printing loads nothing
    np.testing.assert_array_equal(run.outputs["weights"], expected * 2)
    tasks = {t["task"]: t for t in run.tasks}
    frame_result = tasks["frame"]["result"]
    assert isinstance(frame_result, pd.DataFrame)
    pd.testing.assert_frame_equal(frame_result, frame(N))

    # Another process reading the store gets references, and the same values when read.
    api.reset()
    api.configure(store=str(tmp_path / "state.db"), executor="inline")
    again = jw.get_run(run.run_id)
    stored = {t["task"]: t["result"] for t in again._task_records()}
    assert isinstance(stored["make"], ArtifactRef) and isinstance(stored["frame"], ArtifactRef)
    np.testing.assert_array_equal(again.tasks[0]["result"], expected)

    # JSON shows the reference, never the value.
    text = json.dumps(again.to_dict(), default=str)
    assert "numpy.ndarray" in text and len(text) < 10_000


def test_equal_results_are_written_once(tmp_path: Path, client: Any, location: str) -> None:
    _register()
    _configure(tmp_path, client, location)
    first = jw.load(PIPELINE).run({"n": N})
    second = jw.load(PIPELINE).run({"n": N})
    assert first.status == second.status == "succeeded"
    a = next(t["result"] for t in first._task_records() if t["task"] == "make")
    b = next(t["result"] for t in second._task_records() if t["task"] == "make")
    assert a == b and a.digest == b.digest
    files = fsspec.filesystem("memory").find(location)
    assert len([f for f in files if a.digest in f]) == 1


def test_reading_into_a_big_result_is_a_one_line_error_naming_the_template(
    tmp_path: Path, client: Any, location: str
) -> None:
    _register()
    _configure(tmp_path, client, location)
    wf = jw.load(
        textwrap.dedent(
            """
            name: readinto
            tasks:
              frame:
                action: wv_frame
                input: {n: 50000}
                on_success: use
              use:
                action: wv_total
                input: {x: "{{ task.frame.result.a }}"}
            """
        )
    )
    run = wf.run()
    assert run.status == "failed"
    error = next(t["error"] for t in run.tasks if t["task"] == "use")
    assert "\n" not in error
    assert "{{ task.frame.result.a }}" in error
    assert "cannot read into .a" in error and "pandas.DataFrame" in error
    assert "columns" in error  # what it can read instead


FLAKY_CHECK = """
import os


def check(x, flag):
    if not os.path.exists(flag):
        open(flag, "w").close()
        raise RuntimeError("first time fails")
    return float(x.sum())
"""


def test_resume_hands_the_stored_reference_to_the_downstream_task(
    tmp_path: Path, client: Any, location: str
) -> None:
    _register()
    module = f"wv_check_{uuid.uuid4().hex[:8]}"
    (tmp_path / f"{module}.py").write_text(FLAKY_CHECK)
    (tmp_path / "wf.yaml").write_text(
        textwrap.dedent(
            f"""
            name: resumable
            tasks:
              make:
                action: wv_make
                input: {{n: {N}}}
                on_success: check
              check:
                action: {module}:check
                input: {{x: "{{{{ task.make.result }}}}", flag: "{tmp_path / "flag"}"}}
            output_map:
              total: "{{{{ task.check.result }}}}"
            """
        )
    )
    _configure(tmp_path, client, location)
    run = jw.load(str(tmp_path / "wf.yaml")).run()
    assert run.status == "failed"

    # A new engine (as after a restart) resumes from the store.
    api.reset()
    executor = _configure(tmp_path, client, location)
    resumed = jw.resume(run.run_id, retry_failed=True)
    assert resumed.status == "succeeded", resumed.error
    assert resumed.outputs["total"] == float(np.arange(N).sum())
    make_runs = [t for t in resumed.tasks if t["task"] == "make"]
    assert len(make_runs) == 1 and make_runs[0]["attempts"] == 1  # not run again
    assert "make" not in executor.inputs
    # The downstream task was handed the reference, not the array.
    assert isinstance(executor.inputs["check"]["x"], ArtifactRef)
    sys.modules.pop(module, None)


def test_a_cached_big_result_is_handed_on_as_a_reference(
    tmp_path: Path, client: Any, location: str
) -> None:
    _register()
    wf = textwrap.dedent(
        f"""
        name: cached
        tasks:
          make:
            action: wv_make
            input: {{n: {N}}}
            cache: {{}}
            on_success: total
          total:
            action: wv_total
            input: {{x: "{{{{ task.make.result }}}}"}}
        output_map:
          total: "{{{{ task.total.result }}}}"
        """
    )
    _configure(tmp_path, client, location)
    first = jw.load(wf).run()
    assert first.status == "succeeded", first.error
    executor = _configure(tmp_path, client, location)
    second = jw.load(wf).run()
    assert second.status == "succeeded", second.error
    assert second.outputs["total"] == first.outputs["total"]
    assert "make" not in executor.inputs  # from the cache
    assert isinstance(executor.inputs["total"]["x"], ArtifactRef)


# -- configuration ------------------------------------------------------------------------------


def test_configure_checks_the_location_and_threshold() -> None:
    with pytest.raises(StoreError, match="nosuchproto") as info:
        jw.configure(artifacts="nosuchproto://bucket/x")
    assert "\n" not in str(info.value)
    with pytest.raises(StoreError, match="artifact_threshold"):
        jw.configure(artifact_threshold=-1)
    with pytest.raises(StoreError, match="artifact_threshold"):
        jw.configure(artifact_threshold="big")


def test_the_default_location_is_beside_the_store_and_env_overrides_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    api.configure(store=str(tmp_path / "state.db"), executor="inline")
    assert api.get_orchestrator().artifacts == (tmp_path / "state.db.artifacts").as_uri()
    monkeypatch.setenv("JUPYTER_WORKFLOWS_ARTIFACTS", str(tmp_path / "shared"))
    monkeypatch.setenv("JUPYTER_WORKFLOWS_ARTIFACT_THRESHOLD", "4096")
    api.configure(store=str(tmp_path / "state.db"), executor="inline")
    orch = api.get_orchestrator()
    assert orch.artifacts == (tmp_path / "shared").as_uri()
    assert orch.artifact_threshold == 4096
    api.configure(artifacts="memory://elsewhere")
    assert api.get_orchestrator().artifacts == "memory://elsewhere"


@pytest.mark.parametrize("command", [["runs", "--json"], ["show", "abcdef123"]])
def test_every_subcommand_accepts_artifacts(tmp_path: Path, command: list[str]) -> None:
    env = {
        **__import__("os").environ,
        "JUPYTER_WORKFLOWS_STORE": str(tmp_path / "state.db"),
        "JUPYTER_WORKFLOWS_EXECUTOR": "inline",
    }
    ok = run_cli(*command, "--artifacts", str(tmp_path / "a"), env=env, timeout=60)
    assert "unrecognized arguments" not in ok.stderr
    assert ok.returncode in (0, 2), ok.stderr
    if command[0] == "runs":
        assert ok.returncode == 0 and json.loads(ok.stdout) == []
    bad = run_cli(*command, "--artifacts", "nosuchproto://x", env=env, timeout=60)
    assert bad.returncode == 2
    assert len(bad.stderr.strip().splitlines()) == 1 and "nosuchproto" in bad.stderr
