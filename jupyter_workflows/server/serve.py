"""``jupyter-workflows serve``: the REST API and the schedules, without JupyterLab.

A standalone :class:`jupyter_server.serverapp.ServerApp` with only this package's extension
(no JupyterLab UI, no terminals, and none of Jupyter's contents, files, kernels or sessions
APIs: they answer 404), token authentication on, bound to ``ip`` (127.0.0.1 unless told
otherwise), plus a :class:`~jupyter_workflows.server.schedules.Scheduler` on the server's event
loop that starts runs of the given workflow files at their ``schedule:`` times.

The token is ``JUPYTER_TOKEN`` when set, else a fresh random one; the API's URL with the token is
printed on stderr. Jupyter's config files (``jupyter_server_config.py``/``.json`` in the Jupyter
config path) are read as usual, except that the list of server extensions is fixed: JupyterLab and
other extensions a config file enables are not loaded. The server's root folder is the current
directory; workflow files in it are listed and runnable like those given on the command line.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import functools
import logging
import os
import socket
import sys
from collections.abc import Sequence
from typing import Any

from ..exceptions import WorkflowError
from .schedules import Scheduler

__all__ = ["build_app", "check_address", "serve"]

EXTENSION = "jupyter_workflows.server"


@functools.cache
def _app_class() -> type[Any]:
    """The server class, built on first use.

    Importing ``jupyter_server`` takes seconds; ``serve`` reports an invalid workflow file
    before paying for it.
    """
    from jupyter_server.serverapp import ServerApp

    class WorkflowsServerApp(ServerApp):
        """A ServerApp with this package's extension alone, and a scheduler on its event loop."""

        name = "jupyter-workflows-serve"
        #: Jupyter's own services this server exposes: the ``/api`` status, login, CSP reports.
        #: Not contents, files, kernels, sessions, terminals, config, nbconvert or view: a
        #: token for the workflows API is not a way to run code or read files through them.
        default_services = ("api", "auth", "security")  # type: ignore[assignment]  # jupyter_server infers its default 13-name tuple as the type
        #: Started once the event loop runs, stopped with the server.
        scheduler: Scheduler | None = None
        _scheduler_task: asyncio.Task[None] | None = None

        def init_server_extensions(self) -> None:
            # Whatever the config files enable (JupyterLab, ...), serve only the workflows API.
            self.jpserver_extensions = {EXTENSION: True}
            super().init_server_extensions()

        def init_webapp(self) -> None:
            # The contents manager adds /files/ apart from the services above.
            self.contents_manager.files_handler_class = None
            super().init_webapp()

        def _handle_sigint(self, sig: Any, frame: Any) -> None:
            # One Ctrl-C stops a service; no "Shutdown this Jupyter server (y/[n])?" prompt.
            self._signal_stop(sig, frame)

        def _signal_stop(self, sig: Any, frame: Any) -> None:
            # SIGTERM/SIGINT always stop `serve` within seconds: a request thread that is still
            # waiting (a run with ?wait=true, a slow store) would otherwise keep the interpreter
            # from exiting (ThreadPoolExecutor joins its threads at exit). The event log is
            # written ahead, so what an abrupt exit interrupts is resumed like after kill -9.
            _exit_watchdog(STOP_GRACE_SECONDS)
            super()._signal_stop(sig, frame)

        async def _post_start(self) -> None:
            await super()._post_start()
            if self.scheduler is not None:
                self._scheduler_task = asyncio.ensure_future(self.scheduler.run_forever())

        async def _stop(self) -> None:
            task, self._scheduler_task = self._scheduler_task, None
            if self.scheduler is not None:
                self.scheduler.stop()
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
            await super()._stop()

    return WorkflowsServerApp


#: Seconds a stopping ``serve`` may take to shut down cleanly before it exits regardless.
STOP_GRACE_SECONDS = 10.0


def _exit_watchdog(seconds: float) -> None:
    """Exit the process in ``seconds`` unless it has exited by then (a daemon timer)."""
    import threading

    def hard_exit() -> None:
        print(
            f"jupyter-workflows serve: still stopping after {seconds:g} s; exiting now",
            file=sys.stderr,
        )
        sys.stderr.flush()
        sys.stdout.flush()
        os._exit(0)

    timer = threading.Timer(seconds, hard_exit)
    timer.daemon = True
    timer.start()


def build_app(
    ip: str = "127.0.0.1",
    port: int = 8899,
    *,
    scheduler: Scheduler | None = None,
    argv: Sequence[str] = (),
) -> Any:
    """An initialized ``WorkflowsServerApp`` serving the workflows REST API (not started).

    A ``jupyter_server`` ``ServerApp`` with this package's extension alone, whatever the config
    files enable, and ``scheduler`` started on its event loop once it runs.
    """
    app = _app_class()()
    app.scheduler = scheduler
    app.initialize(
        argv=[
            f"--ServerApp.ip={ip}",
            f"--ServerApp.port={port}",
            "--ServerApp.port_retries=0",
            "--ServerApp.open_browser=False",
            "--ServerApp.terminals_enabled=False",
            # A headless service (containers often run as root); kernels are not its business.
            "--ServerApp.allow_root=True",
            "--ServerApp.default_url=/workflows/api/",
            *argv,
        ],
        find_extensions=False,
    )
    app.web_app.settings["jupyter_workflows_scheduler"] = scheduler
    return app


def check_address(ip: str, port: int) -> None:
    """Raise a one-line :class:`WorkflowError` unless ``ip:port`` can be listened on now.

    Binds and releases a socket the way tornado does (``SO_REUSEADDR``, every address ``ip``
    resolves to), so a busy port is one clear line and exit 2 (CONTRACT §5) rather than the
    server's start-up log followed by its exit.
    """
    where = f"{ip}:{port}"
    try:
        infos = socket.getaddrinfo(
            ip or None, port, socket.AF_UNSPEC, socket.SOCK_STREAM, 0, socket.AI_PASSIVE
        )
    except (socket.gaierror, OverflowError) as exc:
        raise WorkflowError(f"cannot listen on {where}: {getattr(exc, 'strerror', exc)}") from None
    for family, kind, proto, _name, address in infos:
        try:
            with socket.socket(family, kind, proto) as probe:
                probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                if family == socket.AF_INET6:
                    probe.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
                probe.bind(address)
        except OSError as exc:
            if exc.errno == errno.EADDRNOTAVAIL and ip == "localhost" and address[0] == "::1":
                continue  # no IPv6 here; tornado skips ::1 for "localhost" too
            if exc.errno == errno.EADDRINUSE:
                reason = "the port is already in use (choose another with --port)"
            elif exc.errno == errno.EADDRNOTAVAIL:
                reason = "no network interface of this machine has that address (see --ip)"
            elif exc.errno == errno.EACCES:
                reason = "permission denied (ports below 1024 need privileges)"
            else:
                reason = exc.strerror or type(exc).__name__
            raise WorkflowError(f"cannot listen on {where}: {reason}") from None


def serve(
    paths: Sequence[str], ip: str = "127.0.0.1", port: int = 8899, watch: Sequence[str] = ()
) -> int:
    """Serve the REST API and run the schedules of ``paths`` until interrupted; the exit code.

    Every file is loaded and validated first: an invalid one raises :class:`SpecError` (the CLI
    prints it and exits 2) before anything listens. An address that cannot be listened on
    raises :class:`WorkflowError` (one line, exit 2) before the server starts.
    """
    from ..definition import register_workflow
    from ..lifecycles.triggers import split_paths, start_watching

    # Trigger files (traits:, hooks:) among the FILEs: webhooks, and --watch folders' traits.
    paths, triggers = split_paths(paths)
    watcher = start_watching(triggers, watch, start=False)
    scheduler = Scheduler(paths, log=logging.getLogger("jupyter_workflows.serve"))
    for entry in scheduler.load():
        # Registered, so the REST API lists them and can start them by name.
        register_workflow(entry.workflow)
    check_address(ip, port)
    try:
        app = build_app(ip, port, scheduler=scheduler)
    except SystemExit:  # ServerApp exits when it cannot listen (taken since the check above)
        print(
            f"jupyter-workflows serve: cannot start the server on {ip}:{port} (see its log above)",
            file=sys.stderr,
        )
        return 2
    scheduler.log = app.log
    if triggers is not None:
        app.web_app.settings["jupyter_workflows_triggers"] = triggers

    url = f"{app.connection_url.rstrip('/')}/workflows/api/"
    token = app.identity_provider.token
    print(f"jupyter-workflows serve: REST API at {url}", file=sys.stderr)
    if token:
        print(f"jupyter-workflows serve:   {url}?token={token}", file=sys.stderr)
        print(
            f"jupyter-workflows serve:   curl -H 'Authorization: token {token}' {url}runs",
            file=sys.stderr,
        )
    for entry in scheduler.entries:
        if entry.next_at is not None:
            print(
                f"jupyter-workflows serve: {entry.workflow.name!r} ({entry.path}) on schedule "
                f"{entry.schedule!r}, next run {entry.next_at.isoformat(timespec='seconds')}",
                file=sys.stderr,
            )
        else:
            print(
                f"jupyter-workflows serve: {entry.workflow.name!r} ({entry.path}) has no schedule",
                file=sys.stderr,
            )
    if watcher is not None:
        print(
            f"jupyter-workflows serve: watching {', '.join(map(str, watcher.folders))} for traits "
            f"{', '.join(watcher.triggers.traits)}",
            file=sys.stderr,
        )
        watcher.start()
    sys.stderr.flush()

    try:
        app.start()
    except SystemExit as exc:  # ServerApp.start_app exits on fatal start-up problems
        return exc.code if isinstance(exc.code, int) else 1
    finally:
        scheduler.stop()
        if watcher is not None:
            watcher.stop()
    return 0
