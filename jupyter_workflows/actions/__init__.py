"""Actions: the registry, name resolution and the builtins."""

from __future__ import annotations

from .registry import ActionDef, TaskFunction, get_registry, resolve_action, task

__all__ = ["ActionDef", "TaskFunction", "get_registry", "resolve_action", "task"]
