"""``Workflow.graph`` keeps the edge written into a parallel group, besides the compiled ones."""

from __future__ import annotations

import textwrap

import networkx as nx

import jupyter_workflows as jw
from jupyter_workflows.spec.graph import graph_dict

TEXT = textwrap.dedent(
    """\
    name: groups
    tasks:
      deploy_regions:
        action: core.noop
        on_success: checks
        on_failure: outer
      checks:
        type: parallel
        tasks:
          check_db: {action: core.noop}
          check_cache: {action: core.noop}
        on_success: decide
      decide:
        decision:
          - when: "{{ vars.again }}"
            next: checks
          - default: finish
      outer:
        type: parallel
        tasks:
          inner:
            type: parallel
            tasks: {x: {action: core.noop}}
      finish: {action: core.noop}
    """
)


def test_the_written_edge_into_a_group_is_kept() -> None:
    g = jw.load(TEXT).graph
    assert g.edges["deploy_regions", "checks"] == {
        "kind": "success",
        "label": None,
        "enters_group": True,
    }
    assert g.edges["deploy_regions", "outer"]["kind"] == "failure"
    assert g.edges["decide", "checks"] == {
        "kind": "decision",
        "label": "(vars.again)",
        "enters_group": True,
    }
    assert nx.has_path(g, "deploy_regions", "decide")


def test_the_compiled_edges_are_still_there() -> None:
    g = jw.load(TEXT).graph
    for member in ("check_db", "check_cache"):
        assert g.edges["deploy_regions", member]["kind"] == "success"
        assert g.edges[member, "checks"]["kind"] == "needs"
        assert "enters_group" not in g.edges["deploy_regions", member]
    assert g.edges["deploy_regions", "x"]["kind"] == "failure"
    assert not g.has_edge("deploy_regions", "inner")  # not written, only entered through outer


def test_other_shapes_draw_only_the_compiled_form() -> None:
    edges = {(e["source"], e["target"]) for e in graph_dict(jw.load(TEXT).compiled)["edges"]}
    assert ("deploy_regions", "check_db") in edges
    assert ("deploy_regions", "checks") not in edges


def test_compiled_transitions_compare_as_before() -> None:
    cw = jw.load(TEXT).compiled
    (on_success,) = [t for t in cw.tasks["deploy_regions"].next if t.kind == "success"]
    assert on_success.do == ("check_db", "check_cache")
    assert on_success.groups == ("checks",)
    assert on_success == type(on_success)(
        on_success.when, (), on_success.do, "success", on_success.origin
    )
