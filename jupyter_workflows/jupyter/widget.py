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
  graph (:func:`~jupyter_workflows.jupyter.picture.graph_svg`, laid out with
  networkx so it needs no JavaScript) and a one-line ``text/plain`` summary. Front ends with a widget
  manager prefer the widget view; the others fall back to the picture.
* Editing (:meth:`GraphWidget.enable_editing`, :meth:`GraphWidget.edit`) goes
  through the kernel: the browser sends an ``edit`` message, Python applies it
  to the document (:mod:`jupyter_workflows.spec.edits`, pure, shared with the
  REST editor), loads and validates the result with the project's own loader
  and validator, and only then writes the file, re-registers the workflow
  (:class:`~jupyter_workflows.jupyter.edit_session.EditSession`) and updates
  the traits. The browser redraws from the new traits, or
  shows the one-line positioned error; it never edits YAML itself. Only the
  ``%%workflow`` cell is written by the browser (the kernel cannot reach a
  cell's source), from the YAML the kernel accepted.
"""

from __future__ import annotations

import json
import logging
import pathlib
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any

import anywidget
import traitlets

from jupyter_workflows.exceptions import SpecError, WorkflowError
from jupyter_workflows.exceptions import first_line as _one_line
from jupyter_workflows.jupyter.edit_session import EditSession
from jupyter_workflows.jupyter.picture import graph_mime_data, graph_svg
from jupyter_workflows.jupyter.wire import (
    EDIT_OPS,
    GRAPH_MIME,
    RUN_STATES,
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
    jsonable,
)
from jupyter_workflows.spec.edits import task_yaml
from jupyter_workflows.statuses import LIVE_RUN as _LIVE_RUN_STATES
from jupyter_workflows.values import preview, summary_line

if TYPE_CHECKING:  # pragma: no cover
    from jupyter_workflows.definition import Workflow

__all__ = ["GraphWidget", "RespondCallback"]

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
    inquiries: traitlets.List[Any] = traitlets.List().tag(sync=True)
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
        self._edit_session: EditSession | None = None
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
            fields["inputs"] = jsonable(fields["inputs"])
        if "result" in fields and "result_view" not in fields:
            # The value itself stays in the kernel: the browser gets a bounded view of it.
            result = fields["result"]
            fields["result_view"] = None if result is None else preview(result)
        result = fields.get("result")
        if result is not None:
            text = result if isinstance(result, str) else summary_line(result, _MAX_RESULT_CHARS)
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
                    "schema": jsonable(dict(inquiry.get("schema") or {})),
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
        session = EditSession.open(workflow, target=target, name=name)
        with self._lock:
            self._edit_session = session
            with self.hold_sync():
                self.edit_target = session.target
                self.edit_path = str(session.path) if session.path is not None else ""
                self.yaml = session.text
                self.task_yaml = task_yaml(session.document)
                self.editable = True

    @property
    def workflow(self) -> Workflow | None:
        """The workflow as last accepted (after edits), or None if editing is not enabled."""
        source = self._edit_session
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
            source = self._edit_session
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
            edit = source.propose(op, fields)
            source.accept(edit)
            graph = edit.graph
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
                self.spec = edit.workflow.to_dict()
                self.yaml = edit.text
                self.task_yaml = task_yaml(edit.document)
                self.selected = selected if selected in ids else ""
        return edit.workflow

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
        source = self._edit_session
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
