"""Write an edited workflow back in the author's own YAML.

An edit (the graph widget's, the workflow editor's) changes the document as plain data. Dumping
that data anew would reformat everything: comments gone, quotes changed, flow lists turned into
blocks. Instead the author's text is loaded with ruamel.yaml's round-trip loader, the edited
data is merged into it (only what differs is touched: keys removed, added or re-ordered, values
replaced), and the result is dumped again. Comments, key order, quoting and flow/block style of
everything the edit did not touch come back as they were.

The merge is checked: the new text must load (with the project's own YAML reader) to exactly
the edited data. When it does not (a corner of ruamel.yaml, a document shape the merge does not
know), :func:`round_trip` returns None and the caller writes the plain dump instead: correctness
first, style second.
"""

from __future__ import annotations

import io
import json
from typing import Any

import yaml

__all__ = ["round_trip"]


def _yaml() -> Any:
    from ruamel.yaml import YAML

    rt = YAML(typ="rt")
    rt.preserve_quotes = True
    rt.width = 4096  # never re-wrap the author's long lines
    return rt


def _is_small_leaf(data: dict[Any, Any] | list[Any]) -> bool:
    """Whether ``data`` is written in flow style (``{seconds: 1}``, ``[a, b]``): a short leaf."""
    values = list(data.values()) if isinstance(data, dict) else list(data)
    if not values:
        return True
    if len(values) > 6:
        return False
    for value in values:
        if isinstance(value, dict | list) or (isinstance(value, str) and "\n" in value):
            return False
    return len(json.dumps(data, default=str)) <= 70


def _convert(value: Any, *, flow: bool | None = None) -> Any:
    """Plain data as ruamel nodes, styled as ``dump_document`` would write them."""
    from ruamel.yaml.comments import CommentedMap, CommentedSeq
    from ruamel.yaml.scalarstring import LiteralScalarString

    if isinstance(value, dict):
        out = CommentedMap()
        for key, item in value.items():
            out[key] = _convert(item)
        if flow if flow is not None else _is_small_leaf(value):
            out.fa.set_flow_style()
        else:
            out.fa.set_block_style()
        return out
    if isinstance(value, list):
        seq = CommentedSeq(_convert(item) for item in value)
        if flow if flow is not None else _is_small_leaf(value):
            seq.fa.set_flow_style()
        else:
            seq.fa.set_block_style()
        return seq
    if isinstance(value, str) and "\n" in value:
        return LiteralScalarString(value)
    return value


def _same(old: Any, new: Any) -> bool:
    if type(new) is bool or type(old) is bool:
        return type(new) is type(old) and old == new
    try:
        return bool(old == new) and (isinstance(old, str) == isinstance(new, str))
    except Exception:
        return False


def _flow_of(node: Any) -> bool | None:
    fa = getattr(node, "fa", None)
    return fa.flow_style() if fa is not None else None


def _merge_map(old: Any, new: dict[Any, Any]) -> None:
    removed = [k for k in old if k not in new]
    added = [k for k in new if k not in old]
    if len(removed) == 1 and len(added) == 1 and isinstance(old[removed[0]], dict):
        # A rename (a task's): keep the node, and its comments and styles, under the new key.
        position = list(old).index(removed[0])
        old.insert(position, added[0], old.pop(removed[0]))
        removed = []
    for key in removed:
        del old[key]
    # A new entry among block-style siblings (a task among tasks) is written in block style.
    sibling = next((v for v in old.values() if isinstance(v, dict)), None)
    sibling_flow = _flow_of(sibling) if sibling is not None else None
    for index, (key, value) in enumerate(new.items()):
        if key in old:
            current = old[key]
            if isinstance(current, dict) and isinstance(value, dict):
                _merge_map(current, value)
            elif isinstance(current, list) and isinstance(value, list):
                if not _same(current, value):
                    old[key] = _merge_list(current, value)
            elif not _same(current, value):
                old[key] = _convert(value, flow=_flow_of(current))
            keys = list(old)
            if keys.index(key) != index:  # a rename put the key elsewhere: restore its place
                moved = old.pop(key)
                old.insert(index, key, moved)
        else:
            flow = False if isinstance(value, dict) and sibling_flow is False else None
            old.insert(index, key, _convert(value, flow=flow))


def _merge_list(old: Any, new: list[Any]) -> Any:
    if len(old) != len(new):
        return _convert(new, flow=_flow_of(old))
    for i, (current, value) in enumerate(zip(old, new, strict=True)):
        if isinstance(current, dict) and isinstance(value, dict):
            _merge_map(current, value)
        elif isinstance(current, list) and isinstance(value, list):
            if not _same(current, value):
                old[i] = _merge_list(current, value)
        elif not _same(current, value):
            old[i] = _convert(value, flow=_flow_of(current))
    return old


def _indents(text: str) -> tuple[int, int]:
    """(mapping indent, dash offset of block sequences) the author used, read from the text."""
    from collections import Counter

    mapping: Counter[int] = Counter()
    dashes: Counter[int] = Counter()
    parents: list[int] = []  # indents of the enclosing "key:" lines
    for raw in text.splitlines():
        stripped = raw.strip()
        if not stripped or stripped.startswith("#"):
            continue
        col = len(raw) - len(raw.lstrip(" "))
        while (
            parents
            and parents[-1] >= col
            and not (stripped.startswith("- ") and parents[-1] == col)
        ):
            parents.pop()
        if parents:
            if stripped.startswith("- "):
                dashes[col - parents[-1]] += 1
            elif col > parents[-1]:
                mapping[col - parents[-1]] += 1
        if stripped.endswith(":") and not stripped.startswith("- "):
            parents.append(col)
    indent = mapping.most_common(1)[0][0] if mapping else 2
    offset = dashes.most_common(1)[0][0] if dashes else 0
    return indent, offset


def round_trip(text: str, document: dict[str, Any]) -> str | None:
    """``text`` (the author's YAML) changed to say ``document``; None when that cannot be done.

    Parameters
    ----------
    text : str
        The YAML as the author wrote it (a file's text, the body of a ``%%workflow`` cell).
    document : dict
        The edited document, plain data.
    """
    try:
        rt = _yaml()
        data = rt.load(text)
        if not isinstance(data, dict):
            return None
        _merge_map(data, document)
        indent, offset = _indents(text)
        rt.indent(mapping=indent, sequence=offset + 2, offset=offset)
        out = io.StringIO()
        rt.dump(data, out)
        result = out.getvalue()
    except Exception:
        return None
    try:
        if yaml.safe_load(result) != json.loads(json.dumps(document, default=str)):
            return None
    except yaml.YAMLError:
        return None
    return result
