"""A Jinja sandbox that counts: render time, output, loop steps and the size of every value made.

Jinja's sandbox stops a template from reaching Python internals; it does not stop it from
eating the machine: ``{% for i in range(100000) %}{% for j in range(100000) %}`` runs for hours,
``'%03000000000d' | format(1)`` allocates 3 GB, ``[[0] * 10**7] * 10**7`` renders as
10^14 characters. A list of forbidden operators cannot keep up with that, so this environment
*counts* instead, against :data:`jupyter_workflows.limits.LIMITS`:

* **time**: each render has a deadline (``template_seconds``), checked at every loop step, call,
  operator and output;
* **loop steps**: every ``{% for %}`` iterable is wrapped by the code generator, and all loops of
  one render share ``template_loop_iterations`` steps;
* **output**: every piece a template writes, into its result, a macro, a ``{% set %}`` block or a
  ``{% filter %}`` block, is counted against ``template_output_chars`` (so a macro cannot build a
  terabyte in a buffer before anything is returned);
* **sizes**: every operation that can make a value much larger than its inputs is checked
  *before* it runs: ``*`` (sequences, nested lists counted deeply; integers by bits), ``+`` and
  ``~`` on strings and lists, ``**``, ``%`` and ``format`` widths and precisions (also through
  ``*``), ``str.format`` field specs, ``center``/``ljust``/``rjust``/``zfill``/``expandtabs``,
  ``indent``, ``replace``, ``join``, ``wordwrap``, ``batch``, ``slice``, ``sum`` of sequences,
  ``tojson`` indents and ``lipsum``. ``range`` is Jinja's sandboxed one (at most 100,000 items).

Constant folding is off (``optimized=False``): compiling a template (``validate``) never evaluates
it, so ``{{ '%03000000000d' | format(1) }}`` costs nothing until it is rendered, and then it is
refused before it allocates.

Every limit hit raises :class:`TemplateLimitError`, one line naming the limit and the environment
variable that raises it; :mod:`jupyter_workflows.expressions` turns it into its usual
``cannot render '...': TemplateLimitError: ...`` line. The counters live in a per-thread
:class:`_Budget` that :meth:`BoundedSandbox.bounded` installs for the length of one render.
"""

from __future__ import annotations

import builtins
import functools
import itertools
import math
import re
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sized
from typing import Any

from jinja2 import nodes, pass_environment, pass_eval_context
from jinja2.compiler import CodeGenerator, Frame
from jinja2.exceptions import SecurityError
from jinja2.sandbox import ImmutableSandboxedEnvironment, SandboxedFormatter

from .limits import LIMITS, hint

__all__ = ["BoundedSandbox", "TemplateLimitError"]


class TemplateLimitError(SecurityError):
    """A template went past one of its limits; ``str()`` is one line naming it."""


def _refuse(what: str, field: str) -> TemplateLimitError:
    return TemplateLimitError(f"{what} {hint(field)}")


class _Budget:
    """What one render may still spend."""

    __slots__ = ("deadline", "loops", "output")

    def __init__(self) -> None:
        self.deadline = time.monotonic() + LIMITS.template_seconds
        self.loops = LIMITS.template_loop_iterations
        self.output = LIMITS.template_output_chars


_LOCAL = threading.local()


def _budget() -> _Budget | None:
    return getattr(_LOCAL, "budget", None)


def _tick() -> None:
    budget = getattr(_LOCAL, "budget", None)
    if budget is not None and time.monotonic() > budget.deadline:
        raise _refuse(
            f"rendering took more than {LIMITS.template_seconds:g} seconds", "template_seconds"
        )


def _check_size(size: int, what: str) -> None:
    if size > LIMITS.template_output_chars:
        raise _refuse(
            f"{what} would make {size:,} characters or items, more than "
            f"{LIMITS.template_output_chars:,}",
            "template_output_chars",
        )


def _weight(value: Any, cap: int) -> int:
    """Characters/items in ``value``, counting nested lists deeply; stops early past ``cap``."""
    if isinstance(value, (str, bytes)):
        return len(value)
    if isinstance(value, (list, tuple)):
        total = len(value)
        for item in value:
            if total > cap:
                break
            if isinstance(item, (str, bytes, list, tuple, dict)):
                total += _weight(item, cap - total)
        return total
    if isinstance(value, dict):
        return len(value)
    return 1


# -- format widths ----------------------------------------------------------------------------

_PERCENT = re.compile(r"%(?:\([^)]*\))?[-#0 +]*(\*|\d+)?(?:\.(\*|\d+))?")
_DIGITS = re.compile(r"\d+")


def _check_percent(fmt: str, args: Any) -> None:
    """``fmt % args``: refuse widths/precisions (literal or ``*``) past the output limit."""
    limit = LIMITS.template_output_chars
    star = False
    for match in _PERCENT.finditer(fmt):
        for group in match.groups():
            if group == "*":
                star = True
            elif group is not None and int(group) > limit:
                _check_size(int(group), "a % format width or precision")
    if star:
        values = args if isinstance(args, tuple) else (args,)
        for value in values:
            if isinstance(value, int) and not isinstance(value, bool) and abs(value) > limit:
                _check_size(abs(value), "a % format * width or precision")


def _check_spec(spec: str) -> None:
    """A ``str.format`` field spec (already resolved): no width or precision past the limit."""
    for digits in _DIGITS.findall(spec):
        if len(digits) > 18 or int(digits) > LIMITS.template_output_chars:
            _check_size(int(digits[:19]), "a format width or precision")


class _BoundedFormatter(SandboxedFormatter):
    def format_field(self, value: Any, format_spec: str) -> Any:
        _check_spec(format_spec)
        return super().format_field(value, format_spec)


# -- filters and functions with a size check ----------------------------------------------------


def _int(value: Any) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return 0


def _pre_center(value: Any, width: Any = 80, *_: Any, **__: Any) -> None:
    _check_size(_int(width), "center")


def _pre_indent(s: Any, width: Any = 4, *_: Any, **__: Any) -> None:
    text = str(s)
    unit = len(width) if isinstance(width, str) else _int(width)
    _check_size(len(text) + (text.count("\n") + 1) * unit, "indent")


def _pre_replace(s: Any, old: Any, new: Any, count: Any = None, *_: Any, **__: Any) -> None:
    text, old_text, new_text = str(s), str(old), str(new)
    hits = text.count(old_text)
    if count is not None and _int(count) >= 0:
        hits = min(hits, _int(count))
    _check_size(len(text) + hits * max(len(new_text) - len(old_text), 0), "replace")


def _pre_wordwrap(s: Any, width: Any = 79, b: Any = True, wrapstring: Any = None, *_: Any,
                  **kw: Any) -> None:  # fmt: skip
    wrap = kw.get("wrapstring", wrapstring)
    text = str(s)
    breaks = len(text) // max(_int(width), 1) + text.count(" ") + text.count("\n") + 1
    _check_size(len(text) + breaks * len(str(wrap or "\n")), "wordwrap")


def _pre_batch(value: Any, linecount: Any = 1, *_: Any, **__: Any) -> None:
    _check_size(_int(linecount), "batch")


def _pre_slice(value: Any, slices: Any = 1, *_: Any, **__: Any) -> None:
    _check_size(_int(slices), "slice")


def _pre_format(value: Any, *args: Any, **kwargs: Any) -> None:
    _check_percent(str(value), args or kwargs)


def _pre_indent_kw(value: Any, indent: Any = None, *_: Any, **kw: Any) -> None:
    indent = kw.get("indent", indent)
    if indent is not None and (isinstance(indent, str) or _int(indent) > 1000):
        _check_size(
            len(indent) if isinstance(indent, str) else _int(indent) * 1000, "a JSON indent"
        )


_PRE_CHECKS: dict[str, Callable[..., None]] = {
    "center": _pre_center,
    "indent": _pre_indent,
    "replace": _pre_replace,
    "wordwrap": _pre_wordwrap,
    "batch": _pre_batch,
    "slice": _pre_slice,
    "format": _pre_format,
    "tojson": _pre_indent_kw,
    "to_json": _pre_indent_kw,
}


def _checked(original: Callable[..., Any], pre: Callable[..., None]) -> Callable[..., Any]:
    """``original`` with ``pre`` run on its user arguments first (Jinja's pass-arg kept)."""
    passes = getattr(original, "jinja_pass_arg", None)

    @functools.wraps(original)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        pre(*(args[1:] if passes is not None else args), **kwargs)
        return original(*args, **kwargs)

    return wrapper


@pass_eval_context
def _join(eval_ctx: Any, value: Iterable[Any], d: str = "", attribute: Any = None) -> Any:
    from jinja2.filters import do_join

    items = list(itertools.islice(value, LIMITS.template_output_chars + 1))
    _check_size(len(items), "join")
    if attribute is None:
        size = len(str(d)) * max(len(items) - 1, 0)
        for item in items:
            size += len(item) if isinstance(item, str) else len(str(item))
            if size > LIMITS.template_output_chars:
                break
        _check_size(size, "join")
    result = do_join(eval_ctx, items, d, attribute)
    _check_size(len(result), "join")
    return result


@pass_environment
def _sum(environment: Any, iterable: Iterable[Any], attribute: Any = None, start: Any = 0) -> Any:
    from jinja2.filters import do_sum

    if isinstance(start, (str, list, tuple)):
        # sum() of sequences copies the growing total at every step (quadratic); chain them
        items = list(itertools.islice(iterable, LIMITS.template_output_chars + 1))
        if attribute is not None:
            from jinja2.filters import make_attrgetter

            get = make_attrgetter(environment, attribute)
            items = [get(item) for item in items]
        size = _weight(start, LIMITS.template_output_chars)
        for item in items:
            size += _weight(item, LIMITS.template_output_chars)
            _check_size(size, "sum")
        if isinstance(start, str):
            raise TypeError("sum() can't sum strings [use | join instead]")
        return type(start)(itertools.chain(start, *items))
    return do_sum(environment, iterable, attribute, start)


def _lipsum(n: int = 5, html: bool = True, min: int = 20, max: int = 100) -> Any:
    """Jinja's ``lipsum``, its size (``n`` paragraphs of up to ``max`` words) checked first."""
    from jinja2.utils import generate_lorem_ipsum

    words = builtins.max(_int(min), _int(max), 1)
    _check_size(_int(n) * words * 12, "lipsum")
    return generate_lorem_ipsum(n=n, html=html, min=min, max=max)


builtins_max = builtins.max

#: ``str`` methods whose result can be far larger than the string: name -> size of the result.
_STR_METHODS: dict[str, Callable[..., int]] = {
    "ljust": lambda s, width=0, *a: builtins_max(len(s), _int(width)),
    "rjust": lambda s, width=0, *a: builtins_max(len(s), _int(width)),
    "center": lambda s, width=0, *a: builtins_max(len(s), _int(width)),
    "zfill": lambda s, width=0, *a: builtins_max(len(s), _int(width)),
    "expandtabs": lambda s, tabsize=8, *a: len(s) + s.count("\t") * builtins_max(_int(tabsize), 0),
    "replace": lambda s, old="", new="", count=-1, *a: (
        len(s)
        + (s.count(old) if _int(count) < 0 else min(s.count(old), _int(count)))
        * builtins_max(len(str(new)) - len(str(old)), 0)
    ),
}


class _LoopCounter(Iterator[Any]):
    """Wraps a ``{% for %}`` iterable: one step of the render's loop budget per item."""

    __slots__ = ("_items", "_length")

    def __init__(self, iterable: Iterable[Any]) -> None:
        self._items = iter(iterable)
        self._length = len(iterable) if isinstance(iterable, Sized) else None

    def __iter__(self) -> _LoopCounter:
        return self

    def __len__(self) -> int:  # keeps ``loop.length`` cheap for sized iterables
        if self._length is None:
            raise TypeError("no length")
        return self._length

    def __next__(self) -> Any:
        item = next(self._items)
        budget = _LOCAL.__dict__.get("budget")
        if budget is not None:
            budget.loops -= 1
            if budget.loops < 0:
                raise _refuse(
                    f"loops ran more than {LIMITS.template_loop_iterations:,} steps",
                    "template_loop_iterations",
                )
            if time.monotonic() > budget.deadline:
                _tick()
        return item


class _CountingCodeGenerator(CodeGenerator):
    """Jinja's code generator, with loop iterables and every output piece counted."""

    def visit_For(self, node: nodes.For, frame: Frame) -> None:
        node = nodes.For(
            node.target,
            nodes.Call(nodes.EnvironmentAttribute("count_loop"), [node.iter], [], None, None),
            node.body,
            node.else_,
            node.test,
            node.recursive,
            lineno=node.lineno,
        )
        super().visit_For(node, frame)

    def visit_Concat(self, node: nodes.Concat, frame: Frame) -> None:
        self.write("environment.count_text(")
        super().visit_Concat(node, frame)
        self.write(")")

    def _output_child_pre(self, node: nodes.Expr, frame: Frame, finalize: Any) -> None:
        self.write("environment.count_output(")
        super()._output_child_pre(node, frame, finalize)

    def _output_child_post(self, node: nodes.Expr, frame: Frame, finalize: Any) -> None:
        super()._output_child_post(node, frame, finalize)
        self.write(")")


class BoundedSandbox(ImmutableSandboxedEnvironment):
    """An immutable sandbox whose renders are bounded in time, output, loop steps and sizes."""

    code_generator_class = _CountingCodeGenerator
    intercepted_binops = frozenset({"*", "**", "+", "%"})

    def __init__(self, **options: Any) -> None:
        options.setdefault("optimized", False)  # never evaluate a template while compiling it
        super().__init__(**options)
        for name, pre in _PRE_CHECKS.items():
            if name in self.filters:
                self.filters[name] = _checked(self.filters[name], pre)
        self.filters["join"] = _join
        self.filters["sum"] = _sum
        self.globals["lipsum"] = _lipsum

    def add_filter(self, name: str, function: Callable[..., Any]) -> None:
        """Register a filter, with this sandbox's size check when it has one for ``name``."""
        pre = _PRE_CHECKS.get(name)
        self.filters[name] = _checked(function, pre) if pre else function

    # -- one render ---------------------------------------------------------------------------

    def bounded(self, render: Callable[..., Any]) -> Callable[..., Any]:
        """``render`` with a fresh budget installed for each call on this thread."""

        @functools.wraps(render)
        def run(*args: Any, **kwargs: Any) -> Any:
            outer = _LOCAL.__dict__.get("budget")
            _LOCAL.budget = _Budget() if outer is None else outer
            try:
                return render(*args, **kwargs)
            finally:
                _LOCAL.budget = outer

        return run

    # -- hooks the generated code calls ---------------------------------------------------------

    def count_loop(self, iterable: Any) -> _LoopCounter:
        return _LoopCounter(iterable)

    def count_output(self, text: Any) -> Any:
        budget = _LOCAL.__dict__.get("budget")
        if budget is not None:
            budget.output -= len(text) if isinstance(text, str) else 1
            if budget.output < 0:
                raise _refuse(
                    f"the template wrote more than {LIMITS.template_output_chars:,} characters",
                    "template_output_chars",
                )
            if time.monotonic() > budget.deadline:
                _tick()
        return text

    def count_text(self, text: str) -> str:
        _check_size(len(text), "~")
        return text

    def call(__self, __context: Any, __obj: Any, *args: Any, **kwargs: Any) -> Any:
        _tick()
        owner = getattr(__obj, "__self__", None)
        if isinstance(owner, str):
            size = _STR_METHODS.get(getattr(__obj, "__name__", ""))
            if size is not None:
                _check_size(size(owner, *args, *kwargs.values()), f"str.{__obj.__name__}")
            elif getattr(__obj, "__name__", "") == "join" and args:
                items = list(itertools.islice(args[0], LIMITS.template_output_chars + 1))
                _check_size(len(owner) * len(items) + sum(len(str(i)) for i in items), "str.join")
                args = (items, *args[1:])
        return super().call(__context, __obj, *args, **kwargs)

    def wrap_str_format(self, value: Any) -> Callable[..., str] | None:
        wrapper = super().wrap_str_format(value)
        if wrapper is None or type(value.__self__) is not str:
            return wrapper
        text: str = value.__self__
        is_map = value.__name__ == "format_map"
        formatter = _BoundedFormatter(self)

        def bounded(*args: Any, **kwargs: Any) -> str:
            if is_map:
                if kwargs or len(args) != 1:
                    raise TypeError("format_map() takes exactly one argument")
                kwargs, args = args[0], ()
            return formatter.vformat(text, args, kwargs)

        return functools.update_wrapper(bounded, value)

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        _tick()
        if operator == "*":
            for sequence, count in ((left, right), (right, left)):
                if isinstance(sequence, (str, bytes, list, tuple)) and isinstance(count, int):
                    if count <= 0 or not sequence:
                        break
                    cap = LIMITS.template_output_chars // count
                    _check_size(_weight(sequence, cap + 1) * count, "*")
                    break
            else:
                if (
                    isinstance(left, int)
                    and isinstance(right, int)
                    and left.bit_length() + right.bit_length() > LIMITS.template_int_bits
                ):
                    raise _refuse(
                        f"a product of {left.bit_length() + right.bit_length():,} bits is too "
                        "large",
                        "template_int_bits",
                    )
        elif operator == "+":
            if isinstance(left, (str, bytes, list, tuple)) and isinstance(
                right, (str, bytes, list, tuple)
            ):
                _check_size(len(left) + len(right), "+")
        elif operator == "**":
            if (
                isinstance(left, int)
                and isinstance(right, int)
                and abs(left) > 1
                and right > 0
                and right * math.log2(abs(left)) > LIMITS.template_int_bits
            ):
                raise _refuse(f"{left} ** {right} is too large", "template_int_bits")
        elif operator == "%" and isinstance(left, str):
            _check_percent(left, right)
        return super().call_binop(context, operator, left, right)
