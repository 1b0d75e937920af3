"""The notebook magics, in a real IPython shell, with tasks on in-process threads.

``InteractiveShell.instance()`` is the same shell class a kernel wraps: cells go through its
input transformers, magics registry, ``UsageError`` handling and display publisher exactly as in
a notebook. Tasks run on the ``engine`` fixture's in-process executor, so each test is quick.
"""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from IPython.core.error import UsageError
from IPython.core.interactiveshell import InteractiveShell
from IPython.utils.capture import capture_output

import jupyter_workflows as jw
from jupyter_workflows.definition import get_workflow
from jupyter_workflows.engine.run import Run
from jupyter_workflows.jupyter.form import WorkflowForm
from jupyter_workflows.jupyter.magics import SkippedCommand, WorkflowMagics

WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"

HELLO = """\
parameters:
  name: {type: string, default: world}
  times: {type: integer, default: 1}
tasks:
  greet:
    action: core.echo
    input: {text: "Hello, {{ parameters.name }}!", times: "{{ parameters.times }}"}
output_map:
  greeting: "{{ task.greet.result.text }}"
  times: "{{ task.greet.result.times }}"
"""


def _gate() -> threading.Event:
    """A task ``wait_gate`` that blocks until the returned event is set."""
    gate = threading.Event()

    @jw.task
    def wait_gate() -> str:
        assert gate.wait(30), "the test never opened the gate"
        return "passed"

    return gate


GATED = """\
tasks:
  first:
    action: wait_gate
    on_success: second
  second:
    action: core.echo
    input: {done: true}
"""


def _wait_for(predicate: Any, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out waiting"
        time.sleep(0.02)


def _mime(cap: Any, kind: str) -> list[Any]:
    return [out.data[kind] for out in cap.outputs if kind in out.data]


# -- %%workflow ---------------------------------------------------------------------------------


def test_cell_defines_registers_and_shows_the_graph(ip: InteractiveShell) -> None:
    with capture_output() as cap:
        result = ip.run_cell_magic("workflow", "hello_cell", HELLO)
    assert result is None
    workflow = get_workflow("hello_cell")
    assert workflow is not None and workflow.source == HELLO
    assert sorted(workflow.compiled.tasks) == ["greet"]
    assert _mime(cap, WIDGET_VIEW), "the graph widget was not displayed"
    [picture] = _mime(cap, "text/html")
    assert "<svg" in picture and "greet" in picture
    assert jw.runs() == []  # defining runs nothing


def test_cell_with_run_runs_and_waits(ip: InteractiveShell) -> None:
    with capture_output():
        ip.run_cell_magic("workflow", "hello_run --run -p name=Ada -p times=3", HELLO)
    [run] = jw.runs()
    assert run.status == "succeeded"
    assert run.outputs == {"greeting": "Hello, Ada!", "times": 3}  # -p values are YAML


def test_cell_takes_its_name_from_the_yaml(ip: InteractiveShell) -> None:
    with capture_output():
        ip.run_cell_magic("workflow", "", "name: named_inside\n" + HELLO)
    assert get_workflow("named_inside") is not None


def test_bad_yaml_is_a_one_line_usage_error_with_line_and_column(ip: InteractiveShell) -> None:
    cell = "tasks:\n  a: {action: core.noop\n  b: 1\n"
    with pytest.raises(UsageError) as info:
        ip.run_cell_magic("workflow", "broken", cell)
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith("<cell>:3:4: YAML syntax error")
    assert get_workflow("broken") is None


def test_usage_errors_print_one_line_and_no_traceback(ip: InteractiveShell) -> None:
    with capture_output() as cap:
        result = ip.run_cell("%%workflow broken2\ntasks:\n  a: {action: core.noop\n")
    assert isinstance(result.error_in_exec, UsageError)
    assert "Traceback" not in cap.stdout + cap.stderr
    [line] = [x for x in cap.stderr.splitlines() if x.strip()]
    assert line.startswith("UsageError: <cell>:2:6: YAML syntax error")


def test_spec_errors_keep_their_position(ip: InteractiveShell) -> None:
    cell = "tasks:\n  a:\n    action: core.noop\n    on_sucess: b\n  b: {action: core.noop}\n"
    with pytest.raises(UsageError, match=r"^<cell>:4:5: .*on_sucess"):
        ip.run_cell_magic("workflow", "typo", cell)
    with pytest.raises(UsageError, match=r"^<cell>:\d+:\d+: .*nowhere"):
        ip.run_cell_magic(
            "workflow", "dangling", "tasks:\n  a: {action: core.noop, on_success: nowhere}\n"
        )
    with pytest.raises(UsageError, match="unknown action 'no_such_action'"):
        ip.run_cell_magic("workflow", "unresolved", "tasks:\n  a: {action: no_such_action}\n")


def test_cell_argument_errors(ip: InteractiveShell) -> None:
    with pytest.raises(UsageError, match="the cell is empty"):
        ip.run_cell_magic("workflow", "empty", "  \n")
    with pytest.raises(UsageError, match="only applies with --run"):
        ip.run_cell_magic("workflow", "x -p a=1", HELLO)
    with pytest.raises(UsageError, match="names the workflow 'other'"):
        ip.run_cell_magic("workflow", "other", "name: inside\n" + HELLO)
    with pytest.raises(UsageError, match="has no parameter 'nme'"):
        ip.run_cell_magic("workflow", "hello_p --run -p nme=x", HELLO)
    assert jw.runs() == []  # a refused parameter creates no run


def test_cell_help_is_argparse_usage(ip: InteractiveShell) -> None:
    doc = ip.find_cell_magic("workflow").__doc__
    assert "%%workflow [--run] [-p KEY=VALUE] [--background] [NAME]" in doc
    assert "--background" in doc


# -- %workflow ----------------------------------------------------------------------------------


def test_line_help_shows_every_command(ip: InteractiveShell) -> None:
    doc = ip.find_line_magic("workflow").__doc__
    for command in (
        "run",
        "list",
        "runs",
        "show",
        "resume",
        "pause",
        "cancel",
        "form",
        "export",
        "cluster",
    ):
        assert f"%workflow {command}" in doc
    with capture_output() as cap:
        assert ip.run_line_magic("workflow", "") is None
    assert "%workflow run" in cap.stdout
    with capture_output() as cap:
        assert ip.run_line_magic("workflow", "run -h") is None
    assert "--background" in cap.stdout


def test_line_usage_errors_are_one_line(ip: InteractiveShell) -> None:
    with pytest.raises(UsageError, match="invalid choice: 'rnu'") as info:
        ip.run_line_magic("workflow", "rnu hello")
    assert "\n" not in str(info.value)
    with pytest.raises(UsageError, match="unknown workflow 'nope'"):
        ip.run_line_magic("workflow", "run nope")
    with pytest.raises(UsageError, match="no run 'abc'"):
        ip.run_line_magic("workflow", "show abc")
    with pytest.raises(UsageError, match="expected KEY=VALUE"):
        with capture_output():
            ip.run_cell_magic("workflow", "hello_line", HELLO)
        ip.run_line_magic("workflow", "run hello_line -p novalue")


def test_run_waits_and_returns_the_run(ip: InteractiveShell) -> None:
    with capture_output():
        ip.run_cell_magic("workflow", "hello_wait", HELLO)
    with capture_output() as cap:
        run = ip.run_line_magic("workflow", "run hello_wait -p name=Bo -p times=2")
    assert isinstance(run, Run)
    assert run.status == "succeeded"
    assert run.outputs == {"greeting": "Hello, Bo!", "times": 2}
    assert _mime(cap, WIDGET_VIEW)
    # The run renders as a table of its tasks.
    bundle = run._repr_mimebundle_()
    assert "greet" in bundle["text/html"] and "succeeded" in bundle["text/plain"]


def test_run_a_yaml_file(ip: InteractiveShell, tmp_path: Path) -> None:
    (tmp_path / "from_file.yaml").write_text(HELLO)
    with capture_output():
        run = ip.run_line_magic("workflow", f"run {tmp_path / 'from_file.yaml'} -p name=File")
    assert run.status == "succeeded" and run.outputs["greeting"] == "Hello, File!"


def test_background_returns_at_once_and_the_run_goes_on(ip: InteractiveShell) -> None:
    gate = _gate()
    with capture_output():
        ip.run_cell_magic("workflow", "gated", GATED)
        run = ip.run_line_magic("workflow", "run gated --background")
    assert isinstance(run, Run)
    _wait_for(lambda: run.status == "running")
    assert run.status == "running"  # returned while its first task still runs
    gate.set()
    run.wait(10)
    assert run.status == "succeeded"


def test_pause_resume_and_cancel(ip: InteractiveShell) -> None:
    gate = _gate()
    with capture_output():
        ip.run_cell_magic("workflow", "gated2", GATED)
        run = ip.run_line_magic("workflow", "run gated2 --background")
        _wait_for(lambda: run.tasks and run.tasks[0]["status"] == "running")
        ip.run_line_magic("workflow", f"pause {run.run_id}")
        gate.set()
        run.wait(10)
        assert run.status == "paused"
        assert [t["task"] for t in run.tasks] == ["first"]  # nothing new started
        resumed = ip.run_line_magic("workflow", f"resume {run.run_id}")
    assert resumed.run_id == run.run_id and resumed.status == "succeeded"

    gate2 = _gate()
    with capture_output() as cap:
        run2 = ip.run_line_magic("workflow", "run gated2 --background")
        _wait_for(lambda: run2.status == "running")
        ip.run_line_magic("workflow", f"cancel {run2.run_id}")
        run2.wait(10)
    gate2.set()
    assert run2.status == "cancelled"
    assert f"run {run2.run_id}: cancel requested" in cap.stdout
    with pytest.raises(UsageError, match="already ended"):
        ip.run_line_magic("workflow", f"cancel {run2.run_id}")


def test_list_runs_and_show(ip: InteractiveShell) -> None:
    with capture_output():
        ip.run_cell_magic("workflow", "hello_list", HELLO)
    with capture_output() as cap:
        ip.run_line_magic("workflow", "runs")
    assert _mime(cap, "text/plain") == ["no runs"]
    with capture_output():
        run = ip.run_line_magic("workflow", "run hello_list")
    with capture_output() as cap:
        assert ip.run_line_magic("workflow", "list") is None
    [table] = _mime(cap, "text/plain")
    assert "hello_list" in table and "name: string" in table
    with capture_output() as cap:
        ip.run_line_magic("workflow", "runs --limit 5")
    [table] = _mime(cap, "text/plain")
    assert run.run_id in table and "succeeded" in table
    with capture_output() as cap:
        shown = ip.run_line_magic("workflow", f"show {run.run_id[:8]}")
    assert shown.run_id == run.run_id
    assert _mime(cap, WIDGET_VIEW)


def test_form_command_builds_a_form(ip: InteractiveShell) -> None:
    with capture_output():
        ip.run_cell_magic("workflow", "hello_form", HELLO)
    form = ip.run_line_magic("workflow", "form hello_form")
    assert isinstance(form, WorkflowForm)
    assert sorted(form.fields) == ["name", "times"]


def test_export_command_writes_a_job_folder(ip: InteractiveShell, tmp_path: Path) -> None:
    # Cells run through run_cell land in In[], the history export reads task code from.
    ip.run_cell(
        "import jupyter_workflows as jw\n"
        "SUFFIX = '!'\n\n"
        "@jw.task\n"
        "def exclaim(text: str) -> str:\n"
        "    return text + SUFFIX\n",
        store_history=True,
    )
    ip.run_cell(
        "%%workflow exported\ntasks:\n  shout: {action: exclaim, input: {text: hi}}\n",
        store_history=True,
    )
    ip.run_cell("ignored_run = %workflow run exported", store_history=True)
    with capture_output() as cap:
        ip.run_line_magic("workflow", f"export exported {tmp_path / 'job'}")
    assert "exported 'exported'" in cap.stdout
    job = tmp_path / "job"
    assert sorted(p.name for p in job.iterdir()) == ["run.ipynb", "tasks.py", "workflow.yaml"]
    assert "action: tasks:exclaim" in (job / "workflow.yaml").read_text()
    code = (job / "tasks.py").read_text()
    assert "def exclaim" in code and "SUFFIX = '!'" in code
    assert "ignored_run" not in code and "get_ipython" not in code
    nb = json.loads((job / "run.ipynb").read_text())
    assert any("parameters" in c["metadata"].get("tags", []) for c in nb["cells"])


def test_cluster_without_dask_says_there_is_no_dashboard(ip: InteractiveShell) -> None:
    with capture_output() as cap:
        assert ip.run_line_magic("workflow", "cluster") is None
    assert "no dashboard" in cap.stdout


@pytest.mark.cluster
def test_cluster_connects_and_shows_the_dashboard(ip: InteractiveShell, dask_cluster: Any) -> None:
    pytest.importorskip(
        "jupyter_workflows.executors.dask", reason="the Dask executor is not there yet"
    )
    with capture_output() as cap:
        ip.run_line_magic("workflow", f"cluster {dask_cluster.scheduler_address}")
    [text] = _mime(cap, "text/plain")
    assert "Dask dashboard" in text and "http" in text


# -- extension lifecycle and headless mode ------------------------------------------------------


def test_headless_magics_define_but_skip_runs_and_commands() -> None:
    ip = InteractiveShell.instance()
    magics = WorkflowMagics(ip, headless=True)
    with capture_output() as cap:
        assert magics.workflow_cell("headless_def --run", HELLO) is None
        skipped = magics.workflow_line("run headless_def")
    assert get_workflow("headless_def") is not None
    assert cap.outputs == []
    assert isinstance(skipped, SkippedCommand) and not skipped
    # Code that goes on with the "run" still runs.
    assert skipped.respond("approve", {"ok": True}).wait() is skipped
    assert "skipped" in repr(skipped.outputs["x"])


def test_unload_and_reload_extension() -> None:
    ip = InteractiveShell.instance()
    ip.run_line_magic("unload_ext", "jupyter_workflows")
    assert ip.find_line_magic("workflow") is None and ip.find_cell_magic("workflow") is None
    ip.run_line_magic("load_ext", "jupyter_workflows")
    assert ip.find_line_magic("workflow") is not None
