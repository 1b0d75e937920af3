"""Other workflow languages read as they are: StackStorm Orquesta and attune (CONTRACT §1.7).

A dialect is a translation step from the foreign document to the native one, done on plain data
before the models validate it, moving source positions along so every error still points at
the user's text. The engine never learns which dialect a workflow came from; what a dialect
needs at run time are expression functions (``ctx()``, YAQL ``<% %>``, ``kv.get_secret``), which
are registered as globals of the sandboxed Jinja environment. :func:`translate` also tells the
validator which extra names the dialect's templates may use.

Detection (:func:`detect`) is automatic: attune by its top-level ``ref``/``label``/
``output_schema``/``metadata``, Orquesta by ``version: 1.0`` together with one of its forms
(``input``/``output`` lists, ``<% %>``, ``with``, ``ctx()``, string ``do``/``publish``). A
document that is neither is native.
"""

from __future__ import annotations

import collections.abc  # noqa: F401  # yaql reads collections.abc without importing it
import json
import re
from typing import Any

from ..exceptions import SpecError
from .loader import SourceMap

__all__ = ["detect", "translate"]

Path_ = tuple[Any, ...]

#: Orquesta's engine commands that ``do`` may name.
_ORQUESTA_COMMANDS = {"continue", "noop", "fail", "retry"}


# --------------------------------------------------------------------------------------------
# Detection
# --------------------------------------------------------------------------------------------


def _texts(value: Any):
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for v in value.values():
            yield from _texts(v)
    elif isinstance(value, list):
        for v in value:
            yield from _texts(v)


#: Task fields only attune has.
_ATTUNE_TASK_FIELDS = (
    "iterate_cache",
    "on_timeout",
    "permission_set_refs",
    "assigned_to",
    "concurrency",
    "wait_for",
)


def detect(data: Any) -> str:
    """``"orquesta"``, ``"attune"`` or ``"native"`` for a parsed document."""
    if not isinstance(data, dict):
        return "native"
    if any(k in data for k in ("ref", "label", "output_schema", "metadata", "workflow_file")):
        return "attune"
    tasks = data.get("tasks")
    if isinstance(tasks, dict) and any(
        isinstance(body, dict) and any(k in body for k in _ATTUNE_TASK_FIELDS)
        for body in tasks.values()
    ):
        return "attune"
    version = data.get("version")
    if version in (1.0, "1.0", 1, "1") and "name" not in data:
        if isinstance(data.get("input"), list) or isinstance(data.get("output"), list):
            return "orquesta"
        if isinstance(data.get("vars"), list):
            return "orquesta"
        tasks = data.get("tasks")
        if isinstance(tasks, dict):
            for body in tasks.values():
                if isinstance(body, dict) and ("with" in body or "delay" in body):
                    return "orquesta"
                action = body.get("action") if isinstance(body, dict) else None
                if isinstance(action, str) and " " in action.strip():
                    return "orquesta"
                for tr in (body or {}).get("next", []) if isinstance(body, dict) else []:
                    if isinstance(tr, dict) and (
                        isinstance(tr.get("publish"), str) or "continue" in str(tr.get("do"))
                    ):
                        return "orquesta"
        if any("<%" in t or "ctx(" in t for t in _texts(data)):
            return "orquesta"
    return "native"


# --------------------------------------------------------------------------------------------
# Positions
# --------------------------------------------------------------------------------------------


def _alias(smap: SourceMap, new: Path_, old: Path_) -> None:
    """Positions recorded under ``old`` also answer for ``new``."""
    if new == old:
        return
    n = len(old)
    tables: tuple[dict[Path_, Any], ...] = (smap.values, smap.keys, smap.blocks)
    for table in tables:
        for p in [p for p in table if p[:n] == old]:
            aliased = (*new, *p[n:])  # a local: mypy reads `d[(*a, b)]` as 3.11's `d[*a, b]`
            table[aliased] = table[p]
    for p in [p for p in smap.quoted if p[:n] == old]:
        smap.quoted.add((*new, *p[n:]))


# --------------------------------------------------------------------------------------------
# Orquesta
# --------------------------------------------------------------------------------------------

_YAQL = re.compile(r"<%(.*?)%>", re.DOTALL)
_JINJA = re.compile(r"({{.*?}}|{%.*?%})", re.DOTALL)


def _orquesta_jinja(segment: str) -> str:
    """Orquesta's Jinja functions in native terms: ``result()`` is ``result``, ``item()`` is
    ``item``, ``item(x)`` is ``item.x``; ``ctx()`` and ``task()`` stay functions."""
    segment = re.sub(r"\bresult\(\s*\)", "result", segment)
    segment = re.sub(r"\bitem\(\s*\)", "item", segment)
    segment = re.sub(r"\bitem\(\s*['\"]?([A-Za-z_]\w*)['\"]?\s*\)", r"item.\1", segment)
    return segment


def orquesta_expression(text: Any) -> Any:
    """A value with Orquesta expressions as a native template (recursively in containers)."""
    if isinstance(text, dict):
        return {k: orquesta_expression(v) for k, v in text.items()}
    if isinstance(text, list):
        return [orquesta_expression(v) for v in text]
    if not isinstance(text, str):
        return text
    if "{{" in text or "{%" in text:
        text = _JINJA.sub(lambda m: _orquesta_jinja(m.group(1)), text)
    if "<%" in text:
        text = _YAQL.sub(lambda m: "{{ yaql(" + json.dumps(m.group(1).strip()) + ") }}", text)
    return text


def _split_names(value: Any) -> list[str]:
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    if isinstance(value, list):
        return [str(v) for v in value]
    return []


def _inline_parameters(text: str) -> tuple[str, dict[str, Any]]:
    """``core.echo message="hi <% x %>" n=1`` -> ``("core.echo", {"message": ..., "n": "1"})``."""
    text = text.strip()
    name, _, rest = text.partition(" ")
    params: dict[str, Any] = {}
    i = 0
    while i < len(rest):
        match = re.compile(r"\s*([A-Za-z_][\w.]*)=").match(rest, i)
        if match is None:
            if rest[i:].strip():
                raise ValueError(f"cannot read the action's inline parameters at {rest[i:]!r}")
            break
        key, i = match.group(1), match.end()
        start = i
        if i < len(rest) and rest[i] in "\"'":
            quote = rest[i]
            end = rest.find(quote, i + 1)
            while end != -1 and rest[end - 1] == "\\":
                end = rest.find(quote, end + 1)
            if end == -1:
                raise ValueError(f"unclosed quote in the inline parameter {key!r}")
            value: Any = rest[i + 1 : end]
            i = end + 1
        else:
            while i < len(rest) and not rest[i].isspace():
                for open_, close in (("<%", "%>"), ("{{", "}}")):
                    if rest.startswith(open_, i):
                        end = rest.find(close, i)
                        i = len(rest) if end == -1 else end
                        break
                i += 1
            value = rest[start:i]
            if not re.search(r"<%|{{", value):
                try:
                    value = json.loads(value)
                except ValueError:
                    pass
        params[key] = value
    return name, params


def _publish_string(text: str) -> list[dict[str, Any]]:
    """``"a=<% x %> b=1"`` -> ``[{"a": "<% x %>"}, {"b": 1}]``."""
    _, params = _inline_parameters("_ " + text)
    return [{k: v} for k, v in params.items()]


def _orquesta(data: dict[str, Any], smap: SourceMap) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key in ("name", "description"):
        if key in data:
            out[key] = data[key]
    out["version"] = str(data.get("version"))
    parameters: dict[str, Any] = {}
    variables: dict[str, Any] = {}
    for i, entry in enumerate(data.get("input") or []):
        if isinstance(entry, str):
            pname, default = entry, None
            _alias(smap, ("parameters", pname), ("input", i))
        elif isinstance(entry, dict) and len(entry) == 1:
            ((pname, default),) = entry.items()
            _alias(smap, ("parameters", pname), ("input", i, pname))
            smap.keys[("parameters", pname)] = smap.locate(("input", i, pname), key=True)
        else:
            raise smap.error(
                "an input entry is a name or a one-key mapping {name: default}", ("input", i)
            )
        parameters[pname] = {} if default is None else {"default": default}
        variables[pname] = "{{ parameters." + pname + " }}"
        _alias(smap, ("vars", pname), ("input", i))
    for i, entry in enumerate(data.get("vars") or []):
        if not (isinstance(entry, dict) and len(entry) == 1):
            raise smap.error("a vars entry is a one-key mapping {name: value}", ("vars", i))
        ((vname, value),) = entry.items()
        _alias(smap, ("vars", vname), ("vars", i, vname))
        variables[vname] = orquesta_expression(value)
    if parameters:
        out["parameters"] = parameters
    if variables:
        out["vars"] = variables
    tasks: dict[str, Any] = {}
    for tname, body in (data.get("tasks") or {}).items():
        tasks[tname] = _orquesta_task(tname, body or {}, smap)
    out["tasks"] = tasks
    output: dict[str, Any] = {}
    for i, entry in enumerate(data.get("output") or []):
        if not (isinstance(entry, dict) and len(entry) == 1):
            raise smap.error("an output entry is a one-key mapping {name: value}", ("output", i))
        ((oname, value),) = entry.items()
        _alias(smap, ("output_map", oname), ("output", i, oname))
        output[oname] = orquesta_expression(value)
    if output:
        out["output_map"] = output
    return out


def _orquesta_task(name: str, body: dict[str, Any], smap: SourceMap) -> dict[str, Any]:
    path = ("tasks", name)
    task: dict[str, Any] = {}
    known = {"action", "input", "next", "with", "join", "retry", "delay"}
    for key in body:
        if key not in known:
            raise smap.error(
                f"unknown field {key!r} in Orquesta task {name!r}", (*path, key), key=True
            )
    inputs: dict[str, Any] = {}
    if "action" in body:
        action = body["action"]
        if isinstance(action, str) and " " in action.strip():
            try:
                action, inline = _inline_parameters(action)
            except ValueError as exc:
                raise smap.error(f"task {name!r}: {exc}", (*path, "action")) from None
            for k in inline:
                _alias(smap, (*path, "input", k), (*path, "action"))
            inputs.update(inline)
        task["action"] = action
    if isinstance(body.get("input"), dict):
        inputs.update(body["input"])
    if inputs:
        task["input"] = orquesta_expression(inputs)
    if "with" in body:
        spec = body["with"]
        items_path: tuple[Any, ...] = (*path, "with")
        concurrency = None
        if isinstance(spec, dict):
            concurrency = spec.get("concurrency")
            items_path = (*path, "with", "items")
            spec = spec.get("items")
        names: list[str] = []
        if isinstance(spec, str):
            match = re.match(
                r"^\s*([A-Za-z_]\w*(?:\s*,\s*[A-Za-z_]\w*)*)\s+in\s+(.*)$", spec, re.DOTALL
            )
            if match:
                names = _split_names(match.group(1))
                spec = match.group(2)
        expression = orquesta_expression(spec)
        if names:
            inner = _single_expression(expression)
            expression = "{{ with_items_named(" + json.dumps(names) + ", " + inner + ") }}"
        task["with_items"] = expression
        _alias(smap, (*path, "with_items"), items_path)
        if concurrency is not None:
            task["batch_size"] = orquesta_expression(concurrency)
            _alias(smap, (*path, "batch_size"), (*path, "with", "concurrency"))
    if "join" in body:
        task["join"] = body["join"]
    if "retry" in body and isinstance(body["retry"], dict):
        retry = body["retry"]
        task["retry"] = {k: retry[k] for k in ("count", "delay") if k in retry}
        if "when" in retry:
            # Evaluated after each failed attempt, as Orquesta does after the action completes.
            task["retry"]["when"] = orquesta_expression(retry["when"])
    nexts: list[dict[str, Any]] = []
    for i, tr in enumerate(body.get("next") or []):
        tpath = (*path, "next", i)
        if not isinstance(tr, dict):
            raise smap.error("a next entry is a mapping {when, publish, do}", tpath)
        entry: dict[str, Any] = {}
        if "when" in tr:
            entry["when"] = orquesta_expression(tr["when"])
        publish = tr.get("publish")
        if isinstance(publish, str):
            publish = _publish_string(publish)
            for item in publish:
                for k in item:
                    _alias(smap, (*tpath, "publish", k), (*tpath, "publish"))
        elif isinstance(publish, list):
            for j, item in enumerate(publish):
                if isinstance(item, dict):
                    for k in item:
                        _alias(smap, (*tpath, "publish", k), (*tpath, "publish", j, k))
        if publish:
            entry["publish"] = orquesta_expression(publish)
        targets = _split_names(tr.get("do"))
        do: list[str] = []
        for target in targets:
            if target == "continue":
                # Orquesta: go on without remediating; a failed task still fails the workflow.
                if "failed()" in str(tr.get("when", "")):
                    do.append("fail")
                continue
            do.append(target)
        if do:
            entry["do"] = do
            _alias(smap, (*tpath, "do"), (*tpath, "do"))
        nexts.append(entry)
    if nexts:
        task["next"] = nexts
    return task


def _single_expression(template: Any) -> str:
    """The Jinja expression inside an exact ``{{ ... }}`` (or a literal for anything else)."""
    if isinstance(template, str):
        text = template.strip()
        if text.startswith("{{") and text.endswith("}}") and text.count("{{") == 1:
            return text[2:-2].strip()
    return json.dumps(template)


# --------------------------------------------------------------------------------------------
# Entry point
# --------------------------------------------------------------------------------------------

#: Names each dialect's templates may use besides the native ones (for ``validate``).
DIALECT_NAMES: dict[str, dict[str, Any]] = {
    "orquesta": {
        "roots": (),
        "functions": (
            "ctx",
            "yaql",
            "task_status",
            "with_items_named",
            "zip",
            "json",
            "to_json_string",
            "to_yaml_string",
            "from_json_string",
            "regex_match",
            "regex_search",
            "regex_replace",
            "regex_substring",
            "basename",
            "dirname",
            "version_compare",
            "version_more_than",
            "version_less_than",
            "version_equal",
            "to_human_time_from_seconds",
            "to_complex",
            "use_none",
            "json_escape",
        ),
    },
}


def translate(data: Any, smap: SourceMap) -> Any:
    """The native document for ``data`` in whatever dialect it is written; records the dialect
    (``smap.dialect``) and the names its templates may use (``smap.dialect_names``)."""
    from .st2_action import is_st2_workflow_action, translate_st2_action

    if is_st2_workflow_action(data):  # StackStorm's metadata of a workflow action
        return translate_st2_action(data, smap, translate)
    dialect = detect(data)
    if dialect == "native":
        return data
    from . import dialect_functions  # noqa: F401  # registers the run-time functions

    if dialect == "orquesta":
        smap.dialect = f"orquesta {data.get('version')}"
        smap.dialect_names = DIALECT_NAMES["orquesta"]
        try:
            return _orquesta(data, smap)
        except SpecError:
            raise
        except (TypeError, ValueError, AttributeError) as exc:
            raise smap.error(f"cannot read this Orquesta workflow: {exc}") from None
    from .attune import translate_attune

    return translate_attune(data, smap)
