"""Actions: what a task runs, found by name.

A name resolves, in order, to a builtin (``core.echo``...), a function registered with
:func:`task` (in the kernel or in a module the run imported), or an import path
``package.module:function`` (the workflow file's folder is importable), or a StackStorm pack
action ``PACK.ACTION`` beside the workflow (:mod:`.packs`). Modules imported from the
workflow's folder are marked for cloudpickle's by-value pickling, so their code travels to remote
Dask workers that never installed it.
"""

from __future__ import annotations

import contextvars
import functools
import importlib
import os
import re
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, overload

from ..exceptions import ActionNotFound, SpecError
from .base import ActionDef, _plain, _signature, _wants_context

__all__ = ["ActionDef", "TaskFunction", "get_registry", "resolve_action", "task"]


_REGISTRY: dict[str, ActionDef] = {}
_LOCK = threading.Lock()
#: Set while a ``@workflow`` function is being traced into a graph.
BUILDER: contextvars.ContextVar[Any] = contextvars.ContextVar("jw_builder", default=None)


def get_registry() -> dict[str, ActionDef]:
    """The registered actions (a copy)."""
    return dict(_REGISTRY)


class TaskFunction:
    """What ``@task`` returns: the function, still callable as before.

    Called inside a ``@workflow`` function being traced, it adds a task to the graph and returns
    a reference to the task's result instead of running.
    """

    def __init__(self, definition: ActionDef) -> None:
        self.definition = definition
        functools.update_wrapper(self, definition.fn)

    @property
    def name(self) -> str:
        return self.definition.name

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        builder = BUILDER.get()
        if builder is not None:
            return builder.add_task(self, args, kwargs)
        return self.definition.fn(*args, **kwargs)

    def __repr__(self) -> str:
        return f"<task {self.definition.name!r}>"

    def __reduce__(self):
        # Pickle as the plain function: workers need the code, not the registry entry.
        return (_identity, (self.definition.fn,))


def _identity(fn):
    return fn


@overload
def task(fn: Callable[..., Any], /) -> TaskFunction: ...
@overload
def task(
    *,
    name: str | None = None,
    resources: dict[str, float] | None = None,
    retry: Any = None,
    timeout: float | None = None,
    cache: Any = None,
    queue: str | None = None,
) -> Callable[[Callable[..., Any]], TaskFunction]: ...
def task(
    fn: Callable[..., Any] | None = None,
    /,
    *,
    name: str | None = None,
    resources: dict[str, float] | None = None,
    retry: Any = None,
    timeout: float | None = None,
    cache: Any = None,
    queue: str | None = None,
) -> Any:
    """Register a Python function as an action, by its name or ``name``.

    Parameters
    ----------
    name:
        The action name tasks use (default: the function's ``__name__``).
    resources, retry, timeout, cache, queue:
        Defaults for every task running this action; a task's own fields win.

    Examples
    --------
    >>> @task
    ... def add(a: int, b: int) -> int:
    ...     return a + b
    """

    if name is not None:
        _check_name(name)
    # Checked now, not when the first task runs: the same rules as a task's own fields.
    options = _check_options(
        name, resources=resources, retry=retry, timeout=timeout, cache=cache, queue=queue
    )

    def register(f: Callable[..., Any]) -> TaskFunction:
        if isinstance(f, TaskFunction):
            f = f.definition.fn
        if not callable(f):
            hint = " (to name the action, write @task(name=...))" if isinstance(f, str) else ""
            raise SpecError(f"@task registers a function, got {type(f).__name__} {f!r}{hint}")
        action_name = name or getattr(f, "__name__", None)
        if not isinstance(action_name, str) or action_name == "<lambda>":
            raise SpecError(f"@task: {f!r} has no name to register it by; give @task(name=...)")
        if name is None:
            _check_name(action_name)
        definition = ActionDef(
            name=action_name,
            fn=f,
            **options,
            wants_context=_wants_context(f),
            signature=_signature(f),
        )
        with _LOCK:
            _REGISTRY[action_name] = definition
        return TaskFunction(definition)

    if fn is not None:
        return register(fn)
    return register


#: Namespaces of the builtin actions: a registered name there would never be called, since
#: builtins resolve first.
RESERVED_PREFIXES = ("core.", "llm.")


_IMPORT_PATH = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_][\w.]*$")


def _check_name(name: Any) -> None:
    from ..spec.models import NAME_PATTERN

    if not isinstance(name, str):
        raise SpecError(f"@task(name=...) must be a string, got {type(name).__name__} {name!r}")
    if _IMPORT_PATH.match(name):
        return  # ``module:function``: stands in for that import (resume registers those so)
    if not re.match(NAME_PATTERN, name):
        raise SpecError(
            f"@task: invalid action name {name!r}: letters, digits, '_', '.' and '-', "
            "starting with a letter or '_'"
        )
    if name.startswith(RESERVED_PREFIXES):
        raise SpecError(
            f"@task: the action name {name!r} is reserved: 'core.*' and 'llm.*' are the "
            "builtin actions; choose another name"
        )


def _check_options(name: str | None, **given: Any) -> dict[str, Any]:
    """The decorator's options as a task's fields would read them; one-line SpecError if bad."""
    from pydantic import BaseModel, ValidationError

    from ..spec.models import TaskDefaults

    data = {k: v for k, v in given.items() if v is not None}
    try:
        parsed = TaskDefaults.model_validate(data)
    except ValidationError as exc:
        err = exc.errors(include_url=False)[0]
        option = str(err["loc"][0]) if err["loc"] else "options"
        who = f"@task(name={name!r})" if name else "@task"
        if err["type"] == "extra_forbidden" and len(err["loc"]) == 2:
            import difflib

            from ..spec.models import CachePolicy, RetryPolicy

            field = str(err["loc"][1])
            models: dict[str, type[BaseModel]] = {"retry": RetryPolicy, "cache": CachePolicy}
            model = models.get(option)
            known = list(model.model_fields) if model is not None else []
            hint = difflib.get_close_matches(field, known, n=1)
            message = f"unknown field {field!r}" + (f" (did you mean {hint[0]!r}?)" if hint else "")
            raise SpecError(f"{who}: option {option!r}: {message}") from None
        message = str(err["msg"]).removeprefix("Value error, ")
        message = re.sub(r"a valid dictionary( or instance of \w+)?", "a mapping", message)
        raise SpecError(
            f"{who}: option {option!r}: {message} (got {given.get(option)!r})"
        ) from None
    return {
        "resources": dict(parsed.resources) if parsed.resources else None,
        "retry": parsed.retry,
        "timeout": parsed.timeout,
        "cache": parsed.cache,
        "queue": parsed.queue,
    }


def _builtins() -> dict[str, ActionDef]:
    from . import builtins

    return builtins.BUILTINS


#: Modules imported from each workflow folder (realpath -> {name: module}), so two folders that
#: both have a ``tasks.py`` each get their own (job folders often do; so do a user's projects).
_folder_modules: dict[str, dict[str, Any]] = {}
_folder_lock = threading.RLock()
#: ``(folder, module name) -> module`` last imported by :func:`_import_module`: while that very
#: module is still the one in ``sys.modules`` (with its folder's top-level package), resolving
#: it again needs no scan of ``sys.modules`` and no import (a run resolves its actions each time).
_resolved: dict[tuple[str, str], Any] = {}


def _import_module(module_name: str, base_dir: Path | None) -> Any:
    """Import ``module_name`` for a workflow whose file is in ``base_dir``.

    A module that ``base_dir`` itself provides (``tasks.py`` or ``tasks/__init__.py``) is
    imported from there even when a module of the same name from another folder was imported
    before: those are swapped out of ``sys.modules`` (and this folder's, imported before, back
    in), as the Dask workers do with shipped folders. Anything else imports as Python would.
    """
    if base_dir is None:
        return importlib.import_module(module_name)
    folder = os.path.realpath(base_dir)
    if folder not in sys.path and str(base_dir) not in sys.path:
        sys.path.insert(0, str(base_dir))
    top = module_name.partition(".")[0]
    local = os.path.join(folder, top)
    if not (os.path.isfile(local + ".py") or os.path.isfile(os.path.join(local, "__init__.py"))):
        return importlib.import_module(module_name)

    cached = _resolved.get((folder, module_name))
    if (
        cached is not None
        and sys.modules.get(module_name) is cached
        and sys.modules.get(top) is _folder_modules.get(folder, {}).get(top)
    ):
        return cached

    def provided(name: str) -> bool:
        return name.partition(".")[0] == top

    def from_folder(module: Any) -> bool:
        file = getattr(module, "__file__", None)
        return isinstance(file, str) and os.path.realpath(file).startswith(folder + os.sep)

    with _folder_lock:
        for name, module in list(sys.modules.items()):
            if provided(name) and not from_folder(module):
                del sys.modules[name]
        known = _folder_modules.setdefault(folder, {})
        sys.modules.update({n: m for n, m in known.items() if provided(n)})
        sys.path.insert(0, folder)  # first while importing: this folder's module wins
        importlib.invalidate_caches()
        try:
            module = importlib.import_module(module_name)
        finally:
            sys.path.remove(folder)
            known.update(
                {n: m for n, m in list(sys.modules.items()) if provided(n) and from_folder(m)}
            )
        if known.get(module_name) is module:
            _resolved[(folder, module_name)] = module
        return module


def _import_path(path: str, base_dir: Path | None) -> Callable[..., Any]:
    module_name, _, attr = path.partition(":")
    try:
        module = _import_module(module_name, base_dir)
    except ImportError as exc:
        raise ActionNotFound(
            f"action {path!r}: cannot import module {module_name!r} ({exc})"
        ) from None
    except Exception as exc:
        raise ActionNotFound(
            f"action {path!r}: importing {module_name!r} raised {type(exc).__name__}: {exc}"
        ) from None
    # Not pickled by value: the Dask executor ships the folder's module files to the workers,
    # which import them (module-level state such as a lock or a client stays on each worker).
    obj: Any = module
    for part in attr.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise ActionNotFound(
                f"action {path!r}: module {module_name!r} has no {attr!r}"
            ) from None
    if not callable(obj):
        raise ActionNotFound(f"action {path!r} is not callable")
    return obj


def resolve_action(name: str, base_dir: str | Path | None = None) -> ActionDef:
    """Find the action ``name``; raise :class:`ActionNotFound` naming it when none fits."""
    builtins = _builtins()
    if name in builtins:
        return builtins[name]
    registered = _REGISTRY.get(name)
    if registered is not None:
        return registered
    base = Path(base_dir) if base_dir is not None else None
    if ":" in name:
        fn = _import_path(name, base)
        if isinstance(fn, TaskFunction):
            return fn.definition
        return _plain(name, fn)
    if "." in name:  # ``PACK.ACTION`` beside a workflow in a StackStorm pack
        from .packs import pack_action_def

        in_pack = pack_action_def(name, base, _import_module)
        if in_pack is not None:
            return in_pack
    import difflib

    hint = difflib.get_close_matches(name, [*builtins, *_REGISTRY], n=1)
    extra = (
        f" (did you mean {hint[0]!r}?)"
        if hint
        else " (register it with @jw.task or use 'module:function')"
    )
    raise ActionNotFound(f"unknown action {name!r}{extra}")
