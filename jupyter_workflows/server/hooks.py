"""Webhooks (``POST /workflows/api/hooks/{name}``) and the trigger setup of a server.

A hook is declared in a trigger file (``hooks:``, see :mod:`jupyter_workflows.lifecycles.traits`)
given to ``jupyter-workflows serve FILE...`` or to the server extension
(``c.JupyterWorkflows.triggers = ["triggers.yaml"]``). A request is accepted with Jupyter's own
authentication, or, for a hook with ``secret: NAME``, with that secret's value (environment or
store) in the ``X-Hook-Secret`` header, or an ``X-Hub-Signature-256: sha256=HMAC`` of the body
keyed by it (GitHub's form). The JSON body is ``payload``; ``when`` (a template over ``payload``,
``headers`` and ``hook``) decides whether a run starts, and ``parameters`` (templates over the
same) are its parameters (default: the payload's keys the workflow declares).

Answers: ``201 {"hook", "run_id", "status"}`` when a run started, ``200 {"hook", "run_id": null,
"reason"}`` when ``when`` was false, ``400`` for a body that is not a JSON object or parameters
that do not fit, ``403`` without valid credentials, ``404`` for an unknown hook.

The extension also starts a folder watcher for ``c.JupyterWorkflows.watch = ["incoming"]``
(folders relative to the server's root) with the traits of those trigger files.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
from pathlib import Path
from typing import Any

from jupyter_server.auth.decorator import authorized
from tornado import web

from ..exceptions import WorkflowError
from .handlers import _WorkflowsHandler

__all__ = ["HookHandler", "hook_handlers", "setup_triggers"]

SETTING = "jupyter_workflows_triggers"


def _secret(name: str) -> str | None:
    value = os.environ.get(name)
    if value is not None:
        return value
    from ..engine.api import current_store

    try:
        return current_store().secret_get(name)
    except WorkflowError:
        return None


class HookHandler(_WorkflowsHandler):
    """``POST hooks/{name}``: start the hook's workflow with the payload."""

    _by_secret = False

    def _hook(self) -> Any:
        triggers = self.settings.get(SETTING)
        name = self.path_kwargs.get("name") or (self.path_args[0] if self.path_args else "")
        return None if triggers is None else triggers.hooks.get(name)

    def _secret_ok(self) -> bool:
        hook = self._hook()
        if hook is None or not hook.secret:
            return False
        expected = _secret(hook.secret)
        if not expected:
            return False
        given = self.request.headers.get("X-Hook-Secret")
        if given is not None and hmac.compare_digest(given.encode(), expected.encode()):
            return True
        signature = self.request.headers.get("X-Hub-Signature-256", "")
        if signature.startswith("sha256="):
            digest = hmac.new(
                expected.encode(), self.request.body or b"", hashlib.sha256
            ).hexdigest()
            return hmac.compare_digest(signature[7:], digest)
        return False

    def check_xsrf_cookie(self) -> None:
        # The hook's secret is what a caller proves; a browser cannot forge the header.
        if self._secret_ok():
            return None
        return super().check_xsrf_cookie()

    async def prepare(self) -> None:  # type: ignore[override]
        self._by_secret = self._secret_ok()
        if self._by_secret:
            await super(_WorkflowsHandler, self).prepare()
            return
        await super().prepare()

    async def post(self, name: str) -> None:
        if not self._by_secret:
            if self.current_user is None:
                raise web.HTTPError(403)
            # Jupyter's authorizer, as @authorized does: hooks write (they start runs).
            if not self.authorizer.is_authorized(
                self, self.current_user, "write", self.auth_resource
            ):
                raise web.HTTPError(403)
        triggers = self.settings.get(SETTING)
        hook = None if triggers is None else triggers.hooks.get(name)
        if hook is None:
            known = ", ".join(sorted(triggers.hooks)) if triggers is not None else ""
            raise web.HTTPError(404, f"no hook {name!r}" + (f" (hooks: {known})" if known else ""))
        payload = self.json_body()
        if payload is None:
            payload = {}
        if not isinstance(payload, dict):
            raise web.HTTPError(400, "the body must be a JSON object (the hook's payload)")
        headers = {
            k.lower(): v
            for k, v in self.request.headers.items()
            if k.lower() not in ("authorization", "cookie", "x-hook-secret")
        }
        status, answer = await self.call(_fire, triggers, name, payload, headers)
        self.set_status(status)
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps(answer, default=str))


def _fire(
    triggers: Any, name: str, payload: dict[str, Any], headers: dict[str, str]
) -> tuple[int, dict[str, Any]]:
    from ..engine.api import start_run
    from ..expressions import ExpressionError, evaluate, render

    hook = triggers.hooks[name]
    scope = {
        "payload": payload,
        "headers": headers,
        "hook": {"name": name, "workflow": hook.workflow},
    }
    try:
        if hook.when is not None and not evaluate(hook.when, scope):
            return 200, {"hook": name, "run_id": None, "reason": f"when {hook.when!r} is false"}
        workflow = triggers.resolve(hook.workflow, name)
        if hook.parameters is not None:
            params = dict(render(hook.parameters, scope))
        else:
            params = {k: v for k, v in payload.items() if k in workflow.spec.parameters}
    except ExpressionError as exc:
        raise web.HTTPError(400, f"hook {name!r}: {exc}") from None
    run = start_run(workflow, params, wait=False)
    return 201, {"hook": name, "run_id": run.run_id, "status": run.status}


class HooksHandler(_WorkflowsHandler):
    """``GET hooks``: the hooks this server has (name, workflow, when, secret or not)."""

    @web.authenticated
    @authorized
    async def get(self) -> None:
        triggers = self.settings.get(SETTING)
        self.send(
            [r for r in triggers.rows() if r["kind"] == "hook"] if triggers is not None else []
        )


def hook_handlers(base: str, seg: str) -> list[tuple[str, type[web.RequestHandler]]]:
    return [(rf"{base}/hooks/?", HooksHandler), (rf"{base}/hooks/{seg}/?", HookHandler)]


def setup_triggers(serverapp: Any) -> Any:
    """Load ``c.JupyterWorkflows.triggers`` and watch ``c.JupyterWorkflows.watch`` (extension)."""
    from ..lifecycles.traits import FolderWatcher, triggers_from

    config = serverapp.config.get("JupyterWorkflows", {}) if hasattr(serverapp, "config") else {}
    files = list(config.get("triggers", []) or [])
    folders = list(config.get("watch", []) or [])
    if not files:
        if folders:
            serverapp.log.error(
                "jupyter_workflows | JupyterWorkflows.watch needs JupyterWorkflows.triggers (a file with traits)"
            )
        return None
    root = Path(serverapp.root_dir)
    try:
        triggers = triggers_from([root / f for f in files])
        assert triggers is not None
        triggers.validate()
    except WorkflowError as exc:
        serverapp.log.error("jupyter_workflows | triggers not loaded: %s", exc)
        return None
    serverapp.web_app.settings[SETTING] = triggers
    if folders:
        try:
            watcher = FolderWatcher(triggers, [root / f for f in folders]).start()
        except WorkflowError as exc:
            serverapp.log.error("jupyter_workflows | %s", exc)
            return triggers
        serverapp.web_app.settings["jupyter_workflows_watcher"] = watcher
        serverapp.log.info(
            "jupyter_workflows | watching %s for traits %s",
            ", ".join(folders),
            ", ".join(triggers.traits),
        )
    return triggers
