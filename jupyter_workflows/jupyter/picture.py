"""The saved picture of a graph: an inline SVG, and the :data:`~.wire.GRAPH_MIME` data.

A notebook saved with the graph widget (or a run's display) must still show something where no
kernel or widget manager runs (nbconvert, GitHub). :func:`graph_svg` draws the graph as a
standalone SVG, laid out here with networkx so it needs no JavaScript; :func:`graph_mime_data`
is the small JSON the JupyterLab extension redraws a saved output from.

The drawing is a Sugiyama-style layering (:func:`_layering`: rows by longest path, long edges
split into dummies, barycentre ordering), then geometry (:class:`_Geometry`: box sizes and
centres), then one function per layer of the picture, each returning SVG fragments: the header
and arrow markers, the title, group-membership lines, edges, task boxes, the legend.
"""

from __future__ import annotations

import dataclasses
import hashlib
import html
import itertools
import json
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import networkx as nx

from .wire import (
    EDGE_STYLES,
    GRAPH_MIME_STATUS_FIELDS,
    STATUS_COLORS,
    GraphMimeData,
    RunInfo,
    jsonable,
)

__all__ = ["graph_mime_data", "graph_svg"]


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
        "graph": jsonable(dict(graph)),
        "status": jsonable(kept),
        "run": jsonable(info),
        "model_id": model_id or None,
    }
    return data


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
    g: nx.DiGraph[str] = nx.DiGraph()
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
    h: nx.DiGraph[str] = nx.DiGraph()
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
    nodes = {str(n["id"]): n for n in graph.get("nodes") or []}
    edges = [
        e
        for e in graph.get("edges") or []
        if str(e.get("source")) in nodes and str(e.get("target")) in nodes
    ]
    legend = _legend_states(nodes, status)
    geo = _geometry(nodes, edges, _layering(graph), legend)
    # Markers need ids; two pictures of different graphs on one page must not share them.
    digest = hashlib.sha1(json.dumps(graph, sort_keys=True, default=str).encode()).hexdigest()
    uid = "jw" + digest[:8]
    out = _header(graph, geo, uid)
    out += _title(graph, run or {}, geo.width)
    # Edges first, so that boxes sit on top of them.
    out += _membership_lines(graph, geo)
    out += _edge_paths(edges, geo, uid)
    out += _boxes(nodes, status, geo)
    out += _legend(legend, geo.height)
    out.append("</svg>")
    return "".join(out)


def _state_of(status: Mapping[str, Mapping[str, Any]], node_id: str) -> str | None:
    state = (status.get(node_id) or {}).get("status")
    return str(state) if state is not None else None


def _state_text(status: Mapping[str, Mapping[str, Any]], node_id: str) -> str:
    entry = status.get(node_id) or {}
    text = _state_of(status, node_id) or "not started"
    if entry.get("done") is not None and entry.get("total") is not None:
        text += f" {entry['done']}/{entry['total']}"
    return text


def _legend_states(nodes: Mapping[str, Any], status: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """The palette keys of the tasks' states, in order of appearance (``"none"``: not started)."""
    seen: list[str] = []
    for node_id in nodes:
        key = _state_of(status, node_id) or "none"
        key = key if key in STATUS_COLORS else "none"
        if key not in seen:
            seen.append(key)
    return seen


@dataclasses.dataclass
class _Geometry:
    """Where everything goes: the picture's size, the box size, each row item's centre."""

    layering: _Layering
    box_w: float
    grid_x0: float
    grid_w: float
    width: float
    height: float
    centre: dict[str, tuple[float, float]]

    @property
    def half_w(self) -> float:
        return self.box_w / 2

    def downward(self, source: str, target: str) -> tuple[str, tuple[float, float]]:
        """A path from the bottom of ``source`` through its dummies to the top of ``target``,
        and where its label goes."""
        half_h = _BOX_H / 2
        centre = self.centre
        points = [(centre[source][0], centre[source][1] + half_h)]
        for dummy in self.layering.chains.get((source, target), []):
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


def _geometry(
    nodes: Mapping[str, Any],
    edges: list[Mapping[str, Any]],
    layering: _Layering,
    legend: list[str],
) -> _Geometry:
    """Box width, row widths, the picture's size and every item's centre.

    Text widths are estimates (no font metrics here): ~7 px a character for
    12 px sans, ~6.1 px for 10 px monospace.
    """
    rows, back = layering.rows, layering.back
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
    legend_w = sum(_legend_item_width(key) for key in legend)
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
    return _Geometry(
        layering=layering,
        box_w=box_w,
        grid_x0=grid_x0,
        grid_w=grid_w,
        width=width,
        height=height,
        centre=centre,
    )


def _header(graph: Mapping[str, Any], geo: _Geometry, uid: str) -> list[str]:
    """The ``<svg>`` element, one arrow marker per edge kind, the white background."""
    esc = html.escape
    width, height = geo.width, geo.height
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
    return out


def _title(graph: Mapping[str, Any], run: Mapping[str, Any], width: float) -> list[str]:
    """The workflow's name on the left, the run (id and state) on the right."""
    esc = html.escape
    name = str(graph.get("name") or "workflow")
    out = [
        f'<text x="{_MARGIN}" y="22" font-size="14" font-weight="600" fill="#111827">{esc(name)}</text>'
    ]
    if run.get("status") or run.get("run_id"):
        run_state = str(run.get("status") or "")
        run_text = " ".join(
            x for x in (f"run {run['run_id']}" if run.get("run_id") else "", run_state) if x
        )
        color = STATUS_COLORS.get(run_state, "#374151")
        out.append(
            f'<text x="{width - _MARGIN:.0f}" y="22" text-anchor="end" font-weight="600" fill="{color}">{esc(run_text)}</text>'
        )
    return out


def _membership_lines(graph: Mapping[str, Any], geo: _Geometry) -> list[str]:
    """A faint dotted line from a parallel task down to each of its entry members."""
    esc = html.escape
    out = []
    for group, member in _membership(graph):
        path, _ = geo.downward(group, member)
        out.append(
            f'<path d="{path}" stroke="#9ca3af" stroke-width="1" stroke-dasharray="1 3" fill="none">'
            f"<title>{esc(f'{member} is part of {group}')}</title></path>"
        )
    return out


def _edge_paths(edges: list[Mapping[str, Any]], geo: _Geometry, uid: str) -> list[str]:
    """Each transition, styled by kind: down between rows, a loop for a self-edge, a lane on
    the right for an edge back up; with its label, if any."""
    esc = html.escape
    half_w, half_h = geo.half_w, _BOX_H / 2
    out = []
    lane = 0
    for edge in edges:
        source, target = str(edge["source"]), str(edge["target"])
        kind = str(edge.get("kind") or "complete")
        color, dash = EDGE_STYLES.get(kind, EDGE_STYLES["complete"])
        (sx, sy), (tx, ty) = geo.centre[source], geo.centre[target]
        if source == target:
            x = sx + half_w
            path = f"M{x:.1f},{sy - 10:.1f} C{x + 30:.1f},{sy - 30:.1f} {x + 30:.1f},{sy + 30:.1f} {x:.1f},{sy + 10:.1f}"
            label_at = (x + 16, sy - 20)
        elif (source, target) in geo.layering.back:
            # Back up to an earlier row: down out of the source, right to a
            # lane beside every box, up, and down into the target's top.
            lx = geo.grid_x0 + geo.grid_w + 16 + 12 * lane
            x1, x2 = sx + half_w * 0.6, tx + half_w * 0.6
            y1, y2 = sy + half_h + 10 + 3 * lane, ty - half_h - 10 - 3 * lane
            lane += 1
            path = (
                f"M{x1:.1f},{sy + half_h:.1f} L{x1:.1f},{y1:.1f} L{lx:.1f},{y1:.1f} "
                f"L{lx:.1f},{y2:.1f} L{x2:.1f},{y2:.1f} L{x2:.1f},{ty - half_h:.1f}"
            )
            label_at = (lx, (y1 + y2) / 2)
        else:
            path, label_at = geo.downward(source, target)
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
    return out


def _boxes(
    nodes: Mapping[str, Any], status: Mapping[str, Mapping[str, Any]], geo: _Geometry
) -> list[str]:
    """One box per task: a tinted fill, a status stripe, label, action and status."""
    esc = html.escape
    box_w, half_w, half_h = geo.box_w, geo.half_w, _BOX_H / 2
    out = []
    for node_id, node in nodes.items():
        cx, cy = geo.centre[node_id]
        state = _state_of(status, node_id)
        color = STATUS_COLORS.get(state or "none", STATUS_COLORS["none"])
        x, y = cx - half_w, cy - half_h
        label = str(node.get("label") or node_id)
        action = str(node.get("action") or node.get("kind") or "")
        if node.get("kind") == "workflow" and node.get("action"):
            action = f"workflow: {action}"
        if node.get("with_items"):
            action += " (each item)"
        status_label = _state_text(status, node_id)
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
    return out


def _legend(legend: list[str], height: float) -> list[str]:
    """A swatch and a name for each state on the picture, along the bottom."""
    out = []
    lx, ly = float(_MARGIN), height - _MARGIN / 2 - 8
    for key in legend:
        text = "not started" if key == "none" else key
        out.append(
            f'<rect x="{lx:.1f}" y="{ly - 9:.1f}" width="10" height="10" rx="2" fill="{STATUS_COLORS[key]}"/>'
        )
        out.append(
            f'<text x="{lx + 14:.1f}" y="{ly:.1f}" font-size="10" fill="#374151">{html.escape(text)}</text>'
        )
        lx += _legend_item_width(key)
    return out
