"""Run persistence: the store interface, in-memory and SQLite stores.

:class:`RunStore` is the interface the engine writes through; :class:`MemoryStore` keeps runs in
the process (tests, throw-away runs); :class:`SqliteStore` keeps them in one SQLite file that
several processes (kernel, CLI, Jupyter server) share. :func:`open_store` picks one. Where the
default store lives (``./.jupyter_workflows/state.db``, ``JUPYTER_WORKFLOWS_STORE``) is the
engine's decision, not this package's.
"""

from __future__ import annotations

import os

from .base import RunRecord, RunStore, TaskRecord
from .memory import MemoryStore
from .sqlite import SqliteStore

__all__ = ["MemoryStore", "RunRecord", "RunStore", "SqliteStore", "TaskRecord", "open_store"]


def open_store(path_or_none: str | os.PathLike[str] | RunStore | None) -> RunStore:
    """A store for ``path_or_none``.

    Parameters
    ----------
    path_or_none
        ``None`` or ``":memory:"``: a new :class:`MemoryStore`. A path: a :class:`SqliteStore` on
        that file (created on its first write, not here). A :class:`RunStore`: itself.
    """
    if isinstance(path_or_none, RunStore):
        return path_or_none
    if path_or_none is None or os.fspath(path_or_none) == ":memory:":
        return MemoryStore()
    return SqliteStore(path_or_none)
