"""The calls that go up the layers, and the package root that answers them.

The layers point one way (``docs/architecture.md``; ``tests/test_architecture.py`` checks it):
nothing imports a layer above its own. Three calls still have to go up, because users make them
on objects of a lower layer:

* ``Workflow.run()`` (``definition``) starts a run in the ``engine``;
* ``Workflow`` and ``Run`` show themselves in a notebook with the ``jupyter`` layer's display;
* a ``.ipynb`` workflow source (``sources``) is read by running its cells in a headless IPython
  shell with the ``jupyter`` layer's magics.

Each is a slot here, at the bottom, that the package root (``jupyter_workflows/__init__.py``,
the one place that knows every layer) fills when it is imported, which Python does before any
submodule: the slots are always filled, and the modules behind them still load lazily.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

__all__ = ["display_bundle", "install", "notebook_workflow", "start_run"]

_SLOTS: dict[str, Callable[..., Any]] = {}


def install(**implementations: Callable[..., Any]) -> None:
    """Fill slots by name (``start_run``, ``display_bundle``, ``notebook_workflow``)."""
    unknown = set(implementations) - {"start_run", "display_bundle", "notebook_workflow"}
    if unknown:
        raise TypeError(f"no such hook: {', '.join(sorted(unknown))}")
    _SLOTS.update(implementations)


def _call(name: str, *args: Any, **kwargs: Any) -> Any:
    try:
        implementation = _SLOTS[name]
    except KeyError:  # pragma: no cover - the package root fills every slot on import
        raise RuntimeError(f"jupyter_workflows.hooks: {name} is not installed") from None
    return implementation(*args, **kwargs)


def start_run(workflow: Any, parameters: Any = None, **options: Any) -> Any:
    """``engine.api.start_run``."""
    return _call("start_run", workflow, parameters, **options)


def display_bundle(obj: Any) -> dict[str, Any]:
    """The notebook display (a MIME bundle) of a ``Workflow`` or a ``Run``."""
    result: dict[str, Any] = _call("display_bundle", obj)
    return result


def notebook_workflow(path: Any, workflow: str | None = None) -> Any:
    """The workflow a notebook's ``%%workflow`` cells define (``jupyter.notebook_loader``)."""
    return _call("notebook_workflow", path, workflow)
