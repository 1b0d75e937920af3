"""The graph shapes (networkx, Mermaid, dot, JSON) all come from one node/edge derivation."""

from __future__ import annotations

import json
import re
import textwrap

import networkx as nx
import pytest

import jupyter_workflows as jw
from jupyter_workflows.spec.graph import graph_dict, to_dot, to_json, to_mermaid, to_networkx

TEXT = textwrap.dedent(
    """\
    name: shapes
    tasks:
      fetch:
        action: core.echo
        with_items: [1, 2]
        publish: {n: "{{ result }}"}
        on_success: checks
        on_failure: cleanup
      checks:
        type: parallel
        tasks:
          db: {action: core.noop}
          api: {action: core.noop}
        on_success: decide
      decide:
        decision:
          - when: "{{ vars.n }}"
            next: ship
          - default: cleanup
      ship:
        workflow: child
        on_complete: report
      report: {action: core.noop, needs: cleanup}
      cleanup: {action: core.noop}
    """
)


@pytest.fixture(scope="module")
def workflow() -> jw.Workflow:
    return jw.load(TEXT)


def test_graph_dict_nodes(workflow: jw.Workflow) -> None:
    data = graph_dict(workflow.compiled)
    assert data["name"] == "shapes"
    nodes = {n["id"]: n for n in data["nodes"]}
    assert list(nodes) == ["fetch", "checks", "db", "api", "decide", "ship", "report", "cleanup"]
    assert nodes["fetch"] == {
        "id": "fetch",
        "label": "fetch",
        "kind": "action",
        "action": "core.echo",
        "with_items": True,
        "group": None,
    }
    assert nodes["checks"]["kind"] == "parallel"
    assert nodes["db"]["group"] == "checks"
    assert nodes["decide"]["kind"] == "routing"
    assert nodes["ship"]["kind"] == "workflow"
    assert nodes["ship"]["action"] == "child"


def test_graph_dict_edges(workflow: jw.Workflow) -> None:
    edges = {(e["source"], e["target"], e["kind"]) for e in graph_dict(workflow.compiled)["edges"]}
    assert edges == {
        ("fetch", "db", "success"),
        ("fetch", "api", "success"),
        ("fetch", "cleanup", "failure"),
        ("db", "checks", "needs"),
        ("api", "checks", "needs"),
        ("checks", "decide", "success"),
        ("decide", "ship", "decision"),
        ("decide", "cleanup", "decision"),
        ("ship", "report", "complete"),
        ("cleanup", "report", "needs"),
    }
    labels = {
        (e["source"], e["target"]): e["label"] for e in graph_dict(workflow.compiled)["edges"]
    }
    assert labels[("decide", "ship")] == "(vars.n)"
    assert labels[("fetch", "cleanup")] is None


def test_routing_task_with_join_is_a_join_node() -> None:
    cw = jw.load(
        "name: j\ntasks:\n  a: {action: core.noop}\n  b: {action: core.noop}\n  j: {needs: [a, b]}\n"
    ).compiled
    kinds = {n["id"]: n["kind"] for n in graph_dict(cw)["nodes"]}
    assert kinds["j"] == "join"


def test_edges_are_not_repeated() -> None:
    cw = jw.load(
        "name: r\ntasks:\n  a: {action: core.noop, on_success: b, next: [{do: b}, {do: b}]}\n"
        "  b: {action: core.noop}\n"
    ).compiled
    edges = [(e["source"], e["target"], e["kind"]) for e in graph_dict(cw)["edges"]]
    assert edges == [("a", "b", "when"), ("a", "b", "success")]


def test_long_labels_are_shortened() -> None:
    cw = jw.load(
        "name: l\ntasks:\n  a:\n    action: core.echo\n    next:\n"
        "      - when: \"{{ result.some_rather_long_field_name == 'another long value' }}\"\n"
        "        do: b\n  b: {action: core.noop}\n"
    ).compiled
    (edge,) = graph_dict(cw)["edges"]
    assert len(edge["label"]) == 40
    assert edge["label"].endswith("...")


def test_networkx_graph(workflow: jw.Workflow) -> None:
    g = workflow.graph
    assert isinstance(g, nx.DiGraph)
    assert g.graph["name"] == "shapes"
    assert set(g.nodes) == {"fetch", "checks", "db", "api", "decide", "ship", "report", "cleanup"}
    assert g.nodes["fetch"]["action"] == "core.echo"
    assert g.edges["fetch", "cleanup"]["kind"] == "failure"
    assert g.edges["ship", "report"]["kind"] == "complete"
    assert nx.is_directed_acyclic_graph(g)
    assert nx.utils.graphs_equal(g, to_networkx(workflow.compiled))


def test_mermaid(workflow: jw.Workflow) -> None:
    text = to_mermaid(workflow.compiled)
    lines = text.splitlines()
    assert lines[0] == "flowchart TD"
    assert text.endswith("\n")
    assert '    n_fetch["fetch<br/>core.echo"]' in lines
    assert '    n_decide{{"decide"}}' in lines
    assert '    n_fetch -.->|"on failure"| n_cleanup' in lines
    assert "    n_ship ==> n_report" in lines
    assert '    n_db -.->|"needs"| n_checks' in lines
    assert '    n_decide -->|"(vars.n)"| n_ship' in lines
    node_lines = [
        line for line in lines[1:] if "-->" not in line and "-.->" not in line and "==>" not in line
    ]
    assert len(node_lines) == 8
    assert len(lines) == 1 + 8 + 10


def test_mermaid_ids_are_safe() -> None:
    cw = jw.load("name: m\ntasks:\n  a.b-c: {action: core.noop}\n").compiled
    assert '    n_a_b_c["a.b-c<br/>core.noop"]' in to_mermaid(cw).splitlines()


def test_dot(workflow: jw.Workflow) -> None:
    text = to_dot(workflow.compiled)
    assert text.startswith('digraph "shapes" {\n')
    assert text.rstrip().endswith("}")
    assert '"decide" [label="decide", shape=diamond];' in text
    assert '"fetch" [label="fetch\\ncore.echo"];' in text
    edges = re.findall(r'^    "(\S+)" -> "(\S+)" \[(.*)\];$', text, flags=re.M)
    assert len(edges) == 10
    attrs = {(a, b): rest for a, b, rest in edges}
    assert 'kind="failure"' in attrs[("fetch", "cleanup")]
    assert "style=dashed" in attrs[("fetch", "cleanup")]
    assert 'label="(vars.n)"' in attrs[("decide", "ship")]


def test_json(workflow: jw.Workflow) -> None:
    data = json.loads(to_json(workflow.compiled))
    assert set(data) == {"name", "nodes", "edges", "start"}
    assert data["start"] == ["fetch"]
    assert data["nodes"] == graph_dict(workflow.compiled)["nodes"]
    assert len(data["edges"]) == 10
    for edge in data["edges"]:
        assert set(edge) == {"source", "target", "kind", "label"}
