"""``jw.load`` tells a missing file or a notebook apart from YAML text, and says what it takes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import jupyter_workflows as jw
from jupyter_workflows.exceptions import SpecError

ACCEPTS = "jw.load() takes a .yaml, .yml or .json workflow file, or the YAML/JSON text itself"


@pytest.mark.parametrize("source", ["nothere", "x.ipynb", "nothere.yaml", "sub/dir/wf.yml"])
def test_a_missing_file_is_named(source: str) -> None:
    with pytest.raises(SpecError) as info:
        jw.load(source)
    assert str(info.value) == f"{Path(source)}: no such file ({ACCEPTS})"


def test_an_existing_notebook_is_refused_with_what_to_do(tmp_path) -> None:
    nb = tmp_path / "flows.ipynb"
    nb.write_text(json.dumps({"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}))
    with pytest.raises(SpecError) as info:
        jw.load(str(nb))
    assert str(info.value).startswith(f"{nb}: {ACCEPTS}; a notebook runs with `jupyter-workflows")
    assert "\n" not in str(info.value)


def test_a_non_string_says_what_load_takes() -> None:
    with pytest.raises(SpecError) as info:
        jw.load(5)  # type: ignore[arg-type]
    assert str(info.value) == f"{ACCEPTS}, not int"


def test_text_and_paths_still_load(tmp_path, monkeypatch) -> None:
    assert jw.load("name: x\ntasks:\n  a: {action: core.noop}\n").name == "x"
    assert jw.load('{"name": "j", "tasks": {"a": {}}}').name == "j"
    with pytest.raises(SpecError, match="missing required field 'tasks'"):
        jw.load("name: x")
    monkeypatch.chdir(tmp_path)
    Path("plain").write_text("name: plain\ntasks:\n  a: {action: core.noop}\n")
    assert jw.load("plain").name == "plain"
    assert jw.load(Path("plain")).path == Path("plain")
