"""``@jw.workflow``: a Python function becomes a workflow (Bifrost style).

The function is traced once, at decoration time: its parameters are replaced by placeholders,
and every call of a ``@jw.task`` function inside it adds a task instead of running, returning a
placeholder for the task's result. Passing a result placeholder to another task makes it an input
``{{ task.X.result }}`` and a ``needs`` dependency; a parameter placeholder becomes
``{{ parameters.p }}``. The return value becomes ``output_map``. The name comes from the
function, the description from its docstring, typed parameters from the signature (no default
-> required).

This module traces a function into a spec (:func:`trace`); the ``@jw.workflow`` decorator, which
makes it a :class:`~jupyter_workflows.Workflow` and registers it, is
:func:`jupyter_workflows.definition.workflow`.
"""

from __future__ import annotations

import contextvars
import inspect
import json
import os
import types
import typing
from collections.abc import Callable
from typing import Any

from ..exceptions import SpecError
from .loader import SourceMap, load_spec
from .models import WorkflowSpec

__all__ = ["Ref", "trace"]

_TYPE_NAMES: dict[Any, str] = {
    str: "string",
    int: "integer",
    float: "number",
    bool: "boolean",
    list: "array",
    tuple: "array",
    dict: "object",
}


class Ref:
    """A placeholder for a value known only when the run happens."""

    def __init__(self, expr: str, task: str | None = None) -> None:
        self._expr = expr
        self._task = task

    def __getitem__(self, key: Any) -> Ref:
        return Ref(f"{self._expr}[{json.dumps(key)}]", self._task)

    def __getattr__(self, name: str) -> Ref:
        if name.startswith("_"):
            raise AttributeError(name)
        return Ref(f"{self._expr}.{name}", self._task)

    def __repr__(self) -> str:
        return f"<Ref {{{{ {self._expr} }}}}>"

    def __bool__(self) -> bool:
        raise SpecError(
            "a task result or parameter cannot be used in Python control flow inside @workflow; "
            "use a YAML decision or a task instead"
        )

    def template(self) -> str:
        return "{{ " + self._expr + " }}"


class _Builder:
    def __init__(self) -> None:
        self.tasks: dict[str, dict[str, Any]] = {}

    def add_task(self, fn: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Ref:
        definition = fn.definition
        name = definition.name.replace(":", "_")
        base, n = name, 1
        while name in self.tasks:
            n += 1
            name = f"{base}_{n}"
        sig = definition.signature
        if args:
            if sig is None:
                raise SpecError(f"task {definition.name!r}: pass arguments by keyword")
            params = [p for p in sig.parameters.values() if p.name != "context"]
            if len(args) > len(params):
                raise SpecError(
                    f"task {definition.name!r} takes {len(params)} arguments, got {len(args)}"
                )
            kwargs = {**{p.name: a for p, a in zip(params, args, strict=False)}, **kwargs}
        needs: list[str] = []
        inputs = {k: self._value(v, needs) for k, v in kwargs.items()}
        body: dict[str, Any] = {"action": definition.name, "input": inputs}
        if needs:
            body["needs"] = needs
        self.tasks[name] = body
        return Ref(f"task.{name}.result", name)

    def _value(self, value: Any, needs: list[str]) -> Any:
        if isinstance(value, Ref):
            if value._task and value._task not in needs:
                needs.append(value._task)
            return value.template()
        if isinstance(value, dict):
            return {k: self._value(v, needs) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [self._value(v, needs) for v in value]
        return value


def _param_type(annotation: Any) -> str:
    if annotation is inspect.Parameter.empty or annotation is Any:
        return "any"
    if isinstance(annotation, str):
        annotation = {
            "str": str,
            "int": int,
            "float": float,
            "bool": bool,
            "list": list,
            "dict": dict,
        }.get(annotation.split("[")[0], annotation)
    origin = typing.get_origin(annotation) or annotation
    if origin in (typing.Union, types.UnionType):
        members = [a for a in typing.get_args(annotation) if a is not type(None)]
        return _param_type(members[0]) if len(members) == 1 else "any"
    if origin is typing.Literal:
        return "any"
    return _TYPE_NAMES.get(origin, "any")


def _parameters(fn: Callable[..., Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    try:
        hints = typing.get_type_hints(fn)
    except Exception:
        hints = {}
    for p in inspect.signature(fn).parameters.values():
        if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
            continue
        annotation = hints.get(p.name, p.annotation)
        entry: dict[str, Any] = {"type": _param_type(annotation)}
        if typing.get_origin(annotation) is typing.Literal:
            entry["enum"] = list(typing.get_args(annotation))
        if p.default is inspect.Parameter.empty:
            entry["required"] = True
        else:
            entry["default"] = p.default
        out[p.name] = entry
    return out


def trace(
    f: Callable[..., Any],
    builder: contextvars.ContextVar[Any],
    *,
    name: str | None = None,
    schedule: str | None = None,
) -> tuple[WorkflowSpec, SourceMap, str | None]:
    """Trace ``f`` into ``(spec, source_map, base_dir)``.

    ``builder`` is the context variable ``@jw.task`` functions look at
    (``actions.registry.BUILDER``): while it holds the tracer, calling one adds a task.
    ``base_dir`` is the folder of ``f``'s source file, when it has one on disk.
    """
    params = _parameters(f)
    tracer = _Builder()
    token = builder.set(tracer)
    try:
        returned = f(**{p: Ref(f"parameters.{p}") for p in params})
    finally:
        builder.reset(token)
    if not tracer.tasks:
        raise SpecError(f"@workflow {f.__name__!r} calls no @task function, so it has no tasks")
    output_map: dict[str, Any] = {}
    if isinstance(returned, dict):
        output_map = {k: tracer._value(v, []) for k, v in returned.items()}
    elif returned is not None:
        output_map = {"result": tracer._value(returned, [])}
    doc = inspect.getdoc(f)
    data: dict[str, Any] = {"name": name or f.__name__}
    if doc:
        data["description"] = doc
    if schedule:
        data["schedule"] = schedule
    if params:
        data["parameters"] = params
    data["tasks"] = tracer.tasks
    if output_map:
        data["output_map"] = output_map
    text = json.dumps(data, default=str)
    spec, smap = load_spec(text, file=f"<workflow {f.__name__}>")
    try:
        source_file = inspect.getsourcefile(f)
    except TypeError:
        source_file = None
    base_dir = os.path.dirname(source_file) if source_file and os.path.exists(source_file) else None
    return spec, smap, base_dir
