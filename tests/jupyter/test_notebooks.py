"""The gallery notebooks run, top to bottom, on a real kernel (nbclient) and under papermill.

Each notebook is copied to the test's folder (its store, ``./.jupyter_workflows/state.db``, and
any file it writes land there) and executed by the ``python3`` kernel of this environment.
The notebooks use the real default, Dask: the kernel finds the session's LocalCluster through
``JUPYTER_WORKFLOWS_SCHEDULER``, so no notebook starts a cluster of its own.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import nbformat
import pytest

NOTEBOOKS = Path(__file__).parents[2] / "notebooks"
GALLERY = [
    "quickstart.ipynb",
    "python_api.ipynb",
    "resume.ipynb",
    "lifecycle.ipynb",
    "data_science.ipynb",
]

pytestmark = [pytest.mark.cluster, pytest.mark.slow]


@pytest.fixture
def kernel_env(dask_cluster: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """The kernel inherits this environment: tasks go to the session's cluster."""
    pytest.importorskip(
        "jupyter_workflows.executors.dask", reason="the Dask executor is not there yet"
    )
    monkeypatch.setenv("JUPYTER_WORKFLOWS_SCHEDULER", dask_cluster.scheduler_address)


def _copy(name: str, folder: Path) -> Path:
    target = folder / name
    shutil.copy(NOTEBOOKS / name, target)
    return target


def _texts(nb: Any) -> str:
    """Every text output of the executed notebook, joined."""
    parts = []
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            if out.get("output_type") == "stream":
                parts.append(out.get("text", ""))
            for kind in ("text/plain", "text/html"):
                value = out.get("data", {}).get(kind)
                if value:
                    parts.append(value if isinstance(value, str) else "".join(value))
    return "\n".join(parts)


def _errors(nb: Any) -> list[str]:
    return [
        f"{out.get('ename')}: {out.get('evalue')}"
        for cell in nb.cells
        for out in cell.get("outputs", [])
        if out.get("output_type") == "error"
    ]


@pytest.mark.parametrize("name", GALLERY)
def test_gallery_notebook_runs_on_a_real_kernel(
    name: str, tmp_path: Path, kernel_env: None
) -> None:
    from nbclient import NotebookClient

    path = _copy(name, tmp_path)
    nb = nbformat.read(str(path), as_version=4)
    assert any("parameters" in c.metadata.get("tags", []) for c in nb.cells), "no parameters cell"
    client = NotebookClient(
        nb, kernel_name="python3", timeout=240, resources={"metadata": {"path": str(tmp_path)}}
    )
    client.execute()
    assert _errors(nb) == []
    text = _texts(nb)
    if name == "quickstart.ipynb":
        assert "HELLO, WORLD!" in text
        assert "application/vnd.jupyter.widget-view+json" in str(nb.cells)  # the live graph
        assert "<svg" in text  # and its picture, for viewers without a widget manager
    elif name == "python_api.ipynb":
        assert "'total': 30" in text
    elif name == "lifecycle.ipynb":
        assert "sales-2024: draft -> published refused: no transition" in text
        assert "'published'" in text  # the state after the approval
        assert "sales-2024 is published: {" in text  # the arrival workflow ran
        assert 'jw-current" data-state="published"' in text  # the picture, current state
        assert "'file': 'north.csv'" in text and "'file': 'south.csv'" in text
        assert "[]" in text  # the second scan started nothing
    elif name == "data_science.ipynb":
        assert "succeeded" in text and "best: n" in text
        assert "DataFrame RandomForestClassifier Figure" in text  # types, in another process
        assert "interrupted | 6 of 7 fits done" in text
        assert "configurations fitted: 7" in text
        images = [
            out
            for cell in nb.cells
            for out in cell.get("outputs", [])
            if "image/png" in out.get("data", {})
        ]
        assert len(images) == 2  # the figure, before and after the crash
    else:
        assert "interrupted" in text
        assert "'total': 100" in text
    # Runs were stored beside the notebook, where it ran.
    assert (tmp_path / ".jupyter_workflows" / "state.db").is_file()


def test_quickstart_under_papermill_with_parameters(tmp_path: Path, kernel_env: None) -> None:
    import papermill

    path = _copy("quickstart.ipynb", tmp_path)
    out = tmp_path / "out.ipynb"
    papermill.execute_notebook(
        str(path),
        str(out),
        parameters={"name": "papermill", "approve": False},
        kernel_name="python3",
        cwd=str(tmp_path),
        progress_bar=False,
    )
    nb = nbformat.read(str(out), as_version=4)
    text = _texts(nb)
    assert "Hello, papermill!" in text
    assert "HELLO, PAPERMILL!" not in text  # not approved: nothing was shouted
    assert any("injected-parameters" in c.metadata.get("tags", []) for c in nb.cells)
