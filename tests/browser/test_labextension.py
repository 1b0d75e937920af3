"""The ``jupyter-workflows`` JupyterLab extension in a real JupyterLab 4 and Notebook 7.

What is checked is what a user sees:

* a notebook run, saved, and reopened (a fresh kernel that has none of the widget models)
  shows every graph output with its last known task statuses, read-only, and never
  "Error displaying widget: model not found" (JupyterLab and Notebook 7);
* while the kernel runs, the live widget replaces the saved picture in the same output;
* five graph widgets cost well under 1 MB over the kernel's websocket: the front end comes
  from the extension, once per page, not with every widget.

Design
------
* The server is the one of ``test_jupyterlab_quickstart`` (own config, data, runtime,
  settings folders; inline executor), plus ``JUPYTER_PATH`` naming a folder whose
  ``labextensions/jupyter-workflows`` is a link to this checkout's built extension
  (``jupyter_workflows/labextension``): the extension under test is the one in the working
  tree, and the shared environment is left alone. When the package is installed with its
  extension (``pip install .``) the installed copy would be found as well; the link comes
  first in the path and wins.
* The extension must be built (``labextension/``: ``npm run build``); its built assets are
  committed, so a checkout has them.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import nbformat
import pytest
from test_jupyterlab_quickstart import (
    KERNEL_READY_MS,
    LAB_SETTINGS,
    REPO,
    RUN_DONE_MS,
    TOKEN,
    Lab,
    _free_port,
    _playwright_sync_api,
    _stop,
    _wait_for_server,
    chromium_page,
    code_cell,
    run_all_cells,
)

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.timeout(600)]

EXTENSION = REPO / "jupyter_workflows" / "labextension"
GRAPH_MIME = "application/vnd.jupyter-workflows.graph+json"
WIDGET_MIME = "application/vnd.jupyter.widget-view+json"


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    """``jupyter lab`` on 127.0.0.1 with this checkout's extension on its labextensions path."""
    _playwright_sync_api()
    if not (EXTENSION / "package.json").is_file():
        pytest.fail("the extension is not built: cd labextension && npm ci && npm run build")
    base = tmp_path_factory.mktemp("labext")
    root, runtime = base / "root", base / "runtime"
    root.mkdir()
    settings = base / "settings"
    for relative, values in LAB_SETTINGS.items():
        path = settings / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(values))
    share = base / "share" / "jupyter"
    (share / "labextensions").mkdir(parents=True)
    (share / "labextensions" / "jupyter-workflows").symlink_to(EXTENSION)

    env = dict(os.environ)
    env.pop("JUPYTER_WORKFLOWS_SCHEDULER", None)
    env.update(
        {
            "JUPYTER_WORKFLOWS_EXECUTOR": "inline",
            "JUPYTER_WORKFLOWS_STORE": str(base / "state.db"),
            "JUPYTER_CONFIG_DIR": str(base / "config"),
            "JUPYTER_DATA_DIR": str(base / "data"),
            "JUPYTER_PATH": os.pathsep.join(filter(None, [str(share), env.get("JUPYTER_PATH")])),
            "JUPYTER_RUNTIME_DIR": str(runtime),
            "JUPYTERLAB_SETTINGS_DIR": str(settings),
            "JUPYTERLAB_WORKSPACES_DIR": str(base / "workspaces"),
            "IPYTHONDIR": str(base / "ipython"),
            "JUPYTER_PLATFORM_DIRS": "1",
            "PYDEVD_DISABLE_FILE_VALIDATION": "1",
        }
    )
    port = _free_port()
    log = base / "server.log"
    command = [
        sys.executable,
        "-m",
        "jupyterlab",
        "--no-browser",
        "--ip=127.0.0.1",
        f"--port={port}",
        "--port-retries=0",
        f"--IdentityProvider.token={TOKEN}",
        f"--ServerApp.root_dir={root}",
        "--ServerApp.allow_root=True",
        "--LabApp.news_url=None",
        "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
        "--LabApp.extension_manager=readonly",
    ]
    with log.open("wb") as out:
        proc = subprocess.Popen(
            command,
            cwd=root,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    server = Lab(proc=proc, port=port, root=root, runtime=runtime, log=log)
    try:
        _wait_for_server(server)
        yield server
    finally:
        _stop(server)


def _notebook(name: str, cells: list[str], lab: Lab) -> None:
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3 (ipykernel)",
        "language": "python",
    }
    nb.cells = [nbformat.v4.new_code_cell(source) for source in cells]
    nbformat.write(nb, str(lab.root / name))


def _wait_idle(page: Any) -> None:
    page.locator("#jp-main-statusbar .jp-StatusBar-TextItem", has_text="| Idle").wait_for(
        timeout=KERNEL_READY_MS
    )


def _open_lab(page: Any, lab: Lab, name: str) -> None:
    page.goto(lab.url(f"/lab/tree/{name}?reset"))
    page.locator(".jp-Notebook").first.wait_for(timeout=KERNEL_READY_MS)
    _wait_idle(page)


def _save(page: Any) -> None:
    page.locator(".jp-Notebook").first.click()
    page.keyboard.press("Control+s")


def _shutdown_kernels(lab: Lab) -> None:
    for session in lab.api("/api/sessions"):
        with contextlib.suppress(Exception):
            lab.api(f"/api/sessions/{session['id']}", method="DELETE")


def _saved_graph_outputs(lab: Lab, name: str) -> list[dict[str, Any]]:
    nb = lab.api(f"/api/contents/{name}?content=1")["content"]
    found = []
    for cell in nb["cells"]:
        for output in cell.get("outputs", []):
            data = output.get("data") or {}
            if GRAPH_MIME in data:
                found.append(data)
    return found


HELLO_TASKS = """\
import jupyter_workflows as jw

@jw.task
def twice(x: int) -> int:
    return 2 * x
"""

SAVED_WORKFLOW = """\
%%workflow saved --run
tasks:
  first:
    action: twice
    input: {x: 2}
    on_success: [second]
    on_failure: [never]
  second:
    action: twice
    input: {x: "{{ task.first.result }}"}
    on_success: [third]
  third:
    action: core.echo
    input: {message: done}
  never:
    action: core.echo
    input: {message: unreachable}
"""


def _expect_saved_graph(page: Any, cell_text: str) -> Any:
    """The output of the cell containing ``cell_text`` shows the saved graph, statuses included."""
    cell = code_cell(page, cell_text)
    picture = cell.locator('[data-testid="jw-static"]')
    for task in ("first", "second", "third"):
        picture.locator(f'[data-testid="jw-node-{task}"][data-status="succeeded"]').wait_for(
            timeout=RUN_DONE_MS
        )
    never = picture.locator('[data-testid="jw-node-never"]').get_attribute("data-status")
    assert never in ("none", "skipped")
    picture.locator('[data-testid="jw-run-status"]', has_text="succeeded").wait_for()
    return cell


def test_saved_notebook_reopens_with_its_graphs(lab: Lab, tmp_path: Path) -> None:
    """Run, save, shut the kernel down, reopen: the graphs are there with their statuses."""
    name = "saved.ipynb"
    _notebook(name, ["%load_ext jupyter_workflows", HELLO_TASKS, SAVED_WORKFLOW.rstrip()], lab)
    with chromium_page(lab, tmp_path) as page:
        _open_lab(page, lab, name)
        run_all_cells(page)
        cell = code_cell(page, "%%workflow saved")
        live = cell.locator('.jw-output[data-live="true"] .jw-output-live [data-testid="jw-root"]')
        for task in ("first", "second", "third"):
            live.locator(f'[data-testid="jw-node-{task}"][data-status="succeeded"]').wait_for(
                timeout=RUN_DONE_MS
            )
        # The live widget replaced the picture in the same output.
        assert cell.locator('[data-testid="jw-static"]').is_hidden()
        live.locator('[data-testid="jw-run-status"]', has_text="succeeded").wait_for()
        _wait_idle(page)
        _save(page)
        page.wait_for_function(
            "() => !document.querySelector('.jp-mod-current .jp-mod-dirty, .jp-Document.jp-mod-dirty')",
            timeout=30_000,
        )

    saved = _saved_graph_outputs(lab, name)
    assert saved, "no output of the saved notebook carries the graph data"
    (data,) = saved
    assert WIDGET_MIME in data and "text/html" in data
    graph = data[GRAPH_MIME]
    assert {n["id"] for n in graph["graph"]["nodes"]} == {"first", "second", "third", "never"}
    assert graph["run"]["status"] == "succeeded"
    states = {t: s["status"] for t, s in graph["status"].items()}
    assert states.pop("never", "skipped") == "skipped"
    assert states == {"first": "succeeded", "second": "succeeded", "third": "succeeded"}
    assert "succeeded" in data["text/html"]  # the nbconvert / GitHub fallback shows statuses

    _shutdown_kernels(lab)
    with chromium_page(lab, tmp_path / "lab") as page:
        # Reopen: a new kernel, none of the saved widget models.
        _open_lab(page, lab, name)
        _expect_saved_graph(page, "%%workflow saved")
        assert page.get_by_text("Error displaying widget").count() == 0
        # The saved view is read-only but still lets one look at a task.
        picture = code_cell(page, "%%workflow saved").locator('[data-testid="jw-static"]')
        assert picture.locator('[data-testid="jw-edit-toggle"]').count() == 0
        picture.locator('[data-testid="jw-node-second"]').click()
        picture.locator('[data-testid="jw-panel"][data-task="second"]').wait_for()
        page.screenshot(path=str(tmp_path / "reopened-lab.png"))

    _shutdown_kernels(lab)
    with chromium_page(lab, tmp_path / "nb7") as page:
        # Notebook 7 serves the same notebook at /notebooks/ with the same extensions.
        page.goto(lab.url(f"/notebooks/{name}"))
        page.locator(".jp-Notebook").first.wait_for(timeout=KERNEL_READY_MS)
        _expect_saved_graph(page, "%%workflow saved")
        assert page.get_by_text("Error displaying widget").count() == 0
        page.screenshot(path=str(tmp_path / "reopened-nb7.png"))
    _shutdown_kernels(lab)


def _five_workflows() -> list[str]:
    cells = ["%load_ext jupyter_workflows"]
    for i in range(5):
        tasks = "\n".join(
            f"  t{i}_{k}:\n    action: core.echo\n    input: {{message: '{k}'}}\n"
            + (f"    on_success: [t{i}_{k + 1}]" if k < 7 else "")
            for k in range(8)
        )
        cells.append(f"%%workflow five{i}\ntasks:\n{tasks}")
    return cells


def test_five_widgets_cost_well_under_a_megabyte(lab: Lab, tmp_path: Path) -> None:
    """Five graph widgets: the kernel's websocket carries far less than 1 MB in all."""
    name = "five.ipynb"
    _notebook(name, _five_workflows(), lab)
    received: list[int] = []

    def on_socket(ws: Any) -> None:
        if "/api/kernels/" in ws.url:
            ws.on(
                "framereceived",
                lambda payload: received.append(
                    len(payload) if isinstance(payload, (bytes, str)) else 0
                ),
            )

    with chromium_page(lab, tmp_path) as page:
        page.on("websocket", on_socket)
        _open_lab(page, lab, name)
        run_all_cells(page)
        for i in range(5):
            code_cell(page, f"%%workflow five{i}").locator(
                f'.jw-output[data-live="true"] .jw-output-live [data-testid="jw-node-t{i}_7"]'
            ).wait_for(timeout=RUN_DONE_MS)
        _wait_idle(page)
        total = sum(received)
        print(f"websocket bytes received for five widgets: {total}")
        assert total < 1_000_000, total
        # The page never asked the kernel for the whole bundle: the extension had it.
        assert page.evaluate("() => Boolean(globalThis.__jupyter_workflows__?.widget)")
        assert page.evaluate("() => !globalThis.__jupyter_workflows_fallback__")
    _shutdown_kernels(lab)
