"""jupyter_workflows: Jupyter-native workflows, run on Dask, durable and resumable.

The public API is re-exported here (``import jupyter_workflows as jw``); everything else is
internal. The engine, Dask and the widget load lazily, so ``import jupyter_workflows`` stays
cheap and ``%load_ext jupyter_workflows`` costs nothing until a workflow runs.
"""

from __future__ import annotations

from typing import Any

from . import hooks as _hooks
from ._version import __version__
from .actions.builtins import record
from .actions.registry import task
from .definition import Workflow, load
from .exceptions import (
    ActionNotFound,
    InquiryError,
    ParameterError,
    RunNotFound,
    RunStateError,
    SpecError,
    StoreError,
    WorkflowError,
)

__all__ = [
    "ActionNotFound",
    "InquiryError",
    "ParameterError",
    "Run",
    "RunNotFound",
    "RunStateError",
    "SpecError",
    "StoreError",
    "Workflow",
    "WorkflowError",
    "__version__",
    "configure",
    "get_object",
    "get_run",
    "lifecycle",
    "load",
    "record",
    "resume",
    "runs",
    "task",
    "triggers",
    "workflow",
]

_LAZY = {
    "Run": ("jupyter_workflows.engine.run", "Run"),
    "configure": ("jupyter_workflows.engine.api", "configure"),
    "get_object": ("jupyter_workflows.lifecycles.core", "get_object"),
    "get_run": ("jupyter_workflows.engine.api", "get_run"),
    "lifecycle": ("jupyter_workflows.lifecycles.core", "lifecycle"),
    "resume": ("jupyter_workflows.engine.api", "resume"),
    "runs": ("jupyter_workflows.engine.api", "runs"),
    "triggers": ("jupyter_workflows.lifecycles.traits", "load_triggers"),
    "workflow": ("jupyter_workflows.definition", "workflow"),
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        module, attr = _LAZY[name]
        value = getattr(importlib.import_module(module), attr)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'jupyter_workflows' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


# -- the composition root ------------------------------------------------------------------------
# The layers point one way (docs/architecture.md); the calls users make on lower-layer objects
# that a higher layer answers are wired here, the one module that knows every layer, and stay
# lazy: nothing below loads until it is called.
def _start_run(workflow: Any, parameters: Any = None, **options: Any) -> Any:
    from .engine.api import start_run

    return start_run(workflow, parameters, **options)


def _display_bundle(obj: Any) -> dict[str, Any]:
    from .jupyter.display import bundle

    return bundle(obj)


def _notebook_workflow(path: Any, workflow: str | None = None) -> Any:
    from .jupyter.notebook_loader import workflow_from_notebook

    return workflow_from_notebook(path, workflow)


_hooks.install(
    start_run=_start_run, display_bundle=_display_bundle, notebook_workflow=_notebook_workflow
)


def _jupyter_server_extension_points() -> list[dict[str, str]]:
    """The Jupyter server extension (the REST API) lives in :mod:`jupyter_workflows.server`."""
    return [{"module": "jupyter_workflows.server"}]


def _jupyter_labextension_paths() -> list[dict[str, str]]:
    """The prebuilt JupyterLab extension (``jupyter labextension develop --overwrite .``)."""
    return [{"src": "labextension", "dest": "jupyter-workflows"}]


def load_ipython_extension(ipython: Any) -> None:
    """``%load_ext jupyter_workflows``: register the magics (imports stay lazy)."""
    from .jupyter.magics import load_ipython_extension as _load

    _load(ipython)


def unload_ipython_extension(ipython: Any) -> None:
    """``%unload_ext jupyter_workflows``."""
    from .jupyter.magics import unload_ipython_extension as _unload

    _unload(ipython)
