"""Rich reprs of workflows and runs: informative, and never raising."""

from __future__ import annotations

from typing import Any

import jupyter_workflows as jw
from jupyter_workflows.exceptions import SpecError
from jupyter_workflows.jupyter.display import (
    error_bundle,
    run_bundle,
    runs_bundle,
    workflow_bundle,
    workflows_bundle,
)

FLOW = """\
name: shown
description: A workflow to look at
parameters:
  who: {type: string, required: true, description: whom to greet}
  loud: {type: boolean, default: false}
tasks:
  hello: {action: core.echo, input: {who: "{{ parameters.who }}"}, on_success: bye}
  bye: {action: core.fail, input: {message: "bye <b>now</b>"}}
"""


def test_workflow_bundle_has_the_graph_and_the_parameters() -> None:
    bundle = jw.load(FLOW)._repr_mimebundle_()
    assert bundle["text/plain"].startswith("Workflow 'shown': 2 tasks")
    assert "who: string (required)" in bundle["text/plain"]
    html = bundle["text/html"]
    assert "<svg" in html and "hello" in html and "bye" in html
    assert "whom to greet" in html and "who</span> *" in html


def test_run_bundle_colours_tasks_and_escapes_errors(engine: Any) -> None:
    run = jw.load(FLOW).run({"who": "Ada"})
    assert run.status == "failed"
    bundle = run._repr_mimebundle_()
    html = bundle["text/html"]
    assert "#dc2626" in html and "#16a34a" in html  # failed red, succeeded green
    assert "<b>now</b>" not in html and "&lt;b&gt;now&lt;/b&gt;" in html
    assert bundle["text/plain"] == run.summary()
    listing = runs_bundle([run])
    assert run.run_id in listing["text/plain"] and "failed" in listing["text/html"]


class _Broken:
    """Raises on every attribute: a repr must still come back."""

    def __getattr__(self, name: str) -> Any:
        raise RuntimeError("store is gone")


def test_bundles_never_raise() -> None:
    for make in (workflow_bundle, run_bundle):
        bundle = make(_Broken())  # type: ignore[arg-type]
        assert "cannot be displayed (RuntimeError: store is gone)" in bundle["text/plain"]
    assert runs_bundle([]) == {"text/plain": "no runs", "text/html": "<i>no runs</i>"}
    assert "no workflows" in workflows_bundle([])["text/plain"]
    assert "?" in runs_bundle([_Broken()])["text/plain"]  # type: ignore[list-item]


def test_error_bundle_positions_spec_errors() -> None:
    error = SpecError("unknown field 'on_sucess'", file=None, line=4, col=5)
    assert (
        error_bundle(error, label="<cell>")["text/plain"] == "<cell>:4:5: unknown field 'on_sucess'"
    )
    assert error_bundle(ValueError("bad\nmore"))["text/plain"] == "ValueError: bad"
