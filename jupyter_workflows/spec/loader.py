"""YAML/JSON text -> :class:`WorkflowSpec`, with every error positioned ``FILE:LINE:COL``.

PyYAML's ``safe_load`` forgets where values came from and silently keeps the last of duplicate
keys. So we compose the node tree ourselves and build plain Python data from it, recording a
:class:`SourceMap` (path -> line/column of each key and value) on the way and refusing duplicate
keys. Pydantic then validates the data; its error locations are walked back through the data to
the nearest recorded node, so even an error inside a short form (``retry: 3``) points at the
user's text. JSON is parsed by the same composer (JSON is YAML's flow style), after turning tabs
into spaces, which JSON allows as whitespace and YAML does not.

Bounded, because a document is input (see :mod:`jupyter_workflows.limits`): its size, its nesting
(counted while composing, before PyYAML's recursive composer could overflow the stack) and what
its aliases expand to (every node built is counted against the nodes written, so a "billion
laughs" document is refused after a few thousand nodes, not after 5 GB). Merge keys (``<<``) are
resolved here too, keeping one pair per key, so merging a mapping into itself twice per level
cannot double it per level either. Every failure of PyYAML's scalar constructors (``!!int x``,
``!!bool maybe``, an integer literal over Python's 4,300 digits) is one positioned line.
"""

from __future__ import annotations

import difflib
import os
import re
import stat
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from ..exceptions import SpecError
from ..limits import LIMITS, hint, shorten
from .models import TaskSpec, WorkflowSpec

__all__ = [
    "SourceMap",
    "SpecErrors",
    "gather_errors",
    "load_spec",
    "parse_document",
    "spec_error_from_validation",
]

Path_ = tuple[Any, ...]


@dataclass
class SourceMap:
    """Where each part of a document came from (1-based line and column)."""

    file: str | None = None
    values: dict[Path_, tuple[int, int]] = field(default_factory=dict)
    keys: dict[Path_, tuple[int | None, int | None]] = field(default_factory=dict)
    #: Block scalars (``|``, ``>``): style, and line/column where their content starts (the
    #: value position is the indicator's, one line above the text a template error is in).
    blocks: dict[Path_, tuple[str, int, int]] = field(default_factory=dict)
    #: Scalars written in quotes (their text starts one column after the value's position).
    quoted: set[Path_] = field(default_factory=set)
    #: The dialect the document was written in (``"orquesta 1.0"``), ``None`` when native; and
    #: the extra names its templates may use (see :mod:`jupyter_workflows.spec.dialects`).
    dialect: str | None = None
    dialect_names: dict[str, Any] | None = None

    def locate(self, path: Iterable[Any], *, key: bool = False) -> tuple[int | None, int | None]:
        """The position of ``path`` (its key when ``key``), else of its nearest ancestor."""
        path = tuple(path)
        if key and path in self.keys:
            return self.keys[path]
        while path:
            if path in self.values:
                return self.values[path]
            path = path[:-1]
        return self.values.get((), (None, None))

    def locate_line(self, path: Iterable[Any], line_in_value: int) -> tuple[int | None, int | None]:
        """The position of line ``line_in_value`` (1-based) of the string at ``path``.

        Exact for literal blocks (``|``); a folded block (``>``) joins its lines, so it points at
        the block's first line of text.
        """
        path = tuple(path)
        block = self.blocks.get(path)
        if block is not None:
            style, first, block_col = block
            if style == "|":
                return first + line_in_value - 1, block_col
            return first, block_col
        line, col = self.locate(path)
        if line is not None and line_in_value > 1:
            return line + line_in_value - 1, 1
        return line, col

    def error(self, message: str, path: Iterable[Any] = (), *, key: bool = False) -> SpecError:
        line, col = self.locate(path, key=key)
        return SpecError(message, file=self.file, line=line, col=col)


class SpecErrors(SpecError):
    """Several errors found in one document.

    It reads as its first error (message, position, ``str()``), so everything that shows one
    line keeps doing so; ``errors`` holds them all for ``jupyter-workflows validate``, which
    prints one ``FILE:LINE:COL: message`` line each.
    """

    def __init__(self, errors: list[SpecError]) -> None:
        first = errors[0]
        super().__init__(first.message, file=first.file, line=first.line, col=first.col)
        self.errors = list(errors)


def gather_errors(errors: list[SpecError]) -> SpecError:
    """One error as itself; several as a :class:`SpecErrors` that reads as the first."""
    unique: list[SpecError] = []
    seen: set[str] = set()
    for error in errors:
        for one in getattr(error, "errors", None) or [error]:
            if str(one) not in seen:
                seen.add(str(one))
                unique.append(one)
    return unique[0] if len(unique) == 1 else SpecErrors(unique)


class _Loader(yaml.SafeLoader):
    """A SafeLoader we only use to compose nodes and construct scalars."""

    def __init__(self, text: str) -> None:
        super().__init__(text)
        self.source_lines = text.splitlines()
        self.depth = 0  # of the node being composed
        self.composed = 0  # nodes (and alias references) written in the document
        self.built = 0  # nodes built into data, an aliased node once per reference
        self.merged: dict[int, list[tuple[yaml.Node, yaml.Node]]] = {}  # id -> flat pairs
        self.merging: set[int] = set()

    def compose_node(self, parent: Any, index: Any) -> Any:
        self.depth += 1
        try:
            if self.depth > LIMITS.document_nesting + 1:
                mark = self.peek_event().start_mark
                raise SpecError(
                    f"the document nests too deeply (more than {LIMITS.document_nesting} levels) "
                    + hint("document_nesting"),
                    line=mark.line + 1,
                    col=mark.column + 1,
                )
            return super().compose_node(parent, index)
        finally:
            self.depth -= 1
            self.composed += 1


class _JSONLoader(_Loader):
    """JSON numbers as JSON reads them: YAML 1.1 wants a dot in a float, so ``1e-05`` would be
    a string."""


_JSONLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?[eE][-+]?[0-9]+$"),
    list("-0123456789"),
)


_PLAIN_TAGS = ("tag:yaml.org,2002:map", "tag:yaml.org,2002:seq")


def _mark(node: yaml.Node) -> tuple[int, int]:
    return node.start_mark.line + 1, node.start_mark.column + 1


def parse_document(text: str, *, file: str | None = None) -> tuple[Any, SourceMap]:
    """Parse YAML or JSON text into plain data and its :class:`SourceMap`.

    A ``.json`` file (the extension in any case, as ``sources`` matches it) must be strict JSON
    (``json.loads`` decides: no trailing commas, single quotes, bare words, ``NaN``); the YAML
    composer reads it too, for the positions.

    Raises
    ------
    SpecError
        On a syntax error, a duplicate key, or an empty document.
    """
    if file is None or not file.lower().endswith(".json"):
        return _compose(text, file, "YAML")
    try:
        data, smap = _compose(text, file, "JSON")
    except SpecError as composed:
        # The composer's errors are the better placed (an unclosed bracket points where it
        # opens), so they win; JSON it cannot compose at all (a key over 1024 characters) still
        # loads, only without positions.
        try:
            return _strict_json(text, file), SourceMap(file=file, values={(): (1, 1)})
        except SpecError:
            raise composed from None
    _strict_json(text, file)
    return data, smap


class _NotJSON(Exception):
    """Raised from ``json.loads`` hooks: a non-JSON constant or a duplicate key."""


def _strict_json(text: str, file: str | None) -> Any:
    """``json.loads(text)``, refusing what RFC 8259 does not allow, as a positioned SpecError."""
    import json

    body = text[1:] if text.startswith("\ufeff") else text  # a BOM, which YAML skips too

    def constant(name: str) -> Any:
        raise _NotJSON(name)

    def no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        out = dict(pairs)
        if len(out) != len(pairs):
            raise _NotJSON(None)
        return out

    try:
        return json.loads(body, parse_constant=constant, object_pairs_hook=no_duplicates)
    except json.JSONDecodeError as exc:
        message = exc.msg
        if exc.pos == len(body) - len(body.lstrip()) and body.lstrip()[:1] not in ("{", "["):
            message += " (a .json file holds JSON; write YAML in a .yaml file)"
        raise SpecError(
            f"JSON syntax error: {message}", file=file, line=exc.lineno, col=exc.colno
        ) from None
    except _NotJSON as exc:
        if exc.args[0] is None:  # pragma: no cover - the composer reports duplicates first
            raise SpecError("JSON: duplicate key", file=file) from None
        line, col = _outside_strings(body, exc.args[0])
        raise SpecError(
            f"JSON syntax error: {exc.args[0]} is not a JSON value (JSON has no NaN or Infinity)",
            file=file,
            line=line,
            col=col,
        ) from None
    except RecursionError:
        raise SpecError("the document nests too deeply", file=file, line=1, col=1) from None


def _outside_strings(text: str, word: str) -> tuple[int, int]:
    """1-based line and column of the first ``word`` in ``text`` that is not inside a string."""
    in_string = escaped = False
    for i, ch in enumerate(text):
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif text.startswith(word, i):
            line = text.count("\n", 0, i) + 1
            return line, i - (text.rfind("\n", 0, i) + 1) + 1
    return 1, 1  # pragma: no cover - json.loads saw it, so it is there


def _compose(text: str, file: str | None, language: str) -> tuple[Any, SourceMap]:
    smap = SourceMap(file=file)
    if len(text) > LIMITS.document_chars:
        raise SpecError(
            f"the document has {len(text):,} characters, more than {LIMITS.document_chars:,} "
            + hint("document_chars"),
            file=file,
            line=1,
            col=1,
        )
    if text.lstrip("\ufeff \t\r\n")[:1] in ("{", "["):
        is_json = True
        text = text.replace("\t", " ")  # JSON whitespace; same columns
    else:
        is_json = False
    try:
        loader = (_JSONLoader if is_json else _Loader)(text)
    except yaml.reader.ReaderError as exc:  # a control character: PyYAML checks before parsing
        line = text.count("\n", 0, exc.position) + 1
        col = exc.position - (text.rfind("\n", 0, exc.position) + 1) + 1
        raise SpecError(
            f"{language} syntax error: character #x{exc.character:04x} is not allowed",
            file=file,
            line=line,
            col=col,
        ) from None
    try:
        node = loader.get_single_node()
    except SpecError as exc:  # our nesting limit, raised while composing
        loader.dispose()
        raise SpecError(exc.message, file=file, line=exc.line, col=exc.col) from None
    except yaml.MarkedYAMLError as exc:
        raise _syntax_error(exc, language, file) from None
    except yaml.YAMLError as exc:  # pragma: no cover - PyYAML marks nearly everything
        raise SpecError(f"{language} syntax error: {exc}", file=file, line=1, col=1) from None
    except RecursionError:  # PyYAML composes recursively: absurd nesting
        loader.dispose()
        raise SpecError("the document nests too deeply", file=file, line=1, col=1) from None
    try:
        if node is None:
            raise SpecError("the document is empty", file=file, line=1, col=1)
        data = _build(loader, node, (), smap, depth=0)
    finally:
        loader.dispose()
    return data, smap


def _syntax_error(exc: yaml.MarkedYAMLError, language: str, file: str | None) -> SpecError:
    """One line from PyYAML's two-part message (context + problem, each with a mark)."""
    problem, context = exc.problem, exc.context
    mark = exc.problem_mark or exc.context_mark
    if problem and context and problem.startswith("but "):
        # "expected a single document in the stream" + "but found another document"
        message = f"{context} {problem}"
    else:
        message = problem or context or "invalid syntax"
        if "'\\t'" in message:
            message += " (YAML indents with spaces, not tabs)"
        if problem and context and exc.context_mark is not None:
            cmark = exc.context_mark
            what = re.sub(r"^while (scanning|parsing) an? ", "", context)
            if "end of stream" in problem or "<stream end>" in problem:
                # An unclosed quote or bracket: where it opened is where the mistake is.
                mark = cmark
                message = f"{problem}: the {what} that starts here is never closed"
            elif exc.problem_mark is None or cmark.line != exc.problem_mark.line:
                where = f"line {cmark.line + 1}, column {cmark.column + 1}"
                message = f"{problem} (in the {what} that starts at {where})"
    return SpecError(
        f"{language} syntax error: {message}",
        file=file,
        line=mark.line + 1 if mark else None,
        col=mark.column + 1 if mark else None,
    )


def _block_start(node: yaml.ScalarNode, lines: list[str]) -> tuple[str, int, int]:
    """Style and 1-based line/column of the first text line of a block scalar."""
    first = node.start_mark.line + 1  # 0-based index of the line after the indicator
    col = node.start_mark.column + 1
    for i in range(first, min(node.end_mark.line + 1, len(lines))):
        if lines[i].strip():
            col = len(lines[i]) - len(lines[i].lstrip(" ")) + 1
            break
    return str(node.style), first + 1, col


def _build(loader: _Loader, node: yaml.Node, path: Path_, smap: SourceMap, depth: int) -> Any:
    if depth > LIMITS.document_nesting:
        raise smap.error(
            f"the document nests too deeply (more than {LIMITS.document_nesting} levels) "
            f"(recursive alias?) {hint('document_nesting')}",
            path,
        )
    loader.built += 1
    if loader.built > loader.composed * LIMITS.alias_expansion_factor + LIMITS.alias_slack_nodes:
        line, col = _mark(node)
        raise SpecError(
            f"YAML aliases expand this document to more than {LIMITS.alias_expansion_factor} "
            f"times its {loader.composed:,} nodes (an alias bomb?) {hint('alias_expansion_factor')}",
            file=smap.file,
            line=line,
            col=col,
        )
    smap.values[path] = _mark(node)
    if isinstance(node, (yaml.MappingNode, yaml.SequenceNode)) and node.tag not in _PLAIN_TAGS:
        # Built here without PyYAML's constructors, so a tag would otherwise be ignored silently.
        line, col = _mark(node)
        raise SpecError(
            f"invalid value: unsupported tag {node.tag!r}", file=smap.file, line=line, col=col
        )
    if isinstance(node, yaml.MappingNode):
        written = {id(key_node) for key_node, _ in node.value}
        out: dict[Any, Any] = {}
        first: dict[Any, yaml.Node] = {}
        # YAML merge keys (<<) resolved: merged pairs come first
        for key_node, value_node in _flatten(loader, node, smap):
            if not isinstance(key_node, yaml.ScalarNode):
                line, col = _mark(key_node)
                raise SpecError(
                    "a mapping key must be a plain value", file=smap.file, line=line, col=col
                )
            key = _scalar(loader, key_node, smap, "key")
            if key is None:
                line, col = _mark(key_node)
                raise SpecError(
                    "a mapping key must be a plain value", file=smap.file, line=line, col=col
                )
            if not isinstance(key, str):
                key = str(key).lower() if isinstance(key, bool) else str(key)
            if key in first and id(first[key]) in written and id(key_node) in written:
                # Only keys written in this mapping clash; one written here overrides a merged one.
                line, col = _mark(key_node)
                was = first[key].start_mark.line + 1
                raise SpecError(
                    f"duplicate key {shorten(repr(key))} (first defined on line {was})",
                    file=smap.file,
                    line=line,
                    col=col,
                )
            first[key] = key_node
            smap.keys[(*path, key)] = _mark(key_node)
            out[key] = _build(loader, value_node, (*path, key), smap, depth + 1)
        return out
    if isinstance(node, yaml.SequenceNode):
        return [
            _build(loader, item, (*path, i), smap, depth + 1) for i, item in enumerate(node.value)
        ]
    if isinstance(node, yaml.ScalarNode) and node.style in ("|", ">"):
        smap.blocks[path] = _block_start(node, loader.source_lines)
    elif isinstance(node, yaml.ScalarNode) and node.style in ('"', "'"):
        smap.quoted.add(path)
    return _scalar(loader, node, smap, "value")


def _scalar(loader: _Loader, node: yaml.Node, smap: SourceMap, what: str) -> Any:
    """A scalar node's value; any failure of PyYAML's constructors as one positioned line."""
    try:
        value = loader.construct_object(node, deep=True)
    except yaml.constructor.ConstructorError as exc:
        line, col = _mark(node)
        raise SpecError(
            f"invalid {what}: {exc.problem}", file=smap.file, line=line, col=col
        ) from None
    except (ValueError, KeyError, TypeError, OverflowError, AttributeError, IndexError) as exc:
        # ``!!int x``, ``!!float abc``, ``!!bool maybe``, ``!!timestamp x`` (AttributeError), an
        # integer literal over Python's int/str conversion limit (4,300 digits).
        line, col = _mark(node)
        text = str(getattr(node, "value", ""))
        tag = str(node.tag).rsplit(":", 1)[-1]
        if "digits" in str(exc):
            message = (
                f"invalid {what}: an integer literal of {len(text):,} characters is too long "
                f"(Python reads at most {_int_digits():,} digits; quote it to keep a string)"
            )
        else:
            message = f"invalid {what}: {shorten(repr(text))} is not a valid !!{tag}"
        raise SpecError(message, file=smap.file, line=line, col=col) from None
    return _join_surrogates(value)


def _int_digits() -> int:
    import sys

    get = getattr(sys, "get_int_max_str_digits", None)
    return int(get()) if get is not None else 4300


_MERGE_TAG = "tag:yaml.org,2002:merge"


def _flatten(loader: _Loader, node: yaml.MappingNode, smap: SourceMap) -> list[Any]:
    """``node``'s pairs with merge keys resolved: merged pairs first, one per key, then its own.

    PyYAML's ``flatten_mapping`` copies every merged pair, duplicates included, into the node
    (so ``<<: [*a, *a]`` per level doubles each level) and raises a multi-line error for
    ``<<: 5``. Here the first mapping in a merge list wins, as in YAML's merge spec and PyYAML,
    a key is kept once, and nodes are never changed (an aliased mapping is flattened once).
    """
    cached = loader.merged.get(id(node))
    if cached is not None:
        return cached
    if not any(k.tag == _MERGE_TAG for k, _ in node.value):
        return node.value
    if id(node) in loader.merging:
        line, col = _mark(node)
        raise SpecError(
            "a merge key (<<) merges a mapping into itself", file=smap.file, line=line, col=col
        )
    loader.merging.add(id(node))
    try:
        merged: dict[Any, tuple[yaml.Node, yaml.Node]] = {}
        own: list[tuple[yaml.Node, yaml.Node]] = []
        for key_node, value_node in node.value:
            if key_node.tag != _MERGE_TAG:
                own.append((key_node, value_node))
                continue
            if isinstance(value_node, yaml.MappingNode):
                sources = [value_node]
            elif isinstance(value_node, yaml.SequenceNode):
                sources = list(value_node.value)
            else:
                sources = [value_node]
            for source in sources:
                if not isinstance(source, yaml.MappingNode):
                    line, col = _mark(source)
                    raise SpecError(
                        "a merge key (<<) takes a mapping or a list of mappings, not "
                        + ("a list" if isinstance(source, yaml.SequenceNode) else "a scalar"),
                        file=smap.file,
                        line=line,
                        col=col,
                    )
            for source in sources:
                for pair in _flatten(loader, source, smap):
                    loader.built += 1
                    k = pair[0]
                    ident = (k.tag, k.value) if isinstance(k, yaml.ScalarNode) else id(k)
                    merged.setdefault(ident, pair)  # the first source wins
        flat = list(merged.values()) + own
    finally:
        loader.merging.discard(id(node))
    loader.merged[id(node)] = flat
    return flat


def _join_surrogates(value: Any) -> Any:
    """``"\\ud83d\\ude00"`` (how JSON escapes one emoji) is one character, as in ``json.loads``.

    PyYAML reads each ``\\u`` escape as its own code point and leaves the halves apart.
    """
    if isinstance(value, str) and any("\ud800" <= c <= "\udfff" for c in value):
        return value.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
    return value


def _normalise_tasks(data: Any, path: Path_, smap: SourceMap) -> Any:
    """Turn a task list into a mapping, moving source positions along."""
    if not isinstance(data, dict):
        return data
    tasks = data.get("tasks")
    if isinstance(tasks, list):
        mapping: dict[str, Any] = {}
        for i, item in enumerate(tasks):
            ipath = (*path, "tasks", i)
            if not isinstance(item, dict):
                raise smap.error("each entry of a task list must be a mapping", ipath)
            if isinstance(item.get("name"), str):
                name = item["name"]
                body = {k: v for k, v in item.items() if k != "name"}
                old, name_key = ipath, (*ipath, "name")
            elif len(item) == 1 and isinstance(next(iter(item.values())), dict):
                ((name, body),) = item.items()
                old, name_key = (*ipath, name), (*ipath, name)
            else:
                raise smap.error("a task list entry needs a 'name' (or is {NAME: {...}})", ipath)
            if name in mapping:
                raise smap.error(f"duplicate task name {name!r}", name_key, key=True)
            new = (*path, "tasks", name)
            _move(smap, old, new)
            smap.keys[new] = smap.locate(name_key, key=True)
            mapping[name] = body
        data = {**data, "tasks": mapping}
        tasks = mapping
    if isinstance(tasks, dict):
        data = dict(data)
        data["tasks"] = {
            name: _normalise_tasks(body, (*path, "tasks", name), smap)
            for name, body in tasks.items()
        }
    return data


def _move(smap: SourceMap, old: Path_, new: Path_) -> None:
    n = len(old)
    tables: tuple[dict[Path_, Any], ...] = (smap.values, smap.keys, smap.blocks)
    for table in tables:
        for p in [p for p in table if p[:n] == old]:
            table[(*new, *p[n:])] = table[p]


def _fields(model: type[BaseModel]) -> list[str]:
    return list(model.model_fields)


def _resolve_loc(data: Any, loc: tuple[Any, ...], *, field_error: bool) -> tuple[Path_, bool]:
    """Follow a pydantic error location through the data; skip union/validator tags.

    ``field_error``: a missing or extra field, whose last part names a field (not a union
    member tag such as ``literal['all']`` or ``constrained-int``).
    """
    path: list[Any] = []
    cur = data
    for i, part in enumerate(loc):
        if (isinstance(cur, dict) and part in cur) or (
            isinstance(cur, list) and isinstance(part, int) and 0 <= part < len(cur)
        ):
            path.append(part)
            cur = cur[part]
        elif part == "[key]":
            return tuple(path), True
        elif field_error and i == len(loc) - 1 and isinstance(part, str):
            return (*path, part), False  # a missing or extra field: the parent mapping
    return tuple(path), False


_EXPECT = "Input should be "


def _plain_message(err: Any) -> str:
    text = str(err["msg"])
    for prefix in ("Value error, ", "Assertion failed, "):
        if text.startswith(prefix):
            text = text[len(prefix) :]
    # YAML users write mappings; the model class names are internal.
    text = re.sub(r"a valid dictionary( or instance of \w+)?", "a mapping", text)
    return text


def _model_at(path: Path_) -> type[BaseModel] | None:
    """Which model a mapping at ``path`` is validated by (for 'did you mean')."""
    from .models import (
        CachePolicy,
        DecisionEntry,
        ParameterSpec,
        RetryPolicy,
        TaskDefaults,
        Transition,
    )

    if not path:
        return WorkflowSpec
    if path == ("defaults",):
        return TaskDefaults
    if len(path) >= 2 and path[-2] == "tasks":
        return TaskSpec
    if len(path) == 2 and path[0] == "parameters":
        return ParameterSpec
    if len(path) >= 2 and isinstance(path[-1], int):
        in_lists: dict[Any, type[BaseModel]] = {"next": Transition, "decision": DecisionEntry}
        return in_lists.get(path[-2])
    nested: dict[Any, type[BaseModel]] = {"retry": RetryPolicy, "cache": CachePolicy}
    return nested.get(path[-1])


def _describe(path: Path_) -> str:
    if not path:
        return "the workflow"
    parts = list(path)
    for i in range(len(parts) - 1, 0, -1):
        if parts[i - 1] == "tasks" and isinstance(parts[i], str):
            rest = ".".join(str(p) for p in parts[i + 1 :])
            return f"task {parts[i]!r}" + (f" field {rest!r}" if rest else "")
    return ".".join(str(p) for p in parts)


def _position(smap: SourceMap, path: Path_) -> tuple[int, int]:
    line, col = smap.locate(path, key=True)
    return line or 0, col or 0


def _closest(name: Any, allowed: list[str]) -> str | None:
    """The allowed field ``name`` most likely misspells (case first), or None."""
    lowered = {f.lower(): f for f in allowed}
    if str(name).lower() in lowered:
        return lowered[str(name).lower()]
    hint = difflib.get_close_matches(str(name), allowed, n=1, cutoff=0.6)
    return hint[0] if hint else None


def _unknown_field(smap: SourceMap, parent: Path_, name: Any, allowed: list[str]) -> SpecError:
    """``unknown field 'x' in ...``, at the key, with the closest allowed field name."""
    hint = _closest(name, allowed)
    msg = f"unknown field {name!r} in {_describe(parent)}"
    if hint:
        msg += f" (did you mean {hint!r}?)"
    line, col = smap.locate((*parent, name), key=True)
    return SpecError(msg, file=smap.file, line=line, col=col)


def spec_error_from_validation(exc: ValidationError, data: Any, smap: SourceMap) -> SpecError:
    """Every pydantic error as a positioned line, in document order (see :class:`SpecErrors`).

    Errors of one value (the members of a union such as ``join: 'all' | int``) are merged into
    one message: ``Input should be 'all' or greater than or equal to 1 (got 0)``.
    """
    found: list[tuple[tuple[int, int], SpecError]] = []
    by_value: dict[tuple[Path_, bool], list[Any]] = {}
    for err in exc.errors(include_url=False):
        loc = tuple(err["loc"])
        kind = err["type"]
        path, on_key = _resolve_loc(data, loc, field_error=kind in ("extra_forbidden", "missing"))
        if kind == "extra_forbidden":
            parent, name = path[:-1], path[-1]
            model = _model_at(parent)
            error = _unknown_field(smap, parent, name, _fields(model) if model else [])
            found.append(((error.line or 0, error.col or 0), error))
            continue
        if kind == "missing":
            parent, name = path[:-1], path[-1]
            msg = f"missing required field {name!r} in {_describe(parent)}"
            line, col = smap.locate(parent)
        else:
            by_value.setdefault((path, on_key), []).append(err)
            continue
        found.append(((line or 0, col or 0), SpecError(msg, file=smap.file, line=line, col=col)))
    for (path, on_key), errs in by_value.items():
        texts: list[str] = []
        for err in errs:
            text = _plain_message(err)
            if texts and text.startswith(_EXPECT) and texts[0].startswith(_EXPECT):
                text = text[len(_EXPECT) :]
            if text not in texts:
                texts.append(text)
        text = " or ".join(texts)
        got = errs[0].get("input")
        if errs[0]["type"] not in ("value_error", "assertion_error") and not isinstance(
            got, (dict, list)
        ):
            text = f"{text} (got {got!r})"
        msg = f"{_describe(path)}: {text}" if path else text
        line, col = smap.locate(path, key=on_key)
        found.append(((line or 0, col or 0), SpecError(msg, file=smap.file, line=line, col=col)))
    found.sort(key=lambda pair: pair[0])
    return gather_errors([error for _, error in found])


def load_spec(
    text: str, *, file: str | None = None, name: str | None = None
) -> tuple[WorkflowSpec, SourceMap]:
    """Parse and validate a workflow document.

    Parameters
    ----------
    text:
        YAML or JSON.
    file:
        Shown in error positions.
    name:
        The workflow's name when the document has none (from a magic line or a file stem).
    """
    data, smap = parse_document(text, file=file)
    if not isinstance(data, dict):
        kinds: dict[type, str] = {list: "a list", str: "a string"}
        kind = kinds.get(type(data), type(data).__name__)
        raise smap.error(f"a workflow must be a mapping of fields, got {kind}")
    from .dialects import translate

    data = translate(_normalise_tasks(data, (), smap), smap)
    if "name" not in data:
        if name is None:
            raise smap.error("missing required field 'name' (or give the name on the magic line)")
        data = {"name": name, **data}
    if "tasks" not in data:
        # A misspelled ``tasks`` (``task:``, ``Tasks:``) is an unknown field, not a missing one.
        allowed = _fields(WorkflowSpec)
        for key in sorted(data, key=lambda k: _position(smap, (k,))):
            if key not in allowed and _closest(key, allowed) == "tasks":
                raise _unknown_field(smap, (), key, allowed)
        raise smap.error("missing required field 'tasks': a workflow needs at least one task")
    try:
        spec = WorkflowSpec.model_validate(data)
    except ValidationError as exc:
        raise spec_error_from_validation(exc, data, smap) from None
    return spec, smap


def check_regular_file(path: str | Path) -> os.stat_result:
    """``os.stat(path)`` of a regular file, else one-line :class:`SpecError`.

    Only a ``stat``: a FIFO, a device (``/dev/zero``, ``/dev/urandom``) or a socket is refused
    without being opened (opening a FIFO blocks; reading ``/dev/zero`` never ends).
    """
    try:
        info = os.stat(path)
    except FileNotFoundError:
        raise SpecError("no such file", file=shorten(str(path))) from None
    except OSError as exc:  # a name too long, a permission, a loop of links
        raise SpecError(f"cannot read: {exc.strerror or exc}", file=shorten(str(path))) from None
    except ValueError:  # a NUL byte in the name
        raise SpecError("not a file name", file=shorten(str(path))) from None
    if stat.S_ISDIR(info.st_mode):
        raise SpecError("is a directory, not a workflow file", file=str(path))
    if not stat.S_ISREG(info.st_mode):
        kind = (
            "a FIFO"
            if stat.S_ISFIFO(info.st_mode)
            else "a device"
            if stat.S_ISCHR(info.st_mode) or stat.S_ISBLK(info.st_mode)
            else "a socket"
            if stat.S_ISSOCK(info.st_mode)
            else "not a regular file"
        )
        raise SpecError(f"is {kind}, not a workflow file", file=str(path))
    return info


def read_text(path: str | Path) -> str:
    """Read a workflow file, turning OS errors into one-line :class:`SpecError`.

    Only regular files are opened (see :func:`check_regular_file`), and at most
    ``LIMITS.document_chars`` characters' worth of bytes are read.
    """
    p = Path(path)
    check_regular_file(p)
    limit = LIMITS.document_chars
    try:
        with open(p, "rb") as f:
            data = f.read(limit * 4 + 1)  # UTF-8: at most 4 bytes a character
        text = "" if len(data) > limit * 4 else data.decode("utf-8")
        if len(data) > limit * 4 or len(text) > limit:
            raise SpecError(
                f"the document has more than {limit:,} characters {hint('document_chars')}",
                file=str(path),
                line=1,
                col=1,
            )
        # as Path.read_text does: universal newlines
        return text.replace("\r\n", "\n").replace("\r", "\n")
    except FileNotFoundError:
        raise SpecError("no such file", file=str(path)) from None
    except IsADirectoryError:
        raise SpecError("is a directory, not a workflow file", file=str(path)) from None
    except UnicodeDecodeError as exc:
        raise SpecError(
            f"not UTF-8 text ({exc.reason} at byte {exc.start})", file=str(path)
        ) from None
    except OSError as exc:
        raise SpecError(f"cannot read: {exc.strerror}", file=str(path)) from None
