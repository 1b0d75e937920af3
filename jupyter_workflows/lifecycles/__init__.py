"""Lifecycles (Bosca's states and transitions) and triggers (traits, webhooks).

- :mod:`.spec`: the lifecycle document as pure data, with positioned errors.
- :mod:`.core`: :class:`Lifecycle`, :class:`LifecycleObject` and transitions (runs + the store).
- :mod:`.display`: the state machine as SVG, the current state highlighted.
- :mod:`.traits`: file patterns and content types -> workflows, and the folder watcher.
"""

from __future__ import annotations

from .core import (
    Lifecycle,
    LifecycleObject,
    ObjectNotFound,
    TransitionRefused,
    get_lifecycle,
    get_object,
    lifecycle,
    load_lifecycle,
    objects,
)
from .spec import STATE_TYPES, LifecycleSpec
from .traits import FolderWatcher, Triggers, load_triggers

__all__ = [
    "STATE_TYPES",
    "FolderWatcher",
    "Lifecycle",
    "LifecycleObject",
    "LifecycleSpec",
    "ObjectNotFound",
    "TransitionRefused",
    "Triggers",
    "get_lifecycle",
    "get_object",
    "lifecycle",
    "load_lifecycle",
    "load_triggers",
    "objects",
]
