"""``Workflow.run(parameters)`` with something other than a mapping: ParameterError, no run."""

from __future__ import annotations

import pytest

import jupyter_workflows as jw
from jupyter_workflows.exceptions import ParameterError
from jupyter_workflows.spec.params import resolve_parameters

WF = "name: p\nparameters:\n  n: {type: integer, default: 1}\ntasks:\n  a: {action: core.noop}\n"


@pytest.mark.parametrize(
    ("given", "kind"), [([1], "list"), ("n=1", "str"), (5, "int"), ((("n", 1),), "tuple")]
)
def test_resolve_parameters_refuses_a_non_mapping(given, kind) -> None:
    with pytest.raises(ParameterError) as info:
        resolve_parameters(jw.load(WF).spec, given)
    assert str(info.value) == f"parameters must be a mapping of name -> value, got {kind}"


def test_workflow_run_refuses_a_non_mapping_and_creates_no_run(engine) -> None:
    wf = jw.load(WF)
    with pytest.raises(ParameterError, match="got list"):
        wf.run([1])
    with pytest.raises(ParameterError, match="got str"):
        wf.run("n=1")
    assert jw.runs() == []
    assert wf.run({"n": 2}).status == "succeeded"
