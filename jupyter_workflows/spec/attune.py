"""attune workflow files (the seed system) as native documents; see :mod:`.dialects`.

attune's language is the one this project grew from, so most of a file is native already. What
differs, and how it is read:

- top-level ``ref`` (``pack.name``) is the workflow's ``name`` when it has none; ``label`` is its
  ``description`` when it has none; ``metadata`` and ``output_schema`` are informational and
  dropped (``convert`` shows what remains);
- ``parameters`` may be a JSON Schema object (``{type: object, properties, required}``);
- in templates, ``workflow.x`` (attune's run-variable scope) is ``vars.x``,
  ``kv.get_secret(k)`` is ``secret(k)``, ``system.execution_id`` is ``system.run_id``,
  ``system.identity`` is ``system.user``, Tera's ``batch(size=N)`` is ``batch(N)``;
- a task's ``on_timeout: t`` is ``next: [{when: "{{ timed_out() }}", do: t}]``.
"""

from __future__ import annotations

import re
from typing import Any

from .loader import SourceMap

__all__ = ["translate_attune"]

_REWRITES = (
    (re.compile(r"\bworkflow\."), "vars."),
    (re.compile(r"\bkv\.get_secret\("), "secret("),
    (re.compile(r"\bsystem\.execution_id\b"), "system.run_id"),
    (re.compile(r"\bsystem\.identity(\.login)?\b"), "system.user"),
    (re.compile(r"\bbatch\(\s*size\s*="), "batch("),
)
_TEMPLATE = re.compile(r"({{.*?}}|{%.*?%})", re.DOTALL)


def _expression(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _expression(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_expression(v) for v in value]
    if not isinstance(value, str) or ("{{" not in value and "{%" not in value):
        return value

    def rewrite(match: re.Match[str]) -> str:
        text = match.group(1)
        for pattern, replacement in _REWRITES:
            text = pattern.sub(replacement, text)
        if text.startswith("{{"):
            text = "{{" + _ternary(text[2:-2]) + "}}"
        return text

    return _TEMPLATE.sub(rewrite, value)


def _top_level(text: str, char: str) -> int:
    """Index of ``char`` outside quotes and brackets, else -1."""
    depth, quote = 0, ""
    for i, c in enumerate(text):
        if quote:
            if c == quote and text[i - 1] != "\\":
                quote = ""
        elif c in "'\"":
            quote = c
        elif c in "([{":
            depth += 1
        elif c in ")]}":
            depth -= 1
        elif c == char and depth == 0:
            return i
    return -1


def _ternary(expression: str) -> str:
    """Tera's ``a ? b : c`` as Jinja's ``(b if a else c)`` (nested on the right)."""
    q = _top_level(expression, "?")
    if q == -1:
        return expression
    rest = expression[q + 1 :]
    c = _top_level(rest, ":")
    if c == -1:
        return expression
    condition, then, other = expression[:q].strip(), rest[:c].strip(), _ternary(rest[c + 1 :])
    return f" ({then} if {condition} else {other.strip()}) "


def _parameters(value: Any) -> Any:
    """JSON Schema ``{type: object, properties: {...}, required: [...]}`` -> native parameters."""
    if isinstance(value, dict) and isinstance(value.get("properties"), dict):
        required = set(value.get("required") or [])
        out = {}
        for name, schema in value["properties"].items():
            schema = dict(schema or {})
            if name in required:
                schema["required"] = True
            out[name] = {
                k: v
                for k, v in schema.items()
                if k in ("type", "required", "default", "enum", "description")
            }
        return out
    return value


def _task(body: Any, smap: SourceMap, path: tuple[Any, ...]) -> Any:
    if not isinstance(body, dict):
        return body
    body = dict(body)
    if "iterate_cache" in body:
        raise smap.error(
            "attune's 'iterate_cache' (items from attune's cache service) has no equivalent here;"
            " use with_items over a parameter or a task's result",
            (*path, "iterate_cache"),
            key=True,
        )
    if "concurrency" in body:  # attune: children in flight at once
        body["batch_size"] = body.pop("concurrency")
    for key in ("permission_set_refs", "assigned_to"):  # who may answer an inquiry
        if key in body:
            value = body.pop(key)
            if body.get("action") == "core.inquiry":
                body["input"] = {**(body.get("input") or {}), key: value}
    on_timeout = body.pop("on_timeout", None)
    if on_timeout is not None:
        targets = [on_timeout] if isinstance(on_timeout, str) else list(on_timeout)
        body["next"] = [*(body.get("next") or []), {"when": "{{ timed_out() }}", "do": targets}]
    for key in ("input", "with_items", "publish", "next", "decision"):
        if key in body:
            body[key] = _expression(body[key])
    if isinstance(body.get("tasks"), dict):
        body["tasks"] = {k: _task(v, smap, (*path, "tasks", k)) for k, v in body["tasks"].items()}
    return body


def translate_attune(data: dict[str, Any], smap: SourceMap) -> dict[str, Any]:
    """The native document for an attune workflow."""
    smap.dialect = "attune" + (f" {data['version']}" if data.get("version") else "")
    out = {k: v for k, v in data.items() if k not in ("ref", "label", "metadata", "output_schema")}
    if "name" not in out and isinstance(data.get("ref"), str):
        out = {"name": data["ref"], **out}
        smap.values[("name",)] = smap.locate(("ref",))
    if "description" not in out and isinstance(data.get("label"), str):
        out["description"] = data["label"]
    if "parameters" in out:
        out["parameters"] = _parameters(out["parameters"])
    if "vars" in out:
        out["vars"] = _expression(out["vars"])
    if "output_map" in out:
        out["output_map"] = _expression(out["output_map"])
    if isinstance(out.get("tasks"), dict):
        out["tasks"] = {k: _task(v, smap, ("tasks", k)) for k, v in out["tasks"].items()}
    return out
