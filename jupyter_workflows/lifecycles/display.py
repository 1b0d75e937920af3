"""A lifecycle's state machine as SVG (and text), the current state highlighted.

A static picture, not a widget: it renders in JupyterLab, Notebook 7, nbviewer and GitHub alike,
and in the executed gallery notebooks. States are laid out in columns by their distance from the
initial state (a breadth-first walk of the declared transitions); forward transitions are
straight arrows, transitions back to an earlier column curve below the row.
"""

from __future__ import annotations

import html
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from .core import Lifecycle

__all__ = ["lifecycle_bundle", "lifecycle_svg", "lifecycle_text"]

_FILL = {
    "draft": "#eef2f7",
    "pending": "#fdf6e3",
    "processing": "#e8f0fe",
    "approval": "#fff4d6",
    "approved": "#e6f4ea",
    "published": "#d7f0dd",
    "failure": "#fde7e7",
}
_W, _H, _GAP_X, _GAP_Y, _PAD = 128, 46, 64, 30, 24


def _columns(lc: Lifecycle) -> dict[str, tuple[int, int]]:
    spec = lc.spec
    depth = {spec.initial_state: 0}
    queue = [spec.initial_state]
    while queue:
        state = queue.pop(0)
        for target in spec.targets(state):
            if target not in depth:
                depth[target] = depth[state] + 1
                queue.append(target)
    last = max(depth.values(), default=0)
    for name in spec.states:  # unreachable states: a column of their own at the end
        if name not in depth:
            depth[name] = last + 1
    rows: dict[int, int] = {}
    place = {}
    for name in spec.states:
        col = depth[name]
        place[name] = (col, rows.get(col, 0))
        rows[col] = rows.get(col, 0) + 1
    return place


def _only_from_any(lc: Lifecycle, source: str, target: str) -> bool:
    """Whether ``source -> target`` is declared only by a ``from: '*'`` transition."""
    declared = lc.spec.declared(source, target)
    return bool(declared) and all("*" in t.from_ and source not in t.from_ for t in declared)


def lifecycle_svg(lc: Lifecycle, current: str | None = None) -> str:
    """The state machine as an SVG document; ``current`` drawn highlighted."""
    place = _columns(lc)
    cols = max(c for c, _ in place.values()) + 1
    rows = max(r for _, r in place.values()) + 1
    width = _PAD * 2 + cols * _W + (cols - 1) * _GAP_X
    height = _PAD * 2 + rows * _H + (rows - 1) * _GAP_Y + 30 + 12 * (cols + 1)

    def box(name: str) -> tuple[float, float]:
        col, row = place[name]
        return _PAD + col * (_W + _GAP_X), _PAD + row * (_H + _GAP_Y)

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="jw-lifecycle" width="{width}" '
        f'height="{height}" viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="12">',
        '<defs><marker id="jw-arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" '
        'markerHeight="7" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="#555"/>'
        "</marker></defs>",
        f"<title>lifecycle {html.escape(lc.name)}</title>",
    ]
    drawn: set[tuple[str, str]] = set()
    back = 0
    # "from: '*'" is drawn once, as a label on its target, not as an arrow from every state.
    from_any = {t.to for t in lc.spec.transitions if "*" in t.from_}
    for source in lc.spec.states:
        for target in lc.spec.targets(source):
            if (source, target) in drawn or _only_from_any(lc, source, target):
                continue
            drawn.add((source, target))
            (x1, y1), (x2, y2) = box(source), box(target)
            guarded = any(t.when for t in lc.spec.declared(source, target))
            dash = ' stroke-dasharray="4 3"' if guarded else ""
            if place[target][0] > place[source][0]:
                d = f"M{x1 + _W},{y1 + _H / 2} L{x2},{y2 + _H / 2}"
            else:  # back (or same column): a curve below the boxes, deeper the farther back
                back += 1
                span = abs(place[source][0] - place[target][0]) + 1
                sx, sy = x1 + _W / 2 + 6 * (back % 3), y1 + _H
                tx, ty = x2 + _W / 2 - 24 + 10 * (back % 5), y2 + _H
                low = max(sy, ty) + 14 + 12 * span + 4 * (back % 3)
                d = f"M{sx},{sy} C{sx},{low} {tx},{low} {tx},{ty}"
            parts.append(
                f'<path class="jw-transition" data-from="{html.escape(source)}" '
                f'data-to="{html.escape(target)}" d="{d}" fill="none" stroke="#555" '
                f'stroke-width="1.3"{dash} marker-end="url(#jw-arrow)"/>'
            )
    for name in lc.spec.states:
        x, y = box(name)
        kind = lc.spec.state_type(name)
        is_current = name == current
        stroke = (
            ' stroke="#d9480f" stroke-width="3"'
            if is_current
            else ' stroke="#888" stroke-width="1"'
        )
        parts.append(
            f'<g class="jw-state{" jw-current" if is_current else ""}" data-state="{html.escape(name)}">'
            f'<rect x="{x}" y="{y}" width="{_W}" height="{_H}" rx="8" fill="{_FILL.get(kind, "#fff")}"{stroke}/>'
            f'<text x="{x + _W / 2}" y="{y + 19}" text-anchor="middle" font-weight="{"bold" if is_current else "normal"}">'
            f"{html.escape(name)}</text>"
            f'<text x="{x + _W / 2}" y="{y + 35}" text-anchor="middle" fill="#666" font-size="10">'
            f"{html.escape(kind)}{' ●' if is_current else ''}</text>"
            + (
                f'<text x="{x + _W / 2}" y="{y - 4}" text-anchor="middle" fill="#555" '
                f'font-size="10">from any state ▼</text>'
                if name in from_any
                else ""
            )
            + "</g>"
        )
    parts.append("</svg>")
    return "".join(parts)


def lifecycle_text(lc: Lifecycle, rec: dict[str, Any] | None = None) -> str:
    """Plain text: states (``*`` marks the current one) and their transitions."""
    current = rec["state"] if rec else None
    head = f"lifecycle {lc.name}" + (f" — object {rec['object_id']}: {current}" if rec else "")
    lines = [head]
    for name in lc.spec.states:
        mark = "*" if name == current else " "
        targets = lc.spec.targets(name)
        arrow = f" -> {', '.join(targets)}" if targets else ""
        lines.append(f" {mark} {name} ({lc.spec.state_type(name)}){arrow}")
    if rec and rec.get("pending"):
        lines.append(f"   approval open: run {rec['pending']['run_id']} (task approve)")
    return "\n".join(lines)


def lifecycle_bundle(
    lc: Lifecycle, rec: dict[str, Any] | None, history: list[dict[str, Any]] | None = None
) -> dict[str, Any]:
    """``text/plain`` and ``text/html`` (the SVG, and the object's recent history)."""
    current = rec["state"] if rec else None
    title = html.escape(lc.name) + (
        f" — <b>{html.escape(rec['object_id'])}</b>: {html.escape(current or '')}" if rec else ""
    )
    rows = ""
    for entry in (history or [])[-8:]:
        outcome = entry.get("outcome")
        colour = {"refused": "#c92a2a", "transitioned": "#2b8a3e"}.get(str(outcome), "#555")
        rows += (
            f"<tr><td style='color:{colour}'>{html.escape(str(outcome))}</td>"
            f"<td>{html.escape(str(entry.get('from_state') or ''))} → {html.escape(str(entry.get('to_state') or ''))}</td>"
            f"<td>{html.escape(str(entry.get('reason') or ''))}</td>"
            f"<td>{html.escape(', '.join(entry.get('runs') or []))}</td></tr>"
        )
    table = (
        f"<table class='jw-history'><tr><th>outcome</th><th>transition</th><th>reason</th><th>runs</th></tr>{rows}</table>"
        if rows
        else ""
    )
    pending = ""
    if rec and rec.get("pending"):
        run_id = html.escape(str(rec["pending"].get("run_id")))
        pending = f"<div class='jw-approval'>approval open: run <code>{run_id}</code> (task <code>approve</code>)</div>"
    page = (
        f"<div class='jw-lifecycle-view'><div>lifecycle {title}</div>"
        f"{lifecycle_svg(lc, current)}{pending}{table}</div>"
    )
    return {"text/plain": lifecycle_text(lc, rec), "text/html": page}
