"""Which notebook code an exported job's tasks need, as the text of ``tasks.py``.

Part of ``export`` (:mod:`jupyter_workflows.jupyter.export`), which writes the job folder. The
cells are read as Python (IPython syntax transformed first) and top-level statements kept by a
dependency closure from the task functions (:func:`extract_task_code`); what the cells do not
say is written from the functions' own globals (:func:`task_module_code`). See the design notes
in :mod:`~jupyter_workflows.jupyter.export`.
"""

from __future__ import annotations

import ast
import contextlib
import inspect
import sys
import textwrap
from collections.abc import Iterable, Sequence
from typing import Any

from ..exceptions import WorkflowError

__all__ = ["extract_task_code", "task_module_code"]


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
