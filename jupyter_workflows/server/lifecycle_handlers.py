"""REST routes of lifecycle objects: ``GET objects``, ``GET|POST objects/{id}/state``.

``POST objects/{id}/state`` takes ``{"to": STATE}`` (and, to create the object when it is new,
``"lifecycle": FILE`` — a lifecycle file in the server's root folder — with optional ``"data"``).
It answers ``200`` with the object (``states OBJECT --json`` shape) once it is in the new state,
``409`` with ``{"error": REASON, "object": {...}}`` when the transition is refused (the object is
unchanged), ``400`` for an unknown state or a bad body, ``404`` for an unknown object.
Same authentication and authorization as every route of the API (resource ``workflows``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from jupyter_server.auth.decorator import authorized
from tornado import web

from ..exceptions import WorkflowError
from .handlers import _WorkflowsHandler

__all__ = ["lifecycle_handlers"]


def _list() -> list[dict[str, Any]]:
    from ..lifecycles.core import objects

    out = []
    for obj in objects():
        rec = obj._record()
        out.append(
            {
                "object": rec["object_id"],
                "lifecycle": rec["lifecycle"],
                "state": rec["state"],
                "pending": rec["pending"],
            }
        )
    return out


def _state(object_id: str) -> dict[str, Any]:
    from ..lifecycles.core import LifecycleObject

    return LifecycleObject(object_id).to_dict()


def _transition(object_id: str, body: dict[str, Any], root: Path) -> tuple[int, dict[str, Any]]:
    from ..lifecycles.core import (
        DEFAULT_TIMEOUT,
        LifecycleObject,
        TransitionRefused,
        load_lifecycle,
    )

    lifecycle = body.get("lifecycle")
    if lifecycle is not None:
        if (
            not isinstance(lifecycle, str)
            or lifecycle.startswith(("/", "."))
            or ".." in Path(lifecycle).parts
        ):
            raise web.HTTPError(
                400, "'lifecycle' names a lifecycle file in the server's root folder"
            )
        lc = load_lifecycle(root / lifecycle)
        lc.validate()
        obj = lc.object(object_id, body.get("data"))
    else:
        if body.get("data") is not None:
            raise web.HTTPError(400, "'data' sets the data of a new object: give 'lifecycle' too")
        obj = LifecycleObject(object_id)
        obj._record()
    timeout = body.get("timeout", DEFAULT_TIMEOUT)
    if not isinstance(timeout, int | float) or isinstance(timeout, bool) or timeout <= 0:
        raise web.HTTPError(400, "'timeout' must be a positive number of seconds")
    try:
        obj.transition(body["to"], timeout=float(timeout))
    except TransitionRefused as refused:
        return 409, {"error": str(refused), "object": obj.to_dict()}
    return 200, obj.to_dict()


class ObjectsHandler(_WorkflowsHandler):
    """``GET objects``: every lifecycle object with its state."""

    @web.authenticated
    @authorized
    async def get(self) -> None:
        self.send(await self.call(_list))


class ObjectStateHandler(_WorkflowsHandler):
    """``GET objects/{id}/state`` and ``POST objects/{id}/state`` (``{"to": STATE}``)."""

    @web.authenticated
    @authorized
    async def get(self, object_id: str) -> None:
        self.send(await self.call(_state, object_id))

    @web.authenticated
    @authorized
    async def post(self, object_id: str) -> None:
        body = self.json_body(required=True)
        if not isinstance(body, dict) or not isinstance(body.get("to"), str) or not body["to"]:
            raise web.HTTPError(400, 'the body must be a JSON object {"to": STATE}')
        unknown = sorted(set(body) - {"to", "lifecycle", "data", "timeout"})
        if unknown:
            raise web.HTTPError(400, f"unknown field(s) in the body: {', '.join(unknown)}")
        try:
            status, answer = await self.call(_transition, object_id, body, self.root_dir)
        except WorkflowError as exc:  # pragma: no cover - call() maps these already
            raise web.HTTPError(400, str(exc)) from None
        self.set_status(status)
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps(answer, default=str))


def lifecycle_handlers(base: str, seg: str) -> list[tuple[str, type[web.RequestHandler]]]:
    """The routes, to be placed before the API's catch-all 404."""
    return [
        (rf"{base}/objects/?", ObjectsHandler),
        (rf"{base}/objects/{seg}/state/?", ObjectStateHandler),
    ]
