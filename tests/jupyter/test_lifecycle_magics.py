"""``%%lifecycle`` and ``%lifecycle`` in a real IPython shell (the class a kernel wraps)."""

from __future__ import annotations

from typing import Any

import pytest
from IPython.core.error import UsageError
from IPython.core.interactiveshell import InteractiveShell

FLOW = """\
name: stamp
parameters:
  object: {type: string}
  to_state: {type: string}
tasks:
  say: {action: core.echo, input: {text: "{{ parameters.object }} -> {{ parameters.to_state }}"}}
"""

LIFECYCLE = """\
lifecycle: paper
states:
  draft: {type: draft}
  review:
    type: approval
    entry: stamp
    approval: {approved: published, rejected: draft}
  published: {type: published, workflows: [stamp]}
transitions:
  - {from: draft, to: review}
  - {from: "*", to: draft}
"""


def test_define_create_transition_approve_show(ip: InteractiveShell, capsys: Any) -> None:
    ip.run_cell_magic("workflow", "", FLOW)
    assert ip.run_cell_magic("lifecycle", "", LIFECYCLE) is None
    obj = ip.run_line_magic("lifecycle", "new paper p1 -p title=Hello -p pages=3")
    assert obj.state == "draft" and obj.data == {"title": "Hello", "pages": 3}
    ip.run_line_magic("lifecycle", "transition p1 review")
    with pytest.raises(UsageError, match="needs the approval of state 'review'"):
        ip.run_line_magic("lifecycle", "transition p1 published")
    done = ip.run_line_magic("lifecycle", "approve p1 --comment ok")
    assert done.state == "published"
    shown = ip.run_line_magic("lifecycle", "show p1")
    bundle = shown._repr_mimebundle_()
    assert 'jw-current" data-state="published"' in bundle["text/html"]
    assert "approved" in bundle["text/html"]  # the history table
    ip.run_line_magic("lifecycle", "objects")
    assert "<LifecycleObject 'p1' (paper): published>" in capsys.readouterr().out


def test_mistakes_are_one_line(ip: InteractiveShell) -> None:
    with pytest.raises(UsageError) as caught:
        ip.run_cell_magic("lifecycle", "", "lifecycle: bad\nstates:\n  draft: {typo: 1}\n")
    assert str(caught.value) == "<cell>:3:11: unknown field 'typo' in states.draft"
    with pytest.raises(UsageError, match=r"entry workflow 'nope'.*unknown workflow 'nope'"):
        ip.run_cell_magic("lifecycle", "", "lifecycle: bad\nstates:\n  draft: {entry: nope}\n")
    with pytest.raises(UsageError, match="no lifecycle object 'ghost'"):
        ip.run_line_magic("lifecycle", "show ghost")
    with pytest.raises(UsageError, match="unknown command 'frobnicate'"):
        ip.run_line_magic("lifecycle", "frobnicate x")
    with pytest.raises(UsageError, match="the cell is empty"):
        ip.run_cell_magic("lifecycle", "", "  \n")


def test_the_cli_reads_a_notebook_with_lifecycle_cells(tmp_path: Any) -> None:
    """``jupyter-workflows run NOTEBOOK``: %%lifecycle cells define, %lifecycle lines are skipped."""
    import nbformat
    from nbformat.v4 import new_code_cell, new_notebook

    from jupyter_workflows.testing import inline_env
    from jupyter_workflows.testing import run_cli as jw

    nb = new_notebook(
        cells=[
            new_code_cell("%load_ext jupyter_workflows"),
            new_code_cell("%%workflow stamp\n" + FLOW),
            new_code_cell("%%lifecycle\n" + LIFECYCLE),
            new_code_cell("%lifecycle new paper p9"),
        ]
    )
    nbformat.write(nb, tmp_path / "paper.ipynb")
    done = jw(
        "run",
        "paper.ipynb",
        "-p",
        "object=p9",
        "-p",
        "to_state=draft",
        env=inline_env(tmp_path),
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    listed = jw("objects", env=inline_env(tmp_path), cwd=tmp_path)
    assert listed.stdout.strip() == "no lifecycle objects"  # the line command was skipped
