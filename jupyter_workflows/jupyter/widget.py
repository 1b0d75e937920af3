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
"""

from __future__ import annotations

import dataclasses
import hashlib
import html
import itertools
import json
import logging
import pathlib
import reprlib
import threading
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import anywidget
import networkx as nx
import traitlets

from jupyter_workflows.jupyter.wire import (
    EDGE_STYLES,
    RUN_STATES,
    STATUS_COLORS,
    TASK_STATES,
    TASK_STATUS_FIELDS,
    Inquiry,
    RespondErrorMessage,
    RespondOkMessage,
    RunInfo,
    TaskStatus,
)

__all__ = ["GraphWidget", "RespondCallback", "graph_svg"]

logger = logging.getLogger(__name__)

_STATIC = pathlib.Path(__file__).parent.parent / "static"

RespondCallback = Callable[[str, Any], object]
"""``callback(task, data)``: called when a user submits an inquiry form."""

MAX_LOG_LINES = 1000
"""Only the newest log lines of a task are synced: the browser is not a log store."""

_MAX_RESULT_CHARS = 10_000
_RUN_FIELDS = tuple(RunInfo.__annotations__)


def _empty_task_status() -> TaskStatus:
    return {
        "status": "pending",
        "done": None,
        "total": None,
        "attempts": 0,
        "inputs": None,
        "result": None,
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

    _esm = _STATIC / "widget.js"
    _css = _STATIC / "widget.css"

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
        result = fields.get("result")
        if result is not None:
            text = result if isinstance(result, str) else _short_repr(result)
            fields["result"] = text[:_MAX_RESULT_CHARS]
        if "logs" in fields:
            fields["logs"] = [str(line) for line in (fields["logs"] or [])][-MAX_LOG_LINES:]
        with self._lock:
            current = self.status.get(name) or _empty_task_status()
            self.status = {**self.status, name: {**current, **fields}}

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
