"""What ``pip install`` gives a user besides the package: the JupyterLab extension, enabled.

The wheel (and an editable install) puts the prebuilt extension under
``share/jupyter/labextensions/jupyter-workflows`` (pyproject's shared-data), so
``jupyter labextension list`` shows it enabled with no node and no build step.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_jupyter_labextension_list_shows_the_extension_enabled() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "jupyter", "labextension", "list"],
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
    )
    listing = re.sub(r"\x1b\[[0-9;]*m", "", done.stdout + done.stderr)  # colours off
    assert done.returncode == 0, listing
    version = json.loads(
        (ROOT / "jupyter_workflows" / "labextension" / "package.json").read_text()
    )["version"]
    line = next((ln for ln in listing.splitlines() if "jupyter-workflows" in ln), None)
    assert line is not None, listing
    assert re.search(rf"jupyter-workflows v{re.escape(version)}\s+enabled\s+OK", line), line
