"""``%workflow export`` when the cells are not in the history, and ``export`` to a file.

The cells run in a real IPython shell (the class a kernel wraps) without ``store_history``, as
cells run by ``run_cell`` from a tool or an extension do: ``In`` does not have them. The exported
folder is then run by the real CLI in a subprocess, from another folder, with tasks on threads.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
from IPython.core.error import UsageError
from IPython.core.interactiveshell import InteractiveShell
from IPython.utils.capture import capture_output

from jupyter_workflows.testing import run_cli


def _run_cell(ip: InteractiveShell, source: str, *, history: bool = False) -> None:
    result = ip.run_cell(source, store_history=history, silent=not history)
    assert result.success, result.error_before_exec or result.error_in_exec


def _cli(*argv: str, cwd: Path, store: Path) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, JUPYTER_WORKFLOWS_EXECUTOR="inline", JUPYTER_WORKFLOWS_STORE=str(store))
    env.pop("JUPYTER_WORKFLOWS_SCHEDULER", None)
    return run_cli(*argv, env=env, cwd=cwd)


TASK_CODE = """\
import jupyter_workflows as jw
import math
import os.path
import collections as coll
from math import floor
from os.path import join as pjoin

OFFSET = 3
NAMES = {"a": [1, 2], "b": (3,)}

class Base:
    scale = 2

class Scaler(Base):
    def apply(self, value):
        return value * self.scale

def helper(value):
    return Scaler().apply(value) + OFFSET

@jw.task
def audit_root(x: float) -> dict:
    counts = coll.Counter("aab")
    return {
        "root": floor(math.sqrt(x)),
        "helped": helper(x),
        "path": pjoin("a", "b") == os.path.join("a", "b"),
        "names": len(NAMES["a"]) + counts["a"],
    }
"""

WORKFLOW_CELL = """\
%%workflow audit_export
parameters:
  x: {type: number, default: 16}
tasks:
  r: {action: audit_root, input: {x: "{{ parameters.x }}"}}
output_map: {value: "{{ task.r.result }}"}
"""


@pytest.mark.parametrize("history", ["none", "workflow-cells-only"])
def test_export_without_the_cells_in_history_runs_with_the_cli(
    ip: InteractiveShell, tmp_path: Path, history: str
) -> None:
    _run_cell(ip, TASK_CODE)  # never in In[]
    with capture_output():
        _run_cell(ip, WORKFLOW_CELL, history=history != "none")
    job = tmp_path / "job"
    with capture_output() as cap:
        ip.run_line_magic("workflow", f"export audit_export {job}")
    assert "exported 'audit_export'" in cap.stdout

    code = (job / "tasks.py").read_text()
    for line in (
        "import jupyter_workflows as jw",
        "import math",
        "import os\n",  # `os`, bound by `import os.path` in the cell
        "import collections as coll",
        "from math import floor",
        "OFFSET = 3",
        "NAMES = {'a': [1, 2], 'b': (3,)}",
        "class Base:",
        "class Scaler(Base):",
        "def helper(value):",
        "@jw.task\ndef audit_root(",
    ):
        assert line in code, code
    assert code.index("class Base:") < code.index("class Scaler(Base):")

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    done = _cli("run", str(job), "-p", "x=17", "--json", cwd=elsewhere, store=tmp_path / "s.db")
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    assert data["status"] == "succeeded", data
    assert data["outputs"] == {
        "value": {"root": 4, "helped": 37, "path": True, "names": 4},
    }


def test_export_names_a_global_it_cannot_write(ip: InteractiveShell, tmp_path: Path) -> None:
    _run_cell(
        ip,
        "import threading\nimport jupyter_workflows as jw\n"
        "AUDIT_LOCK = threading.Lock()\n\n"
        "@jw.task\ndef audit_locked() -> int:\n    with AUDIT_LOCK:\n        return 1\n",
    )
    with capture_output():
        _run_cell(ip, "%%workflow audit_locked_wf\ntasks:\n  a: {action: audit_locked}\n")
    with pytest.raises(UsageError) as info:
        ip.run_line_magic("workflow", f"export audit_locked_wf {tmp_path / 'job'}")
    message = str(info.value)
    assert "\n" not in message
    assert "'AUDIT_LOCK'" in message and "lock" in message.lower()
    assert not (tmp_path / "job").exists()
