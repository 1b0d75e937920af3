"""JupyterLab in headless Chromium for the browser tests: start a server, open a page.

Shared by every module of tests/browser (the fixtures that use it are in ``conftest.py``):

* :func:`start_lab` starts ``jupyter lab`` on 127.0.0.1 in a process group of its own, with
  its own config, data, runtime, settings and workspace folders, so nothing of the user's
  Jupyter setup leaks in and the teardown knows every process it started; tasks run in threads
  of the kernel (``JUPYTER_WORKFLOWS_EXECUTOR=inline``: the Dask path has its own tests).
  With ``extension=`` a folder on ``JUPYTER_PATH`` links ``labextensions/jupyter-workflows`` to
  that built extension, which then wins over an installed copy.
* :func:`chromium_page` opens a page in a fresh Chromium profile (Debian's
  ``/usr/bin/chromium``); on a failure its screenshot, console log and the server's log are
  saved and named in the error.
* No fixed sleeps: the page helpers wait for the DOM or the REST API to reach a state, with
  generous limits.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import re
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

import pytest

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


def playwright_sync_api() -> Any:
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


@contextlib.contextmanager
def start_lab(
    base: Path, *, files: dict[str, Path] | None = None, extension: Path | None = None
) -> Iterator[Lab]:
    """``jupyter lab`` on 127.0.0.1 with its folders under ``base``, serving ``root`` (with
    ``files``: name -> file to copy there); stopped, kernels included, on exit."""
    playwright_sync_api()  # skip before starting anything
    import shutil

    root, runtime = base / "root", base / "runtime"
    root.mkdir()
    for name, source in (files or {}).items():
        shutil.copy(source, root / name)
    settings = base / "settings"
    for relative, values in LAB_SETTINGS.items():
        path = settings / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(values))

    env = dict(os.environ)
    env.pop("JUPYTER_WORKFLOWS_SCHEDULER", None)
    env.update(
        {
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
    if extension is not None:
        if not (extension / "package.json").is_file():
            pytest.fail("the extension is not built: cd labextension && npm ci && npm run build")
        share = base / "share" / "jupyter"
        (share / "labextensions").mkdir(parents=True)
        (share / "labextensions" / "jupyter-workflows").symlink_to(extension)
        env["JUPYTER_PATH"] = os.pathsep.join(filter(None, [str(share), env.get("JUPYTER_PATH")]))
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
    sync_api = playwright_sync_api()
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


def write_notebook(lab: Lab, name: str, cells: list[str]) -> None:
    """Write a notebook of code ``cells`` (Python 3 kernel) into the server's root."""
    import nbformat

    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3 (ipykernel)",
        "language": "python",
    }
    nb.cells = [nbformat.v4.new_code_cell(source) for source in cells]
    nbformat.write(nb, str(lab.root / name))


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
    expect = playwright_sync_api().expect
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


def drag(page: Any, source: Any, target: Any) -> None:
    """Press on ``source``, move to ``target`` in small steps, release: a user's drag."""
    start, end = source.bounding_box(), target.bounding_box()
    assert start and end, "a handle is not on the page"
    page.mouse.move(start["x"] + start["width"] / 2, start["y"] + start["height"] / 2)
    page.mouse.down()
    page.mouse.move(end["x"] + end["width"] / 2, end["y"] + end["height"] / 2, steps=15)
    page.mouse.up()
