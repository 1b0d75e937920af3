"""Dialect detection is visible, ``convert`` round-trips through ``validate``, and attune's
forms run (CONTRACT §1.7)."""

from __future__ import annotations

from pathlib import Path

import pytest

import jupyter_workflows as jw
from jupyter_workflows.exceptions import SpecError
from jupyter_workflows.testing import run_cli

HERE = Path(__file__).parent
ORQUESTA = HERE / "orquesta" / "fixtures"


def test_validate_names_the_dialect() -> None:
    proc = run_cli("validate", str(ORQUESTA / "sequential.yaml"))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().endswith("sequential.yaml: ok (orquesta 1.0): 3 tasks")
    proc = run_cli("validate", str(HERE / "attune" / "deploy.yaml"))
    assert proc.returncode == 0, proc.stderr
    assert "deploy.yaml: ok (attune 1.0.0): 2 tasks" in proc.stdout


@pytest.mark.parametrize("name", ["sequential", "join", "with-items", "with-items-concurrency"])
def test_convert_round_trips_through_validate(name: str, tmp_path: Path) -> None:
    proc = run_cli("convert", str(ORQUESTA / f"{name}.yaml"))
    assert proc.returncode == 0, proc.stderr
    native = tmp_path / f"{name}.yaml"
    native.write_text(proc.stdout)
    assert "<%" not in proc.stdout
    check = run_cli("validate", str(native))
    assert check.returncode == 0, check.stderr
    assert "orquesta" not in check.stdout  # it is a native document now


def test_orquesta_sequential_runs_with_yaql(engine) -> None:
    run = jw.load(ORQUESTA / "sequential.yaml").run({"name": "Stanley"})
    assert run.status == "succeeded", run.error
    # core.echo returns its input here ({message: ...}); the chain of publishes is Orquesta's
    assert [t["task"] for t in run.tasks] == ["task1", "task2", "task3"]
    assert run.tasks[0]["result"] == {"message": "Stanley"}


def test_orquesta_multiple_item_lists(engine) -> None:
    run = jw.load(ORQUESTA / "with-items.yaml").run({"members": ["a", "b", "c"]})
    assert run.status == "succeeded", run.error
    assert run.tasks[0]["result"] == [
        {"message": f"{m}, resistance is futile!"} for m in ("a", "b", "c")
    ]


def test_orquesta_errors_are_positioned(tmp_path: Path) -> None:
    path = tmp_path / "w.yaml"
    path.write_text(
        "version: 1.0\ninput:\n  - x\ntasks:\n  t:\n    action: core.echo m=<% ctx().x %>\n"
        "    next:\n      - do: nope\n"
    )
    with pytest.raises(SpecError) as info:
        jw.load(path).validate()
    assert str(info.value).startswith(f"{path}:8:")
    assert "unknown task 'nope'" in str(info.value)


def test_attune_file_runs(engine) -> None:
    wf = jw.load(HERE / "attune" / "deploy.yaml")
    assert wf.name == "my_pack.deploy_workflow"
    run = wf.run({"app_name": "web", "version": "2"})
    assert run.status == "succeeded", run.error
    assert run.outputs == {"deployment_id": "web-2"}
    assert "Deployed web-2 by " in run.tasks[1]["result"]["message"]


def test_attune_iterate_cache_is_one_positioned_refusal(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text(
        'version: "1.0.0"\ntasks:\n  - name: p\n    action: core.echo\n'
        "    iterate_cache: {namespace: users}\n"
    )
    proc = run_cli("validate", str(path))
    assert proc.returncode == 2
    # iterate_cache reads the key-value store now (test_attune_real_files.py); without a pack
    # and without owner_ref there is no cache to name.
    assert proc.stderr.strip() == (
        f"{path}:5:20: iterate_cache needs an 'owner_ref' for owner_type 'pack'"
        " (this workflow has no pack)"
    )
    assert len(proc.stderr.strip().splitlines()) == 1


def test_attune_tera_forms_scopes_and_timeouts(engine, monkeypatch) -> None:
    monkeypatch.setenv("API_TOKEN", "s3cret-token")
    wf = jw.load(
        """\
ref: examples.forms
label: Forms
parameters:
  type: object
  properties:
    xs: {type: array, default: [1, 2, 3, 4, 5]}
    ok: {type: boolean}
  required: [ok]
tasks:
  - name: first
    action: core.echo
    input:
      state: "{{ parameters.ok ? 'deployed' : 'failed' }}"
      batches: "{{ parameters.xs | batch(size=2) | list }}"
      token: "{{ kv.get_secret('API_TOKEN') }}"
      flag: "{{ kv.get('flags.new', default=false) }}"
      run: "{{ system.execution_id }}"
    publish:
      - state: "{{ result.state }}"
    on_success: wait
  - name: wait
    action: core.sleep
    input: {seconds: 5}
    timeout: 0.2
    on_timeout: late
  - name: late
    action: core.echo
    input: {state: "{{ workflow.state }}"}
"""
    )
    assert wf.spec.parameters["ok"].required is True
    run = wf.run({"ok": True})
    assert run.status == "succeeded", run.error
    first = run.tasks[0]["result"]
    assert first["state"] == "deployed"
    assert first["batches"] == [[1, 2], [3, 4], [5]]
    assert first["flag"] is False
    assert first["run"] == run.run_id
    assert [t["task"] for t in run.tasks] == ["first", "wait", "late"]
    assert run.tasks[1]["status"] == "failed" and "Timeout" in run.tasks[1]["error"]
    assert run.tasks[2]["result"] == {"state": "deployed"}


def test_orquesta_failed_with_items_shows_partial_results(engine) -> None:
    @jw.task(name="orq_fee_fi")
    def orq_fee_fi(message: str) -> str:
        if message == "fo":
            raise RuntimeError("no fo")
        return message

    text = (ORQUESTA / "with-items-remediate.yaml").read_text().replace("core.echo", "orq_fee_fi")
    run = jw.load(text, name="remediate").run()
    assert run.status == "succeeded", run.error  # task2 remediated the failure
    items = run.outputs["items"]
    assert items[:3] == ["fee", "fi", None]  # 'fo' failed; 'fum' may not have started
    assert items[3] in ("fum", None)


def test_yaql_syntax_error_is_one_positioned_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("version: 1.0\ntasks:\n  t:\n    action: core.echo m=<% ctx( %>\n")
    proc = run_cli("validate", str(path))
    assert proc.returncode == 2
    assert proc.stderr.strip() == (
        f"{path}:4:13: YAQL syntax error in <% ctx( %>: Parse error: unexpected end of statement"
    )


def test_orquesta_multiple_lists_rendering(engine) -> None:
    # orquesta/conducting/test_task_rendering_for_with_items.py: test_multiple_lists_rendering
    wf = jw.load(
        """\
version: 1.0
vars:
  - xs:
      - foo
      - fu
      - marco
  - ys:
      - bar
      - bar
      - polo
tasks:
  task1:
    with: x, y in <% zip(ctx(xs), ctx(ys)) %>
    action: core.echo message=<% item(x) + item(y) %>
""",
        name="multi",
    )
    run = wf.run()
    assert run.status == "succeeded", run.error
    assert run.tasks[0]["result"] == [
        {"message": "foobar"},
        {"message": "fubar"},
        {"message": "marcopolo"},
    ]


def test_invalid_yaql_in_a_published_fixture_is_reported() -> None:
    # Orquesta's with-multi-items.yaml writes `<% item(member), item(message) %>`, which YAQL
    # does not parse (Orquesta would fail when rendering it); validate says so before running.
    proc = run_cli("validate", str(ORQUESTA / "with-multi-items.yaml"))
    assert proc.returncode == 2
    assert (
        "with-multi-items.yaml:12:13: YAQL syntax error in <% item(member), item(message) %>"
        in (proc.stderr)
    )
