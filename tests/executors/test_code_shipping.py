"""Task modules from the workflow's folder run on workers that do not have that folder.

A hand-started ``dask scheduler`` + ``dask worker`` pair on 127.0.0.1 whose workers see only
the installed packages (no ``PYTHONPATH`` to the folder) and behave as on another machine (they
import from their own copy): the module is shipped as files and imported there, so module-level state (a ``threading.Lock``, a cache) works, which pickling the
module by value cannot do. A function that cannot be shipped fails its attempt with one line.
"""

from __future__ import annotations

import os
import sys
import textwrap
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import cloudpickle
import pytest

import jupyter_workflows as jw
from jupyter_workflows.engine import api
from jupyter_workflows.testing import RunningCluster, scheduler_and_workers

pytestmark = [pytest.mark.cluster, pytest.mark.timeout(180)]


@pytest.fixture(scope="module")
def pair() -> Iterator[RunningCluster]:
    # As on other machines: the workers import from their own copy, never from the folder.
    with scheduler_and_workers(2, env={"JUPYTER_WORKFLOWS_COPY_CODE": "1"}) as cluster:
        yield cluster


def _folder(tmp_path: Path) -> tuple[Path, str]:
    name = f"jw_stateful_{uuid.uuid4().hex[:8]}"
    (tmp_path / f"{name}.py").write_text(
        textwrap.dedent(
            """
            import os
            import threading

            from helper_{tag} import double

            LOCK = threading.Lock()
            CACHE = {}


            def work(x):
                with LOCK:
                    CACHE[x] = double(x)
                return {"value": CACHE[x], "pid": os.getpid(), "file": __file__}
            """
        ).replace("{tag}", name[-8:])
    )
    (tmp_path / f"helper_{name[-8:]}.py").write_text("def double(x):\n    return 2 * x\n")
    (tmp_path / "wf.yaml").write_text(
        textwrap.dedent(
            f"""
            name: stateful
            tasks:
              work:
                action: {name}:work
                input: {{x: 21}}
            output_map:
              value: "{{{{ task.work.result.value }}}}"
              file: "{{{{ task.work.result.file }}}}"
              pid: "{{{{ task.work.result.pid }}}}"
            """
        )
    )
    return tmp_path, name


def test_a_module_with_a_lock_runs_on_workers_without_the_folder(
    pair: RunningCluster, tmp_path: Path
) -> None:
    folder, name = _folder(tmp_path)
    api.configure(store=str(tmp_path / "state.db"), scheduler=pair.address)
    try:
        run = jw.load(str(folder / "wf.yaml")).run(wait=True)
        assert run.status == "succeeded", run.error
        out = run.outputs
        assert out["value"] == 42
        assert out["pid"] != os.getpid()
        # Imported on the worker from the shipped copy, not from the folder (not on its path).
        assert not out["file"].startswith(str(folder))
        assert "jupyter-workflows-code" in out["file"]

        # A changed module is shipped again: the next run uses the new code.
        (folder / f"helper_{name[-8:]}.py").write_text("def double(x):\n    return 3 * x\n")
        stat = (folder / f"helper_{name[-8:]}.py").stat()
        os.utime(folder / f"helper_{name[-8:]}.py", ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
        sys.modules.pop(f"helper_{name[-8:]}", None)
        sys.modules.pop(name, None)
        run = jw.load(str(folder / "wf.yaml")).run(wait=True)
        assert run.status == "succeeded", run.error
        assert run.outputs["value"] == 63
    finally:
        api.reset()
        sys.modules.pop(name, None)
        sys.modules.pop(f"helper_{name[-8:]}", None)
        while str(folder) in sys.path:
            sys.path.remove(str(folder))


LOCK = threading.Lock()


def guarded(x: int) -> int:
    with LOCK:
        return x + 1


def test_a_function_that_cannot_be_shipped_fails_with_one_line_naming_the_global(
    pair: RunningCluster, tmp_path: Path
) -> None:
    # As a notebook's function: pickled by value, with its globals.
    module = sys.modules[__name__]
    cloudpickle.register_pickle_by_value(module)
    jw.task(name="guarded_by_lock")(guarded)
    api.configure(store=str(tmp_path / "state.db"), scheduler=pair.address)
    try:
        wf = jw.load(
            "name: unshippable\ntasks:\n  g:\n    action: guarded_by_lock\n    input: {x: 1}\n"
        )
        run = wf.run(wait=True)
        assert run.status == "failed"
        (task,) = run.tasks
        error = task["error"]
        assert "\n" not in error
        assert "'guarded'" in error and "'LOCK'" in error, error
        assert "cannot pickle" in error
    finally:
        api.reset()
        cloudpickle.unregister_pickle_by_value(module)


def test_two_folders_with_a_module_of_the_same_name_each_run_their_own(
    pair: RunningCluster, tmp_path: Path
) -> None:
    # Job folders often all have a tasks.py: a worker that ran one must not give the other's
    # function its module.
    name = f"jw_same_{uuid.uuid4().hex[:8]}"
    folders = []
    for answer in ("one", "two"):
        folder = tmp_path / answer
        folder.mkdir()
        (folder / f"{name}.py").write_text(f"def which():\n    return {answer!r}\n")
        (folder / "wf.yaml").write_text(
            f"name: same_{answer}\ntasks:\n  which: {{action: '{name}:which'}}\n"
            "output_map: {which: '{{ task.which.result }}'}\n"
        )
        folders.append(folder)
    api.configure(store=str(tmp_path / "state.db"), scheduler=pair.address)
    try:
        # One process loads both (as a notebook or a long-lived server does): each workflow
        # gets its own folder's module, in the engine and on the workers, in any order.
        workflows = [jw.load(str(folder / "wf.yaml")) for folder in folders]
        for workflow, answer in zip(workflows * 2, ["one", "two"] * 2, strict=True):
            run = workflow.run(wait=True)
            assert run.status == "succeeded", run.error
            assert run.outputs["which"] == answer
        again = jw.load(str(folders[0] / "wf.yaml")).run(wait=True)
        assert again.outputs["which"] == "one"
    finally:
        api.reset()
        sys.modules.pop(name, None)
        for folder in folders:
            while str(folder) in sys.path:
                sys.path.remove(str(folder))


def test_a_worker_on_this_machine_imports_from_the_folder_itself(
    dask_engine: object, tmp_path: Path
) -> None:
    """Same files visible to the worker: ``__file__`` is the author's, data beside it is found."""
    name = f"jw_beside_{uuid.uuid4().hex[:8]}"
    (tmp_path / "lookup.csv").write_text("answer\n42\n")
    (tmp_path / f"{name}.py").write_text(
        "import os\n\nHERE = os.path.dirname(os.path.abspath(__file__))\n\n\n"
        "def answer():\n    with open(os.path.join(HERE, 'lookup.csv')) as f:\n"
        "        return {'value': int(f.read().split()[1]), 'file': __file__}\n"
    )
    (tmp_path / "wf.yaml").write_text(
        f"name: beside\ntasks:\n  a: {{action: '{name}:answer'}}\n"
        "output_map: {out: '{{ task.a.result }}'}\n"
    )
    try:
        run = jw.load(str(tmp_path / "wf.yaml")).run(wait=True)
        assert run.status == "succeeded", run.error
        assert run.outputs["out"]["value"] == 42
        assert run.outputs["out"]["file"] == str(tmp_path / f"{name}.py")
    finally:
        sys.modules.pop(name, None)
        while str(tmp_path) in sys.path:
            sys.path.remove(str(tmp_path))
