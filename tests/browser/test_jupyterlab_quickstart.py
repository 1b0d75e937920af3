"""The quickstart in a real JupyterLab, driven by headless Chromium: the widget as a user sees it.

What runs is what a user runs: ``jupyter lab`` from this environment (a real server, a real
``ipykernel``, the real ipywidgets and anywidget front ends), a copy of
``notebooks/quickstart.ipynb`` opened at ``/lab/tree/...`` and run with *Run > Run All Cells*.
The test then reads the graph widget's DOM hooks (``labextension/README.md``): every node
rendered, the nodes turning ``succeeded`` as the run goes on after the widget was displayed (the
live path: orchestrator thread -> :mod:`~jupyter_workflows.jupyter.live` -> comm -> browser),
a click on a node opening its result in the side panel. A second notebook, written here, leaves
a human approval open and answers it through the widget's form (browser -> comm ->
``Run.respond``), then sees the run finish.

Design
------
* One server per module (the ``lab`` fixture of ``conftest.py``, started by
  ``lab_helpers.start_lab``): its own process group, config, data, runtime, settings and
  workspace folders. Each test gets a fresh Chromium profile (``lab_helpers.chromium_page``).
* ``JUPYTER_WORKFLOWS_EXECUTOR=inline`` runs tasks in threads of the kernel instead of starting
  the embedded Dask cluster: the widget, the magics and the live binding are what is under test
  here (the Dask path has its own tests), and a LocalCluster on a loaded 2-core machine adds
  tens of seconds and flakiness for nothing this test looks at.
* No fixed sleeps: every step waits for the DOM or the REST API to reach a state, with generous
  limits. On a failure the page's screenshot, its console log and the server's log are saved in
  the test's ``tmp_path`` and named in the error.
* ``JW_UPDATE_SCREENSHOT=1`` also writes the quickstart's screenshot to ``docs/screenshot.png``
  (the README's picture); without it the test leaves the working tree alone.
"""

from __future__ import annotations

import os
import re
import shutil
import time
from pathlib import Path
from typing import Any

import pytest
from lab_helpers import (
    REPO,
    RUN_DONE_MS,
    UI_MS,
    Lab,
    assert_no_errors,
    chromium_page,
    code_cell,
    drag,
    node,
    open_notebook,
    playwright_sync_api,
    run_all_cells,
    wait_for_status,
    wait_until_finished,
    write_notebook,
)

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.timeout(600)]

SCREENSHOT = REPO / "docs" / "screenshot.png"


# -- the tests ----------------------------------------------------------------------------------


def test_quickstart_runs_live_in_jupyterlab(lab: Lab, tmp_path: Path) -> None:
    """Run All on the quickstart: the graph renders, turns green live, and shows results."""
    with chromium_page(lab, tmp_path) as page:
        open_notebook(page, lab, "quickstart.ipynb")
        run_all_cells(page)

        # %%workflow draws the graph with nothing started.
        defined = code_cell(page, "%%workflow quickstart").locator('[data-testid="jw-root"]')
        for task in ("greet", "approve", "shout", "done"):
            node(defined, task).wait_for(timeout=RUN_DONE_MS)
            assert node(defined, task).get_attribute("data-status") == "none"

        # %workflow run shows a second graph bound to the run. The magic returns while the
        # approval is open; `shout` only runs after the next cell answers it, so `shout` turning
        # green here is the live path at work, not the picture drawn when the cell ended.
        run_cell = code_cell(page, "%workflow run quickstart")
        live = run_cell.locator('[data-testid="jw-root"]')
        node(live, "greet").wait_for(timeout=RUN_DONE_MS)
        for task in ("greet", "approve", "shout"):
            wait_for_status(live, task, "succeeded")
        live.locator('[data-testid="jw-run-status"]', has_text="succeeded").wait_for(
            timeout=RUN_DONE_MS
        )
        # The magic returned while the approval was open (the cell's value is `run.status`).
        assert run_cell.locator(".jp-OutputArea-output", has_text="'waiting'").count() == 1
        # The branch not taken never started.
        assert node(live, "done").get_attribute("data-status") in ("none", "skipped")

        # A click on a task opens its result in the side panel.
        node(live, "greet").click()
        panel = live.locator('[data-testid="jw-panel"][data-task="greet"]')
        panel.wait_for()
        assert "Hello, world!" in panel.locator('[data-testid="jw-result"]').inner_text()
        node(live, "shout").click()
        panel = live.locator('[data-testid="jw-panel"][data-task="shout"]')
        panel.wait_for()
        assert "HELLO, WORLD!" in panel.locator('[data-testid="jw-result"]').inner_text()

        # The rest of the notebook ran too, without errors.
        outputs = code_cell(page, "run.outputs")
        wait_until_finished(code_cell(page, "%workflow runs"))
        assert "HELLO, WORLD!" in outputs.locator(".jp-OutputArea").inner_text()
        assert_no_errors(page)

        _take_screenshot(page, live, tmp_path)


def _take_screenshot(page: Any, live: Any, tmp_path: Path) -> None:
    """The notebook with the live graph, a task's result open: the README's picture."""
    # Room for the notebook: close the file browser (the active left-sidebar tab toggles it).
    page.locator(".jp-SideBar.jp-mod-left .lm-TabBar-tab.lm-mod-current").first.click()
    page.locator("#jp-left-stack").wait_for(state="hidden")
    cell = code_cell(page, "%workflow run quickstart")
    # Put the run cell at the top of the notebook's viewport.
    cell.evaluate("el => el.scrollIntoView({block: 'start'})")
    live.locator('[data-testid="jw-panel"][data-task="shout"]').wait_for()
    shot = tmp_path / "screenshot.png"
    page.screenshot(path=str(shot))
    if os.environ.get("JW_UPDATE_SCREENSHOT") == "1":
        shutil.copy(shot, SCREENSHOT)


APPROVAL_TASKS = """\
@jw.task
def decide(approved: bool) -> str:
    return "go" if approved else "stop"
"""

APPROVAL_WORKFLOW = """\
%%workflow approval
tasks:
  ask:
    action: core.inquiry
    input:
      prompt: Go ahead?
      schema:
        type: object
        properties: {approved: {type: boolean}}
        required: [approved]
    on_success: decide
  decide:
    action: decide
    input: {approved: "{{ task.ask.result.approved }}"}
"""


def test_inquiry_answered_in_the_widget(lab: Lab, tmp_path: Path) -> None:
    """A run waits for a human; the widget's form answers it and the run finishes."""
    write_notebook(
        lab,
        "approval.ipynb",
        [
            "%load_ext jupyter_workflows\nimport jupyter_workflows as jw",
            APPROVAL_TASKS,
            APPROVAL_WORKFLOW,
            # --background: the kernel is idle while the run waits, as when a user works on.
            "run = %workflow run approval --background",
        ],
    )

    with chromium_page(lab, tmp_path) as page:
        open_notebook(page, lab, "approval.ipynb")
        run_all_cells(page)

        live = code_cell(page, "%workflow run approval").locator('[data-testid="jw-root"]')
        wait_for_status(live, "ask", "waiting")
        assert node(live, "decide").get_attribute("data-status") in ("none", "pending")
        live.locator('[data-testid="jw-run-status"]', has_text="waiting").wait_for(
            timeout=RUN_DONE_MS
        )
        form = live.locator('[data-testid="jw-inquiry-ask"]')
        assert "Go ahead?" in form.inner_text()
        form.locator('input[type="checkbox"]').check()
        form.locator('[data-testid="jw-inquiry-submit-ask"]').click()

        # The answer went through the comm into Run.respond: the run goes on by itself.
        wait_for_status(live, "ask", "succeeded")
        wait_for_status(live, "decide", "succeeded")
        live.locator('[data-testid="jw-run-status"]', has_text="succeeded").wait_for(
            timeout=RUN_DONE_MS
        )
        assert live.locator('[data-testid="jw-inquiry-ask"]').count() == 0
        assert live.locator('[data-testid="jw-inquiry-error-ask"]').count() == 0

        node(live, "decide").click()
        result = live.locator(
            '[data-testid="jw-panel"][data-task="decide"] [data-testid="jw-result"]'
        )
        assert result.inner_text().strip() == "go"  # the answer reached the task
        assert_no_errors(page)


EDIT_WORKFLOW = """\
%%workflow edited
tasks:
  start:
    action: core.echo
    input: {message: hello}
"""


def _cell_sources(lab: Lab, name: str) -> list[str]:
    """The notebook's cell sources as the server has them on disk."""
    model = lab.api(f"/api/contents/{name}?content=1")
    return [
        "".join(c["source"]) if isinstance(c["source"], list) else c["source"]
        for c in model["content"]["cells"]
    ]


def test_edit_a_workflow_cell_in_the_widget(lab: Lab, tmp_path: Path) -> None:
    """Add a task and connect it in the widget: the %%workflow cell gets the new, valid YAML."""
    from jupyter_workflows.spec.loader import load_spec

    write_notebook(
        lab,
        "edit.ipynb",
        [
            "%load_ext jupyter_workflows",
            EDIT_WORKFLOW.rstrip("\n"),
        ],
    )
    expect = playwright_sync_api().expect

    with chromium_page(lab, tmp_path) as page:
        open_notebook(page, lab, "edit.ipynb")
        run_all_cells(page)
        cell = code_cell(page, "%%workflow edited")
        widget = cell.locator('[data-testid="jw-root"]')
        node(widget, "start").wait_for(timeout=RUN_DONE_MS)

        # Edit mode, then add a task through the toolbar.
        widget.locator('[data-testid="jw-edit-toggle"]').click()
        expect(widget).to_have_attribute("data-editing", "true")
        widget.locator('[data-testid="jw-add-name"]').fill("finish")
        widget.locator('[data-testid="jw-add-action"]').fill("core.noop")
        widget.locator('[data-testid="jw-add-submit"]').click()
        node(widget, "finish").wait_for(timeout=RUN_DONE_MS)
        notice = widget.locator('[data-testid="jw-edit-notice"][data-phase="saved"]')
        notice.wait_for(timeout=RUN_DONE_MS)
        editor = cell.locator(".jp-InputArea-editor")
        expect(editor).to_contain_text("finish:", timeout=UI_MS)

        # A refused edit: an action that does not exist. The error is shown, one line, and
        # the cell keeps the last valid YAML.
        widget.locator('[data-testid="jw-add-name"]').fill("broken")
        widget.locator('[data-testid="jw-add-action"]').fill("no_such_action_here")
        widget.locator('[data-testid="jw-add-submit"]').click()
        error = widget.locator('[data-testid="jw-edit-error"]')
        expect(error).to_contain_text("no_such_action_here", timeout=RUN_DONE_MS)
        expect(error).to_contain_text(re.compile(r"<cell>:\d+:\d+: "))
        assert node(widget, "broken").count() == 0
        expect(editor).not_to_contain_text("broken")

        # Connect start -> finish by dragging from start's bottom handle to finish's top one.
        drag(
            page,
            widget.locator('[data-testid="jw-handle-out-start"]'),
            widget.locator('[data-testid="jw-handle-in-finish"]'),
        )
        expect(editor).to_contain_text("on_success: finish", timeout=RUN_DONE_MS)
        widget.locator('[aria-label="Edge from start to finish"]').wait_for(
            state="attached", timeout=UI_MS
        )

        # A task's fields, edited as YAML in the side column.
        node(widget, "finish").click()
        task_editor = widget.locator('[data-testid="jw-task-editor"][data-task="finish"]')
        task_editor.wait_for()
        task_editor.locator('[data-testid="jw-task-yaml"]').fill("action: core.noop\ntimeout: 30\n")
        task_editor.locator('[data-testid="jw-task-apply"]').click()
        expect(editor).to_contain_text("timeout: 30", timeout=RUN_DONE_MS)

        # Saved through JupyterLab: the cell's source on disk is the magic line and valid YAML.
        page.keyboard.press("Control+s")
        deadline = time.monotonic() + UI_MS / 1000
        while True:
            sources = _cell_sources(lab, "edit.ipynb")
            if "timeout: 30" in sources[1] or time.monotonic() > deadline:
                break
            time.sleep(0.25)  # polling the server for the saved file
        source = sources[1]
        first, _, body = source.partition("\n")
        assert first == "%%workflow edited", source
        spec, _ = load_spec(body, file="<cell>", name="edited")
        assert list(spec.tasks) == ["start", "finish"]
        assert spec.tasks["start"].on_success == ["finish"]
        assert spec.tasks["finish"].action == "core.noop"
        assert spec.tasks["finish"].timeout == 30
        assert spec.tasks["start"].input == {"message": "hello"}
        assert_no_errors(page)
