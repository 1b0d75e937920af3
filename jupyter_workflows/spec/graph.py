"""The task graph in the shapes people look at: networkx, Mermaid, Graphviz dot, JSON.

One function (:func:`graph_dict`) derives nodes and edges from the compiled workflow; every other
shape, the widget's included, is drawn from it, so the CLI, the widget and ``Workflow.graph``
always agree. They draw the compiled form: a transition into a ``type: parallel`` group goes to
the group's members, and each member ``needs``-edges into the group. The networkx graph also
keeps the edge as written (``deploy -> checks``, marked ``enters_group=True``), so code asking
"does deploy lead to checks?" gets the answer the document gives.
"""

from __future__ import annotations

import json
from typing import Any

import networkx as nx

from .compile import CompiledWorkflow

__all__ = ["graph_dict", "to_dot", "to_json", "to_mermaid", "to_networkx"]


def graph_dict(cw: CompiledWorkflow) -> dict[str, Any]:
    """``{"name", "nodes": [...], "edges": [...]}`` (the widget's ``graph`` trait)."""
    member_of = {m: name for name, ct in cw.tasks.items() for m in ct.members}
    nodes = []
    for name, ct in cw.tasks.items():
        kind: str = ct.kind
        if kind == "routing" and ct.join is not None:
            kind = "join"
        nodes.append(
            {
                "id": name,
                "label": name,
                "kind": kind,
                "action": ct.action or ct.workflow,
                "with_items": ct.with_items is not None,
                "group": member_of.get(name),
            }
        )
    edges = []
    seen = set()
    for name, ct in cw.tasks.items():
        for tr in ct.next:
            kind = tr.kind if tr.kind != "publish" else "success"
            label = None
            if kind in ("when", "decision") and isinstance(tr.when, str):
                label = _short(tr.when)
            for target in tr.targets:
                key = (name, target, kind, label)
                if key in seen:
                    continue
                seen.add(key)
                edges.append({"source": name, "target": target, "kind": kind, "label": label})
    return {"name": cw.name, "nodes": nodes, "edges": edges}


def _short(when: str) -> str:
    text = when.strip()
    if text.startswith("{{") and text.endswith("}}"):
        text = text[2:-2].strip()
    text = text.replace("succeeded() and ", "")
    return text if len(text) <= 40 else text[:37] + "..."


def to_networkx(cw: CompiledWorkflow) -> nx.DiGraph:
    """A DiGraph: node attributes ``kind``/``action``; edge attribute ``kind`` (and ``label``)."""
    data = graph_dict(cw)
    g: nx.DiGraph[str] = nx.DiGraph(name=cw.name)
    for node in data["nodes"]:
        g.add_node(node["id"], **{k: v for k, v in node.items() if k != "id"})
    for edge in data["edges"]:
        g.add_edge(edge["source"], edge["target"], kind=edge["kind"], label=edge["label"])
    for name, ct in cw.tasks.items():
        for tr in ct.next:
            for group in tr.groups:
                if not g.has_edge(name, group):
                    kind = tr.kind if tr.kind != "publish" else "success"
                    label = (
                        _short(tr.when)
                        if kind in ("when", "decision") and isinstance(tr.when, str)
                        else None
                    )
                    g.add_edge(name, group, kind=kind, label=label, enters_group=True)
    return g


_MERMAID_ARROWS = {
    "success": "-->",
    "failure": "-.->",
    "complete": "==>",
    "needs": "-.->",
    "when": "-->",
    "decision": "-->",
}


def _mid(name: str) -> str:
    return "n_" + "".join(c if c.isalnum() else "_" for c in name)


def to_mermaid(cw: CompiledWorkflow) -> str:
    """Mermaid flowchart text."""
    data = graph_dict(cw)
    lines = ["flowchart TD"]
    for node in data["nodes"]:
        label = node["label"] + (f"<br/>{node['action']}" if node["action"] else "")
        shape = ("{{", "}}") if node["kind"] in ("routing", "join") else ("[", "]")
        lines.append(f'    {_mid(node["id"])}{shape[0]}"{label}"{shape[1]}')
    for edge in data["edges"]:
        arrow = _MERMAID_ARROWS.get(edge["kind"], "-->")
        text = edge["label"] or ("on failure" if edge["kind"] == "failure" else None)
        if edge["kind"] == "needs":
            text = "needs"
        middle = f'|"{text}"|' if text else ""
        lines.append(f"    {_mid(edge['source'])} {arrow}{middle} {_mid(edge['target'])}")
    return "\n".join(lines) + "\n"


_DOT_STYLES = {
    "success": 'color="#2e7d32"',
    "failure": 'color="#c62828", style=dashed',
    "complete": 'color="#616161"',
    "needs": 'color="#1565c0", style=dotted',
    "when": 'color="#ef6c00"',
    "decision": 'color="#ef6c00"',
}


def to_dot(cw: CompiledWorkflow) -> str:
    """Graphviz dot text."""
    data = graph_dict(cw)
    out = [
        f"digraph {json.dumps(cw.name)} {{",
        "    rankdir=TB;",
        "    node [shape=box, style=rounded];",
    ]
    for node in data["nodes"]:
        # A real newline: json.dumps writes it as the two characters \n, dot's line break.
        label = node["label"] + (f"\n{node['action']}" if node["action"] else "")
        shape = ", shape=diamond" if node["kind"] in ("routing", "join") else ""
        out.append(f"    {json.dumps(node['id'])} [label={json.dumps(label)}{shape}];")
    for edge in data["edges"]:
        attrs = [_DOT_STYLES.get(edge["kind"], "")]
        if edge["label"]:
            attrs.append(f"label={json.dumps(edge['label'])}")
        attrs.append(f"kind={json.dumps(edge['kind'])}")
        out.append(
            f"    {json.dumps(edge['source'])} -> {json.dumps(edge['target'])} [{', '.join(a for a in attrs if a)}];"
        )
    out.append("}")
    return "\n".join(out) + "\n"


def to_json(cw: CompiledWorkflow) -> str:
    """The node/edge JSON the widget draws, with the start tasks."""
    data = graph_dict(cw)
    data["start"] = list(cw.start)
    return json.dumps(data, indent=2) + "\n"
