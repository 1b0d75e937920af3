"""Rich reprs: what a :class:`Workflow`, a :class:`Run` or a list of them looks like in a notebook.

Design
------
* These functions back ``_repr_mimebundle_`` (and the tables of ``%workflow list`` /
  ``%workflow runs``), so they must be **cheap and never raise**: a repr that throws hides the
  object and prints a traceback where the user wanted to look at a result. Every piece is built
  defensively; when something cannot be read the bundle says so in one line instead.
* Plain HTML with inline styles, no script: it renders the same in JupyterLab, Notebook 7,
  nbconvert, GitHub and VS Code, and the text/plain part keeps terminals and logs readable.
* Colours come from :data:`~jupyter_workflows.jupyter.wire.STATUS_COLORS`, the palette the live
  widget and its SVG fallback use, so a state looks the same everywhere.
"""

from __future__ import annotations

import html
import json
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from ..exceptions import describe
from .wire import GRAPH_MIME, STATUS_COLORS

if TYPE_CHECKING:  # pragma: no cover
    from ..definition import Workflow
    from ..engine.run import Run

__all__ = [
    "bundle",
    "error_bundle",
    "run_bundle",
    "runs_bundle",
    "workflow_bundle",
    "workflows_bundle",
]

Bundle = dict[str, Any]

_TABLE = (
    'style="border-collapse:collapse;font-size:12px;margin:4px 0;'
    'font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif"'
)
_TH = 'style="text-align:left;padding:3px 10px;border-bottom:1px solid #d1d5db;color:#374151"'
_TD = 'style="text-align:left;padding:3px 10px;border-bottom:1px solid #f3f4f6;vertical-align:top"'
_MONO = "font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace"


def _esc(value: Any) -> str:
    return html.escape("" if value is None else str(value))


def _short(value: Any, limit: int = 80) -> str:
    """A one-line, bounded rendering of any value (JSON when it can be, else repr)."""
    try:
        text = json.dumps(value, default=repr, ensure_ascii=False)
    except Exception:
        try:
            text = repr(value)
        except Exception:
            text = f"<{type(value).__name__}>"
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _badge(state: str | None) -> str:
    state = state or "none"
    color = STATUS_COLORS.get(state, "#6b7280")
    label = "not started" if state == "none" else state
    return (
        f'<span style="display:inline-block;padding:0 6px;border-radius:8px;font-weight:600;'
        f'color:#fff;background:{color}">{_esc(label)}</span>'
    )


def _table(headers: list[str], rows: Iterable[list[str]]) -> str:
    head = "".join(f"<th {_TH}>{_esc(h)}</th>" for h in headers)
    body = "".join(
        "<tr>" + "".join(f"<td {_TD}>{cell}</td>" for cell in row) + "</tr>" for row in rows
    )
    return f"<table {_TABLE}><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _fail_safe(kind: str, obj: object, exc: BaseException) -> Bundle:
    line = f"<{kind}: cannot be displayed ({type(exc).__name__}: {exc})>"
    try:
        plain = f"{object.__repr__(obj)}\n{line}"
    except Exception:  # pragma: no cover - object.__repr__ does not raise
        plain = line
    return {"text/plain": plain, "text/html": f"<pre>{_esc(plain)}</pre>"}


# -- workflows ----------------------------------------------------------------------------------


def bundle(obj: Any) -> Bundle:
    """The display of a ``Workflow`` or a ``Run``: what their ``_repr_mimebundle_`` return.

    Wired by the package root (:mod:`jupyter_workflows.hooks`): ``definition`` and ``engine``
    are layers below this one and do not import it.
    """
    from ..definition import Workflow

    if isinstance(obj, Workflow):
        return workflow_bundle(obj)
    return run_bundle(obj)


def workflow_bundle(workflow: Workflow) -> Bundle:
    """``text/plain`` and ``text/html`` (graph picture, parameters) for a workflow; never raises."""
    try:
        return _workflow_bundle(workflow)
    except Exception as exc:
        return _fail_safe("Workflow", workflow, exc)


def _workflow_bundle(workflow: Workflow) -> Bundle:
    name = workflow.name
    plain = [f"Workflow {name!r}"]
    parts = [f'<div style="font-family:system-ui,sans-serif"><b>Workflow {_esc(name)}</b>']
    if workflow.description:
        plain.append(f"  {workflow.description}")
        parts.append(f' — <span style="color:#4b5563">{_esc(workflow.description)}</span>')
    parts.append("</div>")
    picture = ""
    graph_data = None
    try:
        compiled = workflow.compiled
        plain[0] += f": {len(compiled.tasks)} tasks"
        from ..spec.graph import graph_dict
        from .picture import graph_mime_data, graph_svg

        graph = graph_dict(compiled)
        picture = graph_svg(graph)
        graph_data = graph_mime_data(graph)
    except Exception as exc:  # an invalid workflow still shows its name and the reason
        message = describe(exc)
        plain.append(f"  cannot draw the graph: {message}")
        parts.append(f'<div style="color:#dc2626">cannot draw the graph: {_esc(message)}</div>')
    params = workflow.spec.parameters
    if params:
        plain.append("  parameters:")
        rows = []
        for pname, p in params.items():
            flags = "required" if p.required else f"default {_short(p.default, 40)}"
            enum = f", one of {_short(p.enum, 60)}" if p.enum else ""
            plain.append(f"    {pname}: {p.type} ({flags}{enum})")
            rows.append(
                [
                    f'<span style="{_MONO}">{_esc(pname)}</span>' + (" *" if p.required else ""),
                    _esc(p.type),
                    ""
                    if p.required
                    else f'<span style="{_MONO}">{_esc(_short(p.default, 40))}</span>',
                    _esc(p.description or (f"one of {_short(p.enum, 60)}" if p.enum else "")),
                ]
            )
        parts.append(_table(["parameter", "type", "default", "description"], rows))
    if picture:
        parts.append(f'<div class="jupyter-workflows-graph">{picture}</div>')
    bundle: Bundle = {"text/plain": "\n".join(plain), "text/html": "".join(parts)}
    if graph_data is not None:
        bundle[GRAPH_MIME] = graph_data
    return bundle


def workflows_bundle(workflows: Iterable[Workflow]) -> Bundle:
    """A table of workflows (``%workflow list``); never raises."""
    try:
        items = list(workflows)
        if not items:
            text = "no workflows defined (use %%workflow or @jw.workflow)"
            return {"text/plain": text, "text/html": f"<i>{_esc(text)}</i>"}
        plain = [f"{'WORKFLOW':<24} {'TASKS':>5}  PARAMETERS"]
        rows = []
        for wf in items:
            try:
                ntasks = str(len(wf.compiled.tasks))
            except Exception:
                ntasks = "?"
            params = ", ".join(
                f"{n}{'*' if p.required else ''}: {p.type}" for n, p in wf.spec.parameters.items()
            )
            plain.append(f"{wf.name:<24} {ntasks:>5}  {params}")
            rows.append(
                [
                    f"<b>{_esc(wf.name)}</b>",
                    ntasks,
                    f'<span style="{_MONO}">{_esc(params)}</span>',
                    _esc(wf.description or ""),
                ]
            )
        html_ = _table(["workflow", "tasks", "parameters", "description"], rows)
        return {"text/plain": "\n".join(plain), "text/html": html_}
    except Exception as exc:
        return _fail_safe("workflows", workflows, exc)


# -- runs ---------------------------------------------------------------------------------------


def _duration(started: str | None, ended: str | None) -> str:
    if not started or not ended:
        return ""
    from datetime import datetime

    try:
        a = datetime.fromisoformat(started.replace("Z", "+00:00"))
        b = datetime.fromisoformat(ended.replace("Z", "+00:00"))
    except ValueError:
        return ""
    return f"{(b - a).total_seconds():.2f}s"


def run_bundle(run: Run) -> Bundle:
    """``text/plain`` and ``text/html`` (status, tasks table, outputs) for a run; never raises."""
    try:
        return _run_bundle(run)
    except Exception as exc:
        return _fail_safe("Run", run, exc)


def _run_bundle(run: Run) -> Bundle:
    data = run.to_dict()
    status = data.get("status")
    parts = [
        '<div style="font-family:system-ui,sans-serif;margin-bottom:4px">',
        f"<b>Run</b> <code>{_esc(data.get('run_id'))}</code> of <b>{_esc(data.get('workflow'))}</b> ",
        _badge(status),
        "</div>",
    ]
    if data.get("error"):
        parts.append(f'<div style="color:#dc2626;{_MONO}">{_esc(data["error"])}</div>')
    rows = []
    for t in data.get("tasks") or []:
        detail = t.get("error") or (_short(t.get("result")) if t.get("result") is not None else "")
        color = "#dc2626" if t.get("error") else "#374151"
        rows.append(
            [
                f"<b>{_esc(t.get('task'))}</b>",
                _badge(t.get("status")),
                _esc(t.get("attempts")),
                _esc(_duration(t.get("started_at"), t.get("ended_at"))),
                f'<span style="{_MONO};color:{color}">{_esc(detail)}</span>',
            ]
        )
    if rows:
        parts.append(_table(["task", "status", "attempts", "took", "result / error"], rows))
    if data.get("outputs"):
        parts.append(
            f'<div style="font-family:system-ui,sans-serif">outputs: '
            f"<code>{_esc(_short(data['outputs'], 400))}</code></div>"
        )
    try:
        plain = run.summary()
    except Exception:
        plain = f"run {data.get('run_id')} of {data.get('workflow')!r}: {status}"
    bundle: Bundle = {"text/plain": plain, "text/html": "".join(parts)}
    graph_data = run_graph_data(run)
    if graph_data is not None:
        bundle[GRAPH_MIME] = graph_data
    return bundle


def run_graph_data(run: Run) -> Any:
    """The run's graph with its task states (:data:`GRAPH_MIME`), or None when it cannot be rebuilt."""
    try:
        from ..spec.graph import graph_dict
        from .live import workflow_of
        from .picture import graph_mime_data

        workflow = workflow_of(run)
        if workflow is None:
            return None
        snapshot = run.live()
        return graph_mime_data(
            graph_dict(workflow.compiled), snapshot.get("tasks") or {}, snapshot.get("run") or {}
        )
    except Exception:  # the table above still shows the run
        return None


def runs_bundle(runs: Iterable[Run]) -> Bundle:
    """A table of runs, newest first (``%workflow runs``); never raises."""
    try:
        items = list(runs)
        if not items:
            return {"text/plain": "no runs", "text/html": "<i>no runs</i>"}
        plain = [f"{'RUN ID':<34} {'WORKFLOW':<20} {'STATUS':<12} STARTED"]
        rows = []
        for r in items:
            try:
                d = r.summary_dict()
            except Exception as exc:  # one unreadable run must not hide the others
                try:
                    run_id = str(r.run_id)
                except Exception:
                    run_id = "?"
                d = {"run_id": run_id, "workflow": "?", "status": None}
                d["started_at"] = f"({type(exc).__name__})"
            plain.append(
                f"{d['run_id']:<34} {d['workflow']:<20} {d['status'] or '?':<12} {d.get('started_at') or ''}"
            )
            rows.append(
                [
                    f"<code>{_esc(d['run_id'])}</code>",
                    _esc(d["workflow"]),
                    _badge(d["status"]),
                    _esc(d.get("started_at") or ""),
                    _esc(_duration(d.get("started_at"), d.get("ended_at"))),
                ]
            )
        html_ = _table(["run id", "workflow", "status", "started", "took"], rows)
        return {"text/plain": "\n".join(plain), "text/html": html_}
    except Exception as exc:
        return _fail_safe("runs", runs, exc)


# -- errors -------------------------------------------------------------------------------------


def error_bundle(error: BaseException, *, label: str | None = None) -> Bundle:
    """A one-line error, positioned when it is a :class:`SpecError`; never raises.

    ``label`` replaces the error's file name (``<cell>`` for a ``%%workflow`` cell).
    """
    try:
        from ..exceptions import SpecError

        if isinstance(error, SpecError) and label is not None:
            where = ":".join(str(p) for p in (label, error.line, error.col) if p is not None)
            text = f"{where}: {error.message}"
        else:
            text = describe(error)
        return {
            "text/plain": text,
            "text/html": f'<pre style="color:#dc2626;white-space:pre-wrap">{_esc(text)}</pre>',
        }
    except Exception as exc:  # pragma: no cover - defensive
        return _fail_safe("error", error, exc)
