"""The live graph widget: a workflow's tasks, coloured by status, in the notebook.

Design
------
* Python computes, the browser draws. The widget holds plain JSON traits
  (typed in :mod:`jupyter_workflows.jupyter.wire`): the graph's shape, a status
  entry per task, the run, the open inquiries. The front end
  (``labextension/``, React Flow + elkjs, bundled to ``static/widget.js``)
  interprets none of the workflow language; it lays out and paints what it is
  given. The widget knows nothing of the engine either: whoever runs the
  workflow calls :meth:`GraphWidget.update_task` / :meth:`~GraphWidget.set_run`
  / :meth:`~GraphWidget.set_inquiries`, and listens with
  :meth:`~GraphWidget.on_respond`. That keeps the surface thin (one
  orchestrator, many views) and the widget testable without a cluster.
* Each update reassigns a whole trait value. traitlets only notices a new
  object, and the front end re-renders from whole values anyway; statuses are
  small.
* A notebook saved with the widget must still show something where no kernel
  or widget manager runs (nbconvert, GitHub). ``_repr_mimebundle_`` therefore
  adds, beside anywidget's widget view, a ``text/html`` inline SVG of the
  graph (:func:`graph_svg`, laid out here with networkx so it needs no
  JavaScript) and a one-line ``text/plain`` summary. Front ends with a widget
  manager prefer the widget view; the others fall back to the picture.
* Editing (:meth:`GraphWidget.enable_editing`, :meth:`GraphWidget.edit`) goes
  through the kernel: the browser sends an ``edit`` message, Python applies it
  to the document, loads and validates the result with the project's own
  loader and validator, and only then updates the traits, re-registers the
  workflow and writes the file. The browser redraws from the new traits, or
  shows the one-line positioned error; it never edits YAML itself. Only the
  ``%%workflow`` cell is written by the browser (the kernel cannot reach a
  cell's source), from the YAML the kernel accepted.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import html
import itertools
import json
import logging
import os
import pathlib
import reprlib
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any

import anywidget
import networkx as nx
import traitlets
import yaml

from jupyter_workflows.exceptions import SpecError, WorkflowError
from jupyter_workflows.jupyter.wire import (
    CONNECT_KINDS,
    EDGE_STYLES,
    EDIT_OPS,
    GRAPH_MIME,
    GRAPH_MIME_STATUS_FIELDS,
    RUN_STATES,
    STATUS_COLORS,
    TASK_STATES,
    TASK_STATUS_FIELDS,
    EditErrorMessage,
    EditOk,
    EditTarget,
    GraphMimeData,
    Inquiry,
    RespondErrorMessage,
    RespondOkMessage,
    RunInfo,
    TaskStatus,
)
from jupyter_workflows.values import preview

if TYPE_CHECKING:  # pragma: no cover
    from jupyter_workflows.definition import Workflow

__all__ = [
    "GraphWidget",
    "RespondCallback",
    "apply_edit",
    "dump_document",
    "graph_mime_data",
    "graph_svg",
]

logger = logging.getLogger(__name__)

_STATIC = pathlib.Path(__file__).parent.parent / "static"

RespondCallback = Callable[[str, Any], object]
"""``callback(task, data)``: called when a user submits an inquiry form."""

MAX_LOG_LINES = 1000
"""Only the newest log lines of a task are synced: the browser is not a log store."""

_MAX_RESULT_CHARS = 10_000

DISPLAY_REFRESH_INTERVAL = 5.0
"""Seconds between refreshes of a tracked display while a run changes (settling refreshes at once)."""


def _build_id() -> str:
    try:
        return (_STATIC / "build_id.txt").read_text(encoding="utf-8").strip()
    except OSError:
        return ""


# The module anywidget ships with every widget: a few hundred bytes, not the 2 MB front end.
# With the JupyterLab extension installed (Lab, Notebook 7) the front end is already in the
# page, loaded once, as ``globalThis.__jupyter_workflows__.widget``; the stub uses it when
# it was built from the same sources (``build_id``). Elsewhere (VS Code, Colab, a stale
# extension) it asks the kernel for the bundle once per page (``{"type": "bundle"}``).
_STUB_ESM = """\
const BUILD_ID = %(build_id)s;
const KEY = "__jupyter_workflows__";
function fromExtension() {
  const ext = globalThis[KEY];
  return ext && ext.widget && ext.buildId === BUILD_ID ? ext.widget : null;
}
function fromKernel(model) {
  const cache = (globalThis.__jupyter_workflows_fallback__ ||= {});
  if (!cache[BUILD_ID]) {
    cache[BUILD_ID] = new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        model.off("msg:custom", onMsg);
        delete cache[BUILD_ID];
        reject(new Error("no answer from the kernel"));
      }, 60000);
      function onMsg(msg) {
        if (!msg || msg.type !== "bundle") return;
        clearTimeout(timer);
        model.off("msg:custom", onMsg);
        const style = document.createElement("style");
        style.dataset.jupyterWorkflows = BUILD_ID;
        style.textContent = msg.css;
        document.head.appendChild(style);
        const url = URL.createObjectURL(new Blob([msg.js], { type: "text/javascript" }));
        import(url).then((mod) => resolve(mod.default), reject);
      }
      model.on("msg:custom", onMsg);
      model.send({ type: "bundle" });
    });
  }
  return cache[BUILD_ID];
}
export default {
  async render({ model, el }) {
    let widget = fromExtension();
    if (!widget) {
      try {
        widget = await fromKernel(model);
      } catch (err) {
        el.textContent = "jupyter_workflows: cannot load the graph view: " + err.message;
        return;
      }
    }
    return widget.render({ model, el });
  },
};
"""
_RUN_FIELDS = tuple(RunInfo.__annotations__)


def _empty_task_status() -> TaskStatus:
    return {
        "status": "pending",
        "done": None,
        "total": None,
        "attempts": 0,
        "inputs": None,
        "result": None,
        "result_view": None,
        "error": None,
        "logs": [],
        "started_at": None,
        "ended_at": None,
    }


def _short_repr(value: object) -> str:
    short = reprlib.Repr()
    short.maxstring = 200
    short.maxother = 200
    short.maxlist = short.maxdict = short.maxtuple = short.maxset = 20
    return short.repr(value)


def _jsonable(value: object) -> Any:
    """``value`` as plain JSON, anything JSON cannot hold replaced by its repr.

    A trait that is not JSON breaks the comm message that carries it, and the
    widget with it; a task's inputs are user data, so they are made safe here.
    """
    return json.loads(json.dumps(value, default=_short_repr))


class GraphWidget(anywidget.AnyWidget):
    """A workflow's graph with live task status, inputs, results, logs and inquiries.

    Parameters
    ----------
    graph : dict
        The graph to draw, as :class:`~jupyter_workflows.jupyter.wire.Graph`:
        ``{"name", "nodes": [...], "edges": [...]}``.
    spec : dict, optional
        The workflow's own JSON, kept for the in-widget editor.
    **kwargs
        Initial values of the other traits (``status``, ``run``,
        ``inquiries``, ``dashboard_link``, ``selected``) or widget options.

    Examples
    --------
    >>> w = GraphWidget({"name": "demo", "nodes": [], "edges": []})
    >>> w.update_task("fetch", status="running", attempts=1)
    >>> w.status["fetch"]["status"]
    'running'
    """

    _esm = _STUB_ESM % {"build_id": json.dumps(_build_id())}
    _css = ""

    graph = traitlets.Dict().tag(sync=True)
    """The graph's shape (:class:`~jupyter_workflows.jupyter.wire.Graph`)."""
    spec = traitlets.Dict().tag(sync=True)
    """The workflow's own JSON; not interpreted by the front end yet."""
    status = traitlets.Dict().tag(sync=True)
    """Task name -> :class:`~jupyter_workflows.jupyter.wire.TaskStatus`; absent means not started."""
    run = traitlets.Dict().tag(sync=True)
    """The run (:class:`~jupyter_workflows.jupyter.wire.RunInfo`)."""
    inquiries = traitlets.List().tag(sync=True)
    """Open human approvals (:class:`~jupyter_workflows.jupyter.wire.Inquiry`)."""
    dashboard_link = traitlets.Unicode("").tag(sync=True)
    """The Dask dashboard's URL, or ``""``."""
    selected = traitlets.Unicode("").tag(sync=True)
    """The task whose details are open (set by a click in the browser), or ``""``."""
    editable = traitlets.Bool(False).tag(sync=True)
    """Whether the browser offers the Edit toggle (see :meth:`enable_editing`)."""
    edit_target = traitlets.Unicode("").tag(sync=True)
    """Where accepted edits go: ``"cell"``, ``"file"``, ``"none"`` (:data:`~.wire.EditTarget`)."""
    edit_path = traitlets.Unicode("").tag(sync=True)
    """The file accepted edits are written to (target ``"file"``), else ``""``."""
    yaml = traitlets.Unicode("").tag(sync=True)
    """The workflow's current YAML (for a cell, the text under the ``%%workflow`` line)."""
    task_yaml = traitlets.Dict().tag(sync=True)
    """Task name -> its fields as YAML, as written: what the browser's task editor starts from."""

    @traitlets.default("run")
    def _default_run(self) -> RunInfo:
        return {"run_id": None, "status": None, "error": None}

    def __init__(
        self, graph: Mapping[str, Any], spec: Mapping[str, Any] | None = None, **kwargs: Any
    ) -> None:
        super().__init__(graph=dict(graph), spec=dict(spec or {}), **kwargs)
        # Updates may come from the orchestrator's thread while the kernel
        # thread handles a click: merge-and-reassign must not lose either.
        self._lock = threading.RLock()
        self._respond_callbacks: list[RespondCallback] = []
        self._edit_source: _EditSource | None = None
        self._displays: list[Any] = []
        self._display_refreshed = 0.0
        self._display_state: tuple[Any, ...] | None = None
        self.on_msg(self._handle_message)

    # -- updates from Python ---------------------------------------------------

    def update_task(self, name: str, **fields: Any) -> None:
        """Merge ``fields`` into the status of task ``name`` and sync it.

        Parameters
        ----------
        name : str
            The task. A task seen for the first time starts from
            ``{"status": "pending", "attempts": 0, "logs": [], ...}``.
        **fields
            Any of the :class:`~jupyter_workflows.jupyter.wire.TaskStatus`
            fields. ``inputs`` is made JSON-safe; a ``result`` that is not a
            string is shown by its short repr; only the last
            :data:`MAX_LOG_LINES` of ``logs`` are kept.

        Raises
        ------
        TypeError
            If a field is not a ``TaskStatus`` field.
        ValueError
            If ``status`` is not a task state.
        """
        unknown = sorted(set(fields) - set(TASK_STATUS_FIELDS))
        if unknown:
            msg = f"update_task() got unknown field(s) {', '.join(unknown)}; expected some of {', '.join(TASK_STATUS_FIELDS)}"
            raise TypeError(msg)
        if "status" in fields and fields["status"] not in TASK_STATES:
            msg = f"unknown task status {fields['status']!r}; expected one of {', '.join(TASK_STATES)}"
            raise ValueError(msg)
        if fields.get("inputs") is not None:
            fields["inputs"] = _jsonable(fields["inputs"])
        if "result" in fields and "result_view" not in fields:
            # The value itself stays in the kernel: the browser gets a bounded view of it.
            result = fields["result"]
            fields["result_view"] = None if result is None else preview(result)
        result = fields.get("result")
        if result is not None:
            text = result if isinstance(result, str) else _short_repr(result)
            fields["result"] = text[:_MAX_RESULT_CHARS]
        if "logs" in fields:
            fields["logs"] = [str(line) for line in (fields["logs"] or [])][-MAX_LOG_LINES:]
        with self._lock:
            current = self.status.get(name) or _empty_task_status()
            self.status = {**self.status, name: {**current, **fields}}
        if "status" in fields or "done" in fields:
            self._refresh_displays(force=False)

    def set_run(self, **fields: Any) -> None:
        """Merge ``fields`` into the ``run`` trait.

        Parameters
        ----------
        **fields
            ``run_id``, ``status`` (a run state or None) and ``error``.

        Raises
        ------
        TypeError
            If a field is not a ``RunInfo`` field.
        ValueError
            If ``status`` is not a run state.
        """
        unknown = sorted(set(fields) - set(_RUN_FIELDS))
        if unknown:
            msg = f"set_run() got unknown field(s) {', '.join(unknown)}; expected some of {', '.join(_RUN_FIELDS)}"
            raise TypeError(msg)
        state = fields.get("status")
        if state is not None and state not in RUN_STATES:
            msg = f"unknown run status {state!r}; expected one of {', '.join(RUN_STATES)}"
            raise ValueError(msg)
        with self._lock:
            self.run = {**self.run, **fields}
        if "status" in fields:
            self._refresh_displays(force=True)

    def set_inquiries(self, inquiries: Iterable[Mapping[str, Any]]) -> None:
        """Replace the open inquiries; the browser shows a form for each.

        Parameters
        ----------
        inquiries : iterable of dict
            Each ``{"task": str, "prompt": str, "schema": dict}``; ``prompt``
            defaults to ``""`` and ``schema`` to ``{}`` (a free JSON answer).

        Raises
        ------
        ValueError
            If an inquiry has no ``task``.
        """
        cleaned: list[Inquiry] = []
        for inquiry in inquiries:
            task = inquiry.get("task")
            if not isinstance(task, str) or not task:
                msg = f"an inquiry needs a task name, got {dict(inquiry)!r}"
                raise ValueError(msg)
            cleaned.append(
                {
                    "task": task,
                    "prompt": str(inquiry.get("prompt") or ""),
                    "schema": _jsonable(dict(inquiry.get("schema") or {})),
                }
            )
        self.inquiries = cleaned

    # -- answers from the browser ------------------------------------------------

    def on_respond(self, callback: RespondCallback, *, remove: bool = False) -> RespondCallback:
        """Register ``callback(task, data)`` for inquiry answers submitted in the browser.

        If the callback raises, its message is shown under the form and the
        user may answer again; otherwise the form shows that the answer was sent.

        Parameters
        ----------
        callback : callable
            Called with the task name and the answer (plain JSON).
        remove : bool, default False
            Unregister ``callback`` instead.

        Returns
        -------
        callable
            ``callback``, so this works as a decorator.
        """
        if remove:
            if callback in self._respond_callbacks:
                self._respond_callbacks.remove(callback)
        elif callback not in self._respond_callbacks:
            self._respond_callbacks.append(callback)
        return callback

    def _handle_message(self, _widget: object, content: object, _buffers: object) -> None:
        if isinstance(content, dict) and content.get("type") == "bundle":
            self._send_bundle()
            return
        if isinstance(content, dict) and content.get("type") == "edit":
            self._handle_edit(content)
            return
        if not isinstance(content, dict) or content.get("type") != "respond":
            return  # not ours (anywidget's own commands use the same channel)
        task = content.get("task")
        if not isinstance(task, str):
            logger.warning("ignoring a respond message without a task: %r", content)
            return
        data = content.get("data")
        if not self._respond_callbacks:
            self._send_respond_error(
                task,
                "this widget is not connected to a run: answer with Run.respond() "
                "or `jupyter-workflows respond`",
            )
            return
        try:
            for callback in list(self._respond_callbacks):
                callback(task, data)
        except Exception as exc:
            logger.debug("the respond callback for task %r raised", task, exc_info=True)
            self._send_respond_error(task, str(exc) or type(exc).__name__)
            return
        ok: RespondOkMessage = {"type": "respond_ok", "task": task}
        self.send(ok)

    def _send_respond_error(self, task: str, error: str) -> None:
        message: RespondErrorMessage = {"type": "respond_error", "task": task, "error": error}
        self.send(message)

    # -- editing ----------------------------------------------------------------

    def enable_editing(
        self,
        workflow: Workflow,
        *,
        target: EditTarget | None = None,
        name: str | None = None,
    ) -> None:
        """Let the user edit the graph of ``workflow`` in the browser (and with :meth:`edit`).

        Parameters
        ----------
        workflow : Workflow
            The workflow drawn. Its source text (or, for one built in Python, its
            :meth:`~jupyter_workflows.definition.Workflow.to_dict`) is the document edits
            change.
        target : {"cell", "file", "none"}, optional
            Where accepted edits go. ``"file"`` (the default when the workflow was loaded
            from a file) rewrites that file; ``"cell"`` asks the browser to rewrite the
            ``%%workflow`` cell the widget is shown under; ``"none"`` (the default otherwise)
            only shows the YAML with a Copy button. In every case the edited workflow is
            registered under its name and :attr:`yaml` holds its text.
        name : str, optional
            The name given on the ``%%workflow`` line: the document may leave ``name:`` out,
            and may not say another.
        """
        from ..spec.loader import parse_document

        path = workflow.path if target in (None, "file") else None
        if target is None:
            target = "file" if path is not None else "none"
        if target == "file" and path is None:
            raise ValueError("target='file' needs a workflow loaded from a file (jw.load(PATH))")
        label = str(path) if path is not None else ("<cell>" if target == "cell" else "<workflow>")
        document: dict[str, Any] | None = None
        text = workflow.source
        if text is not None:
            try:
                data, _ = parse_document(text, file=label)
                document = data if isinstance(data, dict) else None
            except SpecError:
                document = None
        author_text = text
        if document is None:  # built in Python, or a source that no longer parses
            document = workflow.to_dict()
            text = dump_document(document, json_file=_is_json(path))
            author_text = None
        with self._lock:
            self._edit_source = _EditSource(
                document=document,
                workflow=workflow,
                target=target,
                path=path,
                label=label,
                default_name=name or workflow.name,
                fixed_name=name,
                file_text=workflow.source if path is not None else None,
                text=None if _is_json(path) else author_text,
            )
            with self.hold_sync():
                self.edit_target = target
                self.edit_path = str(path) if path is not None else ""
                self.yaml = text
                self.task_yaml = _task_yaml(document)
                self.editable = True

    @property
    def workflow(self) -> Workflow | None:
        """The workflow as last accepted (after edits), or None if editing is not enabled."""
        source = self._edit_source
        return source.workflow if source is not None else None

    def edit(self, op: str, **fields: Any) -> Workflow:
        """Apply one edit, as the browser does; return the new, validated workflow.

        Parameters
        ----------
        op : str
            One of :data:`~jupyter_workflows.jupyter.wire.EDIT_OPS`.
        **fields
            The edit's fields (:class:`~jupyter_workflows.jupyter.wire.EditMessage`), e.g.
            ``edit("add_task", name="report", action="core.echo")``,
            ``edit("connect", source="a", target="b", kind="failure")``,
            ``edit("set_task", name="b", yaml="action: core.sleep\ninput: {seconds: 1}")``.

        Raises
        ------
        SpecError
            The edit is refused: one line, positioned in the YAML it would have written
            (``<cell>:LINE:COL: ...``, ``FILE:LINE:COL: ...``). Nothing was changed or written.
        """
        if op not in EDIT_OPS:
            raise SpecError(f"unknown edit {op!r}; expected one of {', '.join(EDIT_OPS)}")
        with self._lock:
            source = self._edit_source
            if source is None:
                raise SpecError(
                    "this graph is not editable: it is drawn from a run "
                    "(show it with %%workflow, %workflow edit NAME or GraphWidget.enable_editing)"
                )
            state = (self.run or {}).get("status")
            if state in _LIVE_RUN_STATES:
                raise SpecError(
                    f"the graph is following run {self.run.get('run_id') or ''} ({state}): "
                    "edit it once the run has ended"
                )
            json_file = _is_json(source.path)
            if op == "replace":
                text = fields.get("yaml")
                if not isinstance(text, str):
                    raise SpecError("the replace edit needs the document's 'yaml'")
                document = None
            else:
                document = apply_edit(source.document, {"op": op, **fields})
                text = _edited_text(source, document, json_file=json_file)
            workflow = _load_edited(source, text)
            from ..spec.graph import graph_dict

            graph = graph_dict(workflow.compiled)
            if op == "disconnect":
                still = (
                    fields.get("source"),
                    fields.get("target"),
                    fields.get("kind") or "success",
                )
                if any((e["source"], e["target"], e["kind"]) == still for e in graph["edges"]):
                    raise SpecError(
                        f"the edge {still[0]} → {still[1]} ({still[2]}) comes from fields the "
                        f"editor does not change (group, publish, a join): edit the tasks' YAML"
                    )
            if document is None:
                from ..spec.loader import parse_document

                document = parse_document(text, file=source.label)[0]
            if source.target == "file" and source.path is not None:
                _write_file(source, text)
            from ..definition import register_workflow

            source.document = document
            source.workflow = workflow
            source.text = None if json_file else text
            register_workflow(workflow)
            ids = {n["id"] for n in graph["nodes"]}
            selected = self.selected
            if op == "set_task" and selected == fields.get("name") and fields.get("rename"):
                selected = str(fields["rename"])
            with self.hold_sync():
                # A new definition: the statuses of the run drawn before are not its own.
                if self.status:
                    self.status = {}
                if (self.run or {}).get("run_id") or (self.run or {}).get("status"):
                    self.run = {"run_id": None, "status": None, "error": None}
                self.graph = graph
                self.spec = workflow.to_dict()
                self.yaml = text
                self.task_yaml = _task_yaml(document)
                self.selected = selected if selected in ids else ""
        return workflow

    def _handle_edit(self, content: Mapping[str, Any]) -> None:
        request = content.get("id")
        request_id = request if isinstance(request, int) else 0
        fields = {k: v for k, v in content.items() if k not in ("type", "id", "op")}
        try:
            self.edit(str(content.get("op")), **fields)
        except (SpecError, WorkflowError) as exc:
            self._send_edit_error(request_id, _one_line(exc))
            return
        except Exception as exc:  # a bug: logged, and the browser must not wait for ever
            logger.exception("applying the edit %r failed", content)
            self._send_edit_error(request_id, f"{type(exc).__name__}: {_one_line(exc)}")
            return
        source = self._edit_source
        assert source is not None  # edit() refuses without one
        ok: EditOk = {
            "type": "edit_ok",
            "id": request_id,
            "yaml": self.yaml,
            "target": source.target,  # type: ignore[typeddict-item]
            "path": str(source.path) if source.path is not None else None,
        }
        self.send(ok)

    def _send_edit_error(self, request_id: int, error: str) -> None:
        message: EditErrorMessage = {"type": "edit_error", "id": request_id, "error": error}
        self.send(message)

    def _send_bundle(self) -> None:
        """The whole front end, for a page without the extension (asked once per page)."""
        try:
            js = (_STATIC / "widget.js").read_text(encoding="utf-8")
            css = (_STATIC / "widget.css").read_text(encoding="utf-8")
        except OSError as exc:  # a broken install: the stub shows why instead of waiting
            logger.warning("the widget bundle cannot be read: %s", exc)
            js = f"throw new Error({json.dumps(_one_line(exc))});"
            css = ""
        self.send({"type": "bundle", "js": js, "css": css})

    # -- the saved picture ------------------------------------------------------

    def track_display(self, handle: Any) -> None:
        """Keep ``handle`` (an IPython ``DisplayHandle`` showing this widget) up to date.

        The output's data (:data:`~.wire.GRAPH_MIME` and the SVG) is what a saved notebook
        shows when reopened: it is redisplayed whenever the run's state changes and, while
        tasks change, at most every :data:`DISPLAY_REFRESH_INTERVAL` seconds.
        """
        if handle is not None and handle not in self._displays:
            self._displays.append(handle)
            self._display_state = self._display_key()

    def _display_key(self) -> tuple[Any, ...]:
        run = self.run or {}
        tasks = tuple(
            sorted(
                (name, entry.get("status"), entry.get("done"))
                for name, entry in self.status.items()
            )
        )
        return (run.get("status"), run.get("run_id"), tasks)

    def _refresh_displays(self, *, force: bool) -> None:
        if not self._displays:
            return
        now = time.monotonic()
        if not force and now - self._display_refreshed < DISPLAY_REFRESH_INTERVAL:
            return
        key = self._display_key()
        if key == self._display_state:
            return
        self._display_state = key
        self._display_refreshed = now
        for handle in list(self._displays):
            try:
                handle.update(self)
            except Exception:  # a view must never disturb the run
                logger.debug("refreshing a display of the widget failed", exc_info=True)

    def mime_data(self) -> GraphMimeData:
        """The :data:`~.wire.GRAPH_MIME` data of this widget: graph, last known statuses, run."""
        try:
            model_id = self.model_id
        except Exception:  # no comm (closed, or no kernel): the picture stands alone
            model_id = None
        return graph_mime_data(self.graph, self.status, self.run, model_id=model_id)

    # -- static fallback ---------------------------------------------------------

    def _repr_mimebundle_(self, **kwargs: Any) -> tuple[dict[str, Any], dict[str, Any]]:
        bundle = super()._repr_mimebundle_(**kwargs)
        # ipywidgets returns a dict (or None without a view); anywidget a
        # (data, metadata) tuple. Accept each, so an upgrade cannot break display.
        data: dict[str, Any]
        metadata: dict[str, Any]
        if bundle is None:
            data, metadata = {}, {}
        elif isinstance(bundle, tuple):
            data, metadata = dict(bundle[0] or {}), dict(bundle[1] or {})
        else:
            data, metadata = dict(bundle), {}
        picture = graph_svg(self.graph, self.status, run=self.run)
        data["text/html"] = f'<div class="jupyter-workflows-graph">{picture}</div>'
        data[GRAPH_MIME] = self.mime_data()
        data["text/plain"] = self._summary()
        return data, metadata

    def _summary(self) -> str:
        graph = self.graph
        nodes = graph.get("nodes") or []
        parts = [f"GraphWidget: workflow {graph.get('name') or '?'!r}, {len(nodes)} tasks"]
        run = self.run or {}
        if run.get("run_id") or run.get("status"):
            parts.append(f"run {run.get('run_id') or '?'} {run.get('status') or ''}".rstrip())
        counts: dict[str, int] = {}
        for node in nodes:
            entry = self.status.get(node.get("id"))
            state = entry.get("status") if entry else None
            key = state or "not started"
            counts[key] = counts.get(key, 0) + 1
        if counts and any(key != "not started" for key in counts):
            parts.append(", ".join(f"{n} {state}" for state, n in counts.items()))
        return "; ".join(parts)


@dataclasses.dataclass
class _EditSource:
    """What an editable widget edits, and where accepted edits go."""

    document: dict[str, Any]
    """The document as plain data, in the user's own shapes."""
    workflow: Workflow
    target: str
    path: pathlib.Path | None
    label: str
    """Names the YAML in error positions: ``<cell>``, the file, or ``<workflow>``."""
    default_name: str | None
    fixed_name: str | None
    file_text: str | None
    """The file's text when it was loaded or last written: a file changed since is not overwritten."""
    text: str | None = None
    """The YAML as the author wrote it (then as last accepted): edits are merged into it."""


def graph_mime_data(
    graph: Mapping[str, Any],
    status: Mapping[str, Mapping[str, Any]] | None = None,
    run: Mapping[str, Any] | None = None,
    *,
    model_id: str | None = None,
) -> GraphMimeData:
    """The :data:`~.wire.GRAPH_MIME` data for a graph and its last known state.

    Only what the picture needs is kept per task (status, progress, attempts, error, times):
    inputs, results and logs stay in the kernel.
    """
    kept: dict[str, dict[str, Any]] = {}
    for name, entry in (status or {}).items():
        if isinstance(entry, Mapping):
            kept[str(name)] = {k: entry.get(k) for k in GRAPH_MIME_STATUS_FIELDS if k in entry}
    info: RunInfo | None = None
    if run and (run.get("run_id") or run.get("status")):
        info = {
            "run_id": run.get("run_id"),
            "status": run.get("status"),
            "error": run.get("error"),
        }
    data: GraphMimeData = {
        "version": 1,
        "graph": _jsonable(dict(graph)),
        "status": _jsonable(kept),
        "run": _jsonable(info),
        "model_id": model_id or None,
    }
    return data


def _one_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__


def _task_yaml(document: dict[str, Any]) -> dict[str, str]:
    out: dict[str, str] = {}
    for tasks in _task_tables(document):
        for name, body in tasks.items():
            if isinstance(name, str) and name not in out:
                out[name] = dump_document(body) if isinstance(body, dict) and body else ""
    return out


def _is_json(path: pathlib.Path | None) -> bool:
    return path is not None and path.suffix.lower() == ".json"


def _load_edited(source: _EditSource, text: str) -> Workflow:
    """``text`` read exactly as ``%%workflow``/``jw.load`` would read it, and validated."""
    from ..definition import Workflow
    from ..spec.loader import load_spec

    spec, smap = load_spec(text, file=source.label, name=source.default_name)
    if source.fixed_name and spec.name != source.fixed_name:
        raise SpecError(
            f"the magic line names the workflow {source.fixed_name!r} but the YAML says "
            f"name: {spec.name}",
            file=source.label,
        )
    workflow = Workflow(
        spec,
        source_map=smap,
        path=source.path,
        base_dir=source.workflow.base_dir,
        source=text,
    )
    try:
        workflow.validate()
    except SpecError:
        raise
    except WorkflowError as exc:  # an action that does not resolve, say
        raise SpecError(_one_line(exc), file=source.label) from None
    return workflow


def _edited_text(source: _EditSource, document: dict[str, Any], *, json_file: bool) -> str:
    """The edited document as text: merged into the author's YAML where it can be, so comments,
    key order, quoting and flow/block style of everything the edit left alone are kept
    (:mod:`.yaml_roundtrip`); else the plain dump."""
    if not json_file and source.text:
        from .yaml_roundtrip import round_trip

        merged = round_trip(source.text, document)
        if merged is not None:
            return merged
    return dump_document(document, json_file=json_file)


def _write_file(source: _EditSource, text: str) -> None:
    """Replace the file with ``text`` in one step (a reader sees the old or the new file)."""
    from ..spec.loader import read_text

    path = source.path
    assert path is not None
    try:
        current = read_text(path) if path.exists() else None
    except (OSError, SpecError) as exc:
        raise SpecError(f"cannot read it back before writing: {exc}", file=str(path)) from None
    if source.file_text is not None and current is not None and current != source.file_text:
        raise SpecError(
            "changed on disk since it was loaded; load it again to edit it (nothing was written)",
            file=str(path),
        )
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as out:
            out.write(text)
        if path.exists():
            os.chmod(tmp, path.stat().st_mode & 0o7777)
        os.replace(tmp, path)
    except OSError as exc:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise SpecError(f"cannot write: {exc.strerror or exc}", file=str(path)) from None
    source.file_text = text


# -- the SVG picture ---------------------------------------------------------------

_BOX_H = 46
_ROW_GAP = 42
_COL_GAP = 26
_MARGIN = 20
_DUMMY_W = 12  # the slot a long edge takes in a row it crosses
_DUMMY_GAP = 10
_TITLE_H = 30
_LEGEND_H = 26
_FONT = "system-ui, -apple-system, 'Segoe UI', Roboto, Helvetica, Arial, sans-serif"
_MONO = "ui-monospace, SFMono-Regular, Menlo, Consolas, monospace"


def _tint(hex_color: str, amount: float = 0.14) -> str:
    """``hex_color`` mixed with white: a box fill that keeps dark text readable."""
    r, g, b = (int(hex_color[i : i + 2], 16) for i in (1, 3, 5))
    mix = (round(255 - (255 - c) * amount) for c in (r, g, b))
    return "#{:02x}{:02x}{:02x}".format(*mix)


def _legend_item_width(state_key: str) -> float:
    text = "not started" if state_key == "none" else state_key
    return 14 + 6.5 * len(text) + 14


def _clip(text: str, chars: int) -> str:
    return text if len(text) <= chars else text[: max(1, chars - 1)] + "…"


def _back_edges(dag: nx.DiGraph, order: list[str]) -> set[tuple[str, str]]:
    """Edges that close a cycle, found depth-first from the start tasks.

    Workflows loop (a task transitions back to an earlier one); removing these
    edges leaves a DAG to layer, and they are drawn as curves going up.
    """
    back: set[tuple[str, str]] = set()
    state: dict[str, int] = {}  # 1: on the stack, 2: done
    starts = [n for n in order if dag.in_degree(n) == 0] + order
    for root in starts:
        if root in state:
            continue
        state[root] = 1
        stack = [(root, iter(dag.successors(root)))]
        while stack:
            node, successors = stack[-1]
            for nxt in successors:
                seen = state.get(nxt)
                if seen == 1:
                    back.add((node, nxt))
                elif seen is None:
                    state[nxt] = 1
                    stack.append((nxt, iter(dag.successors(nxt))))
                    break
            else:
                state[node] = 2
                stack.pop()
    return back


def _membership(graph: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(group, member) pairs for members with no transition from inside their group.

    The live widget draws a parallel task's sub-tasks inside it; the picture
    places them in the rows below it instead, linked by a faint line.
    """
    nodes = {str(n["id"]): n for n in graph.get("nodes") or []}
    entered = {
        (str(e.get("source")), str(e.get("target")))
        for e in graph.get("edges") or []
        if e.get("source") != e.get("target")
    }
    pairs = []
    for node_id, node in nodes.items():
        group = node.get("group")
        if group is None or str(group) not in nodes or str(group) == node_id:
            continue
        siblings = {m for m, n in nodes.items() if n.get("group") == group}
        if not any((m, node_id) in entered for m in siblings):
            pairs.append((str(group), node_id))
    return pairs


@dataclasses.dataclass
class _Layering:
    rows: list[list[str]]
    """Task ids and dummy ids, top row first, each row in drawing order."""
    chains: dict[tuple[str, str], list[str]]
    """(source, target) -> the dummies a long downward edge passes through."""
    back: set[tuple[str, str]]
    """Edges that close a loop, drawn back up on the right."""


_DUMMY = "\x00"


def _is_dummy(node: str) -> bool:
    return node.startswith(_DUMMY)


def _layering(graph: Mapping[str, Any]) -> _Layering:
    """A Sugiyama-style layering: rows by longest path, long edges split, barycentre order."""
    order = [str(n["id"]) for n in graph.get("nodes") or []]
    g = nx.DiGraph()
    g.add_nodes_from(order)
    for edge in graph.get("edges") or []:
        source, target = str(edge.get("source")), str(edge.get("target"))
        if source in g and target in g and source != target:
            g.add_edge(source, target)
    g.add_edges_from(_membership(graph))
    back = _back_edges(g, order)
    g.remove_edges_from(back)
    rank = {
        node: r for r, generation in enumerate(nx.topological_generations(g)) for node in generation
    }

    # An edge that skips rows gets a dummy in each row it crosses, so it is
    # routed between the boxes instead of through them.
    h = nx.DiGraph()
    h.add_nodes_from(order)
    chains: dict[tuple[str, str], list[str]] = {}
    for u, v in g.edges:
        previous, dummies = u, []
        for k in range(1, rank[v] - rank[u]):
            dummy = f"{_DUMMY}{u}{_DUMMY}{v}{_DUMMY}{k}"
            rank[dummy] = rank[u] + k
            h.add_edge(previous, dummy)
            previous = dummy
            dummies.append(dummy)
        h.add_edge(previous, v)
        if dummies:
            chains[(u, v)] = dummies
    rows: list[list[str]] = [[] for _ in range(max(rank.values(), default=-1) + 1)]
    for node in h.nodes:
        rows[rank[node]].append(node)

    # Barycentre sweeps, down then up: a node moves under the mean of its
    # neighbours in the row before. Ties keep the workflow's own order.
    pos = {node: i - (len(row) - 1) / 2 for row in rows for i, node in enumerate(row)}
    for sweep in range(4):
        down = sweep % 2 == 0
        neighbours = h.predecessors if down else h.successors
        for r in range(1, len(rows)) if down else range(len(rows) - 2, -1, -1):

            def key(
                node: str, neighbours: Callable[[str], Iterable[str]] = neighbours
            ) -> tuple[float, float]:
                near = [pos[m] for m in neighbours(node)]
                return (sum(near) / len(near) if near else pos[node], pos[node])

            rows[r].sort(key=key)
            for i, node in enumerate(rows[r]):
                pos[node] = i - (len(rows[r]) - 1) / 2
    return _Layering(rows=rows, chains=chains, back=back)


def graph_svg(
    graph: Mapping[str, Any],
    status: Mapping[str, Mapping[str, Any]] | None = None,
    *,
    run: Mapping[str, Any] | None = None,
) -> str:
    """Draw ``graph`` as a standalone SVG, boxes coloured by ``status``.

    The static counterpart of the live widget, for places without JavaScript
    (nbconvert, GitHub): layered top to bottom with networkx topological
    generations (edges closing a loop drawn as curves on the right), one box
    per task with its label, action and status, edges styled by kind.

    Parameters
    ----------
    graph : dict
        A :class:`~jupyter_workflows.jupyter.wire.Graph`.
    status : dict, optional
        Task name -> :class:`~jupyter_workflows.jupyter.wire.TaskStatus`;
        a task absent from it is drawn grey, as not started.
    run : dict, optional
        A :class:`~jupyter_workflows.jupyter.wire.RunInfo` shown in the title.

    Returns
    -------
    str
        An ``<svg>`` element, with no script and no external reference.
    """
    status = status or {}
    run = run or {}
    esc = html.escape
    nodes = {str(n["id"]): n for n in graph.get("nodes") or []}
    layering = _layering(graph)
    rows, back = layering.rows, layering.back
    edges = [
        e
        for e in graph.get("edges") or []
        if str(e.get("source")) in nodes and str(e.get("target")) in nodes
    ]

    def state_of(node_id: str) -> str | None:
        state = (status.get(node_id) or {}).get("status")
        return str(state) if state is not None else None

    def state_text(node_id: str) -> str:
        entry = status.get(node_id) or {}
        text = state_of(node_id) or "not started"
        if entry.get("done") is not None and entry.get("total") is not None:
            text += f" {entry['done']}/{entry['total']}"
        return text

    # Geometry. Text widths are estimates (no font metrics here): ~7 px a
    # character for 12 px sans, ~6.1 px for 10 px monospace.
    longest = max((len(str(n.get("label") or i)) for i, n in nodes.items()), default=8)
    box_w = min(260, max(180, 7 * longest + 30))
    self_loops = any(str(e.get("source")) == str(e.get("target")) for e in edges)
    col_gap = _COL_GAP + (30 if self_loops else 0)

    def item_w(node: str) -> float:
        return _DUMMY_W if _is_dummy(node) else box_w

    def gap(left: str, right: str) -> float:
        return col_gap if not (_is_dummy(left) or _is_dummy(right)) else _DUMMY_GAP

    def row_width(row: list[str]) -> float:
        return sum(item_w(n) for n in row) + sum(gap(a, b) for a, b in itertools.pairwise(row))

    grid_w = max((row_width(row) for row in rows), default=box_w)
    loops_w = 24 + 12 * len(back) if back else 0
    seen_states: list[str] = []  # for the legend, in order of appearance
    for node_id in nodes:
        key = state_of(node_id) or "none"
        key = key if key in STATUS_COLORS else "none"
        if key not in seen_states:
            seen_states.append(key)
    legend_w = sum(_legend_item_width(key) for key in seen_states)
    width = max(2 * _MARGIN + grid_w + loops_w, 2 * _MARGIN + legend_w, 360)
    top = _TITLE_H + _MARGIN
    rows_h = len(rows) * (_BOX_H + _ROW_GAP) - _ROW_GAP if rows else 0
    height = top + rows_h + _MARGIN + _LEGEND_H
    grid_x0 = (width - loops_w - grid_w) / 2
    centre: dict[str, tuple[float, float]] = {}
    for r, row in enumerate(rows):
        x = grid_x0 + (grid_w - row_width(row)) / 2
        y = top + r * (_BOX_H + _ROW_GAP) + _BOX_H / 2
        for i, node in enumerate(row):
            if i:
                x += gap(row[i - 1], node)
            centre[node] = (x + item_w(node) / 2, y)
            x += item_w(node)
    # Markers need ids; two pictures of different graphs on one page must not share them.
    digest = hashlib.sha1(json.dumps(graph, sort_keys=True, default=str).encode()).hexdigest()
    uid = "jw" + digest[:8]

    out: list[str] = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width:.0f}" height="{height:.0f}" '
        f'viewBox="0 0 {width:.0f} {height:.0f}" font-family="{esc(_FONT)}" font-size="12" '
        f'role="img" aria-label="{esc("workflow " + str(graph.get("name") or ""))}">',
        "<defs>",
    ]
    for kind, (color, _dash) in EDGE_STYLES.items():
        out.append(
            f'<marker id="{uid}-{kind}" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" '
            f'markerHeight="7" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="{color}"/></marker>'
        )
    out.append("</defs>")
    out.append(f'<rect width="{width:.0f}" height="{height:.0f}" fill="#ffffff" rx="6"/>')

    # Title: the workflow's name, and the run on the right.
    name = str(graph.get("name") or "workflow")
    out.append(
        f'<text x="{_MARGIN}" y="22" font-size="14" font-weight="600" fill="#111827">{esc(name)}</text>'
    )
    if run.get("status") or run.get("run_id"):
        run_state = str(run.get("status") or "")
        run_text = " ".join(
            x for x in (f"run {run['run_id']}" if run.get("run_id") else "", run_state) if x
        )
        color = STATUS_COLORS.get(run_state, "#374151")
        out.append(
            f'<text x="{width - _MARGIN:.0f}" y="22" text-anchor="end" font-weight="600" fill="{color}">{esc(run_text)}</text>'
        )

    half_w, half_h = box_w / 2, _BOX_H / 2

    def downward(source: str, target: str) -> tuple[str, tuple[float, float]]:
        """A path from the bottom of ``source`` through its dummies to the top of ``target``."""
        points = [(centre[source][0], centre[source][1] + half_h)]
        for dummy in layering.chains.get((source, target), []):
            dx, dy = centre[dummy]
            points += [(dx, dy - half_h), (dx, dy + half_h)]
        points.append((centre[target][0], centre[target][1] - half_h))
        parts = [f"M{points[0][0]:.1f},{points[0][1]:.1f}"]
        for i, ((x1, y1), (x2, y2)) in enumerate(itertools.pairwise(points)):
            if i % 2:  # through a row, beside the boxes
                parts.append(f"L{x2:.1f},{y2:.1f}")
            else:  # across the gap between two rows
                bend = max((y2 - y1) / 2, 10)
                parts.append(
                    f"C{x1:.1f},{y1 + bend:.1f} {x2:.1f},{y2 - bend:.1f} {x2:.1f},{y2:.1f}"
                )
        (x1, y1), (x2, y2) = points[0], points[1]
        return " ".join(parts), ((x1 + x2) / 2, (y1 + y2) / 2)

    # Edges first, so that boxes sit on top of them.
    for group, member in _membership(graph):
        path, _ = downward(group, member)
        out.append(
            f'<path d="{path}" stroke="#9ca3af" stroke-width="1" stroke-dasharray="1 3" fill="none">'
            f"<title>{esc(f'{member} is part of {group}')}</title></path>"
        )
    lane = 0
    for edge in edges:
        source, target = str(edge["source"]), str(edge["target"])
        kind = str(edge.get("kind") or "complete")
        color, dash = EDGE_STYLES.get(kind, EDGE_STYLES["complete"])
        (sx, sy), (tx, ty) = centre[source], centre[target]
        if source == target:
            x = sx + half_w
            path = f"M{x:.1f},{sy - 10:.1f} C{x + 30:.1f},{sy - 30:.1f} {x + 30:.1f},{sy + 30:.1f} {x:.1f},{sy + 10:.1f}"
            label_at = (x + 16, sy - 20)
        elif (source, target) in back:
            # Back up to an earlier row: down out of the source, right to a
            # lane beside every box, up, and down into the target's top.
            lx = grid_x0 + grid_w + 16 + 12 * lane
            x1, x2 = sx + half_w * 0.6, tx + half_w * 0.6
            y1, y2 = sy + half_h + 10 + 3 * lane, ty - half_h - 10 - 3 * lane
            lane += 1
            path = (
                f"M{x1:.1f},{sy + half_h:.1f} L{x1:.1f},{y1:.1f} L{lx:.1f},{y1:.1f} "
                f"L{lx:.1f},{y2:.1f} L{x2:.1f},{y2:.1f} L{x2:.1f},{ty - half_h:.1f}"
            )
            label_at = (lx, (y1 + y2) / 2)
        else:
            path, label_at = downward(source, target)
        dash_attr = f' stroke-dasharray="{dash}"' if dash else ""
        out.append(
            f'<path d="{path}" fill="none" stroke="{color}" stroke-width="1.5" stroke-linejoin="round"{dash_attr} '
            f'marker-end="url(#{uid}-{kind})"><title>{esc(f"{source} → {target} ({kind})")}</title></path>'
        )
        if edge.get("label"):
            out.append(
                f'<text x="{label_at[0]:.1f}" y="{label_at[1] + 4:.1f}" text-anchor="middle" font-size="10" '
                f'font-weight="600" fill="{color}" stroke="#ffffff" stroke-width="3" paint-order="stroke">'
                f"{esc(_clip(str(edge['label']), 40))}</text>"
            )

    # Boxes: a tinted fill, a status stripe, label, action and status.
    for node_id, node in nodes.items():
        cx, cy = centre[node_id]
        state = state_of(node_id)
        color = STATUS_COLORS.get(state or "none", STATUS_COLORS["none"])
        x, y = cx - half_w, cy - half_h
        label = str(node.get("label") or node_id)
        action = str(node.get("action") or node.get("kind") or "")
        if node.get("kind") == "workflow" and node.get("action"):
            action = f"workflow: {action}"
        if node.get("with_items"):
            action += " (each item)"
        status_label = state_text(node_id)
        action_chars = int((box_w - 20 - 6.2 * len(status_label) - 10) / 6.1)
        dash_attr = ' stroke-dasharray="4 3"' if state is None else ""
        out.append(
            f'<g data-task="{esc(node_id)}"><title>{esc(f"{label} — {status_label}")}</title>'
        )
        out.append(
            f'<rect x="{x:.1f}" y="{y:.1f}" width="{box_w}" height="{_BOX_H}" rx="6" '
            f'fill="{_tint(color)}" stroke="{color}" stroke-width="1.5"{dash_attr}/>'
        )
        out.append(
            f'<rect x="{x:.1f}" y="{y:.1f}" width="5" height="{_BOX_H}" rx="2" fill="{color}"/>'
        )
        out.append(
            f'<text x="{x + 12:.1f}" y="{y + 19:.1f}" font-weight="600" fill="#111827">'
            f"{esc(_clip(label, int((box_w - 20) / 7)))}</text>"
        )
        out.append(
            f'<text x="{x + 12:.1f}" y="{y + 36:.1f}" font-size="10" font-family="{esc(_MONO)}" '
            f'fill="#4b5563">{esc(_clip(action, max(4, action_chars)))}</text>'
        )
        out.append(
            f'<text x="{x + box_w - 8:.1f}" y="{y + 36:.1f}" font-size="10" font-weight="600" '
            f'text-anchor="end" fill="{color if state else "#6b7280"}">{esc(status_label)}</text></g>'
        )

    # Legend: the states on this picture.
    lx, ly = float(_MARGIN), height - _MARGIN / 2 - 8
    for key in seen_states:
        text = "not started" if key == "none" else key
        out.append(
            f'<rect x="{lx:.1f}" y="{ly - 9:.1f}" width="10" height="10" rx="2" fill="{STATUS_COLORS[key]}"/>'
        )
        out.append(
            f'<text x="{lx + 14:.1f}" y="{ly:.1f}" font-size="10" fill="#374151">{esc(text)}</text>'
        )
        lx += _legend_item_width(key)
    out.append("</svg>")
    return "".join(out)


# -- editing ------------------------------------------------------------------------------------
#
# An edit changes the *document* (the plain data the YAML reads to, in the user's own shapes:
# `on_success: b`, `needs: [...]`, a task list stays what the loader made of it), never the
# frozen spec. The changed document is dumped to YAML and loaded back with the project's own
# loader and validator, exactly as `%%workflow` or `jw.load()` would read it: what is accepted
# is what the next definition of the cell or file will be, and a refused edit leaves the
# document, the traits, the registry and the file as they were.

_TRANSITION_FIELDS = ("on_success", "on_failure", "on_complete")
_LIVE_RUN_STATES = frozenset({"pending", "running", "waiting", "paused"})
_NAME_RE = r"^[A-Za-z_][A-Za-z0-9_.-]*$"


class _Dumper(yaml.SafeDumper):
    """Readable YAML: block style for structure, flow style for small leaf mappings and lists
    (``input: {seconds: 1}``, ``on_success: [a, b]``), ``|`` blocks for multi-line strings, no
    anchors."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def _is_small_leaf(data: dict[Any, Any] | list[Any]) -> bool:
    values = list(data.values()) if isinstance(data, dict) else list(data)
    if not values or len(values) > 6:
        return bool(not values)
    for value in values:
        if isinstance(value, dict | list) or (isinstance(value, str) and "\n" in value):
            return False
    return len(json.dumps(data, default=str)) <= 70


def _represent_dict(dumper: _Dumper, data: dict[Any, Any]) -> yaml.Node:
    node = dumper.represent_mapping("tag:yaml.org,2002:map", data.items())
    node.flow_style = _is_small_leaf(data)
    return node


def _represent_list(dumper: _Dumper, data: list[Any]) -> yaml.Node:
    node = dumper.represent_sequence("tag:yaml.org,2002:seq", data)
    node.flow_style = _is_small_leaf(data)
    return node


def _represent_str(dumper: _Dumper, data: str) -> yaml.Node:
    if "\n" in data:  # the emitter falls back to quotes where a block cannot hold the text
        return dumper.represent_scalar("tag:yaml.org,2002:str", data, style="|")
    return dumper.represent_str(data)


class _Block(dict):  # type: ignore[type-arg]
    """A mapping always written in block style: the top of a document."""


def _represent_block(dumper: _Dumper, data: _Block) -> yaml.Node:
    node = dumper.represent_mapping("tag:yaml.org,2002:map", data.items())
    node.flow_style = False
    return node


_Dumper.add_representer(_Block, _represent_block)
_Dumper.add_representer(dict, _represent_dict)
_Dumper.add_representer(list, _represent_list)
_Dumper.add_representer(str, _represent_str)


def dump_document(document: Mapping[str, Any], *, json_file: bool = False) -> str:
    """The document as readable YAML (or JSON, for a ``.json`` file), keys in their order."""
    if json_file:
        return json.dumps(document, indent=2, ensure_ascii=False, default=str) + "\n"
    return yaml.dump(
        _Block(document), Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=100
    )


def _names(value: Any) -> list[str]:
    """A ``name or list of names`` field as a list."""
    if value is None:
        return []
    if isinstance(value, list):
        return list(value)
    return [value]


def _one_or_list(names: list[str]) -> str | list[str]:
    return names[0] if len(names) == 1 else names


def _task_tables(document: dict[str, Any]) -> Iterable[dict[str, Any]]:
    """Every ``tasks`` mapping of the document: the top one, then parallel tasks' own."""
    stack = [document.get("tasks")]
    while stack:
        tasks = stack.pop()
        if not isinstance(tasks, dict):
            continue
        yield tasks
        stack.extend(body.get("tasks") for body in tasks.values() if isinstance(body, dict))


def _as_mapping(tasks: Any) -> Any:
    """A task list (``[{name: a, ...}]`` or ``[{a: {...}}]``) as the mapping it means."""
    if not isinstance(tasks, list):
        return tasks
    mapping: dict[str, Any] = {}
    for item in tasks:
        if isinstance(item, dict) and isinstance(item.get("name"), str):
            body = {k: v for k, v in item.items() if k != "name"}
            mapping[item["name"]] = body
        elif isinstance(item, dict) and len(item) == 1:
            mapping.update(item)
        else:  # not a task list the loader accepts: leave it, the loader will say why
            return tasks
    return mapping


def _normalise(document: dict[str, Any]) -> dict[str, Any]:
    """Task lists become mappings (at every level), so that tasks can be found by name."""
    if "tasks" in document:
        document["tasks"] = _as_mapping(document["tasks"])
    for tasks in list(_task_tables(document)):
        for body in tasks.values():
            if isinstance(body, dict) and "tasks" in body:
                body["tasks"] = _as_mapping(body["tasks"])
    return document


def _find(document: dict[str, Any], name: str) -> dict[str, Any] | None:
    """The ``tasks`` mapping that holds task ``name``."""
    for tasks in _task_tables(document):
        if name in tasks:
            return tasks
    return None


def _rewrite_references(document: dict[str, Any], old: str, new: str | None) -> None:
    """Point every transition to ``old`` at ``new``, or drop it (``new`` None)."""

    def swap(names: list[str]) -> list[str]:
        out = []
        for n in names:
            if n != old:
                out.append(n)
            elif new is not None:
                out.append(new)
        return out

    for tasks in list(_task_tables(document)):
        for body in tasks.values():
            if not isinstance(body, dict):
                continue
            for field in (*_TRANSITION_FIELDS, "needs"):
                if field in body:
                    kept = swap(_names(body[field]))
                    if kept:
                        body[field] = _one_or_list(kept)
                    else:
                        del body[field]
            if isinstance(body.get("next"), list | str):
                entries = body["next"] if isinstance(body["next"], list) else [body["next"]]
                kept_entries: list[Any] = []
                for entry in entries:
                    if isinstance(entry, str):
                        kept_entries.extend(swap([entry]))
                    elif isinstance(entry, dict) and "do" in entry:
                        do = swap(_names(entry["do"]))
                        if do:
                            kept_entries.append({**entry, "do": _one_or_list(do)})
                    else:
                        kept_entries.append(entry)
                if kept_entries:
                    body["next"] = kept_entries
                else:
                    del body["next"]
            if isinstance(body.get("decision"), list):
                kept_decisions: list[Any] = []
                for entry in body["decision"]:
                    if not isinstance(entry, dict):
                        kept_decisions.append(entry)
                    elif "default" in entry:
                        target = swap(_names(entry["default"]))
                        if target:
                            kept_decisions.append({**entry, "default": _one_or_list(target)})
                    elif "next" in entry:
                        target = swap(_names(entry["next"]))
                        if target:
                            kept_decisions.append({**entry, "next": _one_or_list(target)})
                    else:
                        kept_decisions.append(entry)
                if kept_decisions:
                    body["decision"] = kept_decisions
                else:
                    del body["decision"]


def _drop_edge(document: dict[str, Any], source: str, target: str, kind: str) -> None:
    """Remove the transitions ``source -> target`` of ``kind`` that the editor can name."""
    tasks = _find(document, source)
    body = tasks.get(source) if tasks is not None else None
    if kind == "needs":
        owner = _find(document, target)
        target_body = owner.get(target) if owner is not None else None
        if isinstance(target_body, dict) and "needs" in target_body:
            kept = [n for n in _names(target_body["needs"]) if n != source]
            if kept:
                target_body["needs"] = _one_or_list(kept)
            else:
                del target_body["needs"]
        return
    if not isinstance(body, dict):
        return
    field = {"success": "on_success", "failure": "on_failure", "complete": "on_complete"}.get(kind)
    if field and field in body:
        kept = [n for n in _names(body[field]) if n != target]
        if kept:
            body[field] = _one_or_list(kept)
        else:
            del body[field]
    if kind in ("success", "failure", "complete", "when") and isinstance(body.get("next"), list):
        wanted = {
            "success": ("succeeded()",),
            "failure": ("failed()",),
            "complete": (None,),
        }.get(kind)
        kept_entries = []
        for entry in body["next"]:
            if isinstance(entry, dict) and target in _names(entry.get("do")):
                when = entry.get("when")
                bare = (
                    when.strip().removeprefix("{{").removesuffix("}}").strip()
                    if isinstance(when, str)
                    else None
                )
                if wanted is None or bare in wanted:
                    do = [n for n in _names(entry["do"]) if n != target]
                    if do:
                        kept_entries.append({**entry, "do": _one_or_list(do)})
                    continue
            kept_entries.append(entry)
        if kept_entries:
            body["next"] = kept_entries
        else:
            del body["next"]
    if kind == "decision" and isinstance(body.get("decision"), list):
        kept_decisions = []
        for entry in body["decision"]:
            if isinstance(entry, dict):
                key = "default" if "default" in entry else "next"
                if target in _names(entry.get(key)):
                    left = [n for n in _names(entry[key]) if n != target]
                    if left:
                        kept_decisions.append({**entry, key: _one_or_list(left)})
                    continue
            kept_decisions.append(entry)
        if kept_decisions:
            body["decision"] = kept_decisions
        else:
            del body["decision"]


def _parse_snippet(text: str, label: str) -> Any:
    """YAML typed into the widget, or a one-line positioned error."""
    try:
        return yaml.safe_load(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        if mark is None:
            raise SpecError(str(exc.problem or "invalid YAML"), file=label) from None
        raise SpecError(
            str(exc.problem or exc.context or "invalid YAML"),
            file=label,
            line=mark.line + 1,
            col=mark.column + 1,
        ) from None
    except yaml.YAMLError as exc:
        raise SpecError(str(exc), file=label) from None


def _require(message: Mapping[str, Any], key: str) -> str:
    value = message.get(key)
    if not isinstance(value, str) or not value.strip():
        raise SpecError(f"the {message.get('op')} edit needs a {key!r}")
    return value.strip()


def apply_edit(document: dict[str, Any], message: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of ``document`` with the edit ``message`` (:class:`~.wire.EditMessage`) applied.

    Only shapes the document: whether the result is a valid workflow is for the loader and the
    validator to say.

    Raises
    ------
    SpecError
        When the edit names what is not there (or already is), with one line saying so.
        ``replace`` is not handled here: its text is loaded as it is, positions and all.
    """
    import copy
    import re

    op = message.get("op")
    doc = _normalise(copy.deepcopy(document))
    tasks_field = doc.get("tasks")
    if tasks_field is None:
        tasks_field = doc["tasks"] = {}
    if not isinstance(tasks_field, dict):
        raise SpecError("the document's 'tasks' is not a mapping of tasks; edit it as YAML")
    if op == "add_task":
        name = _require(message, "name")
        if not re.match(_NAME_RE, name):
            raise SpecError(
                f"{name!r} is not a task name: letters, digits, '_', '.', '-', not starting with a digit"
            )
        if _find(doc, name) is not None:
            raise SpecError(f"there is a task named {name!r} already")
        action = _require(message, "action")
        tasks_field[name] = {"action": action}
        after = message.get("after")
        if after:
            return apply_edit(
                doc, {"op": "connect", "source": after, "target": name, "kind": "success"}
            )
        return doc
    if op == "remove_task":
        name = _require(message, "name")
        owner = _find(doc, name)
        if owner is None:
            raise SpecError(f"there is no task {name!r}")
        del owner[name]
        _rewrite_references(doc, name, None)
        return doc
    if op == "connect":
        source, target = _require(message, "source"), _require(message, "target")
        kind = message.get("kind") or "success"
        if kind not in CONNECT_KINDS:
            raise SpecError(f"a new transition is one of {', '.join(CONNECT_KINDS)}, not {kind!r}")
        for task in (source, target):
            if _find(doc, task) is None:
                raise SpecError(f"there is no task {task!r}")
        body = _find(doc, source)[source]  # type: ignore[index]
        if body is None:
            body = _find(doc, source)[source] = {}  # type: ignore[index]
        if not isinstance(body, dict):
            raise SpecError(f"task {source!r} is not a mapping of fields; edit it as YAML")
        field = f"on_{kind}"
        names = _names(body.get(field))
        if target in names:
            raise SpecError(f"{source} already goes on to {target} on {kind}")
        body[field] = _one_or_list([*names, target])
        return doc
    if op == "disconnect":
        source, target = _require(message, "source"), _require(message, "target")
        _drop_edge(doc, source, target, str(message.get("kind") or "success"))
        return doc
    if op == "set_task":
        name = _require(message, "name")
        owner = _find(doc, name)
        if owner is None:
            raise SpecError(f"there is no task {name!r}")
        text = message.get("yaml")
        if not isinstance(text, str):
            raise SpecError("the set_task edit needs the task's fields as 'yaml'")
        body = _parse_snippet(text, f"<task {name}>")
        if body is None:
            body = {}
        if not isinstance(body, dict):
            raise SpecError(
                f"<task {name}>:1:1: a task is a mapping of fields (action: ..., input: ...)"
            )
        rename = (message.get("rename") or "").strip() or name
        if rename != name:
            if not re.match(_NAME_RE, rename):
                raise SpecError(f"{rename!r} is not a task name")
            if _find(doc, rename) is not None:
                raise SpecError(f"there is a task named {rename!r} already")
        # Rebuild the mapping so that a renamed task keeps its place in the document.
        items = [(rename if k == name else k, body if k == name else v) for k, v in owner.items()]
        owner.clear()
        owner.update(items)
        if rename != name:
            _rewrite_references(doc, name, rename)
        return doc
    raise SpecError(f"unknown edit {op!r}; expected one of {', '.join(EDIT_OPS)}")
