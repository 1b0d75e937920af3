"""Run parameters: checked against the declared ones before any run exists.

Also home of ``KEY=VALUE`` parsing shared by the CLI's ``-p`` and the magics' ``-p``: VALUE is
read as YAML, so ``n=5`` is an integer and ``regions=[eu,us]`` a list. The parsed values remember
the text they came from (:class:`Assignments`), so a parameter declared ``type: string`` gets
``-p name=5`` or ``-p answer=yes`` as the text typed rather than refusing YAML's int or bool.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import yaml

from ..exceptions import ParameterError
from .models import ParameterSpec, WorkflowSpec

__all__ = ["Assignments", "check_value", "parse_assignments", "resolve_parameters"]

_CHECKS = {
    "string": lambda v: isinstance(v, str),
    "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "number": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
    "boolean": lambda v: isinstance(v, bool),
    "array": lambda v: isinstance(v, (list, tuple)),
    "object": lambda v: isinstance(v, dict),
    "any": lambda v: True,
}


class Assignments(dict[str, Any]):
    """Parameter values read from ``KEY=VALUE`` text, each remembering its text (``texts``)."""

    def __init__(self) -> None:
        super().__init__()
        #: The VALUE text of each KEY, as typed (surrounding spaces removed).
        self.texts: dict[str, str] = {}


def check_value(param: ParameterSpec, value: Any) -> str | None:
    """Why ``value`` does not fit ``param``, or None when it does."""
    if not _CHECKS[param.type](value):
        return f"must be of type {param.type}, got {type(value).__name__} {value!r}"
    if param.enum is not None and value not in param.enum:
        return f"must be one of {param.enum}, got {value!r}"
    return None


def resolve_parameters(spec: WorkflowSpec, given: Mapping[str, Any] | None) -> dict[str, Any]:
    """Declared defaults merged with ``given``; raises :class:`ParameterError` on misfit.

    Unknown names are refused (with a close match when there is one) so a typo in ``-p`` does
    not silently run with the default.
    """
    import difflib

    if given is not None and not isinstance(given, Mapping):
        raise ParameterError(
            f"parameters must be a mapping of name -> value, got {type(given).__name__}"
        )
    texts = given.texts if isinstance(given, Assignments) else {}
    given = dict(given or {})
    out: dict[str, Any] = {}
    for name in given:
        if name not in spec.parameters:
            hint = difflib.get_close_matches(name, list(spec.parameters), n=1)
            known = ", ".join(spec.parameters) or "none"
            extra = f" (did you mean {hint[0]!r}?)" if hint else f" (declared: {known})"
            raise ParameterError(f"workflow {spec.name!r} has no parameter {name!r}{extra}")
    for name, param in spec.parameters.items():
        if name in given:
            value = given[name]
            if (
                param.type == "string"
                and name in texts
                and not isinstance(value, (str, list, dict))
            ):
                # ``-p name=5``/``name=yes``/``name=2024-01-01``: YAML typed the text; the
                # declaration says it is text.
                value = texts[name]
        elif param.required:
            raise ParameterError(f"workflow {spec.name!r}: parameter {name!r} is required")
        else:
            value = param.default
        if value is not None or name in given:
            problem = check_value(param, value)
            if problem:
                raise ParameterError(f"parameter {name!r} {problem}")
        out[name] = value
    return out


def parse_assignments(items: Iterable[str] | None) -> Assignments:
    """``["n=5", "regions=[eu,us]"]`` -> ``{"n": 5, "regions": ["eu", "us"]}``.

    Each VALUE is read as YAML; :func:`resolve_parameters` gives a parameter declared
    ``type: string`` the text as typed when YAML read a number, boolean, date or null.
    """
    out = Assignments()
    for item in items or ():
        key, sep, raw = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise ParameterError(f"expected KEY=VALUE, got {item!r}")
        try:
            value = yaml.safe_load(raw) if raw.strip() else ""
        except yaml.YAMLError as exc:
            problem = getattr(exc, "problem", None) or "invalid YAML"
            raise ParameterError(
                f"parameter {key!r}: cannot read {raw!r} as YAML: {problem}"
            ) from None
        out[key] = value
        out.texts[key] = raw.strip()
    return out
