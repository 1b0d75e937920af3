"""Graph edits on a workflow *document*: pure data in, pure data out.

An edit changes the document (the plain data the YAML reads to, in the user's own shapes:
``on_success: b``, ``needs: [...]``, a task list stays what the loader made of it), never the
frozen spec. The caller dumps the changed document back to text (:func:`edited_text`: merged into
the author's YAML where it can be) and loads it with the project's own loader and validator,
exactly as ``%%workflow`` or ``jw.load()`` would read it: what is accepted is what the next
definition of the cell or file will be, and a refused edit leaves everything as it was.

Both surfaces that edit use this module: the graph widget's edit session
(:mod:`jupyter_workflows.jupyter.edit_session`) and the REST editor
(:mod:`jupyter_workflows.server.editor`). It imports nothing above ``spec``.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Iterable, Mapping
from typing import Any, Literal, get_args

import yaml

from ..exceptions import SpecError
from .yaml_roundtrip import _is_small_leaf, round_trip

__all__ = [
    "CONNECT_KINDS",
    "EDIT_OPS",
    "ConnectKind",
    "EditOp",
    "apply_edit",
    "dump_document",
    "edited_text",
    "task_yaml",
]

EditOp = Literal[
    "add_task",  # name, action; optional input (a mapping), after (a task that goes on to it on success)
    "remove_task",  # name; references to it in other tasks' transitions go too
    "connect",  # source, target, kind: one of CONNECT_KINDS (on_success/on_failure/on_complete)
    "disconnect",  # source, target, kind: any EdgeKind the graph drew
    "set_task",  # name, yaml: the task's fields as YAML; optional rename
    "replace",  # yaml: the whole document
]
ConnectKind = Literal["success", "failure", "complete"]
EDIT_OPS: tuple[str, ...] = get_args(EditOp)
CONNECT_KINDS: tuple[str, ...] = get_args(ConnectKind)

_TRANSITION_FIELDS = ("on_success", "on_failure", "on_complete")
_NAME_RE = r"^[A-Za-z_][A-Za-z0-9_.-]*$"


class _Dumper(yaml.SafeDumper):
    """Readable YAML: block style for structure, flow style for small leaf mappings and lists
    (``input: {seconds: 1}``, ``on_success: [a, b]``), ``|`` blocks for multi-line strings, no
    anchors."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def _represent_dict(dumper: _Dumper, data: dict[Any, Any]) -> yaml.Node:
    node = dumper.represent_mapping("tag:yaml.org,2002:map", data.items())
    node.flow_style = _is_small_leaf(data)
    return node


def _represent_list(dumper: _Dumper, data: list[Any]) -> yaml.Node:
    node = dumper.represent_sequence("tag:yaml.org,2002:seq", data)
    node.flow_style = _is_small_leaf(data)
    return node


def _represent_str(dumper: _Dumper, data: str) -> yaml.Node:
    if "\n" in data:  # the emitter falls back to quotes where a block cannot hold the text
        return dumper.represent_scalar("tag:yaml.org,2002:str", data, style="|")
    return dumper.represent_str(data)


class _Block(dict):
    """A mapping always written in block style: the top of a document."""


def _represent_block(dumper: _Dumper, data: _Block) -> yaml.Node:
    node = dumper.represent_mapping("tag:yaml.org,2002:map", data.items())
    node.flow_style = False
    return node


_Dumper.add_representer(_Block, _represent_block)
_Dumper.add_representer(dict, _represent_dict)
_Dumper.add_representer(list, _represent_list)
_Dumper.add_representer(str, _represent_str)


def dump_document(document: Mapping[str, Any], *, json_file: bool = False) -> str:
    """The document as readable YAML (or JSON, for a ``.json`` file), keys in their order."""
    if json_file:
        return json.dumps(document, indent=2, ensure_ascii=False, default=str) + "\n"
    return yaml.dump(
        _Block(document), Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=100
    )


def edited_text(text: str | None, document: dict[str, Any], *, json_file: bool) -> str:
    """The edited ``document`` as text: merged into the author's YAML ``text`` where it can be,
    so comments, key order, quoting and flow/block style of everything the edit left alone are
    kept (:mod:`.yaml_roundtrip`); else (JSON, no text, a merge that does not check out) the
    plain dump."""
    if not json_file and text:
        merged = round_trip(text, document)
        if merged is not None:
            return merged
    return dump_document(document, json_file=json_file)


def task_yaml(document: dict[str, Any]) -> dict[str, str]:
    """Task name -> its fields as YAML, as written (the first of a name, at any level)."""
    out: dict[str, str] = {}
    for tasks in _task_tables(document):
        for name, body in tasks.items():
            if isinstance(name, str) and name not in out:
                out[name] = dump_document(body) if isinstance(body, dict) and body else ""
    return out


def _names(value: Any) -> list[str]:
    """A ``name or list of names`` field as a list."""
    if value is None:
        return []
    if isinstance(value, list):
        return list(value)
    return [value]


def _one_or_list(names: list[str]) -> str | list[str]:
    return names[0] if len(names) == 1 else names


def _task_tables(document: dict[str, Any]) -> Iterable[dict[str, Any]]:
    """Every ``tasks`` mapping of the document: the top one, then parallel tasks' own."""
    stack = [document.get("tasks")]
    while stack:
        tasks = stack.pop()
        if not isinstance(tasks, dict):
            continue
        yield tasks
        stack.extend(body.get("tasks") for body in tasks.values() if isinstance(body, dict))


def _as_mapping(tasks: Any) -> Any:
    """A task list (``[{name: a, ...}]`` or ``[{a: {...}}]``) as the mapping it means."""
    if not isinstance(tasks, list):
        return tasks
    mapping: dict[str, Any] = {}
    for item in tasks:
        if isinstance(item, dict) and isinstance(item.get("name"), str):
            body = {k: v for k, v in item.items() if k != "name"}
            mapping[item["name"]] = body
        elif isinstance(item, dict) and len(item) == 1:
            mapping.update(item)
        else:  # not a task list the loader accepts: leave it, the loader will say why
            return tasks
    return mapping


def _normalise(document: dict[str, Any]) -> dict[str, Any]:
    """Task lists become mappings (at every level), so that tasks can be found by name."""
    if "tasks" in document:
        document["tasks"] = _as_mapping(document["tasks"])
    for tasks in list(_task_tables(document)):
        for body in tasks.values():
            if isinstance(body, dict) and "tasks" in body:
                body["tasks"] = _as_mapping(body["tasks"])
    return document


def _find(document: dict[str, Any], name: str) -> dict[str, Any] | None:
    """The ``tasks`` mapping that holds task ``name``."""
    for tasks in _task_tables(document):
        if name in tasks:
            return tasks
    return None


def _rewrite_references(document: dict[str, Any], old: str, new: str | None) -> None:
    """Point every transition to ``old`` at ``new``, or drop it (``new`` None)."""

    def swap(names: list[str]) -> list[str]:
        out = []
        for n in names:
            if n != old:
                out.append(n)
            elif new is not None:
                out.append(new)
        return out

    for tasks in list(_task_tables(document)):
        for body in tasks.values():
            if not isinstance(body, dict):
                continue
            for field in (*_TRANSITION_FIELDS, "needs"):
                if field in body:
                    kept = swap(_names(body[field]))
                    if kept:
                        body[field] = _one_or_list(kept)
                    else:
                        del body[field]
            if isinstance(body.get("next"), list | str):
                entries = body["next"] if isinstance(body["next"], list) else [body["next"]]
                kept_entries: list[Any] = []
                for entry in entries:
                    if isinstance(entry, str):
                        kept_entries.extend(swap([entry]))
                    elif isinstance(entry, dict) and "do" in entry:
                        do = swap(_names(entry["do"]))
                        if do:
                            kept_entries.append({**entry, "do": _one_or_list(do)})
                    else:
                        kept_entries.append(entry)
                if kept_entries:
                    body["next"] = kept_entries
                else:
                    del body["next"]
            if isinstance(body.get("decision"), list):
                kept_decisions: list[Any] = []
                for entry in body["decision"]:
                    if not isinstance(entry, dict):
                        kept_decisions.append(entry)
                    elif "default" in entry:
                        target = swap(_names(entry["default"]))
                        if target:
                            kept_decisions.append({**entry, "default": _one_or_list(target)})
                    elif "next" in entry:
                        target = swap(_names(entry["next"]))
                        if target:
                            kept_decisions.append({**entry, "next": _one_or_list(target)})
                    else:
                        kept_decisions.append(entry)
                if kept_decisions:
                    body["decision"] = kept_decisions
                else:
                    del body["decision"]


def _drop_edge(document: dict[str, Any], source: str, target: str, kind: str) -> None:
    """Remove the transitions ``source -> target`` of ``kind`` that the editor can name."""
    tasks = _find(document, source)
    body = tasks.get(source) if tasks is not None else None
    if kind == "needs":
        owner = _find(document, target)
        target_body = owner.get(target) if owner is not None else None
        if isinstance(target_body, dict) and "needs" in target_body:
            kept = [n for n in _names(target_body["needs"]) if n != source]
            if kept:
                target_body["needs"] = _one_or_list(kept)
            else:
                del target_body["needs"]
        return
    if not isinstance(body, dict):
        return
    field = {"success": "on_success", "failure": "on_failure", "complete": "on_complete"}.get(kind)
    if field and field in body:
        kept = [n for n in _names(body[field]) if n != target]
        if kept:
            body[field] = _one_or_list(kept)
        else:
            del body[field]
    if kind in ("success", "failure", "complete", "when") and isinstance(body.get("next"), list):
        wanted = {
            "success": ("succeeded()",),
            "failure": ("failed()",),
            "complete": (None,),
        }.get(kind)
        kept_entries = []
        for entry in body["next"]:
            if isinstance(entry, dict) and target in _names(entry.get("do")):
                when = entry.get("when")
                bare = (
                    when.strip().removeprefix("{{").removesuffix("}}").strip()
                    if isinstance(when, str)
                    else None
                )
                if wanted is None or bare in wanted:
                    do = [n for n in _names(entry["do"]) if n != target]
                    if do:
                        kept_entries.append({**entry, "do": _one_or_list(do)})
                    continue
            kept_entries.append(entry)
        if kept_entries:
            body["next"] = kept_entries
        else:
            del body["next"]
    if kind == "decision" and isinstance(body.get("decision"), list):
        kept_decisions = []
        for entry in body["decision"]:
            if isinstance(entry, dict):
                key = "default" if "default" in entry else "next"
                if target in _names(entry.get(key)):
                    left = [n for n in _names(entry[key]) if n != target]
                    if left:
                        kept_decisions.append({**entry, key: _one_or_list(left)})
                    continue
            kept_decisions.append(entry)
        if kept_decisions:
            body["decision"] = kept_decisions
        else:
            del body["decision"]


def _parse_snippet(text: str, label: str) -> Any:
    """YAML typed into the widget, or a one-line positioned error."""
    try:
        return yaml.safe_load(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        if mark is None:
            raise SpecError(str(exc.problem or "invalid YAML"), file=label) from None
        raise SpecError(
            str(exc.problem or exc.context or "invalid YAML"),
            file=label,
            line=mark.line + 1,
            col=mark.column + 1,
        ) from None
    except yaml.YAMLError as exc:
        raise SpecError(str(exc), file=label) from None


def _require(message: Mapping[str, Any], key: str) -> str:
    value = message.get(key)
    if not isinstance(value, str) or not value.strip():
        raise SpecError(f"the {message.get('op')} edit needs a {key!r}")
    return value.strip()


def apply_edit(document: dict[str, Any], message: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of ``document`` with the edit ``message`` (:class:`~.wire.EditMessage`) applied.

    Only shapes the document: whether the result is a valid workflow is for the loader and the
    validator to say.

    Raises
    ------
    SpecError
        When the edit names what is not there (or already is), with one line saying so.
        ``replace`` is not handled here: its text is loaded as it is, positions and all.
    """
    op = message.get("op")
    doc = _normalise(copy.deepcopy(document))
    tasks_field = doc.get("tasks")
    if tasks_field is None:
        tasks_field = doc["tasks"] = {}
    if not isinstance(tasks_field, dict):
        raise SpecError("the document's 'tasks' is not a mapping of tasks; edit it as YAML")
    if op == "add_task":
        name = _require(message, "name")
        if not re.match(_NAME_RE, name):
            raise SpecError(
                f"{name!r} is not a task name: letters, digits, '_', '.', '-', not starting with a digit"
            )
        if _find(doc, name) is not None:
            raise SpecError(f"there is a task named {name!r} already")
        action = _require(message, "action")
        tasks_field[name] = {"action": action}
        task_input = message.get("input")
        if task_input is not None:
            if not isinstance(task_input, dict):
                raise SpecError("a new task's 'input' is a mapping of names to values")
            tasks_field[name]["input"] = task_input
        after = message.get("after")
        if after:
            return apply_edit(
                doc, {"op": "connect", "source": after, "target": name, "kind": "success"}
            )
        return doc
    if op == "remove_task":
        name = _require(message, "name")
        owner = _find(doc, name)
        if owner is None:
            raise SpecError(f"there is no task {name!r}")
        del owner[name]
        _rewrite_references(doc, name, None)
        return doc
    if op == "connect":
        source, target = _require(message, "source"), _require(message, "target")
        kind = message.get("kind") or "success"
        if kind not in CONNECT_KINDS:
            raise SpecError(f"a new transition is one of {', '.join(CONNECT_KINDS)}, not {kind!r}")
        for task in (source, target):
            if _find(doc, task) is None:
                raise SpecError(f"there is no task {task!r}")
        body = _find(doc, source)[source]  # type: ignore[index]
        if body is None:
            body = _find(doc, source)[source] = {}  # type: ignore[index]
        if not isinstance(body, dict):
            raise SpecError(f"task {source!r} is not a mapping of fields; edit it as YAML")
        field = f"on_{kind}"
        names = _names(body.get(field))
        if target in names:
            raise SpecError(f"{source} already goes on to {target} on {kind}")
        body[field] = _one_or_list([*names, target])
        return doc
    if op == "disconnect":
        source, target = _require(message, "source"), _require(message, "target")
        _drop_edge(doc, source, target, str(message.get("kind") or "success"))
        return doc
    if op == "set_task":
        name = _require(message, "name")
        owner = _find(doc, name)
        if owner is None:
            raise SpecError(f"there is no task {name!r}")
        text = message.get("yaml")
        if not isinstance(text, str):
            raise SpecError("the set_task edit needs the task's fields as 'yaml'")
        body = _parse_snippet(text, f"<task {name}>")
        if body is None:
            body = {}
        if not isinstance(body, dict):
            raise SpecError(
                f"<task {name}>:1:1: a task is a mapping of fields (action: ..., input: ...)"
            )
        rename = (message.get("rename") or "").strip() or name
        if rename != name:
            if not re.match(_NAME_RE, rename):
                raise SpecError(f"{rename!r} is not a task name")
            if _find(doc, rename) is not None:
                raise SpecError(f"there is a task named {rename!r} already")
        # Rebuild the mapping so that a renamed task keeps its place in the document.
        items = [(rename if k == name else k, body if k == name else v) for k, v in owner.items()]
        owner.clear()
        owner.update(items)
        if rename != name:
            _rewrite_references(doc, name, rename)
        return doc
    raise SpecError(f"unknown edit {op!r}; expected one of {', '.join(EDIT_OPS)}")
