"""``jupyter-workflows kv get|set|delete`` and ``secret set``: write what templates read.

Templates read the store's key-value table with ``kv.get(key, default)`` and its secrets with
``secret(name)`` (attune's ``kv.get_secret``); attune's ``iterate_cache`` reads a key-value entry
too. These commands are how a headless user fills them, on the store a run would use
(``--store`` or ``JUPYTER_WORKFLOWS_STORE``).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable

_SUBPARSER_HELP = {
    "get": "print an entry's value as JSON (exit 1 when the key is not set)",
    "set": "set an entry; VALUE is read as YAML, like run's -p KEY=VALUE",
    "delete": "remove an entry (exit 1 when the key was not set)",
}


def add_commands(
    add: Callable[..., argparse.ArgumentParser], common: argparse.ArgumentParser
) -> None:
    """Register ``kv`` and ``secret`` with ``add(name, help)`` of :mod:`.app`."""
    p = add("kv", "read or write the key-value store templates read with kv.get(...)")
    sub = p.add_subparsers(dest="kv_command", metavar="ACTION", parser_class=type(p))
    sub.required = True
    for name, handler in (("get", cmd_kv_get), ("set", cmd_kv_set), ("delete", cmd_kv_delete)):
        text = _SUBPARSER_HELP[name]
        action = sub.add_parser(name, parents=[common], help=text, description=text)
        action.add_argument("key", metavar="KEY")
        if name == "set":
            action.add_argument("value", metavar="VALUE")
        action.set_defaults(handler=handler)

    p = add("secret", "store a secret that templates read with secret(name)")
    sub = p.add_subparsers(dest="secret_command", metavar="ACTION", parser_class=type(p))
    sub.required = True
    text = "store a secret; its value is read from standard input (one line), never an argument"
    action = sub.add_parser("set", parents=[common], help=text, description=text)
    action.add_argument("name", metavar="NAME")
    action.set_defaults(handler=cmd_secret_set)


def _store(args: argparse.Namespace):
    from ..engine.api import current_store
    from .logic import _configure

    _configure(args)
    return current_store()


_MISSING = object()


def cmd_kv_get(args: argparse.Namespace) -> int:
    from ..values import to_json_form
    from .logic import out

    value = _store(args).kv_get(args.key, _MISSING)
    if value is _MISSING:
        print(f"kv: no entry {args.key!r}", file=sys.stderr)
        return 1
    out(json.dumps(to_json_form(value), default=str))
    return 0


def cmd_kv_set(args: argparse.Namespace) -> int:
    from ..exceptions import ParameterError
    from ..spec.params import parse_assignments
    from .app import UsageFailure

    if not args.key.strip():
        raise UsageFailure("kv set: KEY is empty")
    # The same reading as ``run -p KEY=VALUE``: "5" is 5, "[a, b]" a list, "" the empty text.
    try:
        value = parse_assignments([f"{args.key}={args.value}"])[args.key.strip()]
    except ParameterError as exc:  # "parameter 'k': cannot read ..." -> "kv set k: cannot read"
        reason = str(exc).partition(": ")[2] or str(exc)
        raise UsageFailure(f"kv set {args.key}: {reason}") from None
    _store(args).kv_set(args.key, value)
    return 0


def cmd_kv_delete(args: argparse.Namespace) -> int:
    store = _store(args)
    if store.kv_get(args.key, _MISSING) is _MISSING:
        print(f"kv: no entry {args.key!r}", file=sys.stderr)
        return 1
    store.kv_delete(args.key)
    return 0


def cmd_secret_set(args: argparse.Namespace) -> int:
    from .app import UsageFailure

    if sys.stdin is None or sys.stdin.isatty():
        raise UsageFailure(
            f"secret set {args.name}: pipe the value on standard input, e.g. "
            f"`printenv TOKEN | jupyter-workflows secret set {args.name}`"
        )
    value = sys.stdin.readline().rstrip("\r\n")
    if not value:
        raise UsageFailure(f"secret set {args.name}: standard input was empty")
    _store(args).secret_set(args.name, value)
    return 0
