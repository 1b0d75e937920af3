"""attune workflow files (the seed system) as native documents; see :mod:`.dialects`.

attune's language is the one this project grew from, so most of a file is native already. What
differs, and how it is read (docs/dialects.md has the full table):

- top-level ``ref`` (``pack.name``) is the workflow's ``name`` when it has none; ``label`` is its
  ``description`` when it has none; ``metadata`` and ``output_schema`` are informational and
  dropped (``convert`` shows what remains); ``vars`` may be a list of one-key mappings;
- ``parameters`` may be a JSON Schema object (``{type: object, properties, required}``);
  JSON Schema keywords the native parameters have no field for (``items``, ``minimum``...) are
  informational;
- in templates, ``workflow.x``/``variables.x`` (attune's run-variable scope) is ``vars.x``,
  ``tasks.x`` is ``task.x``, ``result()`` is ``result``, ``config.x`` and ``pack.config.x`` (the
  pack's configuration) are ``pack_config('PACK').x``, ``keystore.k`` is ``secret('k')``,
  ``kv.get_secret(k)`` is ``secret(k)``, ``now()``/``uuid()`` are
  ``attune_now()``/``attune_uuid()``, ``system.execution_id`` is ``system.run_id``,
  ``system.identity`` is ``system.user``, Tera's ``batch(size=N)`` is ``batch(N)`` and
  ``a ? b : c`` is ``(b if a else c)``;
- a task's ``on_timeout: t`` is ``next: [{when: "{{ timed_out() }}", do: t}]``; legacy
  ``on_success``/``on_failure``/``on_complete`` lists of ``{when, do}`` (nested ``do: [{when,
  next}]`` too) are ``next`` transitions whose ``when`` joins the conditions;
- ``concurrency`` (children in flight, attune's default 1) is the native ``batch_size``;
  attune's ``batch_size`` (entries per child) makes each ``item`` a list of that many entries;
- ``iterate_cache`` (a Data Cache namespace) is ``with_items`` over the key-value store entry
  ``cache/OWNER_TYPE/OWNER_REF/NAMESPACE`` (see :func:`cache_key`);
- ``wait_for: {inquiry: ID}`` on task T is a ``core.inquiry`` task ``T_inquiry`` that runs where
  T would have started and starts T once answered; ``inquiry.T.response`` is its result;
- an action file (``workflow_file:``) is its graph file with the action's parameters.

The pack configuration comes from the pack's ``pack.yaml`` (``conf_schema`` defaults, then
``config``), found above the workflow file, overlaid by ``jw.configure(pack_config={PACK:
{...}})`` (:func:`set_pack_config`).
"""

from __future__ import annotations

import re
import threading
from pathlib import Path
from typing import Any

from .loader import SourceMap

__all__ = ["cache_key", "pack_config", "set_pack_config", "translate_attune"]

_REWRITES = (
    (re.compile(r"(?<![\w.])(?:workflow|variables)\."), "vars."),
    (re.compile(r"(?<![\w.])tasks\."), "task."),
    (re.compile(r"(?<![\w.])result\(\s*\)"), "result"),
    (re.compile(r"(?<![\w.])keystore\.(\w+)"), r"secret('\1')"),
    (re.compile(r"\bkv\.get_secret\("), "secret("),
    (re.compile(r"(?<![\w.])now\(\s*\)"), "attune_now()"),
    (re.compile(r"(?<![\w.])uuid\(\s*\)"), "attune_uuid()"),
    (re.compile(r"(?<![\w.])task\.(\w+)\.inquiry_id\b"), r"task.\1.result.inquiry_id"),
    (re.compile(r"(?<![\w.])inquiry\.(\w+)\.response\b"), r"task.\1_inquiry.result"),
    (re.compile(r"\bsystem\.execution_id\b"), "system.run_id"),
    (re.compile(r"\bsystem\.identity(\.login)?\b"), "system.user"),
    (re.compile(r"\bbatch\(\s*size\s*="), "batch("),
    (re.compile(r"\|\s*slice\((?=\s*(?:start|end)\s*=)"), "| tera_slice("),
    (re.compile(r"(?<![\w.])task\.(\w+)\.results\b"), r"task.\1.result"),
    (re.compile(r"(?<![\w.])task\.(\w+)\.error\.message\b"), r"task.\1.error"),
)
_CONFIG = re.compile(r"(?<![\w.])(?:pack\.)?config\.")
_TEMPLATE = re.compile(r"({{.*?}}|{%.*?%})", re.DOTALL)
_PURE = re.compile(r"^\s*{{(.*)}}\s*$", re.DOTALL)

# -- pack configuration (``config.*`` / ``pack.config.*``) ----------------------------------

_config_lock = threading.Lock()
_file_config: dict[str, dict[str, Any]] = {}
_user_config: dict[str, dict[str, Any]] = {}


def set_pack_config(values: dict[str, dict[str, Any]] | None) -> None:
    """``jw.configure(pack_config={PACK: {key: value}})``: each pack's configuration, over the
    defaults of its ``pack.yaml``; None forgets what was set."""
    if values is None:
        with _config_lock:
            _user_config.clear()
        return
    if not isinstance(values, dict) or not all(
        isinstance(k, str) and isinstance(v, dict) for k, v in values.items()
    ):
        raise TypeError("pack_config: give a mapping of pack ref to a mapping of settings")
    with _config_lock:
        for pack, settings in values.items():
            _user_config[pack] = dict(settings)


def pack_config(pack: str | None) -> dict[str, Any]:
    """The configuration of ``pack``: its ``pack.yaml`` defaults overlaid by ``jw.configure``."""
    with _config_lock:
        if pack is None or (pack not in _file_config and pack not in _user_config):
            from ..expressions import ExpressionError

            where = f"pack {pack!r}" if pack else "this workflow (no pack: give it a 'ref')"
            raise ExpressionError(
                f"no pack configuration for {where}: set it with "
                "jw.configure(pack_config={PACK: {...}}) or a pack.yaml 'config' above the file"
            )
        return {**_file_config.get(pack, {}), **_user_config.get(pack, {})}


def _pack_yaml(file: str | None) -> Path | None:
    """The ``pack.yaml`` of the pack folder holding ``file`` (at most 4 folders up)."""
    if not file:
        return None
    try:
        folder = Path(file).resolve().parent
    except (OSError, RuntimeError):
        return None
    for candidate in (folder, *list(folder.parents)[:4]):
        manifest = candidate / "pack.yaml"
        if manifest.is_file():
            return manifest
    return None


def manifest_config(meta: dict[str, Any], config: dict[str, Any] | None = None) -> dict[str, Any]:
    """A pack's configuration from its ``pack.yaml`` (``meta``), over ``config``: the defaults
    of ``conf_schema``'s properties, then its ``config``."""
    config = dict(config or {})
    schema = meta.get("conf_schema")
    if isinstance(schema, dict) and isinstance(schema.get("properties"), dict):
        for key, prop in schema["properties"].items():
            if isinstance(prop, dict) and "default" in prop:
                config[key] = prop["default"]
    if isinstance(meta.get("config"), dict):
        config.update(meta["config"])
    return config


def _pack_of(data: dict[str, Any], smap: SourceMap) -> str | None:
    """The workflow's pack: its manifest's ``ref`` (reading its config), else ``ref``'s prefix."""
    manifest = _pack_yaml(smap.file)
    pack: str | None = None
    if manifest is not None:
        import yaml

        try:
            meta = yaml.safe_load(manifest.read_text(encoding="utf-8")) or {}
        except (OSError, UnicodeDecodeError, yaml.YAMLError):
            meta = {}
        if isinstance(meta, dict) and isinstance(meta.get("ref"), str):
            pack = meta["ref"]
            config = manifest_config(meta)
            with _config_lock:
                _file_config[pack] = config
    if pack is None and isinstance(data.get("ref"), str) and "." in data["ref"]:
        pack = data["ref"].split(".", 1)[0]
    return pack


# -- templates ------------------------------------------------------------------------------


def _expression(value: Any, pack: str | None = None) -> Any:
    if isinstance(value, dict):
        return {k: _expression(v, pack) for k, v in value.items()}
    if isinstance(value, list):
        return [_expression(v, pack) for v in value]
    if not isinstance(value, str) or ("{{" not in value and "{%" not in value):
        return value

    def rewrite(match: re.Match[str]) -> str:
        text = match.group(1)
        for pattern, replacement in _REWRITES:
            text = pattern.sub(replacement, text)
        text = _CONFIG.sub(f"pack_config({pack!r}).", text)
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


_PARAMETER_KEYS = ("type", "required", "default", "enum", "description")


def _parameter(schema: Any) -> Any:
    """One parameter: JSON Schema keywords with no native field are informational."""
    if not isinstance(schema, dict):
        return schema
    return {k: v for k, v in schema.items() if k in _PARAMETER_KEYS}


def _parameters(value: Any) -> Any:
    """JSON Schema ``{type: object, properties: {...}, required: [...]}`` -> native parameters."""
    if isinstance(value, dict) and isinstance(value.get("properties"), dict):
        required = set(value.get("required") or [])
        out = {}
        for name, schema in value["properties"].items():
            schema = dict(schema or {})
            if name in required:
                schema["required"] = True
            out[name] = _parameter(schema)
        return out
    if isinstance(value, dict):
        return {name: _parameter(schema) for name, schema in value.items()}
    return value


def _vars(value: Any) -> Any:
    """``vars: [{a: 1}, {b: 2}]`` (attune's list form) -> ``{a: 1, b: 2}``."""
    if isinstance(value, list) and all(isinstance(v, dict) for v in value):
        out: dict[str, Any] = {}
        for entry in value:
            out.update(entry)
        return out
    return value


# -- legacy transitions ---------------------------------------------------------------------

_LEGACY = (("on_success", "succeeded()"), ("on_failure", "failed()"), ("on_complete", None))


def _condition(when: Any, smap: SourceMap, path: tuple[Any, ...]) -> str:
    if isinstance(when, bool):
        return "true" if when else "false"
    if isinstance(when, str):
        match = _PURE.match(when)
        if match and "{{" not in match.group(1):
            return match.group(1).strip()
    raise smap.error("a 'when' here must be one {{ expression }}", path)


def _flatten(
    entry: dict[str, Any], conditions: list[str], smap: SourceMap, path: tuple[Any, ...]
) -> list[dict[str, Any]]:
    """One legacy ``{when, do|next, publish}`` entry (``do`` may nest more) as transitions."""
    unknown = [k for k in entry if k not in ("when", "do", "next", "publish")]
    if unknown:
        raise smap.error(
            f"unknown field {unknown[0]!r} in a transition (known: when, do, next, publish)",
            (*path, unknown[0]),
            key=True,
        )
    if entry.get("when") is not None:
        conditions = [*conditions, _condition(entry["when"], smap, (*path, "when"))]
    targets = entry.get("do", entry.get("next"))
    targets = [] if targets is None else [targets] if isinstance(targets, str) else targets
    if not isinstance(targets, list):
        raise smap.error("'do' must name tasks", (*path, "do"))
    names = [t for t in targets if isinstance(t, str)]
    out: list[dict[str, Any]] = []
    if names or entry.get("publish") is not None or not targets:
        transition: dict[str, Any] = {}
        if conditions:
            transition["when"] = "{{ " + " and ".join(f"({c})" for c in conditions) + " }}"
        if entry.get("publish") is not None:
            transition["publish"] = entry["publish"]
        if names:
            transition["do"] = names
        out.append(transition)
    key = "do" if "do" in entry else "next"
    for j, sub in enumerate(targets):
        if isinstance(sub, dict):
            out += _flatten(sub, conditions, smap, (*path, key, j))
        elif not isinstance(sub, str):
            raise smap.error("'do' must name tasks", (*path, key, j))
    return out


def _legacy_transitions(body: dict[str, Any], smap: SourceMap, path: tuple[Any, ...]) -> None:
    """``on_success: [{when, do}]`` and friends (attune's legacy form) as ``next``."""
    for key, base in _LEGACY:
        value = body.get(key)
        if not isinstance(value, list) or all(isinstance(v, str) for v in value):
            continue
        body.pop(key)
        start = [base] if base else []
        added: list[dict[str, Any]] = []
        for i, entry in enumerate(value):
            if isinstance(entry, str):
                added.append({**({"when": "{{ " + base + " }}"} if base else {}), "do": [entry]})
            elif isinstance(entry, dict):
                added += _flatten(entry, start, smap, (*path, key, i))
            else:
                raise smap.error(f"{key} entries name tasks or are {{when, do}}", (*path, key, i))
        body["next"] = [*(body.get("next") or []), *added]


# -- iteration ------------------------------------------------------------------------------

_CACHE_FIELDS = ("owner_type", "owner_ref", "namespace", "generation", "require_fresh", "page_size")
_OWNER_TYPES = ("pack", "action", "sensor", "system", "identity")


def cache_key(owner_type: str, owner_ref: str | None, namespace: str) -> str:
    """The key-value store key holding a Data Cache namespace: ``cache/pack/examples/users``."""
    return "/".join(["cache", owner_type, *([owner_ref] if owner_ref else []), namespace])


def _iterate_cache(
    body: dict[str, Any], pack: str | None, smap: SourceMap, path: tuple[Any, ...]
) -> str:
    spec = body.pop("iterate_cache")
    where = (*path, "iterate_cache")
    if "with_items" in body:
        raise smap.error(
            "'iterate_cache' and 'with_items' exclude each other (as in attune)", where, key=True
        )
    if not isinstance(spec, dict):
        raise smap.error(
            "'iterate_cache' must be a mapping (owner_type, owner_ref, namespace...)", where
        )
    for key in spec:
        if key not in _CACHE_FIELDS:
            raise smap.error(
                f"unknown field {key!r} in iterate_cache (known: {', '.join(_CACHE_FIELDS)})",
                (*where, key),
                key=True,
            )
    owner_type = spec.get("owner_type", "pack")
    if owner_type not in _OWNER_TYPES:
        raise smap.error(
            f"iterate_cache owner_type must be one of {', '.join(_OWNER_TYPES)}",
            (*where, "owner_type"),
        )
    owner_ref = spec.get("owner_ref") or (pack if owner_type == "pack" else None)
    if owner_type in ("pack", "action", "sensor") and not isinstance(owner_ref, str):
        raise smap.error(
            f"iterate_cache needs an 'owner_ref' for owner_type {owner_type!r}"
            + (" (this workflow has no pack)" if owner_type == "pack" else ""),
            where,
        )
    namespace = spec.get("namespace")
    if not isinstance(namespace, str) or not namespace:
        raise smap.error("iterate_cache needs a 'namespace'", where)
    generation = spec.get("generation", "active")
    if generation != "active":
        raise smap.error(
            "iterate_cache: only generation 'active' (the key-value store keeps one value per key)",
            (*where, "generation"),
        )
    key = cache_key(owner_type, owner_ref if isinstance(owner_ref, str) else None, namespace)
    return "{{ attune_cache(" + repr(key) + ") }}"


def _batch_items(items: Any, size: int, smap: SourceMap, path: tuple[Any, ...]) -> Any:
    """attune's ``batch_size``: each child gets a list of ``size`` entries (the last may be
    shorter)."""
    if isinstance(items, list):
        return [items[i : i + size] for i in range(0, len(items), size)]
    if isinstance(items, str):
        match = _PURE.match(items)
        if match and "{{" not in match.group(1):
            return "{{ (" + match.group(1).strip() + ") | batch(" + str(size) + ") | list }}"
    raise smap.error(
        "attune 'batch_size' needs 'with_items' as a list or one {{ expression }}",
        (*path, "with_items"),
    )


def _task(body: Any, smap: SourceMap, path: tuple[Any, ...], pack: str | None) -> Any:
    if not isinstance(body, dict):
        return body
    body = dict(body)
    wait_for = body.pop("wait_for", None)
    if wait_for is not None:
        _check_wait_for(wait_for, body, smap, path)
    if "iterate_cache" in body:
        body["with_items"] = _iterate_cache(body, pack, smap, path)
    iterated = "with_items" in body
    entries = body.pop("batch_size", None)  # attune: entries per child
    if "concurrency" in body:  # attune: children in flight at once
        body["batch_size"] = body.pop("concurrency")
    elif iterated:
        body["batch_size"] = 1  # attune's default: one child at a time
    if entries is not None and entries != 1:
        if not isinstance(entries, int) or isinstance(entries, bool) or entries < 1:
            raise smap.error("'batch_size' must be an integer >= 1", (*path, "batch_size"))
        if not iterated:
            raise smap.error(
                "'batch_size' needs 'with_items' or 'iterate_cache'",
                (*path, "batch_size"),
                key=True,
            )
        body["with_items"] = _batch_items(body["with_items"], entries, smap, path)
    for key in ("permission_set_refs", "assigned_to"):  # who may answer an inquiry
        if key in body:
            value = body.pop(key)
            if body.get("action") == "core.inquiry":
                body["input"] = {**(body.get("input") or {}), key: value}
    if body.get("action") == "core.noop" and isinstance(body.get("input"), dict):
        # attune's core.noop takes a ``message`` to log; this one takes nothing.
        body.pop("input")
    _legacy_transitions(body, smap, path)
    on_timeout = body.pop("on_timeout", None)
    if on_timeout is not None:
        targets = [on_timeout] if isinstance(on_timeout, str) else list(on_timeout)
        body["next"] = [*(body.get("next") or []), {"when": "{{ timed_out() }}", "do": targets}]
    for key in ("input", "with_items", "publish", "next", "decision"):
        if key in body:
            body[key] = _expression(body[key], pack)
    if isinstance(body.get("tasks"), dict):
        body["tasks"] = {
            k: _task(v, smap, (*path, "tasks", k), pack) for k, v in body["tasks"].items()
        }
    return body


# -- wait_for: {inquiry} -------------------------------------------------------------------


def _check_wait_for(
    wait_for: Any, body: dict[str, Any], smap: SourceMap, path: tuple[Any, ...]
) -> None:
    where = (*path, "wait_for")
    if not isinstance(wait_for, dict) or "inquiry" not in wait_for:
        raise smap.error("'wait_for' must be a mapping with 'inquiry' (as in attune)", where)
    for key in wait_for:
        if key != "inquiry":
            raise smap.error(
                f"unknown field {key!r} in wait_for (known: inquiry)", (*where, key), key=True
            )
    if "with_items" in body or "iterate_cache" in body or "tasks" in body:
        raise smap.error(
            "'wait_for' cannot guard a with_items, iterate_cache or parallel task (as in attune)",
            where,
            key=True,
        )


def _retarget(value: Any, old: str, new: str) -> Any:
    """Every transition target ``old`` in a task's fields, as ``new``."""
    if isinstance(value, str):
        return new if value == old else value
    if isinstance(value, list):
        return [_retarget(v, old, new) for v in value]
    return value


def _guards(
    raw: dict[str, Any], tasks: dict[str, Any], smap: SourceMap, pack: str | None
) -> dict[str, Any]:
    """attune's ``wait_for: {inquiry: ID}`` on task G: a ``core.inquiry`` task ``G_inquiry``
    runs where G would have started (every transition to G goes to it) and starts G once
    answered; ``inquiry.G.response`` is its result."""
    guarded = {
        name: body["wait_for"]
        for name, body in raw.items()
        if isinstance(body, dict) and isinstance(body.get("wait_for"), dict)
    }
    if not guarded:
        return tasks
    for name in guarded:
        gate = f"{name}_inquiry"
        if gate in tasks:
            raise smap.error(
                f"task {name!r}: its wait_for needs the task name {gate!r}, which is taken",
                ("tasks", name, "wait_for"),
                key=True,
            )
        for body in tasks.values():
            if not isinstance(body, dict):
                continue
            for key in ("on_success", "on_failure", "on_complete"):
                if key in body:
                    body[key] = _retarget(body[key], name, gate)
            for transition in body.get("next") or []:
                if isinstance(transition, dict) and "do" in transition:
                    transition["do"] = _retarget(transition["do"], name, gate)
            for entry in body.get("decision") or []:
                if isinstance(entry, dict):
                    for key in ("next", "default"):
                        if key in entry:
                            entry[key] = _retarget(entry[key], name, gate)
    out: dict[str, Any] = {}
    for name, body in tasks.items():
        if name in guarded:
            gate = f"{name}_inquiry"
            ident = _expression(guarded[name]["inquiry"], pack)
            ident_text = ident if isinstance(ident, str) else repr(ident)
            out[gate] = {
                "action": "core.inquiry",
                "description": f"attune wait_for: the response that releases task {name!r}",
                "input": {"prompt": f"Response to inquiry {ident_text} for task '{name}'"},
                "next": [{"when": "{{ succeeded() }}", "do": [name]}],
            }
            line, col = smap.locate(("tasks", name, "wait_for"))
            if line is not None:
                smap.values[("tasks", gate)] = (line, col or 1)
        out[name] = body
    return out


#: Names attune templates may use besides the native ones (``validate``).
DIALECT_NAMES: dict[str, Any] = {
    "roots": (),
    "functions": ("pack_config", "attune_cache", "attune_now", "attune_uuid"),
}


#: Fields of an attune workflow *action* file that only attune's pack registry reads.
_ACTION_ONLY = (
    "enabled",
    "workflow_file",
    "output",
    "tags",
    "default_execution_permission_set_refs",
    "worker_selector",
    "worker_tolerations",
    "worker_affinity",
)


def _action_file(data: dict[str, Any], smap: SourceMap) -> dict[str, Any]:
    """An attune workflow action (``actions/NAME.yaml`` with ``workflow_file``): its graph file
    (relative to the action's folder) with the action's ``ref``, ``label``, ``description`` and
    ``parameters``. Errors in the graph point into the graph file from here on."""
    from .loader import _normalise_tasks, check_regular_file, parse_document
    from .models import ParameterSpec

    relative = data.get("workflow_file")
    if not isinstance(relative, str) or not relative:
        raise smap.error("'workflow_file' must be a file name", ("workflow_file",))
    if not smap.file:
        raise smap.error(
            "an attune action's 'workflow_file' needs the action's own file (load it by path)",
            ("workflow_file",),
        )
    parameters = _parameters(data.get("parameters") or {})
    if not isinstance(parameters, dict):
        raise smap.error("'parameters' must be a mapping", ("parameters",))
    for name, schema in parameters.items():
        try:
            ParameterSpec.model_validate(schema)
        except ValueError as exc:
            errors = getattr(exc, "errors", None)
            detail = errors()[0].get("msg", "invalid") if callable(errors) else str(exc)
            raise smap.error(f"parameter {name!r}: {detail}", ("parameters", name)) from None
    from ..exceptions import SpecError

    graph = Path(smap.file).parent / relative
    try:
        check_regular_file(graph)
        text = graph.read_text(encoding="utf-8")
    except SpecError as exc:
        raise smap.error(f"workflow_file {relative!r}: {exc.message}", ("workflow_file",)) from None
    except (OSError, UnicodeDecodeError) as exc:
        reason = getattr(exc, "strerror", None) or type(exc).__name__
        raise smap.error(f"workflow_file {relative!r}: {reason}", ("workflow_file",)) from None
    body, gsmap = parse_document(text, file=str(graph))
    if not isinstance(body, dict):
        raise gsmap.error("a workflow must be a mapping of fields")
    body = _normalise_tasks(body, (), gsmap)
    merged = {k: v for k, v in data.items() if k not in _ACTION_ONLY}
    merged.pop("parameters", None)
    merged.update(body)
    if parameters:
        merged["parameters"] = parameters
    for attribute in ("values", "keys", "blocks", "quoted"):
        setattr(smap, attribute, getattr(gsmap, attribute))
    smap.file = gsmap.file
    return merged


def _is_schema(value: Any) -> bool:
    return isinstance(value, dict) and ("type" in value or "properties" in value)


def translate_attune(data: dict[str, Any], smap: SourceMap) -> dict[str, Any]:
    """The native document for an attune workflow (or workflow action file)."""
    from . import dialect_functions  # noqa: F401  # registers the run-time functions

    if "workflow_file" in data and "tasks" not in data:
        data = _action_file(data, smap)

    smap.dialect = "attune" + (f" {data['version']}" if data.get("version") else "")
    smap.dialect_names = DIALECT_NAMES
    pack = _pack_of(data, smap)
    out = {k: v for k, v in data.items() if k not in ("ref", "label", "metadata", "output_schema")}
    if "output" in out:
        # attune: ``output`` is the JSON Schema of what the workflow produces (``output_map``
        # makes it); informational, like ``output_schema``.
        if not _is_schema(out["output"]):
            raise smap.error(
                "attune 'output' is a JSON Schema of the outputs ({type: object, properties:"
                " ...}); map values with 'output_map'",
                ("output",),
            )
        out.pop("output")
    if "name" not in out and isinstance(data.get("ref"), str):
        out = {"name": data["ref"], **out}
        line, col = smap.locate(("ref",))
        if line is not None:
            smap.values[("name",)] = (line, col or 1)
    if "description" not in out and isinstance(data.get("label"), str):
        out["description"] = data["label"]
    if "parameters" in out:
        out["parameters"] = _parameters(out["parameters"])
    if "vars" in out:
        out["vars"] = _expression(_vars(out["vars"]), pack)
    if "output_map" in out:
        out["output_map"] = _expression(out["output_map"], pack)
    if isinstance(out.get("tasks"), dict):
        raw = out["tasks"]
        out["tasks"] = {k: _task(v, smap, ("tasks", k), pack) for k, v in raw.items()}
        out["tasks"] = _guards(raw, out["tasks"], smap, pack)
    return out
