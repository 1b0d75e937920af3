"""REST routes of JupyterLab's workflow editor: validate a text, apply a graph edit to a text.

The editor (``labextension/src/editor.tsx``) keeps the file's text in JupyterLab's own document
model (saved through the contents API, undo, dirty marker); the server only computes:

* ``POST validate`` ``{"text", "path"}``: the text loaded and validated as ``jupyter-workflows
  validate`` would (actions resolved beside ``path``), answered with the graph to draw, or
  the first error as ``FILE:LINE:COL: message`` with its ``line``/``col``. Always 200: an
  invalid workflow is an answer, not a failed request.
* ``POST edit`` ``{"text", "path", "op", ...}``: one graph edit (the widget's
  :data:`~jupyter_workflows.jupyter.wire.EditOp`) applied to the text, written back in the
  author's style (:mod:`~jupyter_workflows.jupyter.yaml_roundtrip`: comments, quoting, order
  kept), validated; 200 with the new text and graph, 400 with the one-line reason when the
  edit is refused (nothing is written anywhere: the browser puts the text in the editor).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from jupyter_server.auth.decorator import authorized
from tornado import web

from ..exceptions import SpecError, WorkflowError
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
        raise SpecError(str(exc).strip().splitlines()[0], file=label) from None
    return workflow


def _answer(text: str, path: Path, label: str) -> dict[str, Any]:
    from ..jupyter.widget import graph_mime_data

    try:
        workflow = _load(text, path, label)
        from ..spec.graph import graph_dict

        graph = graph_mime_data(graph_dict(workflow.compiled))
    except SpecError as exc:
        return {
            "ok": False,
            "error": str(exc).strip().splitlines()[0],
            "line": exc.line,
            "col": exc.col,
            "graph": None,
        }
    return {"ok": True, "error": None, "line": None, "col": None, "graph": graph}


def _edit(text: str, path: Path, label: str, message: dict[str, Any]) -> dict[str, Any]:
    from ..jupyter.widget import apply_edit, dump_document
    from ..jupyter.yaml_roundtrip import round_trip
    from ..spec.loader import parse_document

    data, _ = parse_document(text, file=label)
    if not isinstance(data, dict):
        raise SpecError("the document is not a mapping of fields", file=label)
    edited = apply_edit(data, message)
    json_file = path.suffix.lower() == ".json"
    new_text = None if json_file else round_trip(text, edited)
    if new_text is None:
        new_text = dump_document(edited, json_file=json_file)
    _load(new_text, path, label)  # refused edits never reach the editor
    return {"text": new_text, **_answer(new_text, path, label)}


class ValidateHandler(_WorkflowsHandler):
    """``POST validate``: ``{"text", "path"}`` -> ``{ok, error, line, col, graph}``."""

    @web.authenticated
    @authorized
    async def post(self) -> None:
        body = self.json_body(required=True)
        if not isinstance(body, dict) or not isinstance(body.get("text"), str):
            raise web.HTTPError(400, 'the body must be {"text": "...", "path": "..."}')
        relative = str(body.get("path") or "")
        path = _inside(self.root_dir, relative)
        self.send(await self.call(_answer, body["text"], path, relative or path.name))


class EditHandler(_WorkflowsHandler):
    """``POST edit``: ``{"text", "path", "op", ...}`` -> ``{text, ok, error, graph}``."""

    @web.authenticated
    @authorized
    async def post(self) -> None:
        body = self.json_body(required=True)
        if not isinstance(body, dict) or not isinstance(body.get("text"), str):
            raise web.HTTPError(400, 'the body must be {"text": "...", "path": "...", "op": ...}')
        relative = str(body.get("path") or "")
        path = _inside(self.root_dir, relative)
        message = {k: v for k, v in body.items() if k not in ("text", "path")}
        self.send(await self.call(_edit, body["text"], path, relative or path.name, message))


def editor_handlers(base: str) -> list[tuple[str, type[web.RequestHandler]]]:
    return [(rf"{base}/validate/?", ValidateHandler), (rf"{base}/edit/?", EditHandler)]
