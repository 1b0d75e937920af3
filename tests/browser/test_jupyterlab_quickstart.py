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
* One server per module, in its own process group with its own config, data, runtime, settings
  and workspace folders, so nothing of the user's Jupyter setup leaks in and the teardown knows
  every process it started. Each test gets a fresh Chromium profile.
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

import contextlib
import dataclasses
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import nbformat
import pytest

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.timeout(600)]

REPO = Path(__file__).resolve().parents[2]
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
TOKEN = "jw-browser-test-token"
SCREENSHOT = REPO / "docs" / "screenshot.png"

SERVER_START_S = 120
KERNEL_READY_MS = 120_000
RUN_DONE_MS = 90_000
UI_MS = 30_000

# JupyterLab user settings for a quiet, deterministic page: no news toast, no update check, and
# every cell attached to the DOM (the default windowing detaches cells out of the viewport).
LAB_SETTINGS = {
    "@jupyterlab/apputils-extension/notification.jupyterlab-settings": {
        "fetchNews": "false",
        "checkForUpdates": False,
    },
    "@jupyterlab/notebook-extension/tracker.jupyterlab-settings": {"windowingMode": "none"},
}


def _playwright_sync_api() -> Any:
    if not CHROMIUM.exists():
        pytest.skip(f"no Chromium at {CHROMIUM} (Debian's chromium package drives these tests)")
    try:
        from playwright import sync_api
    except ImportError:
        pytest.skip("playwright (Python) is not installed: pip install playwright")
    return sync_api


# -- the server ---------------------------------------------------------------------------------


@dataclasses.dataclass
class Lab:
    """A running ``jupyter lab`` and the folders it owns."""

    proc: subprocess.Popen[bytes]
    port: int
    root: Path
    """``ServerApp.root_dir``: the notebooks the browser opens."""
    runtime: Path
    """``JUPYTER_RUNTIME_DIR``: kernels' connection files; finds leftover kernels at teardown."""
    log: Path

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def url(self, path: str) -> str:
        return f"{self.base}{path}{'&' if '?' in path else '?'}token={TOKEN}"

    def api(self, path: str, method: str = "GET") -> Any:
        request = urllib.request.Request(self.url(path), method=method)
        with urllib.request.urlopen(request, timeout=10) as response:
            body = response.read()
        return json.loads(body) if body else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_for_server(lab: Lab) -> None:
    deadline = time.monotonic() + SERVER_START_S
    while time.monotonic() < deadline:
        if lab.proc.poll() is not None:
            pytest.fail(
                f"jupyter lab exited with {lab.proc.returncode}:\n{lab.log.read_text()[-3000:]}"
            )
        try:
            lab.api("/api/status")
            return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            time.sleep(0.25)  # polling a port: there is nothing to wait on but time
    pytest.fail(f"jupyter lab did not answer in {SERVER_START_S}s; log: {lab.log}")


def _kernel_pids(runtime: Path) -> list[int]:
    """Processes whose command line names a connection file in ``runtime``: our kernels."""
    marker = str(runtime)
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().decode(errors="replace")
        except OSError:
            continue
        if marker in cmdline:
            pids.append(int(entry.name))
    return pids


def _stop(lab: Lab) -> None:
    """Shut the server and its kernels down; whatever does not exit in time is killed."""
    if lab.proc.poll() is None:
        # The polite way first: the server shuts its kernels down before it exits.
        with contextlib.suppress(Exception):
            lab.api("/api/shutdown", method="POST")
        try:
            lab.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(lab.proc.pid, signal.SIGTERM)
            try:
                lab.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(lab.proc.pid, signal.SIGKILL)
                lab.proc.wait(timeout=10)
    # jupyter_client starts each kernel in a session of its own, out of the server's group.
    for pid in _kernel_pids(lab.runtime):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    """``jupyter lab`` on 127.0.0.1 serving a copy of the quickstart notebook."""
    _playwright_sync_api()  # skip before starting anything
    base = tmp_path_factory.mktemp("lab")
    root, runtime = base / "root", base / "runtime"
    root.mkdir()
    shutil.copy(REPO / "notebooks" / "quickstart.ipynb", root / "quickstart.ipynb")
    settings = base / "settings"
    for relative, values in LAB_SETTINGS.items():
        path = settings / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(values))

    env = dict(os.environ)
    env.pop("JUPYTER_WORKFLOWS_SCHEDULER", None)
    env.update(
        {
            # Tasks in kernel threads, not the embedded Dask cluster: see the module docstring.
            "JUPYTER_WORKFLOWS_EXECUTOR": "inline",
            "JUPYTER_WORKFLOWS_STORE": str(base / "state.db"),
            "JUPYTER_CONFIG_DIR": str(base / "config"),
            "JUPYTER_DATA_DIR": str(base / "data"),
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
        "--ServerApp.allow_root=True",  # containers often run as root
        "--LabApp.news_url=None",
        "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
        "--LabApp.extension_manager=readonly",  # the PyPI manager would reach for the internet
    ]
    with log.open("wb") as out:
        proc = subprocess.Popen(
            command,
            cwd=root,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # a process group of its own, killed as one at teardown
        )
    server = Lab(proc=proc, port=port, root=root, runtime=runtime, log=log)
    try:
        _wait_for_server(server)
        yield server
    finally:
        _stop(server)


# -- the browser --------------------------------------------------------------------------------


@contextlib.contextmanager
def chromium_page(lab: Lab, artifacts: Path) -> Iterator[Any]:
    """A page in a fresh Chromium profile; on failure its screenshot and console log are kept."""
    sync_api = _playwright_sync_api()
    console: list[str] = []
    with sync_api.sync_playwright() as p:
        context = p.chromium.launch_persistent_context(
            str(artifacts / "chromium-profile"),
            executable_path=str(CHROMIUM),
            headless=True,
            args=CHROMIUM_ARGS,
            viewport={"width": 1280, "height": 860},
        )
        try:
            page = context.new_page()
            page.set_default_timeout(UI_MS)
            page.on("console", lambda m: console.append(f"[{m.type}] {m.text}"))
            page.on("pageerror", lambda exc: console.append(f"[pageerror] {exc}"))
            try:
                yield page
            except BaseException as exc:
                shot = artifacts / "failure.png"
                log = artifacts / "console.log"
                log.write_text("\n".join(console) + "\n")
                with contextlib.suppress(Exception):
                    page.screenshot(path=str(shot), full_page=True)
                where = f"screenshot: {shot}\nconsole log: {log}\nserver log: {lab.log}"
                print(where)
                exc.add_note(where)
                raise
        finally:
            context.close()


def open_notebook(page: Any, lab: Lab, name: str) -> None:
    """Open ``name`` in JupyterLab and wait until its kernel has started and is idle."""
    # ?reset: start from an empty workspace, not the tabs a previous test left open (two
    # notebooks opening at once can race into a "Select Kernel" dialog).
    page.goto(lab.url(f"/lab/tree/{name}?reset"))
    page.locator(".jp-Notebook").first.wait_for(timeout=KERNEL_READY_MS)
    # The status bar names the kernel and its state once the session is connected (the toolbar's
    # execution indicator says "idle" before any kernel exists, so it cannot tell).
    page.locator("#jp-main-statusbar .jp-StatusBar-TextItem", has_text="| Idle").wait_for(
        timeout=KERNEL_READY_MS
    )


def run_all_cells(page: Any) -> None:
    """*Run > Run All Cells*, through the menu bar as a user would."""
    page.locator("#jp-MainMenu .lm-MenuBar-item", has_text="Run").first.click()
    page.locator('#jp-mainmenu-run [data-command="runmenu:run-all"]').click()


def code_cell(page: Any, source: str) -> Any:
    """The code cell whose source contains ``source``."""
    cell = page.locator(".jp-CodeCell").filter(
        has=page.locator(".jp-InputArea-editor", has_text=source)
    )
    cell.first.wait_for(state="attached")
    return cell.first


def wait_until_finished(cell: Any) -> None:
    """Wait for ``cell`` (queued by Run All) to have run: its prompt shows a number."""
    expect = _playwright_sync_api().expect
    expect(cell.locator(".jp-InputArea-prompt")).to_have_text(
        re.compile(r"\[\d+\]"), timeout=RUN_DONE_MS
    )


def node(widget: Any, task: str) -> Any:
    return widget.locator(f'[data-testid="jw-node-{task}"]')


def wait_for_status(widget: Any, task: str, status: str) -> None:
    widget.locator(f'[data-testid="jw-node-{task}"][data-status="{status}"]').wait_for(
        timeout=RUN_DONE_MS
    )


def assert_no_errors(page: Any) -> None:
    """No cell printed an error: JupyterLab renders tracebacks and UsageErrors as stderr."""
    stderr = page.locator(
        '.jp-OutputArea-output[data-mime-type="application/vnd.jupyter.stderr"]'
    ).all_inner_texts()
    assert not [text for text in stderr if "Error" in text or "Traceback" in text], stderr


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
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3 (ipykernel)",
        "language": "python",
    }
    nb.cells = [
        nbformat.v4.new_code_cell("%load_ext jupyter_workflows\nimport jupyter_workflows as jw"),
        nbformat.v4.new_code_cell(APPROVAL_TASKS),
        nbformat.v4.new_code_cell(APPROVAL_WORKFLOW),
        # --background: the kernel is idle while the run waits, as when a user works on.
        nbformat.v4.new_code_cell("run = %workflow run approval --background"),
    ]
    nbformat.write(nb, str(lab.root / "approval.ipynb"))

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


def _drag(page: Any, source: Any, target: Any) -> None:
    """Press on ``source``, move to ``target`` in small steps, release: a user's drag."""
    start, end = source.bounding_box(), target.bounding_box()
    assert start and end, "a handle is not on the page"
    page.mouse.move(start["x"] + start["width"] / 2, start["y"] + start["height"] / 2)
    page.mouse.down()
    page.mouse.move(end["x"] + end["width"] / 2, end["y"] + end["height"] / 2, steps=15)
    page.mouse.up()


def test_edit_a_workflow_cell_in_the_widget(lab: Lab, tmp_path: Path) -> None:
    """Add a task and connect it in the widget: the %%workflow cell gets the new, valid YAML."""
    from jupyter_workflows.spec.loader import load_spec

    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3 (ipykernel)",
        "language": "python",
    }
    nb.cells = [
        nbformat.v4.new_code_cell("%load_ext jupyter_workflows"),
        nbformat.v4.new_code_cell(EDIT_WORKFLOW.rstrip("\n")),
    ]
    nbformat.write(nb, str(lab.root / "edit.ipynb"))
    expect = _playwright_sync_api().expect

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
        _drag(
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
