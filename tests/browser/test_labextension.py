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
* The server is ``conftest.py``'s ``lab_with_extension`` (``lab_helpers.start_lab``: own
  config, data, runtime, settings folders; inline executor), with ``JUPYTER_PATH`` naming a
  folder whose ``labextensions/jupyter-workflows`` is a link to this checkout's built extension
  (``jupyter_workflows/labextension``): the extension under test is the one in the working
  tree, and the shared environment is left alone. When the package is installed with its
  extension (``pip install .``) the installed copy would be found as well; the link comes
  first in the path and wins.
* The extension must be built (``labextension/``: ``npm run build``); its built assets are
  committed, so a checkout has them.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from lab_helpers import (
    KERNEL_READY_MS,
    REPO,
    RUN_DONE_MS,
    Lab,
    chromium_page,
    code_cell,
    drag,
    run_all_cells,
    write_notebook,
)

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.timeout(600)]

UI_WAIT_MS = 30_000
GRAPH_MIME = "application/vnd.jupyter-workflows.graph+json"
WIDGET_MIME = "application/vnd.jupyter.widget-view+json"


@pytest.fixture(scope="module")
def lab(lab_with_extension: Lab) -> Lab:
    """This module's server: this checkout's built extension first on the labextensions path."""
    return lab_with_extension


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
    write_notebook(lab, name, ["%load_ext jupyter_workflows", HELLO_TASKS, SAVED_WORKFLOW.rstrip()])
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
    write_notebook(lab, name, _five_workflows())
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


def _big_workflow(branches: int = 20, steps: int = 9) -> str:
    """``%%workflow big --run``: a start task, ``branches`` chains of ``steps`` tasks, 200 in all."""
    lines = [
        "%%workflow big --run",
        "tasks:",
        "  start_everything:",
        "    action: core.noop",
        f"    on_success: [{', '.join(f'region_{b:02d}_extract' for b in range(branches))}]",
    ]
    names = ["extract"] + [f"transform_stage_{k}" for k in range(1, steps - 1)] + ["load"]
    for b in range(branches):
        for k, step in enumerate(names):
            lines.append(f"  region_{b:02d}_{step}:")
            if k == 3:
                lines.append("    action: core.echo")
                lines.append("    with_items: [1, 2, 3]")
                lines.append("    input: {message: '{{ item }}'}")
            else:
                # A little work per step, so the run is still updating once the graph is drawn.
                lines.append("    action: core.sleep")
                lines.append("    input: {seconds: 0.3}")
            if k + 1 < len(names):
                lines.append(f"    on_success: [region_{b:02d}_{names[k + 1]}]")
    for j in range(200 - 1 - branches * steps):
        lines.append(f"  report_{j:02d}:")
        lines.append("    action: core.noop")
        lines.append(f"    needs: [region_{j:02d}_load]")
    return "\n".join(lines)


#: Page script: every animation frame's gap and every long task (the browser's own > 50 ms
#: main-thread tasks), from ``reset()`` on.
FRAME_PROBE = """
(() => {
  const f = { count: 0, max: 0, over200: 0, longtasks: [], start: performance.now() };
  f.reset = () => { f.count = 0; f.max = 0; f.over200 = 0; f.longtasks = []; f.start = performance.now(); };
  f.snapshot = () => ({ count: f.count, max: f.max, over200: f.over200,
                        longtasks: f.longtasks.slice(), span: performance.now() - f.start });
  globalThis.__jw_frames__ = f;
  let prev;
  const tick = (t) => {
    if (prev !== undefined && t >= f.start) {
      const gap = t - prev;
      f.count += 1;
      if (gap > f.max) f.max = gap;
      if (gap > 200) f.over200 += 1;
    }
    prev = t;
    requestAnimationFrame(tick);
  };
  requestAnimationFrame(tick);
  try {
    new PerformanceObserver((list) => {
      for (const e of list.getEntries()) if (e.startTime >= f.start) f.longtasks.push(e.duration);
    }).observe({ type: "longtask", buffered: true });
  } catch (e) { /* no long-task timing in this browser */ }
})();
"""


def test_a_200_task_graph_is_readable(lab: Lab, tmp_path: Path) -> None:
    """200 tasks: every box drawn with its full name at a readable size, an overview map,
    Ctrl+wheel zooms (the plain wheel scrolls the notebook), `with_items` shows done/total."""
    source = _big_workflow()
    name = "big.ipynb"
    write_notebook(lab, name, ["%load_ext jupyter_workflows", source])
    with chromium_page(lab, tmp_path) as page:
        page.add_init_script(FRAME_PROBE)
        _open_lab(page, lab, name)
        page.evaluate("() => globalThis.__jw_frames__.reset()")  # from here: the run
        run_all_cells(page)
        cell = code_cell(page, "%%workflow big")
        live = cell.locator('.jw-output[data-live="true"] .jw-output-live [data-testid="jw-root"]')
        live.locator('[data-testid="jw-node-start_everything"]').wait_for(timeout=RUN_DONE_MS)
        drawn = page.evaluate("() => globalThis.__jw_frames__.snapshot()")
        page.evaluate("() => globalThis.__jw_frames__.reset()")  # from here: updates only
        live.locator('[data-testid="jw-run-status"]', has_text="succeeded").wait_for(
            timeout=RUN_DONE_MS * 2
        )
        frames = page.evaluate("() => globalThis.__jw_frames__.snapshot()")
        print(
            f"frames until the 200-task graph was first drawn: {drawn['count']} frames in "
            f"{drawn['span']:.0f} ms, longest {drawn['max']:.0f} ms, {drawn['over200']} over 200 ms; "
            f"long tasks {len(drawn['longtasks'])}, longest {max(drawn['longtasks'], default=0):.0f} ms"
        )
        # ELK ran in a Web Worker (layout.ts falls back to the main thread only where no
        # worker can be made; headless Chromium can make one).
        assert page.evaluate("() => globalThis.__jupyterWorkflowsElk") == "worker"
        assert live.locator('[data-testid^="jw-node-"]').count() == 200
        assert live.locator('[data-testid^="jw-node-"][data-status="succeeded"]').count() == 200
        layout_ms = page.evaluate("() => globalThis.__jw_last_layout_ms__")
        print(f"200-task layout in the browser: {layout_ms:.0f} ms")
        # Frames from Run All to the first drawing, then to "succeeded" (live updates): printed
        # for docs/performance.md, not asserted on (timing depends on the machine's load).
        print(
            f"frames after that, while the run updated: {frames['count']} frames in "
            f"{frames['span']:.0f} ms, longest {frames['max']:.0f} ms, "
            f"{frames['over200']} over 200 ms; long tasks {len(frames['longtasks'])}, "
            f"longest {max(frames['longtasks'], default=0):.0f} ms"
        )
        assert frames["count"] > 0  # the probe ran: requestAnimationFrame ticked during the run

        # Full names: the longest one is not cut.
        label = live.locator('[data-testid="jw-node-region_00_transform_stage_7"] .jw-node-label')
        assert label.evaluate("el => el.scrollWidth <= el.clientWidth")
        # Readable: text drawn at 9 px or more on screen.
        box = label.bounding_box()
        assert box is not None and box["height"] >= 9, box
        # The canvas grew with the graph, up to its limit.
        canvas = live.locator('[data-testid="jw-canvas"]').bounding_box()
        assert canvas is not None and 600 <= canvas["height"] <= 740, canvas
        # An overview map for a graph bigger than the canvas.
        assert live.locator(".react-flow__minimap").count() == 1
        # with_items: done/total on the box.
        assert (
            live.locator('[data-testid="jw-progress-region_03_transform_stage_3"]').inner_text()
            == "3/3 items"
        )

        shot = tmp_path / "big-graph.png"
        live.screenshot(path=str(shot))
        print(f"screenshot: {shot}")

        # The plain wheel scrolls the page; Ctrl + wheel zooms the graph.
        viewport = live.locator(".react-flow__viewport")
        before = viewport.evaluate("el => el.style.transform")
        canvas_box = live.locator('[data-testid="jw-canvas"]').bounding_box()
        assert canvas_box is not None
        page.mouse.move(canvas_box["x"] + 200, canvas_box["y"] + 200)
        page.mouse.wheel(0, 200)
        page.wait_for_timeout(300)  # no event to wait on: a wheel that did nothing
        assert viewport.evaluate("el => el.style.transform") == before
        pane = live.locator(".react-flow__pane")
        pane.scroll_into_view_if_needed()  # the page scrolled
        canvas_box = pane.bounding_box()
        assert canvas_box is not None
        page.mouse.move(canvas_box["x"] + 300, canvas_box["y"] + canvas_box["height"] / 2)
        page.keyboard.down("Control")
        page.mouse.wheel(0, -300)
        page.keyboard.up("Control")
        page.wait_for_function(
            "([el, before]) => el.style.transform !== before",
            arg=[viewport.element_handle(), before],
        )
    _shutdown_kernels(lab)


APPROVE_YAML = """\
# Waits for a human, then says so.
name: approve_me
tasks:
  ask:
    action: core.inquiry
    input:
      prompt: Ship it?
      schema:
        type: object
        properties: {approved: {type: boolean}}
        required: [approved]
    on_success: [announce]
  announce:
    action: core.echo
    input: {message: "approved={{ task.ask.result.approved }}"}
"""


#: Page scripts that take the Web Worker away from the graph's ELK layout: no ``Worker`` at all,
#: or one whose script fails when it starts (what a content security policy without ``blob:``
#: does to it).
NO_WORKER = {
    "no_worker_class": "globalThis.Worker = undefined;",
    "worker_fails": """
      const Real = globalThis.Worker;
      globalThis.Worker = class extends Real {
        constructor(url, options) {
          super(URL.createObjectURL(new Blob(["throw new Error('blocked by the test')"])), options);
        }
      };
    """,
}


@pytest.mark.parametrize("how", sorted(NO_WORKER))
def test_the_graph_is_laid_out_on_the_main_thread_without_a_worker(
    lab: Lab, tmp_path: Path, how: str
) -> None:
    """Where no Web Worker can be made, or it fails, ELK runs on the main thread: the graph
    is drawn all the same."""
    name = f"noworker_{how}.ipynb"
    write_notebook(lab, name, ["%load_ext jupyter_workflows", HELLO_TASKS, SAVED_WORKFLOW.rstrip()])
    with chromium_page(lab, tmp_path) as page:
        page.add_init_script(NO_WORKER[how])
        _open_lab(page, lab, name)
        run_all_cells(page)
        cell = code_cell(page, "%%workflow saved")
        live = cell.locator('.jw-output[data-live="true"] .jw-output-live [data-testid="jw-root"]')
        live.locator('[data-testid="jw-run-status"]', has_text="succeeded").wait_for(
            timeout=RUN_DONE_MS
        )
        for task in ("first", "second", "third", "never"):
            box = live.locator(f'[data-testid="jw-node-{task}"]').bounding_box()
            assert box is not None and box["width"] > 0, task
        # Laid out by ELK (layered, top to bottom), not the grid of a failed layout.
        first = live.locator('[data-testid="jw-node-first"]').bounding_box()
        second = live.locator('[data-testid="jw-node-second"]').bounding_box()
        third = live.locator('[data-testid="jw-node-third"]').bounding_box()
        assert first["y"] < second["y"] < third["y"], (first, second, third)
        assert page.evaluate("() => globalThis.__jupyterWorkflowsElk") == "main-thread"
        _shutdown_kernels(lab)


def test_runs_panel_shows_a_cli_run_and_answers_its_inquiry(lab: Lab, tmp_path: Path) -> None:
    """A run started by ``jupyter-workflows run`` shows in the sidebar; its inquiry is answered
    from the panel's form, Resume finishes it, its graph opens in a tab, a task's logs show."""
    (lab.root / "approve.yaml").write_text(APPROVE_YAML)
    env = dict(os.environ)
    env.update(
        {
            "JUPYTER_WORKFLOWS_EXECUTOR": "inline",
            "JUPYTER_WORKFLOWS_STORE": str(lab.root.parent / "state.db"),
        }
    )
    env.pop("JUPYTER_WORKFLOWS_SCHEDULER", None)
    cli = subprocess.run(
        [sys.executable, "-m", "jupyter_workflows", "run", "approve.yaml"],
        cwd=lab.root,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert cli.returncode == 3, cli.stdout + cli.stderr  # waiting for the answer
    run_id = cli.stdout.split()[1]

    with chromium_page(lab, tmp_path) as page:
        page.goto(lab.url("/lab?reset"))
        page.locator(".jw-runs-icon").first.click()
        panel = page.locator('[data-testid="jw-runs-panel"]')
        row = panel.locator(f'[data-testid="jw-run-{run_id}"]')
        row.wait_for(timeout=RUN_DONE_MS)
        assert row.get_attribute("data-status") == "waiting"
        assert "approve_me" in row.inner_text()

        # Filters: another status hides it, the workflow's name keeps it.
        panel.locator('[data-testid="jw-runs-filter-status"]').select_option("succeeded")
        row.wait_for(state="detached")
        panel.locator('[data-testid="jw-runs-filter-status"]').select_option("")
        panel.locator('[data-testid="jw-runs-filter-workflow"]').fill("approve_me")
        row.wait_for()

        row.click()
        details = panel.locator(f'[data-testid="jw-run-details-{run_id}"]')
        form = details.locator('[data-testid="jw-inquiry-ask"]')
        form.wait_for(timeout=RUN_DONE_MS)
        assert "Ship it?" in form.inner_text()
        form.locator('input[type="checkbox"]').check()
        form.locator('[data-testid="jw-inquiry-submit-ask"]').click()
        details.locator('[data-testid="jw-run-notice"]').wait_for()
        assert details.locator('[data-testid="jw-inquiry-error-ask"]').count() == 0

        # The CLI process is gone: Resume lets the server finish the run with the answer.
        if row.get_attribute("data-status") != "succeeded":
            details.locator('[data-testid="jw-run-resume"]').click()
        panel.locator(f'[data-testid="jw-run-{run_id}"][data-status="succeeded"]').wait_for(
            timeout=RUN_DONE_MS
        )
        details.locator('[data-testid="jw-run-task-announce"][data-status="succeeded"]').wait_for(
            timeout=RUN_DONE_MS
        )

        # The run's graph in a main-area tab, with its statuses.
        details.locator('[data-testid="jw-run-open"]').click()
        graph = page.locator('[data-testid="jw-run-graph"]')
        graph.locator('[data-testid="jw-node-announce"][data-status="succeeded"]').wait_for(
            timeout=RUN_DONE_MS
        )
        assert (
            graph.locator('[data-testid="jw-node-ask"]').get_attribute("data-status") == "succeeded"
        )

        # A task's logs.
        details.locator('[data-testid="jw-run-logs-announce"]').click()
        logs = details.locator('[data-testid="jw-run-logs"]')
        logs.wait_for()
        page.wait_for_function(
            "el => el.textContent !== '…'", arg=logs.element_handle(), timeout=UI_WAIT_MS
        )
        page.screenshot(path=str(tmp_path / "runs-panel.png"))

    # The store agrees: the answer reached the run.
    summary = lab.api(f"/workflows/api/runs/{run_id}")
    assert summary["status"] == "succeeded"
    ask = [t for t in summary["tasks"] if t["task"] == "ask"][-1]
    assert ask["result"] == {"approved": True}


def test_workflow_editor_adds_a_task_and_saves_the_file(lab: Lab, tmp_path: Path) -> None:
    """notebooks/hello.yaml via Open With > Workflow Editor: add a task in the graph's bar,
    save; the file on disk is a valid workflow and its comments and quoting survived."""
    import jupyter_workflows as jw

    original = (REPO / "notebooks" / "hello.yaml").read_text()
    (lab.root / "hello.yaml").write_text(original)
    shutil.copy(REPO / "notebooks" / "hello_tasks.py", lab.root / "hello_tasks.py")
    with chromium_page(lab, tmp_path) as page:
        page.goto(lab.url("/lab?reset"))
        item = page.locator(".jp-DirListing-item", has_text="hello.yaml")
        item.click(button="right")
        page.locator(".lm-Menu-itemLabel", has_text="Open With").click()
        page.locator(".lm-Menu-itemLabel", has_text="Workflow Editor").click()
        editor = page.locator('[data-testid="jw-workflow-editor"]')
        editor.wait_for(timeout=UI_WAIT_MS)
        for task in ("greet", "visit", "gather"):
            editor.locator(f'[data-testid="jw-node-{task}"]').wait_for(timeout=UI_WAIT_MS)
        editor.locator('[data-testid="jw-editor-valid"]').wait_for()
        assert "# A small workflow" in editor.locator(".cm-content").inner_text()
        # One way to add a task: the editor's bar (with its "after" list), not a second one in
        # the graph's edit bar, which keeps its connect and YAML controls.
        editor.locator('[data-testid="jw-editbar"]').wait_for()
        assert editor.get_by_role("button", name="Add task", exact=True).count() == 1
        assert editor.locator('[data-testid="jw-add-name"]').count() == 0
        assert editor.locator('[data-testid="jw-connect-kind"]').count() == 1

        # A refused edit (an action that does not exist) changes nothing and says why.
        editor.locator('[data-testid="jw-editor-add-name"]').fill("broken")
        editor.locator('[data-testid="jw-editor-add-action"]').fill("no_such_module:nothing")
        editor.locator('[data-testid="jw-editor-add-submit"]').click()
        error = editor.locator('[data-testid="jw-editor-error"]')
        error.wait_for()
        assert "no_such_module" in error.inner_text()
        assert "broken:" not in editor.locator(".cm-content").inner_text()

        editor.locator('[data-testid="jw-editor-add-name"]').fill("report")
        editor.locator('[data-testid="jw-editor-add-action"]').fill("core.echo")
        editor.locator('[data-testid="jw-editor-add-after"]').select_option("gather")
        editor.locator('[data-testid="jw-editor-add-submit"]').click()
        editor.locator('[data-testid="jw-node-report"]').wait_for(timeout=UI_WAIT_MS)
        assert "report:" in editor.locator(".cm-content").inner_text()
        # The document is modified (not saved yet): the tab says so.
        page.locator(".jp-mod-current.jp-mod-dirty, .lm-TabBar-tab.jp-mod-dirty").first.wait_for()
        assert (lab.root / "hello.yaml").read_text() == original

        editor.locator(".cm-content").click()
        page.keyboard.press("Control+s")
        page.wait_for_function(
            "() => !document.querySelector('.lm-TabBar-tab.jp-mod-dirty')", timeout=UI_WAIT_MS
        )
        page.screenshot(path=str(tmp_path / "workflow-editor.png"))

    saved = (lab.root / "hello.yaml").read_text()
    workflow = jw.load(lab.root / "hello.yaml")
    workflow.validate()
    assert "report" in workflow.compiled.tasks
    for line in original.splitlines():
        if line.strip():
            assert line in saved, f"lost: {line!r}"


DROPPED_PY = """\
\"\"\"Tasks dropped onto the Workflow Editor in the browser test.\"\"\"


def _helper(x):
    return x


def summarize(values=(1, 2, 3)):
    return {"n": len(values), "total": sum(values)}


async def later():
    return "later"
"""


def test_files_dragged_from_the_file_browser_become_tasks(lab: Lab, tmp_path: Path) -> None:
    """Drag a notebook and a .py file from JupyterLab's file browser onto the Workflow
    Editor's graph: a core.notebook task and a module:function task (the first public
    function, with a note naming the others); save; the file validates, comments kept; undo
    takes a drop back."""
    original = (REPO / "notebooks" / "hello.yaml").read_text()
    (lab.root / "dropping.yaml").write_text(original)
    shutil.copy(REPO / "notebooks" / "hello_tasks.py", lab.root / "hello_tasks.py")
    write_notebook(lab, "clean_data.ipynb", ["x = 1"])
    (lab.root / "stats_tasks.py").write_text(DROPPED_PY)
    with chromium_page(lab, tmp_path) as page:
        editor = _open_in_workflow_editor(page, lab, "dropping.yaml")
        editor.locator('[data-testid="jw-node-gather"]').wait_for(timeout=UI_WAIT_MS)
        canvas = editor.locator(".react-flow").first
        listing = page.locator(".jp-FileBrowser .jp-DirListing-item")

        drag(page, listing.filter(has_text="clean_data.ipynb"), canvas)
        editor.locator('[data-testid="jw-node-clean_data"]').wait_for(timeout=UI_WAIT_MS)
        drag(page, listing.filter(has_text="stats_tasks.py"), canvas)
        editor.locator('[data-testid="jw-node-summarize"]').wait_for(timeout=UI_WAIT_MS)
        notice = editor.locator('[data-testid="jw-editor-valid"]')
        page.wait_for_function(
            "el => el.textContent.includes('also has later')",
            arg=notice.element_handle(),
            timeout=UI_WAIT_MS,
        )
        text = editor.locator(".cm-content").inner_text()
        assert "action: core.notebook" in text and "clean_data.ipynb" in text, text
        assert "action: stats_tasks:summarize" in text, text
        page.locator(".lm-TabBar-tab.jp-mod-dirty").first.wait_for()
        assert (lab.root / "dropping.yaml").read_text() == original

        # Undo takes the last drop back (one step), redo puts it again.
        editor.locator(".cm-content").click()
        page.keyboard.press("Control+z")
        page.wait_for_function(
            "el => !el.textContent.includes('stats_tasks:summarize')",
            arg=editor.locator(".cm-content").element_handle(),
            timeout=UI_WAIT_MS,
        )
        page.keyboard.press("Control+Shift+z")
        page.wait_for_function(
            "el => el.textContent.includes('stats_tasks:summarize')",
            arg=editor.locator(".cm-content").element_handle(),
            timeout=UI_WAIT_MS,
        )
        page.keyboard.press("Control+s")
        page.wait_for_function(
            "() => !document.querySelector('.lm-TabBar-tab.jp-mod-dirty')", timeout=UI_WAIT_MS
        )

    saved = (lab.root / "dropping.yaml").read_text()
    checked = subprocess.run(
        [sys.executable, "-m", "jupyter_workflows", "validate", "dropping.yaml"],
        cwd=lab.root,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    import jupyter_workflows as jw

    workflow = jw.load(lab.root / "dropping.yaml")
    tasks = workflow.compiled.tasks
    assert "clean_data" in tasks and "summarize" in tasks, list(tasks)
    for line in original.splitlines():
        if line.strip():
            assert line in saved, f"lost: {line!r}"
    assert "path: clean_data.ipynb" in saved, saved


def _open_in_workflow_editor(page: Any, lab: Lab, name: str) -> Any:
    page.goto(lab.url("/lab?reset"))
    item = page.locator(".jp-DirListing-item", has_text=name)
    item.click(button="right")
    page.locator(".lm-Menu-itemLabel", has_text="Open With").click()
    page.locator(".lm-Menu-itemLabel", has_text="Workflow Editor").click()
    editor = page.locator('[data-testid="jw-workflow-editor"]')
    editor.wait_for(timeout=UI_WAIT_MS)
    return editor


def test_workflow_editor_connects_removes_and_marks_errors(lab: Lab, tmp_path: Path) -> None:
    """The editor's graph side: drag a handle to connect, delete an edge (button) and a task
    (Delete key), undo in the text; a positioned error is underlined in the text, listed, and
    clicking it puts the cursor on its line; saved, the file keeps its comments."""

    import jupyter_workflows as jw

    original = (REPO / "notebooks" / "hello.yaml").read_text()
    (lab.root / "hello2.yaml").write_text(original)
    shutil.copy(REPO / "notebooks" / "hello_tasks.py", lab.root / "hello_tasks.py")
    with chromium_page(lab, tmp_path) as page:
        editor = _open_in_workflow_editor(page, lab, "hello2.yaml")
        text = editor.locator(".cm-content")
        for task in ("greet", "visit", "gather"):
            editor.locator(f'[data-testid="jw-node-{task}"]').wait_for(timeout=UI_WAIT_MS)
        # The graph side opens in edit mode: handles are there.
        editor.locator('[data-testid="jw-handle-out-greet"]').wait_for(timeout=UI_WAIT_MS)

        # Connect greet -> gather by a drag: one more on_success target in the text.
        drag(
            page,
            editor.locator('[data-testid="jw-handle-out-greet"]'),
            editor.locator('[data-testid="jw-handle-in-gather"]'),
        )
        edge = editor.locator('[aria-label="Edge from greet to gather"]')
        edge.wait_for(state="attached", timeout=UI_WAIT_MS)
        page.wait_for_function(
            "() => /on_success: \\[visit, gather\\]|- gather/.test("
            "document.querySelector('[data-testid=jw-workflow-editor] .cm-content').innerText)",
            timeout=UI_WAIT_MS,
        )
        assert "# A small workflow" in text.inner_text()
        page.locator(".lm-TabBar-tab.jp-mod-dirty").first.wait_for()

        # Delete that edge with the bar's button.
        # (The edge runs behind the visit node, where a pointer cannot reach it: click it as
        # the edge's own element gets the click.)
        edge.dispatch_event("click")
        editor.locator('[data-testid="jw-edge-delete"]').click()
        edge.wait_for(state="detached", timeout=UI_WAIT_MS)
        assert "gather]" not in text.inner_text()

        # Remove a task: select it, press Delete. Its references go with it.
        editor.locator('[data-testid="jw-node-gather"]').click()
        page.keyboard.press("Delete")
        editor.locator('[data-testid="jw-node-gather"]').wait_for(
            state="detached", timeout=UI_WAIT_MS
        )
        assert "gather:" not in text.inner_text()
        assert "# A small workflow" in text.inner_text()

        # Undo in the text brings it back (one step), and the graph follows.
        text.click()
        page.keyboard.press("Control+z")
        editor.locator('[data-testid="jw-node-gather"]').wait_for(timeout=UI_WAIT_MS)
        assert "gather:" in text.inner_text()

        # A positioned error: underlined in the text, listed; a click moves the cursor there.
        lines = text.inner_text().splitlines()
        line = next(i for i, s in enumerate(lines, 1) if "batch_size" in s)
        editor.locator(".cm-line", has_text="batch_size").click()
        page.keyboard.press("End")
        page.keyboard.press("Enter")
        page.keyboard.type("retyr: 3")
        error = editor.locator('[data-testid="jw-editor-error"]')
        error.wait_for(timeout=UI_WAIT_MS)
        assert "retyr" in error.inner_text()
        assert error.get_attribute("data-line") == str(line + 1), error.inner_text()
        mark = editor.locator(".cm-lintRange-error")
        mark.wait_for(timeout=UI_WAIT_MS)
        assert "retyr" in mark.inner_text()
        editor.locator(".cm-line", has_text="# A small workflow").click()  # cursor away
        error.click()
        # The cursor is on the error's line (else the error stays): take that line out again.
        page.keyboard.press("Home")
        page.keyboard.press("Shift+End")
        page.keyboard.press("Backspace")
        page.keyboard.press("Backspace")
        editor.locator('[data-testid="jw-editor-valid"]').wait_for(timeout=UI_WAIT_MS)
        page.wait_for_function(
            "() => !document.querySelector('[data-testid=jw-workflow-editor] .cm-lintRange-error')",
            timeout=UI_WAIT_MS,
        )
        page.screenshot(path=str(tmp_path / "workflow-editor-edits.png"))

        page.keyboard.press("Control+s")
        page.wait_for_function(
            "() => !document.querySelector('.lm-TabBar-tab.jp-mod-dirty')", timeout=UI_WAIT_MS
        )

    saved = (lab.root / "hello2.yaml").read_text()
    assert "retyr" not in saved
    workflow = jw.load(lab.root / "hello2.yaml")
    workflow.validate()
    assert "gather" in workflow.compiled.tasks
    assert workflow.spec.tasks["greet"].on_success == ["visit"]
    # Every line the edits did not touch is as the author wrote it (greet's on_success was
    # connected and disconnected again: it may come back as a one-item list).
    for line in original.splitlines():
        if line.strip() and line != "    on_success: visit":
            assert line in saved, f"lost: {line!r}"


def _run_with_a_dashboard(
    page: Any, lab: Lab, name: str, workflow: str, *more: str
) -> tuple[Any, str]:
    """Open a notebook that starts a LocalCluster of its own (dashboard on 127.0.0.1) and runs
    ``%%workflow {workflow} --run`` on it, then the cells ``more``; the widget's "Dask
    dashboard" link and the port."""
    cells = [
        "%load_ext jupyter_workflows\n"
        "import jupyter_workflows as jw\n"
        "from distributed import LocalCluster\n"
        "cluster = LocalCluster(n_workers=1, processes=False, dashboard_address='127.0.0.1:0')\n"
        "jw.configure(executor='dask', scheduler=cluster.scheduler_address)\n"
        "port = cluster.scheduler.http_server.port\n"
        "print('dashboard port', port)",
        f"%%workflow {workflow} --run\ntasks:\n  hello: {{action: core.echo, input: {{message: hi}}}}",
        *more,
    ]
    write_notebook(lab, name, cells)
    _open_lab(page, lab, name)
    run_all_cells(page)
    cell = code_cell(page, f"%%workflow {workflow}")
    link = cell.locator('[data-testid="jw-dashboard-link"]').first
    link.wait_for(timeout=RUN_DONE_MS)
    port = code_cell(page, "LocalCluster").locator(".jp-OutputArea-output").inner_text()
    return link, port.strip().rsplit(" ", 1)[-1]


def test_the_dask_dashboard_opens_inside_jupyterlab_with_dask_labextension(
    lab: Lab, tmp_path: Path
) -> None:
    """With dask-labextension installed (it is in the test extra), a plain click on the
    widget's "Dask dashboard" link opens dask-labextension's dashboard panels in JupyterLab's
    main area, pointed at the run's cluster through jupyter-server-proxy; no browser tab opens.
    The link's href stays the proxied page, for a middle click or another front end."""
    import urllib.request

    pytest.importorskip("dask_labextension", reason="dask-labextension is not installed")
    with chromium_page(lab, tmp_path) as page:
        link, port = _run_with_a_dashboard(page, lab, "dask_panels.ipynb", "panels")
        assert link.get_attribute("href") == f"/proxy/{port}/status"
        tabs_before = len(page.context.pages)
        link.click()
        # dask-labextension's panels: main-area widgets whose frames load this cluster's plots
        # through the Jupyter server.
        panels = page.locator(".dask-DaskDashboard-widget")
        frame = page.locator(f'.dask-DaskDashboard-widget iframe[src*="/proxy/{port}/individual-"]')
        frame.first.wait_for(timeout=60_000)
        assert panels.count() >= 2, panels.count()
        assert len(page.context.pages) == tabs_before, "the link opened a browser tab"
        src = frame.first.get_attribute("src") or ""
        path = src.split("://", 1)[-1].split("/", 1)[-1]
        # The frame's page is Dask's own plot, served through the proxy with Jupyter's auth.
        with urllib.request.urlopen(lab.url(f"/{path}"), timeout=60) as response:
            body = response.read().decode("utf-8", "replace")
        assert response.status == 200 and "bokeh" in body.lower(), body[:300]
        # dask-labextension's own sidebar now names this dashboard.
        value = page.locator(
            ".dask-DashboardLauncher input, .dask-DaskDashboardLauncher input"
        ).first
        assert f"/proxy/{port}" in (value.input_value() or ""), value.input_value()
    _shutdown_kernels(lab)


def test_a_dashboard_that_is_gone_is_one_notification_not_empty_panels(
    lab: Lab, tmp_path: Path
) -> None:
    """The run's cluster has stopped since its graph was drawn: a click on the "Dask dashboard"
    link, with dask-labextension installed, shows one JupyterLab notification that says the
    dashboard cannot be reached, and opens neither panels nor a browser tab."""
    import urllib.error
    import urllib.request

    pytest.importorskip("dask_labextension", reason="dask-labextension is not installed")
    closer = (
        "import os, threading, time\n"
        "def _close_when_asked():\n"
        "    while not os.path.exists('close_the_cluster'):\n"
        "        time.sleep(0.2)\n"
        "    cluster.close()\n"
        "threading.Thread(target=_close_when_asked, daemon=True).start()"
    )
    with chromium_page(lab, tmp_path) as page:
        link, port = _run_with_a_dashboard(page, lab, "dask_gone.ipynb", "gone", closer)
        (lab.root / "close_the_cluster").write_text("")
        deadline = time.monotonic() + 60
        while True:  # until the dashboard's port no longer answers
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/status", timeout=5).close()
            except (urllib.error.URLError, OSError):
                break
            assert time.monotonic() < deadline, "the cluster did not close"
            time.sleep(0.3)
        tabs_before = len(page.context.pages)
        link.click()
        toast = page.locator(".Toastify__toast", has_text="cannot be reached")
        toast.first.wait_for(timeout=60_000)
        assert toast.count() == 1, toast.count()
        assert f"/proxy/{port}" in toast.first.inner_text(), toast.first.inner_text()
        assert page.locator(".dask-DaskDashboard-widget").count() == 0
        assert len(page.context.pages) == tabs_before, "the link opened a browser tab"
    _shutdown_kernels(lab)


def test_the_dask_dashboard_is_linked_through_the_jupyter_server(lab: Lab, tmp_path: Path) -> None:
    """The widget's "Dask dashboard" link goes through jupyter-server-proxy
    (``{base_url}proxy/PORT/status``), so a browser that is not on the kernel's machine opens
    it too; the link answers with Dask's own dashboard page, behind Jupyter's auth."""
    import urllib.error
    import urllib.request

    assert lab.api("/workflows/api/")["dashboard_proxy"] == "/proxy/"
    with chromium_page(lab, tmp_path) as page:
        link, port = _run_with_a_dashboard(page, lab, "dashboard.ipynb", "dash")
        href = link.get_attribute("href") or ""
        assert href == f"/proxy/{port}/status", (href, port)
        # Through the server, with Jupyter's auth: Dask's dashboard page.
        with urllib.request.urlopen(lab.url(href), timeout=60) as response:
            body = response.read().decode("utf-8", "replace")
        assert response.status == 200 and "Dask" in body, body[:300]
        # Without the token, the proxy refuses (it is not an open port on the network).

        class NoRedirect(urllib.request.HTTPRedirectHandler):
            def redirect_request(self, *args: Any, **kwargs: Any) -> None:
                return None  # a redirect (to the login page) is raised as an HTTPError

        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.build_opener(NoRedirect()).open(f"{lab.base}{href}", timeout=30)
        assert refused.value.code in (302, 401, 403), refused.value.code
    _shutdown_kernels(lab)
