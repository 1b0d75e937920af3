"""``export``: a workflow and its code as a self-contained job folder.

``jupyter-workflows export NOTEBOOK_OR_FILE DIR`` and ``%workflow export NAME DIR`` write::

    DIR/workflow.yaml   the workflow; actions defined in the notebook become ``tasks:NAME``
    DIR/tasks.py        the notebook code those functions need (imports, defs, constants)
    DIR/run.ipynb       a papermill-ready notebook: a ``parameters`` cell, then a cell that runs
                        workflow.yaml and records its outputs with ``jw.record``
    DIR/NAME.yaml       each nested workflow, exported the same way
    DIR/*.py            modules of the source's folder that actions import

Design
------
* **Import paths, not registrations.** A name registered with ``@jw.task`` in a kernel means
  nothing to another process. Rewritten as ``tasks:fn``, it resolves from the job folder (a
  workflow's folder is importable), so ``jupyter-workflows run DIR`` needs no notebook, and
  ``tasks.py`` is shipped to Dask workers as a file like any module of a workflow's folder.
* **Only the code the tasks need.** The cells are read as Python (IPython syntax transformed
  first) and top-level statements kept by a dependency closure from the task functions: every
  import, and the definitions (functions, classes, assignments) the kept code refers to. Cells
  that run things (``wf.run()``, ``%workflow run``, ``!pip install``, ``jw.configure(...)``) are
  expressions, not definitions, and stay out, so importing ``tasks.py`` has no side effects
  beyond its imports. ``@jw.workflow`` functions stay out too: ``workflow.yaml`` replaces them.
* **The kernel fills the gaps.** Cells run without history (``run_cell`` from a tool, ``%run``,
  ``exec``) are not in ``In``: what the kept code uses and no cell defines is written from the
  task functions' globals (``import X as Y``, ``from M import NAME``, a kernel-defined helper's
  source, a literal). A global that cannot be written as code (a lock, a data frame) is an
  error naming it, rather than a job that fails with ``NameError`` later.
* The folder is self-describing: ``run.ipynb`` finds ``workflow.yaml`` beside it when papermill
  runs it from the folder, else where the export wrote it.
"""

from __future__ import annotations

import contextlib
import inspect
import os
import shutil
import sys
import textwrap
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from ..exceptions import SpecError, WorkflowError

if TYPE_CHECKING:  # pragma: no cover
    from ..definition import Workflow

from .task_code import extract_task_code, task_module_code

__all__ = ["export_job", "extract_task_code", "task_module_code"]

TASKS_MODULE = "tasks"
_BUILTIN_PREFIXES = ("core.", "llm.")


# -- the workflow family and its actions --------------------------------------------------------


def _is_builtin(name: str) -> bool:
    from ..actions.registry import _builtins

    return name in _builtins() or name.startswith(_BUILTIN_PREFIXES)


def _inside(path: str | None, folder: Path) -> bool:
    if not path:
        return False
    try:
        Path(path).resolve().relative_to(folder.resolve())
    except ValueError:
        return False
    return True


class _Plan:
    """What the export writes: workflows (file name -> data), task functions, modules to copy."""

    def __init__(self, base_dir: Path) -> None:
        self.base_dir = base_dir
        self.documents: dict[str, dict[str, Any]] = {}
        self.functions: dict[str, Any] = {}  # python name -> function defined in the notebook
        self.modules: set[Path] = set()

    def add_workflow(self, workflow: Workflow, file_name: str) -> None:
        if file_name in self.documents:
            return
        data = workflow.to_dict()
        self.documents[file_name] = data  # before recursing: a nested cycle ends here
        for task in _walk(data.get("tasks") or {}):
            nested = task.get("workflow")
            action = task.get("action")
            if isinstance(nested, str):
                self._nested(workflow, nested)
            elif isinstance(action, str):
                task["action"] = self._action(workflow, action)

    def _nested(self, parent: Workflow, name: str) -> None:
        child = parent.resolve_workflow(name)
        self.add_workflow(child, f"{name}.yaml")

    def _action(self, workflow: Workflow, name: str) -> str:
        from ..actions.registry import get_registry
        from ..definition import get_workflow

        if _is_builtin(name):
            return name
        registered = get_registry().get(name)
        if registered is None and ":" not in name:
            if get_workflow(name) is not None or _sibling_file(workflow.base_dir, name):
                self._nested(workflow, name)  # `action: NAME` naming a workflow
                return name
            workflow.resolve_action(name)  # raises ActionNotFound, naming it
            return name  # pragma: no cover
        if registered is not None:
            fn = registered.fn
            module = getattr(fn, "__module__", None)
            if module in ("__main__", None) or module.startswith("__"):
                python_name = getattr(fn, "__name__", "")
                if not python_name.isidentifier() or python_name == "<lambda>":
                    raise WorkflowError(
                        f"cannot export action {name!r}: it is not a named function"
                    )
                self.functions[python_name] = fn
                return f"{TASKS_MODULE}:{python_name}"
            self._copy_module(module)
            return f"{module}:{fn.__qualname__}"
        module_name = name.partition(":")[0]
        self._copy_module(module_name)
        return name

    def _copy_module(self, module_name: str) -> None:
        """Copy the module's top package when it lives in the source's folder."""
        top = module_name.split(".")[0]
        for candidate in (self.base_dir / f"{top}.py", self.base_dir / top):
            if candidate.is_file() or (
                candidate.is_dir() and (candidate / "__init__.py").is_file()
            ):
                self.modules.add(candidate)
                return
        loaded = sys.modules.get(top)
        if loaded is not None and _inside(getattr(loaded, "__file__", None), self.base_dir):
            self.modules.add(Path(loaded.__file__))  # type: ignore[arg-type]


def _sibling_file(base_dir: Path, name: str) -> bool:
    from ..sources import sibling_file

    return sibling_file(base_dir, name) is not None


def _walk(tasks: dict[str, Any]) -> Iterable[dict[str, Any]]:
    for task in tasks.values():
        if isinstance(task, dict):
            yield task
            yield from _walk(task.get("tasks") or {})


# -- the job notebook ---------------------------------------------------------------------------


def _job_notebook(workflow: Workflow, folder: Path) -> Any:
    import keyword

    import nbformat
    from nbformat import v4

    params = workflow.spec.parameters
    lines = []
    for name, param in params.items():
        if keyword.iskeyword(name):
            lines.append(f"# {name!r} is a Python keyword: pass it in parameters below")
            continue
        note = f"  # {param.type}, required" if param.required else f"  # {param.type}"
        lines.append(f"{name} = {param.default!r}{note}")
    parameters_cell = v4.new_code_cell("\n".join(lines) or "# this workflow takes no parameters")
    parameters_cell.metadata["tags"] = ["parameters"]
    given = ", ".join(f"{n!r}: {n}" for n in params if not keyword.iskeyword(n))
    run_source = f"""parameters = {{{given}}}

from pathlib import Path

import jupyter_workflows as jw

# The job folder: the working directory when papermill runs this notebook from it
# (`papermill --cwd`), else where it was exported.
job_dir = Path.cwd() if (Path.cwd() / "workflow.yaml").is_file() else Path({str(folder)!r})
workflow = jw.load(job_dir / "workflow.yaml")
run = workflow.run(parameters)
for name, value in (run.outputs or {{}}).items():
    jw.record(name, value)
for name, value in {{"run_id": run.run_id, "status": run.status}}.items():
    if name not in (run.outputs or {{}}):
        jw.record(name, value)
run"""
    check_source = (
        'if run.status != "succeeded":\n'
        '    raise RuntimeError(f"run {run.run_id} {run.status}: {run.error}")'
    )
    title = f"# {workflow.name}\n\n"
    if workflow.description:
        title += f"{workflow.description}\n\n"
    title += (
        "Exported by `jupyter-workflows export`. Run it with "
        "`jupyter-workflows run .` or `papermill run.ipynb out.ipynb --cwd . -p NAME VALUE`."
    )
    nb = v4.new_notebook(
        cells=[
            v4.new_markdown_cell(title),
            parameters_cell,
            v4.new_code_cell(run_source),
            v4.new_code_cell(check_source),
        ],
        metadata={
            "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"},
            "language_info": {"name": "python"},
        },
    )
    nbformat.validate(nb)
    return nb


# -- entry point --------------------------------------------------------------------------------


def _current_cells() -> list[str] | None:
    try:
        from IPython import get_ipython
    except ImportError:  # pragma: no cover - IPython is a dependency
        return None
    shell = get_ipython()
    if shell is None:
        return None
    return list(shell.user_ns.get("In") or [])


def _resolve_source(
    source: str | os.PathLike[str] | Workflow, workflow: str | None
) -> tuple[Workflow, list[str] | None, Path]:
    from ..definition import Workflow, load
    from ..sources import get_workflow, is_notebook, is_workflow_file_name, job_folder_file

    if isinstance(source, Workflow):
        return source, None, source.base_dir
    path = Path(source)
    if is_notebook(path.name):
        from .notebook_loader import code_cells, workflow_from_notebook

        wf = workflow_from_notebook(path, workflow)
        return wf, [src for _, src in code_cells(path)], path.resolve().parent
    if path.is_dir():
        inside = job_folder_file(path)
        if inside is not None:
            wf = load(inside)
            return wf, None, wf.base_dir
        raise SpecError("not a job folder: no workflow.yaml inside", file=str(source))
    if is_workflow_file_name(path.name) or path.exists():
        wf = load(path)
        return wf, None, wf.base_dir
    registered = get_workflow(str(source))
    if registered is not None:
        return registered, None, registered.base_dir
    raise SpecError("no such file or workflow", file=str(source))


def export_job(
    source: str | os.PathLike[str] | Workflow,
    dir: str | os.PathLike[str],
    workflow: str | None = None,
    *,
    cells: Sequence[str] | None = None,
) -> Path:
    """Write a self-contained job folder for a workflow; returns the folder.

    Parameters
    ----------
    source:
        A notebook, a workflow file, a job folder, a registered workflow's name, or a
        :class:`Workflow`.
    dir:
        The folder to write (created if needed; our files in it are replaced).
    workflow:
        Which workflow, when a notebook defines several.
    cells:
        The code cells that defined the workflow's task functions, when ``source`` is a
        :class:`Workflow` (default: this kernel's input history).

    Raises
    ------
    SpecError, ActionNotFound
        The workflow is invalid or an action does not resolve (nothing is written).
    WorkflowError
        A task function's code cannot be found, or ``dir`` (or a folder above it) is a file or
        cannot be created.
    """
    _check_output_folder(dir)  # before anything runs or is written
    wf, notebook_cells, base_dir = _resolve_source(source, workflow)
    wf.validate()
    plan = _Plan(base_dir)
    plan.add_workflow(wf, "workflow.yaml")
    tasks_code = None
    if plan.functions:
        code_cells_ = cells if cells is not None else notebook_cells
        if code_cells_ is None:
            code_cells_ = _current_cells()
        code_cells_ = list(code_cells_ or [])
        # Functions defined some other way (exec, an editor, cells run without history) still
        # have a source to show.
        for name, fn in plan.functions.items():
            if _defines(code_cells_, name):
                continue
            # When there is no source either, extract_task_code names the function it misses.
            with contextlib.suppress(OSError, TypeError):
                code_cells_.append(textwrap.dedent(inspect.getsource(fn)))
        tasks_code = task_module_code(code_cells_, plan.functions)
    out = _output_folder(dir)
    header = f"# Exported by jupyter-workflows from {_describe_source(source)}.\n"
    for file_name, data in plan.documents.items():
        text = yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=100)
        (out / file_name).write_text(header + text, encoding="utf-8")
    if tasks_code is not None:
        doc = (
            f'"""Task code of workflow {wf.name!r}, exported by jupyter-workflows.\n\n'
            f"workflow.yaml names these functions as {TASKS_MODULE}:NAME.\n"
            '"""\n\n'
        )
        (out / f"{TASKS_MODULE}.py").write_text(doc + tasks_code, encoding="utf-8")
    for module in sorted(plan.modules):
        target = out / module.name
        if module.resolve() == target.resolve():
            continue
        if module.is_dir():
            shutil.copytree(
                module, target, dirs_exist_ok=True, ignore=shutil.ignore_patterns("__pycache__")
            )
        else:
            shutil.copy2(module, target)
    import nbformat

    nbformat.write(_job_notebook(wf, out.resolve()), str(out / "run.ipynb"))
    return out.resolve()


def _check_output_folder(dir: str | os.PathLike[str]) -> None:
    """A one-line error when ``dir`` (or a parent of it) is an existing file."""
    out = Path(dir)
    for path in (out, *out.parents):
        if path.exists():
            if not path.is_dir():
                what = "it is" if path == out else f"{str(path)!r} is"
                raise WorkflowError(f"cannot export to {str(out)!r}: {what} a file, not a folder")
            return


def _output_folder(dir: str | os.PathLike[str]) -> Path:
    out = Path(dir)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise WorkflowError(
            f"cannot export to {str(out)!r}: {exc.strerror or type(exc).__name__}"
        ) from None
    return out


def _defines(cells: Sequence[str], name: str) -> bool:
    needle = (f"def {name}(", f"def {name} (")
    return any(any(n in (cell or "") for n in needle) for cell in cells)


def _describe_source(source: Any) -> str:
    from ..definition import Workflow

    if isinstance(source, Workflow):
        return f"the workflow {source.name!r} of a notebook session"
    return str(source)
