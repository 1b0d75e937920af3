"""Lifecycle documents: what loads, and one positioned line for each kind of mistake."""

from __future__ import annotations

from pathlib import Path

import pytest

from jupyter_workflows.exceptions import SpecError
from jupyter_workflows.lifecycles import load_lifecycle
from jupyter_workflows.lifecycles.spec import document_kind

GOOD = """\
lifecycle: dataset
description: a dataset from draft to published
states:
  draft: {type: draft}
  review:
    type: approval
    entry: [check]
    approval: {prompt: "Publish {{ object.id }}?", approved: published, rejected: draft, timeout: 60}
  published:
    type: published
    exit: {workflow: unpublish, parameters: {name: "{{ object.id }}"}}
    workflows: announce
  broken: {type: failure}
transitions:
  - {from: draft, to: review}
  - {from: [review, published], to: draft}
  - {from: "*", to: broken, when: "{{ data.rows == 0 }}"}
"""


def test_a_full_document_loads() -> None:
    lc = load_lifecycle(GOOD)
    spec = lc.spec
    assert lc.name == "dataset" and lc.initial == "draft"
    assert lc.states == ["draft", "review", "published", "broken"]
    assert spec.state_type("review") == "approval"
    assert [r.workflow for r in spec.states["review"].entry] == ["check"]
    assert spec.states["published"].exit[0].parameters == {"name": "{{ object.id }}"}
    assert [r.workflow for r in spec.states["published"].workflows] == ["announce"]
    assert spec.targets("draft") == ["review", "broken"]
    # the approval's targets count as declared transitions of its state
    assert spec.targets("review") == ["draft", "broken", "published"]
    assert spec.declared("review", "published")
    assert not spec.declared("draft", "published")


def test_states_as_a_list_and_types_from_names() -> None:
    lc = load_lifecycle(
        "lifecycle: simple\nstates: [draft, published]\ntransitions: [{from: draft, to: published}]\n"
    )
    assert lc.spec.state_type("published") == "published"


def test_the_kind_of_a_document() -> None:
    assert document_kind({"lifecycle": "x", "states": {}}) == "lifecycle"
    assert document_kind({"traits": {}}) == "triggers"
    assert document_kind({"hooks": {}}) == "triggers"
    assert document_kind({"name": "wf", "tasks": {}}) == "workflow"


BAD = [
    ("lifecycle: x\nstates:\n  draft: {type: drafty}\n", "3:17", "Input should be 'draft'"),
    ("lifecycle: x\nstates:\n  draft: {entri: w}\n", "3:11", "unknown field 'entri'"),
    ("lifecycle: x\nstates:\n  review: {}\n", "3:3", "state 'review' needs a 'type'"),
    (
        "lifecycle: x\nstates: {draft: {}}\ntransitions:\n  - {from: draft, to: gone}\n",
        "4:23",
        "transition to unknown state 'gone'",
    ),
    (
        "lifecycle: x\nstates: {draft: {}}\ntransitions:\n  - {from: [draft, nope], to: draft}\n",
        "4:20",
        "transition from unknown state 'nope'",
    ),
    (
        "lifecycle: x\nstates: {draft: {}}\ntransitions:\n  - {from: draft, to: draft, when: '{{ parameters.x }}'}\n",
        "4:36",
        "unknown name 'parameters'",
    ),
    (
        "lifecycle: x\nstates: {draft: {}}\ntransitions:\n  - {from: draft, to: draft, when: '{{ data.x ++ }}'}\n",
        "4:36",
        "template syntax error",
    ),
    (
        "lifecycle: x\nstates:\n  draft: {approval: {approved: draft}}\n",
        "3:11",
        "not of type approval",
    ),
    (
        "lifecycle: x\nstates:\n  review: {type: approval, approval: {approved: gone}}\n",
        "3:49",
        "approval approved: 'gone'",
    ),
    ("lifecycle: x\ninitial: nope\nstates: {draft: {}}\n", "2:10", "initial state 'nope'"),
    ("lifecycle: x\nstates: {draft: {}}\nstates: {draft: {}}\n", "3:1", "duplicate key 'states'"),
    ("lifecycle: x\n", "1:1", "missing required field 'states'"),
    ("lifecycle: 'bad name'\nstates: {draft: {}}\n", "1:12", "invalid name"),
    (
        "lifecycle: x\nstates: {draft: {}}\ntransitions:\n  - {to: draft}\n",
        "4:5",
        "missing required field 'from'",
    ),
]


@pytest.mark.parametrize(("text", "where", "message"), BAD)
def test_mistakes_are_one_positioned_line(
    tmp_path: Path, text: str, where: str, message: str
) -> None:
    path = tmp_path / "lc.yaml"
    path.write_text(text)
    with pytest.raises(SpecError) as caught:
        load_lifecycle(path)
    line = str(caught.value)
    assert "\n" not in line
    assert line.startswith(f"{path}:{where}: "), line
    assert message in line


def test_a_missing_file_is_one_line(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match="no such lifecycle file"):
        load_lifecycle(tmp_path / "nope.yaml")
