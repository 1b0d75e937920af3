"""One table of workflow extensions, matched without regard to case by every way of finding a
workflow: ``jw.load``, the CLI, the REST API's discovery and lookup, nested workflows by name,
and exported job folders (``jupyter_workflows.sources``)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

import jupyter_workflows as jw
from jupyter_workflows import sources
from jupyter_workflows.exceptions import SpecError
from jupyter_workflows.server.handlers import discover_workflows, find_workflow
from jupyter_workflows.testing import run_cli

SHOUT = "name: shout\ntasks:\n  a: {action: core.noop}\n"


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    (tmp_path / "UPPER.YAML").write_text(SHOUT)
    (tmp_path / "Mixed.Yml").write_text(SHOUT.replace("shout", "mixed"))
    (tmp_path / "DATA.JSON").write_text(
        '{"name": "jsonny", "tasks": {"a": {"action": "core.noop"}}}'
    )
    (tmp_path / "notes.txt").write_text("tasks: not a workflow file\n")
    return tmp_path


def test_the_table_is_case_insensitive() -> None:
    assert sources.is_workflow_file_name("A.YAML")
    assert sources.is_workflow_file_name("a.Json")
    assert sources.is_workflow_file_name(Path("x/b.yml"))
    assert not sources.is_workflow_file_name("a.yaml.txt")
    assert sources.is_notebook("Analysis.IPYNB")
    assert sources.JOB_FOLDER_FILES == ("workflow.yaml", "workflow.yml", "workflow.json")


def test_load_and_the_cli_target_read_upper_case_files(folder: Path) -> None:
    assert jw.load(folder / "UPPER.YAML").name == "shout"
    assert jw.load(str(folder / "DATA.JSON")).name == "jsonny"
    assert sources.load_target(str(folder / "Mixed.Yml")).name == "mixed"
    with pytest.raises(SpecError, match=r"expected a \.yaml, \.yml, \.json, \.ipynb file"):
        sources.load_target(str(folder / "notes.txt"))


def test_an_upper_case_json_file_is_strict_json(tmp_path: Path) -> None:
    loose = tmp_path / "LOOSE.JSON"
    loose.write_text("{name: loose, tasks: {a: {action: core.noop}}}")  # YAML, not JSON
    with pytest.raises(SpecError, match=r"LOOSE\.JSON:1"):
        jw.load(loose)
    same = tmp_path / "LOOSE.YAML"
    same.write_text(loose.read_text())
    assert jw.load(same).name == "loose"  # the same text is fine as YAML


def test_rest_discovery_and_lookup_see_upper_case_files(folder: Path) -> None:
    listed = {
        entry["path"]: entry for entry in discover_workflows(folder) if entry["source"] == "file"
    }
    assert set(listed) == {"UPPER.YAML", "Mixed.Yml", "DATA.JSON"}
    assert listed["UPPER.YAML"]["name"] == "shout"
    assert listed["UPPER.YAML"]["error"] is None
    assert find_workflow("shout", folder).name == "shout"
    assert find_workflow("UPPER.YAML", folder).name == "shout"
    assert find_workflow("jsonny", folder).name == "jsonny"


def test_a_nested_workflow_beside_its_parent_may_be_upper_case(tmp_path: Path) -> None:
    (tmp_path / "child.YAML").write_text("name: child\ntasks:\n  c: {action: core.noop}\n")
    parent = tmp_path / "parent.yaml"
    parent.write_text("name: parent\ntasks:\n  p: {workflow: child}\n")
    wf = jw.load(parent)
    assert wf.resolve_workflow("child").name == "child"
    assert wf.validate() == []  # the nested workflow resolves
    with pytest.raises(jw.ActionNotFound, match="unknown workflow 'nobody'"):
        wf.resolve_workflow("nobody")


def test_a_job_folder_and_a_notebook_are_found_by_their_names(tmp_path: Path) -> None:
    job = tmp_path / "job"
    job.mkdir()
    (job / "workflow.yml").write_text(SHOUT)
    assert sources.load_target(str(job)).name == "shout"
    with pytest.raises(SpecError, match="not a job folder"):
        sources.load_target(str(tmp_path))
    book = tmp_path / "Book.IPYNB"
    book.write_text("{}")
    with pytest.raises(SpecError, match="a notebook runs with"):
        jw.load(book)


def test_the_cli_validates_and_runs_an_upper_case_file(folder: Path) -> None:
    env = {**os.environ, "JUPYTER_WORKFLOWS_STORE": str(folder / "runs.db")}
    checked = run_cli("validate", "UPPER.YAML", env=env, cwd=folder)
    assert checked.returncode == 0, checked.stderr
    ran = run_cli("run", "DATA.JSON", "--json", env=env, cwd=folder)
    assert ran.returncode == 0, ran.stderr
    assert '"succeeded"' in ran.stdout, ran.stdout


def test_a_slow_file_is_listed_with_an_error_and_later_with_its_details(tmp_path: Path) -> None:
    """``discovery_seconds``: a request never waits longer for one file; the file's own thread
    goes on and the next listing shows what it found. Other files are listed as usual."""
    import time

    from jupyter_workflows.limits import LIMITS

    (tmp_path / "quick.yaml").write_text("name: quick\ntasks:\n  a: {action: core.noop}\n")
    lines = ["name: slow", "tasks:", "  a:", "    action: core.noop", "    decision:"]
    lines += [f'      - {{when: "{{{{ result == {i} }}}}", next: [b]}}' for i in range(3000)]
    lines += ["      - {default: [b]}", "  b: {action: core.noop}"]
    (tmp_path / "slow.yaml").write_text("\n".join(lines) + "\n")
    before = LIMITS.discovery_seconds
    LIMITS.discovery_seconds = 0.01
    try:
        started = time.monotonic()
        first = {e["path"]: e for e in discover_workflows(tmp_path) if e["source"] == "file"}
        assert time.monotonic() - started < 30
        assert "still loading after 0.01 s" in first["slow.yaml"]["error"]
        assert "discovery_seconds" in first["slow.yaml"]["error"]
        assert first["slow.yaml"]["tasks"] is None
        LIMITS.discovery_seconds = 120.0  # wait for the same thread, not a new one
        second = {e["path"]: e for e in discover_workflows(tmp_path) if e["source"] == "file"}
        assert second["slow.yaml"]["error"] is None, second["slow.yaml"]["error"]
        assert second["slow.yaml"]["name"] == "slow" and second["slow.yaml"]["tasks"]
        assert second["quick.yaml"]["error"] is None
    finally:
        LIMITS.discovery_seconds = before
