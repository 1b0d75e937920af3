"""A StackStorm workflow action's metadata file (``runner_type: orquesta`` with an
``entry_point``) read as its workflow, the way StackStorm runs ``st2 run PACK.ACTION``.

``packs/examples/actions/orquesta-sequential.yaml`` names its workflow file
(``entry_point: workflows/orquesta-sequential.yaml``, relative to the metadata's folder) and
declares the parameters StackStorm checks before it starts the workflow. Loading the metadata
file gives the workflow file's document (errors in it point into it) named ``PACK.ACTION``, whose
parameters take the metadata's ``default`` (and ``required`` for those without one) and its
``type`` when this project has that type. A nested ``PACK.ACTION`` with that runner loads the
same way (``sources.resolve_workflow``, through ``actions.packs``).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from .loader import SourceMap

__all__ = ["WORKFLOW_RUNNERS", "is_st2_workflow_action", "translate_st2_action"]

#: StackStorm's Orquesta runner, and attune's name for a workflow runner.
WORKFLOW_RUNNERS = ("orquesta", "workflow")


def is_st2_workflow_action(data: Any) -> bool:
    """A StackStorm workflow action's metadata (not a workflow itself)."""
    return (
        isinstance(data, dict)
        and "tasks" not in data
        and data.get("runner_type") in WORKFLOW_RUNNERS
        and "entry_point" in data
    )


def translate_st2_action(
    data: dict[str, Any], smap: SourceMap, translate: Callable[[Any, SourceMap], Any]
) -> Any:
    """The native document of the workflow ``data`` (the metadata) names; ``translate`` reads
    the workflow file's own dialect."""
    from ..exceptions import SpecError
    from .loader import _normalise_tasks, parse_document, read_text
    from .models import PARAMETER_TYPES

    entry = data.get("entry_point")
    if not isinstance(entry, str) or not entry.strip():
        raise smap.error("'entry_point' must be a file name", ("entry_point",))
    if not smap.file:
        raise smap.error(
            "a StackStorm action's 'entry_point' needs the action's own file (load it by path)",
            ("entry_point",),
        )
    params = data.get("parameters") or {}
    if not isinstance(params, dict):
        raise smap.error("'parameters' must be a mapping of name to settings", ("parameters",))
    for pname, meta in params.items():
        if meta is not None and not isinstance(meta, dict):
            raise smap.error(f"parameter {pname!r} must be a mapping", ("parameters", pname))
    name = data.get("name")
    if name is not None and not isinstance(name, str):
        raise smap.error("'name' must be a string", ("name",))
    graph = Path(smap.file).parent / entry
    try:
        text = read_text(graph)
    except SpecError as exc:
        raise smap.error(f"entry_point {entry!r}: {exc.message}", ("entry_point",)) from None
    body, gsmap = parse_document(text, file=str(graph))
    if not isinstance(body, dict):
        raise gsmap.error("a workflow must be a mapping of fields")
    pack = data.get("pack") if isinstance(data.get("pack"), str) else _pack_name(smap.file)
    # From here on, positions are the workflow file's.
    for attribute in ("values", "keys", "blocks", "quoted"):
        setattr(smap, attribute, getattr(gsmap, attribute))
    smap.file = gsmap.file
    native = translate(_normalise_tasks(body, (), smap), smap)
    if not isinstance(native, dict):
        return native
    native = dict(native)
    if name and "name" not in native:
        native = {"name": f"{pack}.{name}" if pack else name, **native}
    if "description" not in native and isinstance(data.get("description"), str):
        native["description"] = data["description"]
    parameters = dict(native.get("parameters") or {})
    for pname, meta in params.items():
        meta = meta or {}
        current = parameters.get(pname)
        spec = dict(current) if isinstance(current, dict) else {}
        if "default" in meta:
            spec["default"] = meta["default"]
        elif meta.get("required") is True:
            spec["required"] = True
        if meta.get("type") in PARAMETER_TYPES and "type" not in spec:
            spec["type"] = meta["type"]
        parameters[pname] = spec
    if parameters:
        native["parameters"] = parameters
    return native


def _pack_name(file: str | None) -> str | None:
    """The ``ref`` (else ``name``) of the ``pack.yaml`` above ``file``."""
    import yaml

    from .attune import _pack_yaml

    manifest = _pack_yaml(file)
    if manifest is None:
        return None
    try:
        meta = yaml.safe_load(manifest.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return None
    if not isinstance(meta, dict):
        return None
    found = meta.get("ref") or meta.get("name")
    return found if isinstance(found, str) else manifest.parent.name
