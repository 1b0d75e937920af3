"""A name registered by a module another task imports resolves wherever that task stands."""

from __future__ import annotations

import json
import os
import sys
import textwrap

import pytest

import jupyter_workflows as jw
from jupyter_workflows.actions import registry
from jupyter_workflows.exceptions import SpecError
from jupyter_workflows.testing import run_cli

MODULE = textwrap.dedent(
    """\
    import jupyter_workflows as jw

    @jw.task
    def audit_add(a, b):
        return a + b

    @jw.task(name="audit_order.mul")
    def mul(a, b):
        return a * b
    """
)

# The bare name comes first; only importing `audit_order_tasks` (for task `a`) registers it.
WF = textwrap.dedent(
    """\
    name: order
    tasks:
      b:
        action: audit_order.mul
        input: {a: 2, b: 3}
      a:
        action: audit_order_tasks:audit_add
        input: {a: 1, b: 2}
    output_map:
      product: "{{ task.b.result }}"
      total: "{{ task.a.result }}"
    """
)


@pytest.fixture
def folder(tmp_path, monkeypatch):
    monkeypatch.setattr(sys, "path", list(sys.path))
    monkeypatch.setattr(registry, "_REGISTRY", dict(registry._REGISTRY))
    monkeypatch.delitem(sys.modules, "audit_order_tasks", raising=False)
    (tmp_path / "audit_order_tasks.py").write_text(MODULE)
    (tmp_path / "order.yaml").write_text(WF)
    yield tmp_path
    sys.modules.pop("audit_order_tasks", None)


def test_validate_does_not_depend_on_task_order(folder) -> None:
    assert jw.load(folder / "order.yaml").validate() == []


def test_the_run_resolves_it_too(folder, engine) -> None:
    run = jw.load(folder / "order.yaml").run()
    assert run.status == "succeeded", run.to_dict()
    assert run.outputs == {"product": 6, "total": 3}


def test_an_import_error_is_reported_before_the_names_it_would_register(folder) -> None:
    (folder / "audit_order_tasks.py").write_text("import no_such_module_here\n")
    with pytest.raises(SpecError) as info:
        jw.load(folder / "order.yaml").validate()
    assert str(info.value).startswith(str(folder / "order.yaml") + ":7:13: task 'a': ")
    assert "no_such_module_here" in str(info.value)


def test_cli_run(folder) -> None:
    env = {**os.environ, "JUPYTER_WORKFLOWS_EXECUTOR": "inline"}
    done = run_cli("validate", "order.yaml", env=env, cwd=folder)
    assert (done.returncode, done.stderr) == (0, "")
    done = run_cli("run", "order.yaml", "--json", env=env, cwd=folder)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["outputs"] == {"product": 6, "total": 3}
