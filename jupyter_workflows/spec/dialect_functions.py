"""Run-time functions of the other dialects' expressions: Orquesta's ``ctx()``, its YAQL
``<% %>`` evaluator and StackStorm's Jinja helpers; attune's ``kv.get_secret`` and friends.

They are globals of the sandboxed Jinja environment; the functions that read the run's state
receive the render context (``jinja2.pass_context``), so they see exactly the scope the engine
rendered with (``vars``, ``parameters``, ``task``, ``result``, ``item``, ``succeeded()``...).
"""

from __future__ import annotations

import collections.abc  # yaql reads collections.abc without importing it
import functools
import json
import os
import re
import threading
from itertools import zip_longest
from typing import Any

import yaml
from jinja2 import pass_context

from ..expressions import ExpressionError, register_filters, register_globals

__all__ = ["yaql_evaluate"]

_lock = threading.Lock()


def _as_dict(scope: Any) -> dict[str, Any]:
    return scope.get_all() if hasattr(scope, "get_all") else dict(scope)


def _ctx(scope: dict[str, Any], key: str | None = None) -> Any:
    variables = scope.get("vars") or {}
    if key is None:
        return dict(variables)
    if key not in variables:
        raise ExpressionError(f"ctx({key!r}): no such variable (known: {', '.join(variables)})")
    return variables[key]


@pass_context
def ctx(context: Any, key: str | None = None) -> Any:
    """Orquesta's ``ctx()`` (all variables, inputs included) or ``ctx(name)``."""
    return _ctx(_as_dict(context), key)


def zip_(*args: Any, pad: Any = None) -> list[Any]:
    lists = [[] if a is None else list(a) for a in args]
    if len(lists) == 1:
        return lists[0]
    return [list(t) for t in zip_longest(*lists, fillvalue=pad)]


def with_items_named(names: list[str], values: Any) -> list[dict[str, Any]]:
    """``x, y in <% zip(xs, ys) %>``: each item as ``{x: ..., y: ...}``."""
    out = []
    for value in values or []:
        if len(names) == 1:
            out.append({names[0]: value})
        else:
            out.append(dict(zip(names, list(value), strict=False)))
    return out


def _task_status(scope: dict[str, Any], name: str) -> Any:
    view = (scope.get("task") or {}).get(name)
    return None if view is None else view.get("status")


@pass_context
def task_status(context: Any, name: str) -> Any:
    return _task_status(_as_dict(context), name)


# -- StackStorm's Jinja helpers (st2common/jinja/filters) -------------------------------------


def to_json_string(value: Any, indent: int | None = None, sort_keys: bool = False) -> str:
    return json.dumps(value, indent=indent, sort_keys=sort_keys, default=str)


def to_yaml_string(value: Any) -> str:
    return yaml.safe_dump(value, default_flow_style=False)


def from_json_string(value: str) -> Any:
    return json.loads(value)


def regex_match(value: str, pattern: str, ignorecase: bool = False) -> bool:
    return re.match(pattern, value, re.I if ignorecase else 0) is not None


def regex_search(value: str, pattern: str, ignorecase: bool = False) -> bool:
    return re.search(pattern, value, re.I if ignorecase else 0) is not None


def regex_replace(value: str, pattern: str, replacement: str, ignorecase: bool = False) -> str:
    return re.sub(pattern, replacement, value, flags=re.I if ignorecase else 0)


def regex_substring(value: str, pattern: str, result_index: int = 0, ignorecase: bool = False):
    return re.findall(pattern, value, re.I if ignorecase else 0)[result_index]


def basename(path: str) -> str:
    return os.path.basename(path)


def dirname(path: str) -> str:
    return os.path.dirname(path)


def _version(text: str) -> tuple[int, ...]:
    return tuple(int(p) for p in re.findall(r"\d+", str(text)))


def version_compare(a: str, b: str) -> int:
    va, vb = _version(a), _version(b)
    return (va > vb) - (va < vb)


def version_more_than(a: str, b: str) -> bool:
    return version_compare(a, b) > 0


def version_less_than(a: str, b: str) -> bool:
    return version_compare(a, b) < 0


def version_equal(a: str, b: str) -> bool:
    return version_compare(a, b) == 0


def to_human_time_from_seconds(seconds: float) -> str:
    seconds = int(seconds)
    parts = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            parts.append(f"{seconds // size}{unit}")
            seconds %= size
    parts.append(f"{seconds}s")
    return "".join(parts)


def use_none(value: Any) -> Any:
    return "%*****__%NONE%__*****%" if value is None else value


def json_escape(value: str) -> str:
    return json.dumps(value)[1:-1]


ST2_FUNCTIONS = {
    "to_json_string": to_json_string,
    "to_yaml_string": to_yaml_string,
    "from_json_string": from_json_string,
    "json": lambda s: s if isinstance(s, dict) else json.loads(s),
    "regex_match": regex_match,
    "regex_search": regex_search,
    "regex_replace": regex_replace,
    "regex_substring": regex_substring,
    "basename": basename,
    "dirname": dirname,
    "version_compare": version_compare,
    "version_more_than": version_more_than,
    "version_less_than": version_less_than,
    "version_equal": version_equal,
    "to_human_time_from_seconds": to_human_time_from_seconds,
    "use_none": use_none,
    "json_escape": json_escape,
    "zip": zip_,
}


# -- YAQL -------------------------------------------------------------------------------------


@functools.lru_cache(maxsize=1)
def _yaql_engine() -> tuple[Any, Any]:
    import yaql

    engine = yaql.factory.YaqlFactory().create()
    root = yaql.create_context()
    return engine, root


@functools.lru_cache(maxsize=4096)
def _yaql_parse(expression: str) -> Any:
    engine, _root = _yaql_engine()
    return engine(expression)


def _plain(value: Any) -> Any:
    """YAQL's frozen containers back to lists and dicts."""
    from yaql.language import utils

    if isinstance(value, utils.FrozenDict):
        value = dict(value)
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)) or (
        isinstance(value, collections.abc.Iterable)
        and not isinstance(value, (str, bytes, dict))
        and hasattr(value, "__next__")
    ):
        return [_plain(v) for v in value]
    return value


def yaql_evaluate(expression: str, scope: dict[str, Any]) -> Any:
    """Evaluate one YAQL expression with Orquesta's functions over the engine's scope."""
    from yaql.language import exceptions as yaql_errors

    try:
        parsed = _yaql_parse(expression)
    except yaql_errors.YaqlException as exc:
        raise ExpressionError(f"YAQL syntax error in <% {expression} %>: {exc}") from None
    _engine, root = _yaql_engine()
    context = root.create_child_context()
    item = scope.get("item")

    def item_(key: str | None = None) -> Any:
        if key is None:
            return item
        if not isinstance(item, dict) or key not in item:
            raise ExpressionError(f"item({key!r}): the current item has no {key!r}")
        return item[key]

    def outcome(name: str) -> Any:
        fn = scope.get(name)
        if fn is None:
            raise ExpressionError(f"{name}() is only known in a task's transitions")
        return fn()

    def result_() -> Any:
        if "result" not in scope:
            raise ExpressionError("result() is only known in a task's transitions")
        return scope["result"]

    context.register_function(lambda key=None: _ctx(scope, key), name="ctx")
    context.register_function(item_, name="item")
    context.register_function(result_, name="result")
    context.register_function(lambda: outcome("succeeded"), name="succeeded")
    context.register_function(lambda: outcome("failed"), name="failed")
    context.register_function(lambda: outcome("completed"), name="completed")
    context.register_function(lambda name: _task_status(scope, name), name="task_status")
    context.register_function(zip_, name="zip")
    context.register_function(ST2_FUNCTIONS["json"], name="json")
    context["$"] = _ctx(scope)
    try:
        value = parsed.evaluate(context=context)
    except ExpressionError:
        raise
    except yaql_errors.YaqlException as exc:
        raise ExpressionError(f"<% {expression} %>: {type(exc).__name__}: {exc}") from None
    return _plain(value)


def yaql_problems(text: str) -> list[tuple[int, int, str]]:
    """``(line, column, message)`` for each ``yaql("...")`` in ``text`` that does not parse."""
    from jinja2 import nodes
    from yaql.language import exceptions as yaql_errors

    from ..expressions import parse_template

    try:
        tree = parse_template(text)
    except Exception:
        return []
    out = []
    for call in tree.find_all(nodes.Call):
        if not (
            isinstance(call.node, nodes.Name)
            and call.node.name == "yaql"
            and len(call.args) == 1
            and isinstance(call.args[0], nodes.Const)
            and isinstance(call.args[0].value, str)
        ):
            continue
        expression = call.args[0].value
        try:
            _yaql_parse(expression)
        except yaql_errors.YaqlException as exc:
            message = " ".join(str(exc).split())
            out.append((call.lineno or 1, 1, f"YAQL syntax error in <% {expression} %>: {message}"))
    return out


@pass_context
def yaql(context: Any, expression: str) -> Any:
    """``<% expression %>`` as the translated template ``{{ yaql("expression") }}``."""
    return yaql_evaluate(expression, _as_dict(context))


# -- attune ---------------------------------------------------------------------------------


def now() -> str:
    """attune's ``now()`` (translated ``attune_now()``): the current time, ISO 8601 in UTC."""
    import datetime

    return datetime.datetime.now(datetime.timezone.utc).isoformat()


def uuid_() -> str:
    """attune's ``uuid()`` (translated ``attune_uuid()``): a new random UUID as text."""
    import uuid

    return str(uuid.uuid4())


def pack_config(pack: str | None) -> Any:
    """attune's ``config.*``/``pack.config.*`` as the translated ``pack_config('PACK')``."""
    from .attune import pack_config as lookup

    return lookup(pack)


@pass_context
def attune_cache(context: Any, key: str) -> list[Any]:
    """attune's ``iterate_cache``: the entries of a Data Cache namespace, kept in the key-value
    store under ``key`` as a list of entries or a mapping ``{external_id: value}``."""
    kv = _as_dict(context).get("kv")
    value = kv.get(key) if kv is not None else None
    if value is None:
        raise ExpressionError(
            f"iterate_cache: no data cache {key!r} in the key-value store (store its entries,"
            " a list or a mapping of external_id to value, under that key)"
        )
    if isinstance(value, dict):
        return [{"external_id": k, "value": v} for k, v in value.items()]
    if isinstance(value, (list, tuple)):
        return list(value)
    raise ExpressionError(
        f"iterate_cache: data cache {key!r} holds {type(value).__name__}, not a list or mapping"
    )


def tera_slice(value: Any, start: int = 0, end: int | None = None) -> list[Any]:
    """Tera's ``slice(start=N, end=M)`` filter (attune templates, translated ``tera_slice``):
    the items from ``start`` up to ``end`` (exclusive; negative counts from the end)."""
    if value is None:
        return []
    try:
        return list(value)[start:end]
    except TypeError:
        raise ExpressionError(
            f"slice: needs a list and integer start/end, got {type(value).__name__}"
        ) from None


FILTERS: dict[str, Any] = {"tera_slice": tera_slice}
register_filters(FILTERS)


FUNCTIONS: dict[str, Any] = {
    "ctx": ctx,
    "yaql": yaql,
    "task_status": task_status,
    "with_items_named": with_items_named,
    "pack_config": pack_config,
    "attune_cache": attune_cache,
    "attune_now": now,
    "attune_uuid": uuid_,
    **ST2_FUNCTIONS,
}
#: What templates may call besides the native functions (``validate`` knows them).
FUNCTION_NAMES = frozenset(FUNCTIONS)
register_globals(FUNCTIONS)
