"""Two workflow folders that both have a ``tasks.py``, used from one process.

Job folders, course folders and a user's projects often each have a ``tasks.py``; a notebook or
a long-lived server that loads workflows from several of them must give each its own module
(Python alone hands every later folder the first one it imported).
"""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd

import jupyter_workflows as jw

TASKS = """\
import pandas as pd

SEEN = []  # module-level state: one list per folder


def rows(n):
    SEEN.append(n)
    return pd.DataFrame({{"x": range(n), "folder": {label!r}}})


def which():
    return {label!r}
"""

WORKFLOW = """\
name: wf_{label}
tasks:
  rows:
    action: tasks:{function}
    input: {inputs}
output_map:
  value: "{{{{ task.rows.result }}}}"
"""


def _folders(tmp_path: Path) -> list[Path]:
    folders = []
    for label, function, inputs in (("a", "rows", "{n: 3}"), ("b", "which", "{}")):
        folder = tmp_path / label
        folder.mkdir()
        (folder / "tasks.py").write_text(TASKS.format(label=label))
        (folder / "wf.yaml").write_text(
            WORKFLOW.format(label=label, function=function, inputs=inputs)
        )
        folders.append(folder)
    return folders


def test_each_folder_gets_its_own_tasks_module(engine, tmp_path: Path) -> None:
    a, b = _folders(tmp_path)
    try:
        first = jw.load(a / "wf.yaml").run(wait=True)
        second = jw.load(b / "wf.yaml").run(wait=True)
        third = jw.load(a / "wf.yaml").run(wait=True)
        assert first.status == second.status == third.status == "succeeded", (
            first.error,
            second.error,
            third.error,
        )
        frame = first.outputs["value"]
        assert isinstance(frame, pd.DataFrame) and list(frame["folder"]) == ["a"] * 3
        assert second.outputs["value"] == "b"
        # Folder a's module was kept (its state too), not imported a second time.
        assert sys.modules["tasks"].SEEN == [3, 3]
    finally:
        sys.modules.pop("tasks", None)
        for folder in (a, b):
            while str(folder) in sys.path:
                sys.path.remove(str(folder))


def test_a_missing_function_names_the_folders_module(engine, tmp_path: Path) -> None:
    a, b = _folders(tmp_path)
    (b / "wf.yaml").write_text(WORKFLOW.format(label="b", function="rows", inputs="{n: 1}"))
    (b / "tasks.py").write_text("def which():\n    return 'b'\n")
    try:
        assert jw.load(a / "wf.yaml").run(wait=True).status == "succeeded"
        try:
            jw.load(b / "wf.yaml").run(wait=True)
        except jw.SpecError as exc:
            assert "module 'tasks' has no 'rows'" in str(exc)
            assert "\n" not in str(exc)
        else:
            raise AssertionError("folder b has no tasks.rows: loading it must fail")
    finally:
        sys.modules.pop("tasks", None)
        for folder in (a, b):
            while str(folder) in sys.path:
                sys.path.remove(str(folder))


def test_repeated_resolution_keeps_each_folders_module(engine, tmp_path: Path) -> None:
    """Resolving an action again reuses the module (no re-scan), but never another folder's."""
    from jupyter_workflows.actions.registry import resolve_action

    a, b = _folders(tmp_path)
    try:
        order = [a, a, b, b, a, a, b]
        got = [resolve_action("tasks:which", folder).fn() for folder in order]
        assert got == ["a", "a", "b", "b", "a", "a", "b"]
        first_a = resolve_action("tasks:rows", a).fn
        assert resolve_action("tasks:rows", a).fn is first_a
        # Someone drops the module from sys.modules: the folder's own module comes back.
        sys.modules.pop("tasks", None)
        assert resolve_action("tasks:rows", a).fn is first_a
        # Runs in between from the other folder, then many runs of one folder: right module.
        runs = [jw.load(f / "wf.yaml").run(wait=True) for f in (a, b, a, a, b, b)]
        assert [r.status for r in runs] == ["succeeded"] * 6, [r.error for r in runs]
        labels = [r.outputs["value"] if isinstance(r.outputs["value"], str) else "a" for r in runs]
        assert labels == ["a", "b", "a", "a", "b", "b"]
        assert all(isinstance(runs[i].outputs["value"], pd.DataFrame) for i in (0, 2, 3))
        assert sys.modules["tasks"].which() == "b"
    finally:
        sys.modules.pop("tasks", None)
        for folder in (a, b):
            while str(folder) in sys.path:
                sys.path.remove(str(folder))
