"""Sandboxed Jinja2 expressions: rendering task inputs, ``when`` conditions and outputs.

The workflow language embeds Jinja2 in YAML values (``"{{ parameters.app_name }}"``,
``when: "{{ result.approved }}"``). The engine renders them on the hot path, once per task,
item and transition, so this module is built around a few deliberate choices.

Native values for exact expressions
    A value that is *exactly* one ``{{ ... }}`` keeps its Python type: ``"{{ parameters.regions }}"``
    is a list, ``"{{ index }}"`` an int, a missing value ``None``. Such values are compiled with
    :meth:`jinja2.Environment.compile_expression` rather than rendered and re-parsed (the way
    ``NativeEnvironment`` does it): the expression's value comes back as it is, with no string
    round trip and no ``literal_eval`` guessing (``"007"`` stays a string). Everything else renders
    to a ``str``. Whether a value is "exactly one expression" is decided by Jinja's own lexer, so
    ``"{{ a }}{{ b }}"`` and ``'{{ "}}" }}'`` are classified correctly.

Compiled once, cached by source text, common shapes without a render context
    Compilation (lexing, parsing, generating and ``compile()``-ing Python code) costs hundreds of
    microseconds; a cached render costs a few. Compiled templates are kept in a bounded
    :func:`functools.lru_cache` keyed by the source string, so a workflow's templates compile once
    per process and user data that happens to look like a template cannot grow memory without end.
    Most templates in workflows are plain lookups (``"{{ item }}"``, ``"{{ task.build.result }}"``,
    ``"deploy {{ parameters.app }}"``). For those, Jinja's per-render overhead (a context object,
    a copy of the scope merged with the globals, a generator) is most of the cost, so they are
    evaluated directly with the sandbox's own ``getattr``/``getitem`` (the very calls Jinja's
    generated code makes): about 0.5 µs instead of 7 µs. Everything else goes through Jinja.

An immutable sandbox
    :class:`jinja2.sandbox.ImmutableSandboxedEnvironment` refuses attributes that start with ``_``
    (so no ``''.__class__.__mro__`` escapes), Python internals, and the methods that mutate lists,
    dicts and sets: a condition cannot change a task's result or the run's variables behind the
    engine's back. On top of Jinja's sandbox this environment

    * raises at once on an unsafe attribute (Jinja would return an undefined value that renders
      as ``""``, which hides the mistake),
    * has a loader that refuses everything, so ``{% include %}``, ``{% import %}`` and
      ``{% extends %}`` can never read a file,
    * counts (:mod:`jupyter_workflows.sandbox`): render time, output, loop steps and the size
      of every value an operator or filter makes are bounded, and nothing is constant-folded
      while compiling, so ``"{{ 'x' * 10**10 }}"``, ``"{{ 9 ** 9 ** 9 }}"``, nested
      ``range(100000)`` loops or ``'%03000000000d' | format(1)`` fail in one line instead of
      eating the machine,
    * prefers a mapping's *keys* to its methods on dotted access, so a task named ``items``,
      ``update`` or ``get`` is reachable as ``task.update.result``.

    The limits are listed, with how to raise them, in docs/security.md.

Strict undefined values
    Templates are strict (CONTRACT §1.3): a name or attribute that does not exist is an error
    where it is used (``UndefinedError`` inside a one-line :class:`ExpressionError`), never a
    silent ``None``/``""``. :class:`StrictChainableUndefined` still chains, so a template that
    asks for a default gets it: ``{{ result.approved | default(false) }}``,
    ``{{ vars.x is defined }}``. ``validate`` catches most such names before a run starts
    (:func:`check_template_names`); attributes of results can only be checked when they are read.

One-line errors
    Every failure (syntax, security, a ``TypeError`` in a filter, a missing secret) becomes an
    :class:`ExpressionError` whose message is one line naming the template:
    ``cannot render '{{ 1/0 }}': ZeroDivisionError: division by zero``. No raw Jinja exception
    escapes. Other :class:`~jupyter_workflows.exceptions.WorkflowError` subclasses raised by scope
    callables (a store error from ``kv.get``) pass through unchanged.

Secret masking with a snapshot
    ``secret(name)`` registers the value it returns with :data:`MASKER`, and traces, logs, widgets
    and outputs pass through :meth:`SecretMasker.mask`. Registration happens from several threads
    (the orchestrator, executor callbacks) and masking happens far more often than registration,
    so the masker keeps an immutable tuple of values, longest first, replaced under a lock on
    :meth:`~SecretMasker.register`; :meth:`~SecretMasker.mask` reads the current tuple without
    locking and never sees a half-updated list. Occurrences are masked by the union of the spans
    they cover, so overlapping secrets (``abcd`` and ``cdef`` in ``abcdef``) leak no characters.
"""

from __future__ import annotations

import functools
import json
import os
import threading
import types
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from dataclasses import field as dataclass_field
from typing import Any

from jinja2 import BaseLoader, ChainableUndefined, Undefined, nodes
from jinja2.exceptions import SecurityError, TemplateSyntaxError
from jinja2.parser import Parser

from jupyter_workflows.exceptions import WorkflowError, one_line
from jupyter_workflows.sandbox import BoundedSandbox

__all__ = [
    "MASKER",
    "ExpressionError",
    "NameRules",
    "SecretMasker",
    "StrictChainableUndefined",
    "check_template_names",
    "evaluate",
    "exact_expression",
    "is_template",
    "render",
    "secret_function",
    "secret_lookup",
    "template_error",
]

#: Compiled templates kept in memory; a workflow rarely has more than a few hundred.
_CACHE_SIZE = 8192
#: Longest template text quoted in an error message.
_MAX_QUOTED = 120
#: Rendered strings that a ``when`` reads as false (after ``strip().lower()``).
_FALSE_STRINGS = frozenset({"", "false", "no", "off", "0", "none", "null"})
#: Types render returns at once.
_SCALARS = frozenset({int, float, bool, bytes})
#: Lexer tokens that may appear only at the ends of an exact ``{{ ... }}``.
_OUTER_TOKENS = frozenset(
    {
        "variable_begin",
        "variable_end",
        "data",
        "block_begin",
        "block_end",
        "comment_begin",
        "comment_end",
        "raw_begin",
        "raw_end",
        "linestatement_begin",
        "linecomment_begin",
    }
)


class ExpressionError(WorkflowError):
    """A template or expression cannot be compiled or rendered, or a secret is missing.

    ``str()`` is one line, e.g. ``cannot render '{{ 1/0 }}': ZeroDivisionError: division by zero``.

    Parameters
    ----------
    message
        The one-line message.
    template
        The template text that failed, when there is one.
    """

    def __init__(self, message: str, *, template: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.template = template

    def __reduce__(self) -> tuple[Any, ...]:  # keep pickling (dask, multiprocessing) lossless
        return (_rebuild_expression_error, (self.message, self.template))


def _rebuild_expression_error(message: str, template: str | None) -> ExpressionError:
    return ExpressionError(message, template=template)


# --------------------------------------------------------------------------------------------
# Secret masking
# --------------------------------------------------------------------------------------------


class SecretMasker:
    """Replaces registered secret values with ``***`` in strings and nested structures.

    Any non-empty value is masked, however short: a one-character secret masks that character
    everywhere, so very short secrets mask aggressively (better than leaking them).
    Thread-safe: :meth:`register` takes a lock and publishes a new immutable snapshot;
    :meth:`mask` and :meth:`mask_text` read the snapshot without locking.
    """

    #: What a secret is replaced with.
    replacement = "***"

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._secrets: tuple[str, ...] = ()
        #: ``str()`` of lists/tuples/dicts a template made from a secret: masked whole.
        self._containers: frozenset[str] = frozenset()

    def register_container(self, value: list[Any] | tuple[Any, ...] | dict[Any, Any]) -> None:
        """Mask ``value`` (a list, tuple or dict made from a secret) whole wherever it appears."""
        with self._lock:
            self._containers = self._containers | {str(value)}

    def __len__(self) -> int:
        return len(self._secrets)

    def register(self, value: str) -> None:
        """Remember ``value`` as a secret; empty values and repeats are ignored.

        Parameters
        ----------
        value
            The secret's value, as it could appear in text.
        """
        if not isinstance(value, str):
            value = str(value)
        if not value or value in self._secrets:
            return
        with self._lock:
            if value not in self._secrets:
                # longest first: cheap short-circuit in mask_text, deterministic order
                self._secrets = tuple(sorted((*self._secrets, value), key=len, reverse=True))

    def mask_text(self, text: str) -> str:
        """Return ``text`` with every occurrence of a registered value replaced by ``***``.

        Overlapping or adjacent occurrences are merged into one ``***``.

        Parameters
        ----------
        text
            Any string.

        Returns
        -------
        str
            The masked text; ``text`` itself when it holds no secret.
        """
        secrets = self._secrets
        if not secrets:
            return text
        hits = [s for s in secrets if s in text]
        if not hits:
            return text
        spans: list[tuple[int, int]] = []
        for secret in hits:
            start = text.find(secret)
            while start != -1:
                spans.append((start, start + len(secret)))
                start = text.find(secret, start + 1)
        spans.sort()
        parts: list[str] = []
        position = 0
        span_start, span_end = spans[0]
        for start, end in spans[1:]:
            if start <= span_end:
                span_end = max(span_end, end)
                continue
            parts.append(text[position:span_start])
            parts.append(self.replacement)
            position = span_end
            span_start, span_end = start, end
        parts.append(text[position:span_start])
        parts.append(self.replacement)
        parts.append(text[span_end:])
        return "".join(parts)

    def mask(self, obj: Any) -> Any:
        """Mask every string inside ``obj``, recursively through dicts (keys too), lists, tuples.

        ``obj`` is never modified. Containers that hold no secret are returned as they are (not
        copied); treat the result as read-only.

        Parameters
        ----------
        obj
            A string, a dict/list/tuple of them, or any other value (returned unchanged).

        Returns
        -------
        Any
            The masked value.
        """
        if not self._secrets and not self._containers:
            return obj
        return self._mask(obj)

    def _mask(self, obj: Any) -> Any:
        if isinstance(obj, str):
            return self.mask_text(obj)
        if (
            self._containers
            and isinstance(obj, (list, tuple, dict))
            and str(obj) in (self._containers)
        ):
            return self.replacement
        if isinstance(obj, dict):
            changed = False
            out: dict[Any, Any] = {}
            for key, value in obj.items():
                new_key, new_value = self._mask(key), self._mask(value)
                changed = changed or new_key is not key or new_value is not value
                out[new_key] = new_value
            return out if changed else obj
        if isinstance(obj, (list, tuple)):
            items = [self._mask(item) for item in obj]
            if all(new is old for new, old in zip(items, obj, strict=True)):
                return obj
            return items if isinstance(obj, list) else tuple(items)
        return obj


#: The process-wide masker that ``secret()`` registers with and traces are masked by.
MASKER = SecretMasker()


def secret_lookup(
    name: str,
    *,
    store_lookup: Callable[[str], str | None] | None = None,
    masker: SecretMasker = MASKER,
) -> str:
    """Return the secret ``name``, registering its value with the masker.

    Parameters
    ----------
    name
        The secret's name: an environment variable, or a key of the store's secrets.
    store_lookup
        Called with ``name`` when the environment does not have it; returns the value or ``None``
        (or raises ``KeyError``) when it does not exist.
    masker
        The masker to register the value with (:data:`MASKER` unless testing).

    Returns
    -------
    str
        The secret's value.

    Raises
    ------
    ExpressionError
        ``secret 'NAME' is not set`` when neither the environment nor the store has it.
    """
    if not isinstance(name, str) or not name:
        raise ExpressionError(f"secret name must be a non-empty string, not {name!r}")
    value = os.environ.get(name)
    if value is None and store_lookup is not None:
        try:
            value = store_lookup(name)
        except KeyError:
            value = None
    if value is None:
        raise ExpressionError(f"secret {name!r} is not set")
    value = str(value)
    masker.register(value)
    _SECRETS_READ.count = getattr(_SECRETS_READ, "count", 0) + 1
    return value


#: Per thread: how many secrets ``secret_lookup`` has returned (a render compares before/after).
_SECRETS_READ = threading.local()
#: Derived values shorter than this are not registered (one character would mask every use of
#: it in every output); the secret itself is always registered, however short.
_MIN_DERIVED = 3


def _taint(value: Any, masker: SecretMasker = MASKER) -> None:
    """Register what a template made from a secret: ``secret(x) | reverse``, ``| upper``,
    ``[:4]``, ``| list``, ``'Bearer ' ~ secret(x)`` are masked in every output like the secret.

    Strings are registered as they are; a list, tuple or dict also as its ``str()`` and JSON
    forms and by its string items (of at least :data:`_MIN_DERIVED` characters).
    """
    if isinstance(value, str):
        if len(value) >= _MIN_DERIVED:
            masker.register(value)
        return
    if isinstance(value, (list, tuple, dict)):
        masker.register_container(value)
        forms = [str(value)]
        try:
            forms.append(json.dumps(value))
        except (TypeError, ValueError):
            pass
        for form in forms:
            _taint(form, masker)
        items = value.values() if isinstance(value, dict) else value
        for item in items:
            _taint(item, masker)


def secret_function(
    store_lookup: Callable[[str], str | None] | None = None,
    *,
    masker: SecretMasker = MASKER,
) -> Callable[[str], str]:
    """Return the ``secret(name)`` callable to put in a template scope.

    Parameters
    ----------
    store_lookup
        Fallback for names the environment does not have (see :func:`secret_lookup`).
    masker
        The masker values are registered with.

    Returns
    -------
    Callable[[str], str]
        ``secret(name) -> value``; raises :class:`ExpressionError` when the secret is missing.
    """

    def secret(name: str) -> str:
        return secret_lookup(name, store_lookup=store_lookup, masker=masker)

    return secret


# --------------------------------------------------------------------------------------------
# Strict undefined values (CONTRACT §1.3: templates are strict)
# --------------------------------------------------------------------------------------------


class StrictChainableUndefined(ChainableUndefined):
    """An undefined value that is an error as soon as it is *used*, yet chains under a default.

    ``{{ vars.nope }}``, ``{{ 'x' ~ vars.nope }}``, ``{% if vars.nope %}`` and a native
    ``"{{ vars.nope }}"`` all raise ``UndefinedError`` (a one-line ``ExpressionError`` for the
    user), where Jinja's default would read nothing and carry on. Only what explicitly asks about
    a missing value goes on: ``| default(...)`` (also through a chain,
    ``{{ result.a.b | default(0) }}``), ``is defined``/``is undefined``.
    """

    __slots__ = ()

    __iter__ = __str__ = __len__ = Undefined._fail_with_undefined_error
    __eq__ = __ne__ = __bool__ = __hash__ = Undefined._fail_with_undefined_error
    __contains__ = __int__ = __float__ = __complex__ = Undefined._fail_with_undefined_error


# --------------------------------------------------------------------------------------------
# The environment
# --------------------------------------------------------------------------------------------


class _RefusingLoader(BaseLoader):
    """A loader that loads nothing: templates cannot include, import or extend files."""

    def get_source(self, environment: Any, template: str) -> tuple[str, str | None, Any]:
        raise SecurityError(
            f"templates cannot include, import or extend other templates ({template!r})"
        )


class _WorkflowEnvironment(BoundedSandbox):
    """The bounded immutable sandbox, stricter on unsafe attributes, keys before methods."""

    def unsafe_undefined(self, obj: Any, attribute: str) -> Undefined:
        raise SecurityError(
            f"access to attribute {attribute!r} of {type(obj).__name__!r} object is unsafe"
        )

    def getattr(self, obj: Any, attribute: str) -> Any:
        # data first: a task called "items" or "update" must not resolve to a dict method
        if isinstance(obj, Mapping):
            try:
                return obj[attribute]
            except (KeyError, TypeError):
                pass
        return super().getattr(obj, attribute)


def _from_json(text: str) -> Any:
    return json.loads(text)


def _json_default(value: Any) -> Any:
    if isinstance(value, Undefined):
        value._fail_with_undefined_error()
    return str(value)


def _to_json(value: Any, indent: int | None = None) -> str:
    return json.dumps(value, sort_keys=False, default=_json_default, indent=indent)


def _make_environment() -> _WorkflowEnvironment:
    env = _WorkflowEnvironment(
        autoescape=False,
        undefined=StrictChainableUndefined,
        loader=_RefusingLoader(),
        # YAML block scalars end with a newline; rendering must not drop it
        keep_trailing_newline=True,
        cache_size=0,  # only loaded templates use it, and nothing loads; we cache ourselves
    )
    env.add_filter("from_json", _from_json)
    env.add_filter("to_json", _to_json)
    return env


_ENV = _make_environment()


# --------------------------------------------------------------------------------------------
# Compilation (cached)
# --------------------------------------------------------------------------------------------


def is_template(value: str) -> bool:
    """Tell whether ``value`` contains Jinja markup (``{{`` or ``{%``).

    Parameters
    ----------
    value
        Any string.

    Returns
    -------
    bool
        ``True`` when rendering could change ``value``.
    """
    return "{{" in value or "{%" in value


@functools.lru_cache(maxsize=_CACHE_SIZE)
def _exact(text: str) -> str | None:
    if not (text.startswith("{{") and text.endswith("}}")):
        return None
    try:
        tokens = list(_ENV.lex(text))
    except Exception:  # a syntax error: not an exact expression; render reports it
        return None
    if (
        len(tokens) < 2
        or tokens[0][1] != "variable_begin"
        or tokens[-1][1] != "variable_end"
        or any(token[1] in _OUTER_TOKENS for token in tokens[1:-1])
    ):
        return None
    return text[len(tokens[0][2]) : len(text) - len(tokens[-1][2])]


def exact_expression(text: str) -> str | None:
    """Return the expression inside ``text`` when ``text`` is exactly one ``{{ ... }}``.

    Nothing may stand outside the braces (not even whitespace); whitespace inside is allowed.

    Parameters
    ----------
    text
        A template string.

    Returns
    -------
    str or None
        The inner expression, stripped (``"result.approved"`` for ``"{{ result.approved }}"``),
        or ``None`` when ``text`` is anything else.
    """
    inner = _exact(text) if isinstance(text, str) else None
    return None if inner is None else inner.strip()


_Path = tuple[str, tuple[tuple[bool, Any], ...]]
_MISSING = object()


def _lookup_path(node: nodes.Node) -> _Path | None:
    """``(name, ((is_attribute, key), ...))`` for ``name.attr['key']...``, else ``None``."""
    steps: list[tuple[bool, Any]] = []
    while True:
        if isinstance(node, nodes.Name) and node.ctx == "load":
            return node.name, tuple(reversed(steps))
        if isinstance(node, nodes.Getattr):
            steps.append((True, node.attr))
            node = node.node
        elif isinstance(node, nodes.Getitem) and isinstance(node.arg, nodes.Const):
            steps.append((False, node.arg.value))
            node = node.node
        else:
            return None


def _resolve(name: str, steps: tuple[tuple[bool, Any], ...], scope: Mapping[str, Any]) -> Any:
    """Evaluate a lookup chain exactly as compiled Jinja code would, without a render context.

    Name resolution (scope, then the environment's globals, else undefined) and every step
    (``environment.getattr`` / ``environment.getitem``, so the sandbox checks apply) mirror the
    code Jinja generates for ``{{ name.attr['key'] }}``.
    """
    try:
        value = scope[name]
    except KeyError:
        value = _ENV.globals.get(name, _MISSING)
        if value is _MISSING:
            value = _ENV.undefined(name=name)
    for is_attribute, key in steps:
        value = _ENV.getattr(value, key) if is_attribute else _ENV.getitem(value, key)
    return value


def _native_lookup(name: str, steps: tuple[tuple[bool, Any], ...], scope: Mapping[str, Any]) -> Any:
    value = _resolve(name, steps, scope)
    if isinstance(value, Undefined):
        value._fail_with_undefined_error()
    return value


def _render_parts(parts: tuple[str | _Path, ...], scope: Mapping[str, Any]) -> str:
    # str() is what Jinja's generated code applies to each output (autoescape is off)
    return "".join(
        [
            part if isinstance(part, str) else str(_resolve(part[0], part[1], scope))
            for part in parts
        ]
    )


def _simple_parts(tree: nodes.Template) -> tuple[str | _Path, ...] | None:
    """Text and lookups only (``"deploy {{ parameters.app }}"``): the parts, else ``None``."""
    parts: list[str | _Path] = []
    for statement in tree.body:
        if not isinstance(statement, nodes.Output):
            return None
        for child in statement.nodes:
            if isinstance(child, nodes.TemplateData):
                parts.append(child.data)
                continue
            path = _lookup_path(child)
            if path is None:
                return None
            parts.append(path)
    return tuple(parts)


def _to_native(value: Any) -> Any:
    """Generators become lists, recursively; an undefined value is an error (strict templates)."""
    if isinstance(value, Undefined):
        value._fail_with_undefined_error()
    if isinstance(value, types.GeneratorType):
        return [_to_native(item) for item in value]
    if isinstance(value, list):
        return [_to_native(item) for item in value]
    if isinstance(value, tuple):
        return tuple(_to_native(item) for item in value)
    if isinstance(value, dict):
        return {key: _to_native(item) for key, item in value.items()}
    return value


@functools.lru_cache(maxsize=_CACHE_SIZE)
def _compile(text: str) -> Callable[[Mapping[str, Any]], Any]:
    """Compile a template string into ``renderer(scope) -> value`` (raises Jinja errors).

    The common shapes skip Jinja's render machinery (a context object, a generator, a copy of
    the scope merged with the globals), which dominates the cost of small templates: an exact
    lookup (``"{{ task.build.result }}"``) and text with lookups (``"deploy {{ parameters.app }}"``)
    are evaluated by :func:`_resolve` with the sandbox's own ``getattr``/``getitem``. Anything else
    (filters, calls, operators, blocks) runs through Jinja.
    """
    inner = _exact(text)
    if inner is not None:
        parser = Parser(_ENV, inner, state="variable")
        path = _lookup_path(parser.parse_expression())
        if path is not None and parser.stream.eos:  # a plain lookup: no Jinja code to generate
            return functools.partial(_native_lookup, *path)
        expression = _ENV.compile_expression(inner, undefined_to_none=False)

        def native(scope: Mapping[str, Any]) -> Any:
            return _to_native(expression(scope))

        return _ENV.bounded(native)
    tree = _ENV.parse(text)
    parts = _simple_parts(tree)
    if parts is not None:
        return functools.partial(_render_parts, parts)
    return _ENV.bounded(_ENV.from_string(tree).render)


def _quote(text: str) -> str:
    quoted = text.replace("\r", "\\r").replace("\n", "\\n")
    if len(quoted) > _MAX_QUOTED:
        quoted = quoted[: _MAX_QUOTED - 1] + "…"
    return f"'{quoted}'"


def _describe(error: BaseException) -> str:
    if isinstance(error, ExpressionError):
        return error.message
    if isinstance(error, TemplateSyntaxError):
        return one_line(
            f"{type(error).__name__}: line {error.lineno}: {error.message}", squeeze=True
        )
    message = one_line(str(error), squeeze=True)
    return f"{type(error).__name__}: {message}" if message else type(error).__name__


def _render_error(text: str, error: Exception) -> ExpressionError:
    message = MASKER.mask_text(f"cannot render {_quote(text)}: {_describe(error)}")
    return ExpressionError(message, template=text)


@functools.lru_cache(maxsize=_CACHE_SIZE)
def parse_template(text: str) -> nodes.Template:
    """Jinja's syntax tree of ``text``, parsed once (validation asks several questions of it).

    Raises Jinja's ``TemplateSyntaxError`` (not cached: a failed parse is parsed again).
    The tree is shared: callers must not change it.
    """
    return _ENV.parse(text)


#: Nodes that declare names inside a template; a tree without them names only what it reads.
_DECLARING = (
    nodes.For,
    nodes.Assign,
    nodes.AssignBlock,
    nodes.Macro,
    nodes.CallBlock,
    nodes.FilterBlock,
    nodes.With,
    nodes.Scope,
    nodes.Block,
    nodes.Import,
    nodes.FromImport,
    nodes.OverlayScope,
)


def _undeclared_names(tree: nodes.Template) -> set[str]:
    """The names ``tree`` reads from its scope: Jinja's own analysis only where the template
    declares names itself (it generates Python code to find out, ~3 ms a template); a plain
    expression's loaded names otherwise."""
    from jinja2 import meta

    if tree.find(_DECLARING) is not None:  # type: ignore[arg-type]
        return meta.find_undeclared_variables(tree)
    return {node.name for node in tree.find_all(nodes.Name) if node.ctx == "load"}


def needs_compile_check(tree: nodes.Template) -> bool:
    """Whether compiling ``tree`` can find errors its parse did not: Jinja reports some only
    while generating code (an assignment to ``loop``, a block defined twice); a template of
    output and expressions alone has none (its filters and tests are checked by name)."""
    return any(not isinstance(node, nodes.Output) for node in tree.body)


def template_error(text: str) -> tuple[int, int, str] | None:
    """Compile ``text`` without rendering it and report a syntax error.

    Unknown filters and tests are reported too (Jinja finds them while compiling).

    Parameters
    ----------
    text
        A template string, possibly spanning several lines.

    Returns
    -------
    tuple of (int, int, str) or None
        ``(line, column, message)`` for the first error: the line within ``text`` (1-based), the
        column (1 when Jinja does not know it, which is always the case today) and a one-line
        message; ``None`` when ``text`` compiles (or is not a template).
    """
    if not isinstance(text, str) or not is_template(text):
        return None
    try:
        _compile(text)
    except TemplateSyntaxError as error:
        return (error.lineno or 1, 1, one_line(error.message or type(error).__name__, squeeze=True))
    except Exception as error:  # a recursion limit on absurd nesting, ...
        return (1, 1, _describe(error))
    return None


def template_syntax_error(text: str) -> tuple[int, int, str] | None:
    """:func:`template_error` for validation: parse only (once, shared with the name checks),
    and compile just the templates that have statements, where Jinja finds more errors while
    generating code. A 20,000-entry ``decision`` validates in a fraction of the time."""
    if not isinstance(text, str) or not is_template(text):
        return None
    try:
        tree = parse_template(text)
    except TemplateSyntaxError as error:
        return (error.lineno or 1, 1, one_line(error.message or type(error).__name__, squeeze=True))
    except Exception as error:  # a recursion limit on absurd nesting, ...
        return (1, 1, _describe(error))
    return template_error(text) if needs_compile_check(tree) else None


# --------------------------------------------------------------------------------------------
# Rendering
# --------------------------------------------------------------------------------------------


def _render_text(text: str, scope: Mapping[str, Any]) -> Any:
    read = getattr(_SECRETS_READ, "count", 0)
    try:
        value = _compile(text)(scope)
        if getattr(_SECRETS_READ, "count", 0) != read:
            _taint(value)  # this template read a secret: what it made is masked too
        return value
    except ExpressionError as error:
        raise _render_error(text, error) from error
    except WorkflowError:
        raise
    except Exception as error:
        raise _render_error(text, error) from error


def render(value: Any, scope: Mapping[str, Any]) -> Any:
    """Render every template inside ``value``.

    Parameters
    ----------
    value
        A string, a dict (its values are rendered, its keys are not), a list or tuple of them,
        or any other value (returned as it is).
    scope
        The names templates can use (``parameters``, ``vars``, ``task``, ``item``, ...).

    Returns
    -------
    Any
        A string that is exactly one ``{{ expr }}`` becomes the expression's value with its native
        type (``None`` when undefined); any other template becomes a ``str``. Containers in which
        nothing changed are returned as they are, not copied.

    Raises
    ------
    ExpressionError
        A template cannot be compiled or rendered (one-line message naming it).
    """
    kind = type(value)
    if kind is str:
        if "{{" in value or "{%" in value:
            return _render_text(value, scope)
        return value
    if value is None or kind in _SCALARS:
        return value
    if kind is dict or (kind is not list and kind is not tuple and isinstance(value, Mapping)):
        rendered: dict[Any, Any] | None = None
        for key, item in value.items():
            new = render(item, scope)
            if new is not item:
                if rendered is None:
                    rendered = dict(value)
                rendered[key] = new
        if rendered is None:
            return value
        return rendered
    if kind is list or kind is tuple:
        items: list[Any] | None = None
        for position, item in enumerate(value):
            new = render(item, scope)
            if new is not item:
                if items is None:
                    items = list(value)
                items[position] = new
        if items is None:
            return value
        return items if kind is list else tuple(items)
    if isinstance(value, str) and is_template(value):  # a str subclass
        return _render_text(str(value), scope)
    return value


def _truthy(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() not in _FALSE_STRINGS
    return bool(value)


def evaluate(expr_or_template: str | bool | None, scope: Mapping[str, Any]) -> bool:
    """Evaluate a ``when`` condition.

    Parameters
    ----------
    expr_or_template
        ``None`` (no condition: true), a bool (itself), a template such as
        ``"{{ result.approved }}"``, or a bare expression such as ``"failed()"`` (a string
        without ``{{``/``{%`` is read as the inside of one ``{{ ... }}``).
    scope
        The names the condition can use.

    Returns
    -------
    bool
        The condition's truth. Undefined values are false. A string value is false when, stripped
        and lower-cased, it is ``""``, ``"false"``, ``"no"``, ``"off"``, ``"0"``, ``"none"`` or
        ``"null"``, so ``"{{ a }} {{ b }}"``-style templates and string parameters read naturally.

    Raises
    ------
    ExpressionError
        The condition cannot be compiled or evaluated.
    """
    if expr_or_template is None:
        return True
    if isinstance(expr_or_template, bool):
        return expr_or_template
    if isinstance(expr_or_template, str):
        text = expr_or_template
        if not is_template(text):
            if not text.strip():
                return False
            text = "{{ " + text + " }}"
        return _truthy(_render_text(text, scope))
    return _truthy(render(expr_or_template, scope))


# --------------------------------------------------------------------------------------------
# Static name checks (strict templates: what ``validate`` refuses before a run starts)
# --------------------------------------------------------------------------------------------

#: Functions Jinja itself provides to every template.
JINJA_GLOBALS = frozenset({"range", "dict", "lipsum", "cycler", "joiner", "namespace"})


@dataclass(frozen=True)
class NameRules:
    """What a template at one place of a workflow may name.

    ``roots`` are the scope names (``parameters``, ``vars``, ...), ``functions`` the callables
    (``succeeded``, ``secret``, ...), ``tasks`` the workflow's task names (``task.X``),
    ``task_attributes`` what ``task.X`` has, and ``attributes`` the attributes fixed for a root
    (``system: {run_id, ...}``; roots not listed there take any attribute).
    """

    roots: tuple[str, ...]
    functions: frozenset[str] = frozenset()
    tasks: frozenset[str] | None = None
    task_attributes: frozenset[str] = frozenset()
    attributes: Mapping[str, frozenset[str]] = dataclass_field(default_factory=dict)
    #: Callables allowed too but not listed in messages (the dialects' helpers).
    quiet_functions: frozenset[str] = frozenset()


def _did_you_mean(name: str, known: Iterable[str]) -> str:
    import difflib

    hint = difflib.get_close_matches(name, sorted(known), n=1, cutoff=0.6)
    return f"did you mean {hint[0]!r}? " if hint else ""


def _known(names: Iterable[str], limit: int = 12) -> str:
    ordered = list(names)
    shown = ", ".join(ordered[:limit])
    return shown + (", ..." if len(ordered) > limit else "")


def _column(text: str, line: int, word: str) -> int:
    """1-based column of ``word`` (as a whole word) on ``line`` of ``text``; 1 if not found."""
    import re

    lines = text.split("\n")
    if not 1 <= line <= len(lines):
        return 1
    match = re.search(
        r"(?<![A-Za-z0-9_.])" + re.escape(word) + r"(?![A-Za-z0-9_])", lines[line - 1]
    )
    if match is None:
        match = re.search(re.escape(word), lines[line - 1])
    return match.start() + 1 if match else 1


def check_template_names(text: str, rules: NameRules) -> list[tuple[int, int, str]]:
    """Every name in ``text`` that cannot resolve under ``rules``, without rendering.

    Checked from Jinja's syntax tree: unknown roots, unknown functions, unknown filters and
    tests, ``task.X`` for a task that is not in the workflow and unknown attributes of ``task.X``
    or of a root with fixed attributes (``system``, ``kv``). Names the template declares itself
    (``{% set %}``, loop variables, macro arguments) are its own. Keys inside values (``result.id``
    where the result is a dict) cannot be known before the run and are not checked.

    Parameters
    ----------
    text
        A template string (``{{ ... }}`` markup; plain text has nothing to check).
    rules
        What this template may name.

    Returns
    -------
    list of (int, int, str)
        ``(line, column, message)`` within ``text`` (1-based) for each problem; empty when the
        template is fine or does not even parse (:func:`template_error` reports that).
    """
    if not isinstance(text, str) or not is_template(text):
        return []
    try:
        tree = parse_template(text)
    except Exception:
        return []
    try:
        undeclared = _undeclared_names(tree)
    except Exception:  # an unknown filter or test stops Jinja's analysis: report those alone
        undeclared = set()
    problems: list[tuple[int, int, str]] = []
    seen: set[tuple[str, str]] = set()
    known_names = list(rules.roots) + sorted(rules.functions - set(rules.roots))
    callables = rules.functions | JINJA_GLOBALS | rules.quiet_functions

    def report(node: nodes.Node | None, word: str, message: str) -> None:
        key = (word, message)
        if key in seen:
            return
        seen.add(key)
        line = getattr(node, "lineno", 1) or 1
        problems.append((line, _column(text, line, word), message))

    def visit(node: nodes.Node, parent: nodes.Node | None, grand: nodes.Node | None) -> None:
        if isinstance(node, nodes.Filter) and node.name not in _ENV.filters:
            report(
                node,
                node.name,
                f"unknown filter {node.name!r} in template ("
                + _did_you_mean(node.name, _ENV.filters)
                + "see the filters in docs/language.md)",
            )
        elif isinstance(node, nodes.Test) and node.name not in _ENV.tests:
            report(
                node,
                node.name,
                f"unknown test {node.name!r} in template ("
                + _did_you_mean(node.name, _ENV.tests)
                + "known: "
                + _known(sorted(_ENV.tests), 8)
                + ")",
            )
        elif isinstance(node, nodes.Name) and node.ctx == "load" and node.name in undeclared:
            _check_name(node, parent, grand)
        for child in node.iter_child_nodes():
            visit(child, node, parent)

    def _check_name(node: nodes.Name, parent: nodes.Node | None, grand: nodes.Node | None) -> None:
        name = node.name
        called = isinstance(parent, nodes.Call) and parent.node is node
        if called:
            if name not in callables:
                what = "function" if name not in rules.roots else "function (it is a value)"
                report(
                    node,
                    name,
                    f"unknown {what} {name!r} in template ("
                    + _did_you_mean(name, callables)
                    + "known: "
                    + _known(sorted(rules.functions) or ["none"])
                    + ")",
                )
            return
        if name not in rules.roots and name not in callables:
            report(
                node,
                name,
                f"unknown name {name!r} in template ("
                + _did_you_mean(name, known_names)
                + "known: "
                + _known(known_names)
                + ")",
            )
            return
        step = _attribute_of(parent, node)
        if step is None:
            return
        if name == "task" and rules.tasks is not None:
            if step not in rules.tasks:
                report(
                    parent,
                    step,
                    f"unknown task {step!r} in template ("
                    + _did_you_mean(step, rules.tasks)
                    + "known tasks: "
                    + _known(sorted(rules.tasks))
                    + ")",
                )
                return
            attribute = _attribute_of(grand, parent)
            if attribute is not None and attribute not in rules.task_attributes:
                report(
                    grand,
                    attribute,
                    f"unknown attribute {attribute!r} of task.{step} in template ("
                    + _did_you_mean(attribute, rules.task_attributes)
                    + "known: "
                    + _known(sorted(rules.task_attributes))
                    + ")",
                )
        elif name in rules.attributes and step not in rules.attributes[name]:
            allowed = rules.attributes[name]
            report(
                parent,
                step,
                f"unknown attribute {step!r} of {name} in template ("
                + _did_you_mean(step, allowed)
                + "known: "
                + _known(sorted(allowed))
                + ")",
            )

    visit(tree, None, None)
    problems.sort(key=lambda p: (p[0], p[1]))
    return problems


def _attribute_of(parent: nodes.Node | None, child: nodes.Node | None) -> str | None:
    """``attr`` when ``parent`` is ``child.attr`` or ``child['attr']``, else ``None``."""
    if isinstance(parent, nodes.Getattr) and parent.node is child:
        return parent.attr
    if (
        isinstance(parent, nodes.Getitem)
        and parent.node is child
        and isinstance(parent.arg, nodes.Const)
        and isinstance(parent.arg.value, str)
    ):
        return parent.arg.value
    return None


# --------------------------------------------------------------------------------------------
# Dialect hooks (jupyter_workflows.spec.dialects): extra functions other languages' files use
# --------------------------------------------------------------------------------------------


def register_filters(filters: Mapping[str, Callable[..., Any]]) -> None:
    """Make ``filters`` usable in every template (a dialect's filters, e.g. attune's Tera
    ``slice(start=, end=)`` as ``tera_slice``); ``validate`` knows them from then on."""
    _ENV.filters.update(filters)


def register_globals(functions: Mapping[str, Callable[..., Any]]) -> None:
    """Make ``functions`` callable in every template (``ctx()``, ``yaql(...)``, ...).

    Scope names win over globals, so a dialect function never hides a workflow's own value.
    Compiled templates are looked up at render time, so registering late is fine.
    """
    _ENV.globals.update(functions)
