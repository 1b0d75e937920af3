"""The spec layer and the package root never import Dask (STYLE: only one module imports it).

Each import runs in a fresh interpreter, so nothing another test imported can hide a leak.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

PROBE = """
import json, sys
import {module}
imported = sorted(
    name for name in sys.modules
    if name.split(".")[0] == "distributed"
)
print(json.dumps(imported))
"""


@pytest.mark.parametrize(
    "module",
    [
        "jupyter_workflows.spec",
        "jupyter_workflows",
        "jupyter_workflows.spec.loader, jupyter_workflows.spec.validate, jupyter_workflows.spec.graph",
    ],
)
def test_import_does_not_pull_in_distributed(module: str) -> None:
    result = subprocess.run(
        [sys.executable, "-c", PROBE.format(module=module)],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    assert json.loads(result.stdout) == []


def test_loading_and_validating_a_workflow_does_not_import_distributed() -> None:
    code = (
        "import sys, jupyter_workflows as jw\n"
        "w = jw.load('name: w\\ntasks:\\n  a: {action: core.echo, on_success: b}\\n  b: {action: core.noop}\\n')\n"
        "w.validate(); w.graph; w.to_yaml()\n"
        "from jupyter_workflows.spec.graph import to_mermaid; to_mermaid(w.compiled)\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'distributed'))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True
    )
    assert result.stdout.strip() == "[]"
