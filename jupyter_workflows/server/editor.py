"""REST routes of JupyterLab's workflow editor: validate a text, apply a graph edit to a text.

The editor (``labextension/src/editor.tsx``) keeps the file's text in JupyterLab's own document
model (saved through the contents API, undo, dirty marker); the server only computes:

* ``POST validate`` ``{"text", "path"}``: the text loaded and validated as ``jupyter-workflows
  validate`` would (actions resolved beside ``path``), answered with the graph to draw, or
  the first error as ``FILE:LINE:COL: message`` with its ``line``/``col``. Always 200: an
  invalid workflow is an answer, not a failed request.
* ``POST edit`` ``{"text", "path", "op", ...}``: one graph edit (the widget's
  :data:`~jupyter_workflows.spec.edits.EditOp`, applied by the same pure
  :func:`~jupyter_workflows.spec.edits.apply_edit`) to the text, written back in the
  author's style (:mod:`~jupyter_workflows.spec.yaml_roundtrip`: comments, quoting, order
  kept), validated; 200 with the new text and graph, 400 with the one-line reason when the
  edit is refused (nothing is written anywhere: the browser puts the text in the editor).
* ``POST file_task`` ``{"path", "file"}``: what a file dropped on the editor's graph becomes
  (``file`` relative to the server's root, like ``path``, the workflow file): a notebook a
  ``core.notebook`` task with its path (relative to the workflow's folder) as input, a ``.py``
  file a ``module:function`` task; ``functions`` lists the file's top-level functions, public
  ones first, for the editor to choose from. The task itself is then added by ``edit``
  (``add_task``), as the editor's "Add task" does.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from jupyter_server.auth.decorator import authorized
from tornado import web

from ..exceptions import SpecError, WorkflowError, first_line
from .handlers import _WorkflowsHandler

__all__ = ["editor_handlers"]


def _inside(root: Path, relative: str) -> Path:
    path = (root / relative).resolve() if relative else root.resolve() / "untitled.yaml"
    try:
        path.relative_to(root.resolve())
    except ValueError:
        raise web.HTTPError(400, f"path {relative!r} is outside the server's root folder") from None
    return path


def _load(text: str, path: Path, label: str) -> Any:
    from ..definition import Workflow
    from ..spec.loader import load_spec

    spec, smap = load_spec(text, file=label, name=path.stem.removesuffix(".workflow"))
    workflow = Workflow(spec, source_map=smap, path=path, source=text)
    try:
        workflow.validate()
    except SpecError:
        raise
    except WorkflowError as exc:  # an action that does not resolve
        raise SpecError(first_line(exc), file=label) from None
    return workflow


def _graph(workflow: Any) -> dict[str, Any]:
    from ..jupyter.picture import graph_mime_data
    from ..spec.graph import graph_dict

    return dict(graph_mime_data(graph_dict(workflow.compiled)))


def _answer(text: str, path: Path, label: str) -> dict[str, Any]:
    try:
        graph = _graph(_load(text, path, label))
    except SpecError as exc:
        return {
            "ok": False,
            "error": first_line(exc),
            "line": exc.line,
            "col": exc.col,
            "graph": None,
        }
    return _accepted(graph, text, label)


def _accepted(graph: dict[str, Any], text: str, label: str) -> dict[str, Any]:
    """The valid answer, with each task's fields as YAML for the graph side's task form."""
    from ..spec.edits import task_yaml
    from ..spec.loader import parse_document

    data, _ = parse_document(text, file=label)
    tasks = task_yaml(data) if isinstance(data, dict) else {}
    return {
        "ok": True,
        "error": None,
        "line": None,
        "col": None,
        "graph": graph,
        "task_yaml": tasks,
    }


def _edit(text: str, path: Path, label: str, message: dict[str, Any]) -> dict[str, Any]:
    from ..spec.edits import apply_edit, edited_text
    from ..spec.loader import parse_document

    data, _ = parse_document(text, file=label)
    if not isinstance(data, dict):
        raise SpecError("the document is not a mapping of fields", file=label)
    edited = apply_edit(data, message)
    new_text = edited_text(text, edited, json_file=path.suffix.lower() == ".json")
    workflow = _load(new_text, path, label)  # refused edits never reach the editor
    return {"text": new_text, **_accepted(_graph(workflow), new_text, label)}


def _text_and_path(handler: _WorkflowsHandler, shape: str) -> tuple[dict[str, Any], Path, str]:
    """The request body (``{"text": str, "path": str, ...}``), the file it names inside the
    server's root, and the label errors are positioned with; 400 for anything else."""
    body = handler.json_body(required=True)
    if not isinstance(body, dict) or not isinstance(body.get("text"), str):
        raise web.HTTPError(400, f"the body must be {shape}")
    relative = str(body.get("path") or "")
    return body, _inside(handler.root_dir, relative), relative


class ValidateHandler(_WorkflowsHandler):
    """``POST validate``: ``{"text", "path"}`` -> ``{ok, error, line, col, graph}``."""

    @web.authenticated
    @authorized
    async def post(self) -> None:
        body, path, relative = _text_and_path(self, '{"text": "...", "path": "..."}')
        self.send(await self.call(_answer, body["text"], path, relative or path.name))


class EditHandler(_WorkflowsHandler):
    """``POST edit``: ``{"text", "path", "op", ...}`` -> ``{text, ok, error, graph}``."""

    @web.authenticated
    @authorized
    async def post(self) -> None:
        body, path, relative = _text_and_path(self, '{"text": "...", "path": "...", "op": ...}')
        message = {k: v for k, v in body.items() if k not in ("text", "path")}
        self.send(await self.call(_edit, body["text"], path, relative or path.name, message))


def _task_name(stem: str, taken: set[str]) -> str:
    import re

    base = re.sub(r"[^A-Za-z0-9_.-]", "_", stem) or "task"
    if not re.match(r"[A-Za-z_]", base):
        base = f"_{base}"
    name, n = base, 2
    while name in taken:
        name, n = f"{base}_{n}", n + 1
    return name


def _file_task(workflow_path: Path, file: Path, relative: str, text: str) -> dict[str, Any]:
    """The task a dropped file becomes (see the module's docstring)."""
    import ast
    import os

    from ..spec.loader import parse_document

    taken: set[str] = set()
    try:
        data, _ = parse_document(text, file=workflow_path.name)
        tasks = data.get("tasks") if isinstance(data, dict) else None
        if isinstance(tasks, dict):
            taken = set(tasks)
        elif isinstance(tasks, list):
            taken = {str(t["name"]) for t in tasks if isinstance(t, dict) and t.get("name")}
    except SpecError:
        pass
    folder = workflow_path.parent
    rel = Path(os.path.relpath(file, folder))
    if file.suffix.lower() == ".ipynb":
        return {
            "name": _task_name(file.stem, taken),
            "action": "core.notebook",
            "input": {"path": rel.as_posix()},
            "functions": [],
        }
    if file.suffix.lower() != ".py":
        raise SpecError(
            f"{relative}: only a notebook (.ipynb) or a Python file (.py) becomes a task"
        )
    if rel.parts[0] == "..":
        raise SpecError(
            f"{relative}: a Python file becomes a task only inside the workflow's folder "
            "(that folder is what the run imports from)"
        )
    try:
        source = file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise SpecError(f"{relative}: cannot read it ({first_line(exc)})") from None
    try:
        tree = ast.parse(source, filename=relative)
    except SyntaxError as exc:
        raise SpecError(f"{relative}:{exc.lineno or 1}:{exc.offset or 1}: {exc.msg}") from None
    names = [
        node.name for node in tree.body if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
    ]
    functions = [n for n in names if not n.startswith("_")] + [
        n for n in names if n.startswith("_")
    ]
    if not functions:
        raise SpecError(f"{relative}: no top-level function to run as a task")
    module = ".".join(rel.with_suffix("").parts)
    return {
        "name": _task_name(functions[0], taken),
        "action": f"{module}:{functions[0]}",
        "module": module,
        "input": None,
        "functions": functions,
    }


class FileTaskHandler(_WorkflowsHandler):
    """``POST file_task``: ``{"text", "path", "file"}`` -> ``{name, action, input, functions}``."""

    @web.authenticated
    @authorized
    async def post(self) -> None:
        body, path, _ = _text_and_path(self, '{"text": "...", "path": "...", "file": "..."}')
        relative = body.get("file")
        if not isinstance(relative, str) or not relative:
            raise web.HTTPError(400, 'the body must name the dropped "file"')
        file = _inside(self.root_dir, relative)
        if not file.is_file():
            raise web.HTTPError(400, f"{relative}: no such file")
        try:
            answer = await self.call(_file_task, path, file, relative, body["text"])
        except SpecError as exc:
            raise web.HTTPError(400, first_line(exc)) from None
        self.send(answer)


def editor_handlers(base: str) -> list[tuple[str, type[web.RequestHandler]]]:
    return [
        (rf"{base}/validate/?", ValidateHandler),
        (rf"{base}/edit/?", EditHandler),
        (rf"{base}/file_task/?", FileTaskHandler),
    ]
