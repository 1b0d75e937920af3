"""``jupyter-workflows store check`` and ``store backup DEST``: look after the store file.

``check`` is what the refusal of a damaged store points to: a full, read-only check that lists
what is wrong (exit 1) or says the store is sound (exit 0). ``backup`` copies a store that may
be in use (SQLite's online backup) with its artifact files.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from pathlib import Path


def add_commands(
    add: Callable[..., argparse.ArgumentParser], common: argparse.ArgumentParser
) -> None:
    """Register ``store`` with ``add(name, help)`` of :mod:`.app`; ``common`` has ``--store``."""
    p = add("store", "check or back up the store (the state database)")
    sub = p.add_subparsers(dest="store_command", metavar="ACTION", parser_class=type(p))
    sub.required = True
    check = sub.add_parser(
        "check",
        parents=[common],
        help="a full read-only check of the store: exit 0 when sound, 1 listing the damage",
        description="a full read-only check of the store: exit 0 when sound, 1 listing the damage",
    )
    check.add_argument("--json", action="store_true", help="print {store, ok, findings}")
    check.set_defaults(handler=cmd_store_check)
    backup = sub.add_parser(
        "backup",
        parents=[common],
        help="copy the store, while in use, to a new file (artifact files beside it)",
        description="copy the store, while in use, to a new file (artifact files beside it)",
    )
    backup.add_argument("dest", metavar="DEST")
    backup.set_defaults(handler=cmd_store_backup)


def _sqlite_store(args: argparse.Namespace):
    from ..engine.api import DEFAULT_STORE
    from ..store.sqlite import SqliteStore

    path = (
        getattr(args, "store", None) or os.environ.get("JUPYTER_WORKFLOWS_STORE") or DEFAULT_STORE
    )
    if str(path) == ":memory:":
        from .app import UsageFailure

        raise UsageFailure("store: ':memory:' keeps nothing to check; name a store file")
    return SqliteStore(Path(path))


def cmd_store_check(args: argparse.Namespace) -> int:
    import json

    store = _sqlite_store(args)
    findings = store.check()
    if getattr(args, "json", False):
        print(json.dumps({"store": str(store.path), "ok": not findings, "findings": findings}))
    elif findings:
        for finding in findings:
            print(f"{store.path}: {finding}")
        print(
            f"{store.path}: damaged; keep the file and recover what SQLite can into a new one: "
            f"sqlite3 {store.path} .recover | sqlite3 NEW.db",
            file=sys.stderr,
        )
    else:
        print(f"{store.path}: ok")
    return 1 if findings else 0


def cmd_store_backup(args: argparse.Namespace) -> int:
    store = _sqlite_store(args)
    target = store.backup(args.dest)
    print(f"{store.path}: copied to {target}")
    return 0
