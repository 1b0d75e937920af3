"""``jupyter-workflows run NOTEBOOK.ipynb`` and ``export``: notebooks as workflow sources.

Most tests call the CLI's ``main()`` in this process with tasks on in-process threads (the
``engine`` fixture), which keeps them fast; the ``cluster`` tests run the real command in a
subprocess against the session's LocalCluster.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import nbformat
import pytest
from nbformat import v4

import jupyter_workflows as jw
from jupyter_workflows.cli.app import main
from jupyter_workflows.engine import api
from jupyter_workflows.exceptions import SpecError
from jupyter_workflows.jupyter.export import export_job, extract_task_code
from jupyter_workflows.jupyter.notebook_loader import workflow_from_notebook
from jupyter_workflows.testing import run_cli as run_cli_process

TASK_CELL = """\
import jupyter_workflows as jw
FACTOR = 3

def helper(x):
    return x * FACTOR

@jw.task
def triple(n: int) -> int:
    print("tripling", n)
    return helper(n)
"""

CALC_CELL = """\
%%workflow calc --run -p n=100
parameters:
  n: {type: integer, default: 2}
tasks:
  t:
    action: triple
    input: {n: "{{ parameters.n }}"}
output_map: {result: "{{ task.t.result }}"}
"""


def write_notebook(path: Path, *cells: str, markdown: str | None = None) -> Path:
    nb = v4.new_notebook()
    if markdown:
        nb.cells.append(v4.new_markdown_cell(markdown))
    nb.cells += [v4.new_code_cell(src) for src in cells]
    nbformat.write(nb, str(path))
    return path


@pytest.fixture
def calc_notebook(tmp_path: Path) -> Path:
    return write_notebook(
        tmp_path / "calc.ipynb",
        "%load_ext jupyter_workflows",
        TASK_CELL,
        CALC_CELL,
        "run = %workflow run calc -p n=7\nrun.wait()\nprint(run.outputs)",
        "%%workflow other\ntasks:\n  x: {action: core.noop}\n",
        markdown="# A notebook with two workflows",
    )


def last_json(out: str) -> Any:
    """The JSON line ``--json`` printed.

    Only the last line: in a test process, a task's ``print`` may reach the test's stdout (the
    engine installs its per-task capture once per process, and pytest swaps ``sys.stdout`` for
    every test), whereas a real CLI process captures it into the task's logs.
    """
    return json.loads(out.strip().splitlines()[-1])


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


# -- run NOTEBOOK -------------------------------------------------------------------------------


def test_run_notebook_json(engine: Any, calc_notebook: Path, capsys: Any) -> None:
    code, out, err = run_cli(
        capsys, "run", str(calc_notebook), "--workflow", "calc", "-p", "n=5", "--json"
    )
    assert code == 0, err
    data = last_json(out)
    assert set(data) == {"run_id", "workflow", "status", "outputs", "error", "tasks"}
    assert data["workflow"] == "calc" and data["status"] == "succeeded"
    assert data["outputs"] == {"result": 15}
    assert data["error"] is None
    [task] = data["tasks"]
    assert set(task) == {"task", "status", "attempts", "result", "error", "started_at", "ended_at"}
    assert task["task"] == "t" and task["result"] == 15 and task["attempts"] == 1
    # `%workflow run` and `--run` in the notebook were skipped: the CLI's run is the only one.
    assert [r.run_id for r in jw.runs()] == [data["run_id"]]


def test_notebook_configure_is_honoured_but_cli_options_win(
    engine: Any, tmp_path: Path, capsys: Any
) -> None:
    pytest.importorskip("jupyter_workflows.store.sqlite")
    nb = write_notebook(
        tmp_path / "configured.ipynb",
        "import jupyter_workflows as jw\njw.configure(store='notebook_store.db')",
        TASK_CELL,
        CALC_CELL.replace(" --run -p n=100", ""),
    )
    code, out, _ = run_cli(capsys, "run", str(nb), "--json")
    assert code == 0
    assert (tmp_path / "notebook_store.db").is_file()  # the notebook chose the store
    cli_store = tmp_path / "cli_store.db"
    code, out, _ = run_cli(capsys, "run", str(nb), "--json", "--store", str(cli_store))
    assert code == 0
    run_id = last_json(out)["run_id"]
    api.configure(store=str(cli_store))
    assert [r.run_id for r in jw.runs()] == [run_id]


def test_the_quickstart_notebook_runs_headless_until_its_approval(
    engine: Any, tmp_path: Path, capsys: Any
) -> None:
    # The gallery notebook goes on with the skipped run (`run.respond(...)`, `run.wait()`):
    # reading it must still work, and the CLI's own run stops at the inquiry (exit 3).
    notebook = Path(__file__).parents[2] / "notebooks" / "quickstart.ipynb"
    code, out, err = run_cli(capsys, "run", str(notebook), "-p", "name=cli", "--json")
    assert code == 3, err
    data = last_json(out)
    assert data["status"] == "waiting"
    assert [(t["task"], t["status"]) for t in data["tasks"]] == [
        ("greet", "succeeded"),
        ("approve", "waiting"),
    ]
    assert data["tasks"][0]["result"] == "Hello, cli!"


def test_several_workflows_need_a_choice(engine: Any, calc_notebook: Path, capsys: Any) -> None:
    code, out, err = run_cli(capsys, "run", str(calc_notebook), "--json")
    assert code == 2 and out == ""
    assert err.strip() == (
        f"{calc_notebook}: the notebook defines several workflows (calc, other): "
        "choose one with --workflow NAME"
    )
    code, _, err = run_cli(capsys, "run", str(calc_notebook), "--workflow", "nope")
    assert code == 2
    assert "no workflow 'nope' (it defines: calc, other)" in err
    assert jw.runs() == []


def test_a_failing_cell_is_named(engine: Any, tmp_path: Path, capsys: Any) -> None:
    nb = write_notebook(tmp_path / "broken.ipynb", "x = 1", "y = 2\nundefined_name + 1")
    code, _, err = run_cli(capsys, "run", str(nb))
    assert code == 2
    assert err.strip() == (
        "broken.ipynb:2:1: NameError: name 'undefined_name' is not defined (cell 2)"
    )


def test_bad_yaml_in_a_notebook_cell_is_positioned(engine: Any, tmp_path: Path) -> None:
    nb = write_notebook(
        tmp_path / "yaml.ipynb",
        "%load_ext jupyter_workflows",
        "\n%%workflow w\ntasks:\n  a: {action: core.noop\n",
        markdown="intro",
    )
    with pytest.raises(SpecError) as info:
        workflow_from_notebook(nb)
    # Cell 3 of the notebook (the markdown cell counts); line 4 of that cell.
    assert str(info.value).startswith("yaml.ipynb:4:6: YAML syntax error")
    assert str(info.value).endswith("(cell 3)")


def test_a_notebook_without_workflows(engine: Any, tmp_path: Path) -> None:
    nb = write_notebook(tmp_path / "none.ipynb", "x = 1")
    with pytest.raises(SpecError, match="defines no workflow"):
        workflow_from_notebook(nb)


def test_reading_a_notebook_leaves_the_process_alone(engine: Any, calc_notebook: Path) -> None:
    main_module = sys.modules["__main__"]
    cwd = Path.cwd()
    prompt = getattr(sys, "ps1", None)  # IPython sets it; a shell of another test may have
    workflow = workflow_from_notebook(calc_notebook, "calc")
    assert sys.modules["__main__"] is main_module
    assert Path.cwd() == cwd
    assert getattr(sys, "ps1", None) == prompt
    assert workflow.base_dir == calc_notebook.parent.resolve()
    # The notebook's functions live in a __main__ of their own (shipped to workers by value).
    from jupyter_workflows.actions.registry import get_registry

    assert get_registry()["triple"].fn.__module__ == "__main__"


# -- export -------------------------------------------------------------------------------------


def test_extract_task_code_keeps_what_the_tasks_need() -> None:
    cells = [
        "%load_ext jupyter_workflows\nimport os\nimport jupyter_workflows as jw",
        "RATE = 2\nunused = 5\ndata = load_everything()\nx = 10",
        "def helper(x):\n    return x * RATE\n\n@jw.task\ndef step(x):\n    return helper(x)",
        "@jw.workflow\ndef flow(x: int = 1):\n    return step(x)",
        "run = flow.run()\n!echo hi",
        "def helper(x):\n    return x * RATE * 10",  # redefined later: the kernel used this one
    ]
    code = extract_task_code(cells, ["step"])
    compile(code, "tasks.py", "exec")
    assert "import os" in code and "import jupyter_workflows as jw" in code
    assert "RATE = 2" in code and "return x * RATE * 10" in code
    assert "return x * RATE\n" not in code  # the earlier helper is superseded
    # `x = 10` stays out: the functions' `x` is their own argument, not the global.
    for absent in (
        "unused",
        "load_everything",
        "x = 10",
        "def flow",
        "flow.run",
        "get_ipython",
        "echo",
    ):
        assert absent not in code


def test_export_notebook_then_run_the_folder(
    engine: Any, calc_notebook: Path, tmp_path: Path, capsys: Any, monkeypatch: Any
) -> None:
    monkeypatch.delitem(sys.modules, "tasks", raising=False)
    monkeypatch.setattr(sys, "path", list(sys.path))
    code, out, err = run_cli(
        capsys, "export", str(calc_notebook), str(tmp_path / "job"), "--workflow", "calc"
    )
    assert code == 0, err
    job = tmp_path / "job"
    assert sorted(p.name for p in job.iterdir()) == ["run.ipynb", "tasks.py", "workflow.yaml"]
    assert "action: tasks:triple" in (job / "workflow.yaml").read_text()
    nb = nbformat.read(str(job / "run.ipynb"), as_version=4)
    [params] = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    assert params.source.startswith("n = 2")
    # The folder runs on its own: a fresh registry cannot know `triple`, tasks.py provides it.
    from jupyter_workflows.actions import registry

    monkeypatch.setattr(registry, "_REGISTRY", {})
    code, out, err = run_cli(capsys, "run", str(job), "-p", "n=4", "--json")
    assert code == 0, err
    data = last_json(out)
    assert data["status"] == "succeeded" and data["outputs"] == {"result": 12}


def test_export_a_yaml_file_copies_the_modules_it_imports(
    engine: Any, tmp_path: Path, monkeypatch: Any
) -> None:
    monkeypatch.setattr(sys, "path", list(sys.path))
    src = tmp_path / "src"
    src.mkdir()
    (src / "helpers_for_export.py").write_text("def double(x):\n    return 2 * x\n")
    (src / "child_flow.yaml").write_text(
        "tasks:\n  c: {action: core.echo, input: {v: '{{ parameters.v }}'}}\n"
        "parameters: {v: {type: integer}}\noutput_map: {v: '{{ task.c.result.v }}'}\n"
    )
    (src / "main_flow.yaml").write_text(
        "tasks:\n"
        "  d: {action: 'helpers_for_export:double', input: {x: 21}, on_success: nested}\n"
        "  nested: {workflow: child_flow, input: {v: '{{ task.d.result }}'}}\n"
        "output_map: {answer: '{{ task.nested.result.v }}'}\n"
    )
    out = export_job(src / "main_flow.yaml", tmp_path / "job")
    names = sorted(p.name for p in out.iterdir())
    assert names == ["child_flow.yaml", "helpers_for_export.py", "run.ipynb", "workflow.yaml"]
    monkeypatch.delitem(sys.modules, "helpers_for_export", raising=False)
    run = jw.load(out / "workflow.yaml").run()
    assert run.status == "succeeded", run.error
    assert run.outputs == {"answer": 42}


def test_export_refuses_an_invalid_workflow(engine: Any, tmp_path: Path) -> None:
    (tmp_path / "bad.yaml").write_text("tasks:\n  a: {action: not_registered_anywhere}\n")
    with pytest.raises(jw.WorkflowError, match="not_registered_anywhere"):
        export_job(tmp_path / "bad.yaml", tmp_path / "job")
    assert not (tmp_path / "job").exists()


# -- the real command, on the session's Dask cluster ---------------------------------------------


@pytest.mark.cluster
def test_cli_runs_a_notebook_and_an_exported_folder(
    calc_notebook: Path, tmp_path: Path, cli_env: dict[str, str]
) -> None:
    pytest.importorskip(
        "jupyter_workflows.executors.dask", reason="the Dask executor is not there yet"
    )
    done = run_cli_process(
        "run", str(calc_notebook), "--workflow", "calc", "--json", env=cli_env, cwd=tmp_path
    )
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    assert data["status"] == "succeeded" and data["outputs"] == {"result": 6}
    done = run_cli_process(
        "export", str(calc_notebook), "job", "--workflow", "calc", env=cli_env, cwd=tmp_path
    )
    assert done.returncode == 0, done.stderr
    done = run_cli_process("run", "job", "-p", "n=10", "--json", env=cli_env, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["outputs"] == {"result": 30}
