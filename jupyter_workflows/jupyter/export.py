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

import ast
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

__all__ = ["export_job", "extract_task_code", "task_module_code"]

TASKS_MODULE = "tasks"
_BUILTIN_PREFIXES = ("core.", "llm.")


# -- which code the tasks need ------------------------------------------------------------------


def _python_source(cell: str) -> str | None:
    """A cell as plain Python (magics and ``!`` lines transformed), or None if it is not."""
    from IPython.core.inputtransformer2 import TransformerManager

    try:
        source = TransformerManager().transform_cell(cell)
        ast.parse(source)
    except (SyntaxError, ValueError, TypeError):
        return None
    return source


def _decorator_name(node: ast.expr) -> str:
    if isinstance(node, ast.Call):
        node = node.func
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        parts.append(node.id)
    return ".".join(reversed(parts))


def _defined_names(stmt: ast.stmt) -> set[str]:
    if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        return {stmt.name}
    if isinstance(stmt, (ast.Import, ast.ImportFrom)):
        return {(a.asname or a.name).split(".")[0] for a in stmt.names if a.name != "*"}
    targets: list[ast.expr] = []
    if isinstance(stmt, ast.Assign):
        targets = list(stmt.targets)
    elif isinstance(stmt, ast.AnnAssign) and stmt.value is not None:
        targets = [stmt.target]
    names: set[str] = set()
    for target in targets:
        for node in ast.walk(target):
            if isinstance(node, ast.Name):
                names.add(node.id)
    return names


def _used_names(stmt: ast.stmt) -> set[str]:
    """Global names ``stmt`` reads (a function's own arguments and locals left out)."""
    loads = {
        n.id for n in ast.walk(stmt) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)
    }
    if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef)):
        local = {a.arg for a in ast.walk(stmt.args) if isinstance(a, ast.arg)}
        local |= {
            n.id
            for body in stmt.body
            for n in ast.walk(body)
            if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)
        }
        globals_ = {name for n in ast.walk(stmt) if isinstance(n, ast.Global) for name in n.names}
        # Defaults and decorators are evaluated outside the function: they may read globals.
        outside = {
            n.id
            for part in [*stmt.decorator_list, *stmt.args.defaults, *stmt.args.kw_defaults]
            if part is not None
            for n in ast.walk(part)
            if isinstance(n, ast.Name)
        }
        loads = (loads - (local - globals_)) | outside
    return loads


def _runs_something(stmt: ast.stmt) -> bool:
    """An assignment from a magic or a run (``run = %workflow run x``): never task code."""
    for node in ast.walk(stmt):
        if isinstance(node, ast.Call):
            name = _decorator_name(node.func)
            if name.startswith("get_ipython") or name.endswith((".run", ".resume", ".configure")):
                return True
    return False


def _is_workflow_function(stmt: ast.stmt) -> bool:
    return isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef)) and any(
        _decorator_name(d).split(".")[-1] == "workflow" for d in stmt.decorator_list
    )


class _Statement:
    def __init__(self, stmt: ast.stmt, lines: list[str]) -> None:
        self.node = stmt
        first = min([stmt.lineno] + [d.lineno for d in getattr(stmt, "decorator_list", [])])
        self.text = "".join(lines[first - 1 : stmt.end_lineno]).rstrip() + "\n"
        self.defines = _defined_names(stmt)
        self.uses = _used_names(stmt)
        self.is_import = isinstance(stmt, (ast.Import, ast.ImportFrom))
        self.is_future = isinstance(stmt, ast.ImportFrom) and stmt.module == "__future__"


def extract_task_code(cells: Iterable[str], functions: Sequence[str]) -> str:
    """The source a module needs to define ``functions`` the way the cells did.

    Parameters
    ----------
    cells:
        Code cells (IPython syntax allowed), in execution order.
    functions:
        Names of top-level functions that must be defined.

    Returns
    -------
    str
        Every import of the cells, then the definitions ``functions`` depend on (the last
        definition of each name, as the kernel saw it), in the cells' order.

    Raises
    ------
    WorkflowError
        When a function is not defined at the top level of any cell.
    """
    statements: list[_Statement] = []
    for cell in cells:
        source = _python_source(cell or "")
        if source is None:
            continue
        lines = source.splitlines(keepends=True)
        for stmt in ast.parse(source).body:
            kinds = (
                ast.Import,
                ast.ImportFrom,
                ast.FunctionDef,
                ast.AsyncFunctionDef,
                ast.ClassDef,
                ast.Assign,
                ast.AnnAssign,
            )
            if not isinstance(stmt, kinds) or _is_workflow_function(stmt):
                continue
            if isinstance(stmt, (ast.Assign, ast.AnnAssign)) and _runs_something(stmt):
                continue
            statements.append(_Statement(stmt, lines))
    last: dict[str, int] = {}
    for index, st in enumerate(statements):
        if not st.is_import:
            for name in st.defines:
                last[name] = index
    missing = [f for f in functions if f not in last]
    if missing:
        raise WorkflowError(
            f"cannot export: no cell defines {', '.join(repr(m) for m in missing)} at the top level"
        )
    keep: set[int] = set()
    todo = [last[f] for f in functions]
    while todo:
        index = todo.pop()
        if index in keep:
            continue
        keep.add(index)
        for name in statements[index].uses:
            if name in last and last[name] not in keep:
                todo.append(last[name])
    futures = [st.text for st in statements if st.is_future]
    imports: list[str] = []
    for st in statements:
        if st.is_import and not st.is_future and st.text not in imports:
            imports.append(st.text)
    body = [statements[i].text for i in sorted(keep)]
    parts = [*dict.fromkeys(futures), *imports]
    return "".join(parts) + ("\n\n" if parts else "") + "\n\n".join(body)


# -- what the cells do not say: the functions' own globals --------------------------------------

#: Literal values longer than this are not written into ``tasks.py``.
_MAX_LITERAL_CHARS = 10_000
_LITERAL_TYPES = (
    int,
    float,
    complex,
    str,
    bytes,
    bool,
    type(None),
    tuple,
    list,
    dict,
    set,
    frozenset,
)


def task_module_code(cells: Sequence[str], functions: dict[str, Any]) -> str:
    """``tasks.py`` for ``functions``: :func:`extract_task_code`, completed from their globals.

    The cells are the first source: they say how the user wrote an import or a constant. What
    the kept code uses and no cell defines (cells run without history, ``%run``, ``exec``) is
    then taken from the functions' module globals (the kernel's namespace) and written as code:
    a module as ``import X as Y``, a function or class that an importable module exposes as
    ``from M import NAME``, one defined in the kernel by its source, a literal value as an
    assignment. These go before the cells' code, so a cell's own definition still wins.

    Parameters
    ----------
    cells:
        Code cells (IPython syntax allowed), in execution order.
    functions:
        Python name -> the task function that ``tasks.py`` must define.

    Raises
    ------
    WorkflowError
        A function has no source, or the code uses a global that cannot be written as code
        (an object built at run time, such as a logger or a data frame); names it.
    """
    names = list(functions)
    namespaces = [ns for fn in functions.values() if (ns := _globals_of(fn)) is not None]
    precise = set().union(*(_code_names(fn) for fn in functions.values()))
    written: dict[str, tuple[str, str]] = {}  # global name -> (kind, code)
    code = extract_task_code(cells, names)
    for _ in range(1000):  # each round writes at least one more name; bounded for safety
        new = False
        for name in sorted(_free_names(code) - set(written)):
            found = _lookup(name, namespaces)
            if found is _MISSING:
                continue  # not defined in the kernel either: the function fails there too
            entry = _as_code(name, found)
            if entry is None:
                if name in precise:
                    raise WorkflowError(
                        f"cannot export: the task code uses the global {name!r} "
                        f"(a {_type_name(found)}), which no code cell defines and which cannot "
                        "be written as code; define it in a cell or a module the tasks import"
                    )
                continue
            written[name] = entry
            if entry[0] == "definition":
                precise |= _code_names(found)
            new = True
        if not new:
            break
        code = extract_task_code([_preamble(written), *cells], names)
    return code


_MISSING = object()


def _preamble(written: dict[str, tuple[str, str]]) -> str:
    """One synthetic cell: imports, then constants, then definitions (dependencies first)."""
    order = {"import": 0, "constant": 1}
    items = list(written.values())
    imports = sorted(
        (text for kind, text in items if kind == "import"), key=lambda t: (t[0] == "f", t)
    )
    constants = [text for kind, text in items if kind == "constant"]
    # A definition found later is one an earlier one needs (a base class): it goes first.
    definitions = [text for kind, text in reversed(items) if kind not in order]
    return "\n".join(imports + constants) + "\n\n" + "\n\n".join(definitions) + "\n"


def _unwrap(obj: Any) -> Any:
    """The plain function behind a ``@jw.task`` (a TaskFunction), else ``obj``."""
    from ..actions.registry import TaskFunction

    return obj.definition.fn if isinstance(obj, TaskFunction) else obj


def _globals_of(fn: Any) -> dict[str, Any] | None:
    namespace = getattr(_unwrap(fn), "__globals__", None)
    return namespace if isinstance(namespace, dict) else None


def _code_names(obj: Any) -> set[str]:
    """The global (and attribute) names a function's or class's code objects refer to."""
    obj = _unwrap(obj)
    codes = []
    if inspect.isclass(obj):
        for member in vars(obj).values():
            member = getattr(member, "__func__", member)
            if hasattr(member, "__code__"):
                codes.append(member.__code__)
    elif hasattr(obj, "__code__"):
        codes.append(obj.__code__)
    names: set[str] = set()
    while codes:
        code = codes.pop()
        names.update(code.co_names)
        codes.extend(c for c in code.co_consts if inspect.iscode(c))
    return names


def _free_names(code: str) -> set[str]:
    """Names the module's top-level statements read and do not define (builtins left out)."""
    import builtins

    defined: set[str] = set()
    used: set[str] = set()
    for stmt in ast.parse(code).body:
        defined |= _defined_names(stmt)
        used |= _used_names(stmt)
    return {n for n in used - defined if not hasattr(builtins, n) and not n.startswith("__")}


def _lookup(name: str, namespaces: list[dict[str, Any]]) -> Any:
    for namespace in namespaces:
        if name in namespace:
            return namespace[name]
    return _MISSING


def _type_name(value: Any) -> str:
    kind = type(value)
    return (
        kind.__qualname__
        if kind.__module__ == "builtins"
        else f"{kind.__module__}.{kind.__qualname__}"
    )


def _as_code(name: str, value: Any) -> tuple[str, str] | None:
    """``(kind, code)`` that binds ``name`` to ``value`` in a fresh module, or None."""
    if inspect.ismodule(value):
        module = value.__name__
        if module == name:
            return "import", f"import {module}"
        return "import", f"import {module} as {name}"
    if isinstance(value, _LITERAL_TYPES):
        text = repr(value)
        if len(text) <= _MAX_LITERAL_CHARS and _round_trips(text, value):
            return "constant", f"{name} = {text}"
        return None
    line = _import_from(name, value)
    if line is not None:
        return "import", line
    plain = _unwrap(value)
    if getattr(plain, "__module__", None) in ("__main__", None) or str(
        getattr(plain, "__module__", "")
    ).startswith("__"):
        if getattr(value, "__name__", None) != name or not (
            inspect.isfunction(plain) or inspect.isclass(plain)
        ):
            return None
        source = _source_of(plain)
        return None if source is None else ("definition", source)
    return None


def _source_of(obj: Any) -> str | None:
    """The source of a function or class defined in the kernel, or None.

    ``inspect`` finds a class's source through its module's file, which ``__main__`` of a
    kernel does not have; the class is then looked up in the cells IPython compiled (newest
    first; the cell a method of it comes from, when it has one).
    """
    try:
        return textwrap.dedent(inspect.getsource(obj))
    except (OSError, TypeError):
        if not inspect.isclass(obj):
            return None
    import linecache

    files = [
        member.__code__.co_filename
        for member in (getattr(m, "__func__", m) for m in vars(obj).values())
        if hasattr(member, "__code__")
    ]
    with contextlib.suppress(ImportError):
        from IPython import get_ipython

        shell = get_ipython()
        compiler = getattr(shell, "compile", None)
        files += reversed(list(getattr(compiler, "_filename_map", {})))
    files += [name for name in reversed(list(linecache.cache)) if name.startswith("<")]
    for file in dict.fromkeys(files):
        lines = linecache.getlines(file)
        try:
            tree = ast.parse("".join(lines))
        except (SyntaxError, ValueError):
            continue
        found = [
            node
            for node in tree.body
            if isinstance(node, ast.ClassDef) and node.name == obj.__name__
        ]
        if found:
            return _Statement(found[-1], lines).text
    return None


def _round_trips(text: str, value: Any) -> bool:
    try:
        return bool(ast.literal_eval(text) == value)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return False


def _import_from(name: str, value: Any) -> str | None:
    """``from M import ATTR [as NAME]`` when an importable module exposes ``value`` as ATTR.

    The shortest module path is preferred (``from jupyter_workflows import task``, not
    ``from jupyter_workflows.actions.registry import task``).
    """
    module = getattr(value, "__module__", None)
    attr = getattr(value, "__qualname__", None) or getattr(value, "__name__", None)
    if not isinstance(module, str) or not isinstance(attr, str) or not attr.isidentifier():
        return None  # a nested qualname (Class.method, f.<locals>.g) is not importable
    if module == "__main__" or module.startswith("__"):
        return None
    parts = module.split(".")
    for end in range(1, len(parts) + 1):
        candidate = ".".join(parts[:end])
        loaded = sys.modules.get(candidate)
        if loaded is not None and getattr(loaded, attr, None) is value:
            alias = "" if attr == name else f" as {name}"
            return f"from {candidate} import {attr}{alias}"
    return None


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
