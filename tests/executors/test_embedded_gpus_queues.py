"""The embedded cluster: a worker per GPU found (``GPU=1``, one device each), and every queue served."""

from __future__ import annotations

import os
import stat
import threading
from pathlib import Path

import pytest

from jupyter_workflows.executors.base import Outcome, Submission
from jupyter_workflows.executors.dask import DaskExecutor, detect_gpus, start_local_cluster

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
def fake_nvidia_smi(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An ``nvidia-smi`` on PATH that lists two GPUs."""
    exe = tmp_path / "bin" / "nvidia-smi"
    exe.parent.mkdir()
    exe.write_text(
        "#!/bin/sh\n"
        'echo "GPU 0: Fake A100 (UUID: GPU-aaaa)"\n'
        'echo "GPU 1: Fake A100 (UUID: GPU-bbbb)"\n'
    )
    exe.chmod(exe.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("PATH", f"{exe.parent}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    return exe


def test_detect_gpus_lists_nvidia_smi_devices(fake_nvidia_smi: Path) -> None:
    assert detect_gpus() == ["0", "1"]


def test_cuda_visible_devices_narrows_or_hides(
    fake_nvidia_smi: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "1")
    assert detect_gpus() == ["1"]
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    assert detect_gpus() == []


def test_no_nvidia_smi_no_gpus(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    assert detect_gpus() == []


class Collector:
    def __init__(self) -> None:
        self.outcomes: dict[str, Outcome] = {}
        self._cond = threading.Condition()

    def __call__(self, outcome: Outcome) -> None:
        with self._cond:
            self.outcomes[outcome.key] = outcome
            self._cond.notify_all()

    def wait(self, *keys: str, timeout: float) -> list[Outcome]:
        with self._cond:
            assert self._cond.wait_for(lambda: all(k in self.outcomes for k in keys), timeout)
            return [self.outcomes[k] for k in keys]


def device() -> str:
    return os.environ.get("CUDA_VISIBLE_DEVICES", "none")


def test_gpu_workers_declare_one_gpu_and_see_one_device() -> None:
    cluster, client = start_local_cluster(1, 1, gpus=["1"])
    try:
        resources = [
            info["resources"] for info in client.scheduler_info(n_workers=-1)["workers"].values()
        ]
        assert sorted(r.get("GPU", 0) for r in resources) == [0, 1]
        with DaskExecutor(client) as ex:
            got = Collector()
            for i in range(4):
                ex.submit(Submission(f"g.dev-abcdef12-{i}", device, {}, resources={"GPU": 1}), got)
            outcomes = got.wait(*(f"g.dev-abcdef12-{i}" for i in range(4)), timeout=60)
        assert [o.result for o in outcomes] == ["1"] * 4
    finally:
        client.close()
        cluster.close()


def test_embedded_cluster_serves_every_queue(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    with DaskExecutor(n_workers=1, threads_per_worker=1, resource_wait=1) as ex:
        got = Collector()
        ex.submit(Submission("q.job-abcdef12-1", device, {}, queue="gpu"), got)
        (outcome,) = got.wait("q.job-abcdef12-1", timeout=60)
    assert outcome.ok, outcome.error
