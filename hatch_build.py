"""Build hook: build the JupyterLab extension only when its committed assets are missing.

The extension's built assets (``jupyter_workflows/labextension/`` and the anywidget bundle
``jupyter_workflows/static/widget.js``) are committed, so ``pip install .`` and ``pip install -e .``
need no node. hatch-jupyter-builder's own hook cannot express that for editable installs: it
ignores ``skip-if-exists`` there and rebuilds whenever the sources look newer than the assets,
which in a fresh clone is decided by checkout order. So this hook checks the assets itself and
calls hatch-jupyter-builder's ``npm_builder`` (``npm install`` + ``npm run build`` in
``labextension/``) only when one is missing. To rebuild after changing ``labextension/src``, run
``npm run build`` there (see labextension/README.md).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hatchling.builders.hooks.plugin.interface import BuildHookInterface

ASSETS = (
    "jupyter_workflows/labextension/package.json",
    "jupyter_workflows/labextension/static/style.js",
    "jupyter_workflows/static/widget.js",
)


class CustomBuildHook(BuildHookInterface):
    def initialize(self, version: str, build_data: dict[str, Any]) -> None:
        root = Path(self.root)
        if all((root / asset).is_file() for asset in ASSETS):
            return
        from hatch_jupyter_builder import npm_builder

        npm_builder(
            self.target_name,
            version,
            path=str(root / "labextension"),
            build_cmd="build",
            npm=["npm"],
            force=True,
        )
