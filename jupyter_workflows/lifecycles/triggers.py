"""Everything that starts runs by itself, listed together: schedules, webhooks and traits.

``jupyter-workflows triggers FILE...`` reads workflow files (their ``schedule:``) and trigger
files (``traits:`` and ``hooks:``, see :mod:`.traits` and :mod:`.hooks`) and lists one row per
trigger: ``{"kind", "name", "workflow", "when", "source"}``.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

__all__ = ["list_triggers", "split_paths"]


def _kind_of(path: Path) -> str:
    from ..sources import is_workflow_file_name
    from ..spec.loader import parse_document, read_text
    from .spec import document_kind

    if not is_workflow_file_name(path.name):
        return "workflow"
    data, _ = parse_document(read_text(path), file=str(path))
    return document_kind(data)


def list_triggers(paths: Sequence[str]) -> list[dict[str, Any]]:
    """One row per schedule, webhook and trait defined in ``paths``."""
    from ..sources import load_target
    from ..spec.schedules import next_fire

    rows: list[dict[str, Any]] = []
    for name in paths:
        path = Path(name)
        kind = _kind_of(path) if path.is_file() else "workflow"
        if kind == "triggers":
            from .traits import load_triggers

            rows.extend(load_triggers(path).rows())
            continue
        if kind == "lifecycle":
            continue
        wf = load_target(str(path))
        schedule = wf.spec.schedule
        if schedule:
            from datetime import datetime

            nxt = next_fire(schedule, datetime.now()).isoformat(timespec="seconds")
            rows.append(
                {
                    "kind": "schedule",
                    "name": wf.name,
                    "workflow": wf.name,
                    "when": f"{schedule} (next {nxt})",
                    "source": str(path),
                }
            )
    return rows


def split_paths(paths: Sequence[str]) -> tuple[list[str], Any]:
    """``serve``'s FILEs: the workflow files, and the trigger files merged (or None).

    Lifecycle files are accepted and skipped (objects carry their lifecycle in the store).
    """
    from .traits import load_triggers

    workflows: list[str] = []
    triggers = None
    for name in paths:
        path = Path(name)
        kind = _kind_of(path) if path.is_file() else "workflow"
        if kind == "triggers":
            loaded = load_triggers(path)
            triggers = loaded if triggers is None else triggers.merge(loaded)
        elif kind == "workflow":
            workflows.append(name)
    if triggers is not None:
        triggers.validate()
    return workflows, triggers


def start_watching(triggers: Any, folders: Sequence[str], *, start: bool = True) -> Any:
    """A :class:`~.traits.FolderWatcher` of ``folders`` (None without folders).

    Raises a one-line :class:`WorkflowError` when folders are given without traits, or one is
    not a folder.
    """
    from ..exceptions import WorkflowError
    from .traits import FolderWatcher

    if not folders:
        return None
    if triggers is None or not triggers.traits:
        raise WorkflowError("--watch needs a trigger file with traits: among the FILEs")
    triggers.validate()
    watcher = FolderWatcher(triggers, folders)
    return watcher.start() if start else watcher
