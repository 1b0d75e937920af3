"""StackStorm pack actions: ``PACK.ACTION`` found in a pack's folder (docs/dialects.md).

A workflow file that lives in a StackStorm (or attune) pack names its actions ``PACK.ACTION``;
the action is defined beside it::

    packs/PACK/pack.yaml                  # the pack's ``ref`` (else its ``name``)
    packs/PACK/actions/ACTION.yaml        # name, runner_type, entry_point, parameters
    packs/PACK/actions/ACTION.py          # python-script: an st2 ``Action`` subclass
    packs/PACK/actions/ACTION.sh          # local-shell-script
    packs/PACK/actions/workflows/X.yaml   # orquesta: a nested workflow

:func:`find_pack_action` reads the metadata (any malformed part is one positioned
``FILE:LINE:COL`` line, as the loader's errors are); the registry turns a ``python-script`` or
``local-shell-script`` action into an :class:`ActionDef` (:func:`pack_action_def`), and
``sources`` runs an ``orquesta``/``workflow`` one as a nested workflow (:func:`workflow_entry`).

Why the function objects look the way they do: a Python action's module is imported the way a
workflow folder's ``module:function`` modules are (the registry's importer), and the runner
object carries that module's name and file as ``__module__``/``__globals__``, so the Dask
executor ships the module's folder to the workers and they import it there (module-level state
stays per worker). The object pickles as *which module and class* (:func:`_rebuild`), not as
the class itself, so the worker installs the ``st2common`` stand-in (:func:`install_st2_shim`)
before it imports the module.
"""

from __future__ import annotations

import copy
import importlib
import json
import logging
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import types
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..exceptions import ActionNotFound, SpecError
from .base import ActionDef, ActionFailed, _plain

__all__ = [
    "Action",
    "PackAction",
    "find_pack_action",
    "install_st2_shim",
    "pack_action_def",
    "workflow_entry",
]

#: The runners run here: a Python class, a script, a nested workflow (attune calls it
#: ``workflow``).
PYTHON = "python-script"
SHELL = "local-shell-script"
COMMAND = "local-shell-cmd"  # StackStorm's core.local: the 'cmd' parameter through the shell
WORKFLOW_RUNNERS = ("orquesta", "workflow")  # as spec.st2_action reads them
RUNNERS = (PYTHON, SHELL, COMMAND, *WORKFLOW_RUNNERS)

_cache_lock = threading.Lock()

_REF = re.compile(r"^([A-Za-z0-9_][\w-]*)\.([A-Za-z0-9_][\w.-]*)$")


@dataclass(frozen=True)
class PackAction:
    """An action's metadata, read from ``PACK/actions/*.yaml``."""

    ref: str
    pack: str
    runner: str
    #: The metadata file, as shown in messages.
    file: str
    #: The metadata file, absolute.
    path: Path
    #: The entry point, absolute.
    entry: Path
    #: ``{name: {default, required, position, immutable, ...}}`` as written.
    parameters: dict[str, dict[str, Any]]
    #: The pack's configuration (``config.schema.yaml`` / ``pack.yaml`` defaults, then
    #: ``jw.configure(pack_config=...)``).
    config: dict[str, Any] = field(default_factory=dict)


# -- finding the metadata -----------------------------------------------------------------------
def _pack_root(base_dir: str | Path) -> tuple[Path, str] | None:
    """The pack folder holding ``base_dir`` and the pack's name (its ``ref``, else ``name``)."""
    from ..spec.attune import _pack_yaml

    manifest = _pack_yaml(os.path.join(str(base_dir), "_"))
    if manifest is None:
        return None
    return manifest.parent, _manifest(manifest)[0] or manifest.parent.name


#: ``pack.yaml`` (and ``config.schema.yaml``) read, by their paths, times and sizes.
_manifests: dict[tuple[Any, ...], tuple[str | None, dict[str, Any]]] = {}


def _manifest(manifest: Path) -> tuple[str | None, dict[str, Any]]:
    """``(ref or name, configuration defaults)`` of a ``pack.yaml`` (unreadable: nothing)."""
    key: list[Any] = []
    for path in (manifest, manifest.parent / "config.schema.yaml"):
        try:
            info = path.stat()
            key.append((str(path), info.st_mtime_ns, info.st_size))
        except OSError:
            key.append((str(path), None))
    with _cache_lock:
        known = _manifests.get(tuple(key))
    if known is None:
        known = _read_manifest(manifest)
        with _cache_lock:
            _manifests[tuple(key)] = known
    return known[0], dict(known[1])


def _read_manifest(manifest: Path) -> tuple[str | None, dict[str, Any]]:
    import yaml

    try:
        meta = yaml.safe_load(manifest.read_text(encoding="utf-8")) or {}
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return None, {}
    if not isinstance(meta, dict):
        return None, {}
    name = meta.get("ref") or meta.get("name")
    config: dict[str, Any] = {}
    # StackStorm: config.schema.yaml beside pack.yaml ({key: {default: ...}}); attune:
    # pack.yaml's conf_schema (a JSON Schema) and config.
    schema_file = manifest.parent / "config.schema.yaml"
    if schema_file.is_file():
        try:
            schema = yaml.safe_load(schema_file.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, yaml.YAMLError):
            schema = None
        if isinstance(schema, dict):
            for key, prop in schema.items():
                if isinstance(prop, dict) and "default" in prop:
                    config[key] = prop["default"]
    from ..spec.attune import manifest_config

    return (name if isinstance(name, str) else None), manifest_config(meta, config)


def _metadata_file(actions: Path, action: str) -> Path | None:
    """``ACTION.yaml`` (``.yml``, ``.meta.yaml``) in ``actions``, else the file there whose
    ``name:`` is ``ACTION`` (StackStorm finds actions by that name, not by file name)."""
    for suffix in (".yaml", ".yml", ".meta.yaml", ".meta.yml"):
        candidate = actions / f"{action}{suffix}"
        if candidate.is_file():
            return candidate
    try:
        entries = sorted(actions.iterdir())
    except OSError:
        return None
    wanted = re.compile(rf"^name\s*:\s*([\"']?){re.escape(action)}\1\s*(#.*)?$", re.MULTILINE)
    for entry in entries:
        if entry.suffix.lower() not in (".yaml", ".yml") or not entry.is_file():
            continue
        try:
            if entry.stat().st_size > 1_000_000:
                continue
            text = entry.read_text(encoding="utf-8", errors="replace")
        except OSError:
            continue
        if wanted.search(text):
            return entry
    return None


def _shown(path: Path) -> str:
    """``path`` as messages show it: relative to the working folder when it is inside it."""
    try:
        rel = os.path.relpath(path)
    except ValueError:
        return str(path)
    return str(path) if rel.startswith("..") else rel


#: Parsed metadata by (file, mtime, size): a run resolves its actions every time it starts.
_cache: dict[tuple[str, int, int], PackAction] = {}


def find_pack_action(ref: str, base_dir: str | Path | None) -> PackAction | None:
    """The pack action ``ref`` (``PACK.ACTION``) for a workflow in ``base_dir``, or None when
    ``base_dir`` is in no pack or the pack has no such action.

    Raises
    ------
    SpecError
        The metadata file is malformed (``FILE:LINE:COL: message``).
    """
    match = _REF.match(ref)
    if base_dir is None or match is None:
        return None
    found = _pack_root(base_dir)
    if found is None:
        return None
    root, name = found
    pack, action = match.groups()
    if pack != name:
        sibling = root.parent / pack
        if not (sibling / "actions").is_dir():
            return None
        root = sibling
    meta = _metadata_file(root / "actions", action)
    if meta is None:
        return None
    try:
        info = meta.stat()
    except OSError:
        return None
    key = (str(meta), info.st_mtime_ns, info.st_size)
    with _cache_lock:
        cached = _cache.get(key)
    if cached is None:
        try:
            cached = _read_metadata(ref, pack, meta)
        except SpecError as exc:
            exc.pack_action = True  # type: ignore[attr-defined]  # validate: "in action ..."
            raise
        with _cache_lock:
            _cache[key] = cached
    return _with_config(cached, root)


def _with_config(action: PackAction, root: Path) -> PackAction:
    """``action`` with its pack's configuration as it is now (``jw.configure`` may change)."""
    from ..expressions import ExpressionError
    from ..spec.attune import pack_config

    manifest = root / "pack.yaml"
    config = _manifest(manifest)[1] if manifest.is_file() else {}
    try:
        config.update(pack_config(action.pack))
    except ExpressionError:
        pass  # nothing configured: the files' defaults
    return PackAction(
        ref=action.ref,
        pack=action.pack,
        runner=action.runner,
        file=_shown(action.path),  # the working folder may have changed since it was read
        path=action.path,
        entry=action.entry,
        parameters=action.parameters,
        config=config,
    )


def _read_metadata(ref: str, pack: str, meta: Path) -> PackAction:
    from ..spec.loader import parse_document, read_text

    shown = _shown(meta)
    data, smap = parse_document(read_text(meta), file=shown)
    if not isinstance(data, dict):
        raise smap.error(f"action metadata for {ref!r} must be a mapping")
    runner = data.get("runner_type")
    entry_key = "entry_point"
    if runner is None and "workflow_file" in data:  # an attune workflow action
        runner, entry_key = "workflow", "workflow_file"
    if not isinstance(runner, str) or not runner:
        raise smap.error(
            f"action {ref!r}: missing 'runner_type' (one of {', '.join(RUNNERS)})",
            ("runner_type",) if "runner_type" in data else (),
            key="runner_type" not in data,
        )
    if runner not in RUNNERS:
        raise smap.error(
            f"action {ref!r}: runner_type {runner!r} is not run here "
            f"(supported: {', '.join(RUNNERS)})",
            ("runner_type",),
        )
    entry_point = data.get(entry_key)
    if runner == COMMAND:  # no file: the command is a parameter ('entry_point' is '')
        entry_point = meta.name
    if not isinstance(entry_point, str) or not entry_point.strip():
        raise smap.error(
            f"action {ref!r}: runner_type {runner!r} needs an {entry_key!r} (a file relative "
            "to the actions folder)",
            (entry_key,) if entry_key in data else (),
        )
    entry = (meta.parent / entry_point).resolve()
    if not entry.is_file():
        raise smap.error(
            f"action {ref!r}: {entry_key} {entry_point!r}: no such file ({_shown(entry)})",
            (entry_key,),
        )
    if runner == PYTHON and entry.suffix != ".py":
        raise smap.error(
            f"action {ref!r}: a python-script entry_point must be a .py file, not {entry_point!r}",
            (entry_key,),
        )
    params = data.get("parameters")
    if params is None:
        params = {}
    if not isinstance(params, dict):
        raise smap.error(
            f"action {ref!r}: 'parameters' must be a mapping of name to settings",
            ("parameters",),
        )
    parameters: dict[str, dict[str, Any]] = {}
    for pname, spec in params.items():
        at = ("parameters", pname)
        if not isinstance(pname, str) or not re.match(r"^[A-Za-z_]\w*$", pname):
            raise smap.error(f"action {ref!r}: invalid parameter name {pname!r}", at, key=True)
        if spec is None:
            spec = {}
        if not isinstance(spec, dict):
            raise smap.error(
                f"action {ref!r}: parameter {pname!r} must be a mapping "
                "(type, default, required, position...)",
                at,
            )
        for flag in ("required", "immutable"):
            if flag in spec and not isinstance(spec[flag], bool):
                raise smap.error(
                    f"action {ref!r}: parameter {pname!r}: {flag!r} must be true or false",
                    (*at, flag),
                )
        position = spec.get("position")
        if position is not None and (isinstance(position, bool) or not isinstance(position, int)):
            raise smap.error(
                f"action {ref!r}: parameter {pname!r}: 'position' must be an integer",
                (*at, "position"),
            )
        parameters[pname] = dict(spec)
    return PackAction(
        ref=ref,
        pack=pack,
        runner=runner,
        file=shown,
        path=meta.resolve(),
        entry=entry,
        parameters=parameters,
    )


# -- parameters ---------------------------------------------------------------------------------
def _missing(action: PackAction, given: Any) -> list[str]:
    """Required parameters with no default that ``given`` (a task's input keys) lacks."""
    return [
        name
        for name, spec in action.parameters.items()
        if spec.get("required") and "default" not in spec and name not in given
    ]


def _check_input(action: PackAction, task_input: Any) -> str | None:
    """What ``validate`` says about a task's input for this action (None: nothing)."""
    if task_input is None:
        task_input = {}
    if not isinstance(task_input, dict):
        return None  # one template for the whole input: known only when it runs
    missing = _missing(action, task_input)
    if missing:
        return (
            f"action {action.ref!r} needs the parameter{'s' if len(missing) > 1 else ''} "
            f"{', '.join(repr(m) for m in missing)} ({action.file})"
        )
    return None


def _parameters(action: PackAction, given: dict[str, Any]) -> dict[str, Any]:
    """The values the action runs with: ``given`` over the metadata defaults (an ``immutable``
    parameter keeps its default); one-line :class:`ActionFailed` when a required one lacks."""
    values = dict(given)
    defaults = []
    for name, spec in action.parameters.items():
        if "default" in spec and (name not in values or spec.get("immutable")):
            values[name] = spec["default"]
            defaults.append(name)
    for name in defaults:
        # A default may be a Jinja template over the other parameters, as in StackStorm
        # (``cmd: "... {{ count }} ..."``); what a task gives was rendered by the engine.
        value = values[name]
        if isinstance(value, str) and ("{{" in value or "{%" in value):
            values[name] = _render(action, name, value, values)
    missing = _missing(action, values)
    if missing:
        raise ActionFailed(
            f"action {action.ref!r}: missing required parameter"
            f"{'s' if len(missing) > 1 else ''} {', '.join(repr(m) for m in missing)}"
        )
    return values


def _render(action: PackAction, name: str, text: str, values: dict[str, Any]) -> str:
    from jinja2 import TemplateError
    from jinja2.sandbox import SandboxedEnvironment

    context = {k: v for k, v in values.items() if k != name}
    try:
        return SandboxedEnvironment().from_string(text).render(**context)
    except TemplateError as exc:
        raise ActionFailed(
            f"action {action.ref!r}: the default of parameter {name!r}: {type(exc).__name__}: {exc}"
        ) from None


# -- python-script ------------------------------------------------------------------------------
class Action:
    """The ``st2common.runners.base_action.Action`` stand-in (when st2common is not installed).

    ``self.config`` is the pack's configuration; ``self.logger`` logs into the task's logs.
    There is no ``self.action_service`` (StackStorm's datastore client): use the project's
    key-value store from the workflow instead.
    """

    def __init__(self, config: dict[str, Any] | None = None, action_service: Any = None) -> None:
        self.config = config if config is not None else {}
        self.action_service = action_service
        self.logger = logging.getLogger(f"actions.python.{type(self).__name__}")

    def run(self, **kwargs: Any) -> Any:
        raise NotImplementedError(f"{type(self).__name__} must define run()")


_shim_lock = threading.Lock()


def install_st2_shim() -> bool:
    """Make ``from st2common.runners.base_action import Action`` import :class:`Action` when
    st2common itself is not installed. True when the stand-in is (now) in place."""
    with _shim_lock:
        current = sys.modules.get("st2common.runners.base_action")
        if current is not None:
            return getattr(current, "_jw_shim", False)
        try:
            importlib.import_module("st2common.runners.base_action")
            return False
        except ImportError:
            pass
        modules = {}
        for name in ("st2common", "st2common.runners", "st2common.runners.base_action"):
            module = sys.modules.get(name)
            if module is None or not getattr(module, "_jw_shim", False):
                module = types.ModuleType(name, "jupyter_workflows' stand-in for StackStorm")
                module._jw_shim = True  # type: ignore[attr-defined]
                if name != "st2common.runners.base_action":
                    module.__path__ = []  # a package: its submodule imports
            modules[name] = module
        base_action = modules["st2common.runners.base_action"]
        base_action.Action = Action  # type: ignore[attr-defined]
        base_action.__all__ = ["Action"]  # type: ignore[attr-defined]
        modules["st2common.runners"].base_action = base_action  # type: ignore[attr-defined]
        modules["st2common"].runners = modules["st2common.runners"]  # type: ignore[attr-defined]
        sys.modules.update(modules)
        return True


def _action_class(module: Any, ref: str) -> type:
    """The module's ``Action`` subclass (StackStorm takes the one the module defines)."""
    base = sys.modules["st2common.runners.base_action"].Action
    found = [
        obj
        for obj in vars(module).values()
        if isinstance(obj, type)
        and issubclass(obj, base)
        and obj is not base
        and obj.__module__ == module.__name__
    ]
    if not found:
        found = [
            obj
            for obj in vars(module).values()
            if isinstance(obj, type) and issubclass(obj, base) and obj is not base
        ]
    if not found:
        raise ActionNotFound(
            f"action {ref!r}: {module.__file__} defines no subclass of "
            "st2common.runners.base_action.Action"
        )
    return found[0]


#: The python-script runner's own parameters: StackStorm's runner takes them out before it calls
#: ``run``. Here they have no effect (the action runs in the task's thread: its time limit is
#: the task's ``timeout``).
PYTHON_RUNNER_PARAMETERS = ("timeout", "env", "log_level", "debug", "content_version")


class PythonAction:
    """A ``python-script`` action as a task function: ``Cls(config).run(**parameters)``.

    ``(True, value)``/``(False, value)`` returned by ``run`` is success or failure with that
    value (StackStorm's convention); the result is ``{"result": value}``, which an Orquesta
    file reads as ``result().result`` as in StackStorm.
    """

    def __init__(self, action: PackAction, module_name: str, cls: type) -> None:
        self.action = action
        self.module_name = module_name
        self.cls = cls
        # Read by the Dask executor: the module lives in a user's folder and is shipped there.
        self.__module__ = module_name
        self.__globals__ = {"__file__": str(action.entry), "__name__": module_name}
        self.__name__ = self.__qualname__ = action.ref
        self.digest = _digest(action.entry)

    def __call__(self, **kwargs: Any) -> Any:
        action = self.action
        values = _parameters(action, kwargs)
        for name in PYTHON_RUNNER_PARAMETERS:  # the runner's, never run()'s (as in StackStorm)
            values.pop(name, None)
        instance = self.cls(config=copy.deepcopy(action.config))  # its own, to change at will
        if not hasattr(instance, "logger"):  # an __init__ that skipped the base's
            instance.logger = logging.getLogger(f"actions.python.{type(instance).__name__}")
        out = instance.run(**values)
        if isinstance(out, tuple) and len(out) == 2 and isinstance(out[0], bool):
            ok, out = out
            if not ok:
                raise ActionFailed(f"action {action.ref!r} returned failure: {_one_line(out)}")
        return {"result": out}

    def check_pack_input(self, task_input: Any) -> str | None:
        return _check_input(self.action, task_input)

    def __reduce__(self):
        return (_rebuild, (self.action, self.module_name, self.cls.__name__))

    def __repr__(self) -> str:
        # ActionDef.code_hash (cache keys) reads this: it changes with the module's text.
        return f"<python-script action {self.action.ref!r} ({self.action.entry} {self.digest})>"


def _rebuild(action: PackAction, module_name: str, class_name: str) -> PythonAction:
    """On a Dask worker: import the shipped module (the stand-in first) and take its class."""
    install_st2_shim()
    module = importlib.import_module(module_name)
    cls = getattr(module, class_name)
    return PythonAction(action, module_name, cls)


def _digest(path: Path) -> str:
    import hashlib

    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()[:16]
    except OSError:
        return "unreadable"


def _one_line(value: Any) -> str:
    from ..limits import shorten

    if isinstance(value, str):
        return shorten(value)
    try:
        text = json.dumps(value, default=repr)
    except (TypeError, ValueError):
        text = repr(value)
    return shorten(text)


# -- local-shell-script -------------------------------------------------------------------------
#: StackStorm's local-shell-script runner's own time limit, when the task gives none.
SHELL_TIMEOUT = 60.0


class ShellAction:
    """A ``local-shell-script`` action: the script with the parameters as StackStorm passes
    them (``--name=value``; those with a ``position`` positional, in that order); or a
    ``local-shell-cmd`` one: its ``cmd`` parameter run by bash (the other parameters only fill
    the templates of the defaults).

    The runner's own parameters are taken out first, as StackStorm's runner does: ``timeout``
    (seconds, default 60: the script is killed and the task fails), ``cwd``, ``env`` (added to
    the environment), ``kwarg_op`` (default ``--``); ``sudo: true`` is refused.
    """

    def __init__(self, action: PackAction) -> None:
        self.action = action
        self.__name__ = self.__qualname__ = action.ref
        self.digest = _digest(action.entry)

    def arguments(self, values: dict[str, Any], kwarg_op: str = "--") -> list[str]:
        spec = self.action.parameters
        positional = sorted(
            (spec[n]["position"], n) for n in values if spec.get(n, {}).get("position") is not None
        )
        args = [_arg(values[n]) for _, n in positional]
        for name in sorted(values):
            if spec.get(name, {}).get("position") is not None or values[name] is None:
                continue
            args.append(f"{kwarg_op}{name}={_arg(values[name])}")
        return args

    def __call__(self, **kwargs: Any) -> dict[str, Any]:
        action = self.action
        values = _parameters(action, kwargs)
        timeout = values.pop("timeout", None)
        cwd = values.pop("cwd", None) or str(action.entry.parent)
        env = values.pop("env", None) or {}
        kwarg_op = values.pop("kwarg_op", None) or "--"
        if values.pop("sudo", False):
            raise ActionFailed(f"action {action.ref!r}: sudo is not supported here")
        if not isinstance(env, dict):
            raise ActionFailed(f"action {action.ref!r}: env must be a mapping, got {env!r}")
        try:
            limit = SHELL_TIMEOUT if timeout is None else float(timeout)
        except (TypeError, ValueError):
            raise ActionFailed(f"action {action.ref!r}: timeout must be a number") from None
        script = str(action.entry)
        if action.runner == COMMAND:
            cmd = values.pop("cmd", None)
            if not isinstance(cmd, str) or not cmd.strip():
                raise ActionFailed(f"action {action.ref!r}: 'cmd' must be a command, got {cmd!r}")
            command, values, what = (
                [shutil.which("bash") or "/bin/sh", "-c", cmd],
                {},
                "the command",
            )
        else:
            if not os.path.isfile(script):  # a worker on another machine, without the pack
                import socket

                raise ActionFailed(
                    f"action {action.ref!r}: {script} is not on {socket.gethostname()} "
                    "(scripts are not shipped: put the pack at the same path on the workers)"
                )
            command = [script] if os.access(script, os.X_OK) else ["/bin/sh", script]
            what = Path(script).name
        # Its own process group: at the time limit, whatever it started stops with it.
        with subprocess.Popen(
            [*command, *self.arguments(values, str(kwarg_op))],
            cwd=cwd,
            env={**os.environ, **{str(k): str(v) for k, v in env.items()}},
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        ) as proc:
            try:
                stdout, stderr = proc.communicate(timeout=limit if limit > 0 else None)
            except subprocess.TimeoutExpired:
                try:
                    os.killpg(proc.pid, signal.SIGKILL)
                except OSError:
                    proc.kill()
                proc.communicate()
                raise ActionFailed(
                    f"action {action.ref!r}: {what} ran past its timeout of "
                    f"{limit:g} s and was stopped"
                ) from None
        ok = proc.returncode == 0
        out = {
            "returncode": proc.returncode,
            "stdout": stdout,
            "stderr": stderr,
            # StackStorm's names for the same
            "return_code": proc.returncode,
            "succeeded": ok,
            "failed": not ok,
        }
        if not ok:
            tail = (stderr or stdout).strip().splitlines()
            raise ActionFailed(
                f"action {action.ref!r}: {what} exited with {proc.returncode}"
                + (f": {tail[-1]}" if tail else "")
            )
        return out

    def check_pack_input(self, task_input: Any) -> str | None:
        return _check_input(self.action, task_input)

    def __repr__(self) -> str:
        # ActionDef.code_hash (cache keys) reads this: it changes with the script's text.
        return (
            f"<{self.action.runner} action {self.action.ref!r} ({self.action.entry} {self.digest})>"
        )


def _arg(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dict, list)):
        return json.dumps(value)
    return str(value)


# -- the hooks ------------------------------------------------------------------------------------
def pack_action_def(
    ref: str, base_dir: str | Path | None, importer: Callable[[str, Path], Any]
) -> ActionDef | None:
    """The :class:`ActionDef` of pack action ``ref``, or None when there is none (or it is a
    workflow: ``sources`` runs those, see :func:`workflow_entry`).

    ``importer(module_name, folder)`` imports a module of a workflow folder (the registry's).
    """
    action = find_pack_action(ref, base_dir)
    if action is None or action.runner in WORKFLOW_RUNNERS:
        return None
    if action.runner in (SHELL, COMMAND):
        return _plain(ref, ShellAction(action))
    install_st2_shim()
    module_name = action.entry.stem
    loaded = sys.modules.get(module_name)
    if module_name in getattr(sys, "stdlib_module_names", ()) or (
        loaded is not None and not _from_folder(loaded, action.entry.parent) and _installed(loaded)
    ):
        # Imported from the actions folder, it would replace that module for everyone.
        raise ActionNotFound(
            f"action {ref!r}: {action.entry.name} has the name of the installed module "
            f"{module_name!r}; rename it (and its entry_point)"
        )
    if "." in module_name:  # (a '-' is fine: the module is found by its file name)
        raise ActionNotFound(
            f"action {ref!r}: {action.entry.name} cannot be imported as a Python module "
            "(a '.' in its name reads as a package)"
        )
    try:
        module = importer(module_name, action.entry.parent)
    except Exception as exc:
        from ..exceptions import error_line

        raise ActionNotFound(
            f"action {ref!r}: importing {_shown(action.entry)}: {error_line(exc)}"
        ) from None
    if os.path.realpath(getattr(module, "__file__", "") or "") != str(action.entry):
        raise ActionNotFound(
            f"action {ref!r}: the module name {module_name!r} is taken by "
            f"{getattr(module, '__file__', None) or 'an installed module'}; rename "
            f"{action.entry.name}"
        )
    cls = _action_class(module, ref)
    return _plain(ref, PythonAction(action, module_name, cls))


def _from_folder(module: Any, folder: Path) -> bool:
    file = getattr(module, "__file__", None)
    return isinstance(file, str) and os.path.realpath(file).startswith(str(folder) + os.sep)


def _installed(module: Any) -> bool:
    """A module of the Python installation (the standard library, site-packages), or built in."""
    import sysconfig

    file = getattr(module, "__file__", None)
    if not isinstance(file, str):
        return True
    roots = {sys.prefix, sys.base_prefix, *sysconfig.get_paths().values()}
    real = os.path.realpath(file)
    return any(real.startswith(os.path.realpath(root) + os.sep) for root in roots if root)


def workflow_entry(ref: str, base_dir: str | Path | None) -> PackAction | None:
    """The pack action ``ref`` when its runner is a workflow (``orquesta``, ``workflow``)."""
    action = find_pack_action(ref, base_dir)
    if action is None or action.runner not in WORKFLOW_RUNNERS:
        return None
    return action
