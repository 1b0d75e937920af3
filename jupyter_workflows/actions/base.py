"""What every action module shares: :class:`ActionDef` and :class:`ActionFailed`.

The modules of this package import one way: ``registry`` (``@task``, resolving names) ->
``builtins`` (``core.*``) -> ``llm`` -> ``base``.
"""

from __future__ import annotations

import functools
import hashlib
import inspect
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

__all__ = ["ActionDef", "ActionFailed"]


class ActionFailed(Exception):
    """Raised by ``core.fail`` and by builtins whose work failed (non-zero exit, HTTP error)."""


@dataclass(frozen=True)
class ActionDef:
    """A resolved action: the function and the options its decorator gave."""

    name: str
    fn: Callable[..., Any]
    resources: dict[str, float] | None = None
    retry: Any = None
    timeout: float | None = None
    cache: Any = None
    queue: str | None = None
    #: True for ``core.inquiry`` and nested-workflow-like actions the engine handles itself.
    engine_side: bool = False
    wants_context: bool = False
    signature: inspect.Signature | None = field(default=None, compare=False)

    @functools.cached_property
    def code_hash(self) -> str:
        """A hash of the function's source (or bytecode), for cache keys."""
        try:
            src = inspect.getsource(self.fn).encode()
        except (OSError, TypeError):
            code = getattr(self.fn, "__code__", None)
            src = code.co_code if code is not None else repr(self.fn).encode()
        return hashlib.sha256(src).hexdigest()[:16]


def _wants_context(fn: Callable[..., Any]) -> bool:
    try:
        return "context" in inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return False


def _signature(fn: Callable[..., Any]) -> inspect.Signature | None:
    try:
        return inspect.signature(fn)
    except (TypeError, ValueError):
        return None


def _plain(name: str, fn: Callable[..., Any], **options: Any) -> ActionDef:
    return ActionDef(
        name=name, fn=fn, wants_context=_wants_context(fn), signature=_signature(fn), **options
    )
