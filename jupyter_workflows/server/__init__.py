"""The Jupyter server extension: the REST API under ``{base_url}/workflows/api/``.

Enabled by the config file the package installs
(``etc/jupyter/jupyter_server_config.d/jupyter_workflows.json``), or explicitly with
``--ServerApp.jpserver_extensions='{"jupyter_workflows.server": true}'``. The extension's name
is this subpackage, so that ``import jupyter_workflows`` stays free of server hooks.

Runs started through the API are driven by the Jupyter server process itself, through the same
orchestrator every other surface uses (:mod:`jupyter_workflows.engine.api`). Unless a store is
configured (``JUPYTER_WORKFLOWS_STORE`` or ``jupyter-workflows serve --store``), the server uses
``{root_dir}/.jupyter_workflows/state.db``: the store a notebook kernel started in the root folder
uses, so runs from notebooks and from the API are listed together.

Nothing here imports ``jupyter_server`` at import time; the handlers load with the extension.
"""

from __future__ import annotations

import os
from typing import Any

__all__ = ["API_PREFIX"]

#: Where the API lives, under the server's ``base_url``.
API_PREFIX = "workflows/api"


def _jupyter_server_extension_points() -> list[dict[str, str]]:
    return [{"module": "jupyter_workflows.server"}]


def _load_jupyter_server_extension(serverapp: Any) -> None:
    """Register the REST handlers on ``serverapp`` and choose the default store."""
    from jupyter_server.utils import url_path_join

    from ..engine import api
    from .handlers import default_handlers

    if api._config.get("store") is None and not os.environ.get("JUPYTER_WORKFLOWS_STORE"):
        api.configure(store=os.path.join(serverapp.root_dir, api.DEFAULT_STORE))
    base = url_path_join(serverapp.base_url, API_PREFIX)
    serverapp.web_app.add_handlers(".*$", default_handlers(base))
    from .hooks import setup_triggers

    setup_triggers(serverapp)  # c.JupyterWorkflows.triggers / .watch
    store = api._config.get("store") or os.environ.get("JUPYTER_WORKFLOWS_STORE")
    serverapp.log.info("jupyter_workflows | REST API at %s/ (store: %s)", base, store)


# The older name, for jupyter_server < 2 and nbclassic-era loaders.
load_jupyter_server_extension = _load_jupyter_server_extension
