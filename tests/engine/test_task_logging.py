"""What a task logs at INFO reaches its trace, without changing what the process's own log
handlers see (audit D4)."""

from __future__ import annotations

import logging
import threading

import pytest

import jupyter_workflows as jw
from jupyter_workflows.engine import context as ctx_module


class _Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(level=logging.NOTSET)
        self.records: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(f"{record.levelname} {record.name}: {record.getMessage()}")


@pytest.fixture
def user_handler():
    """A handler on the root logger, like ``logging.basicConfig()`` installs."""
    handler = _Collect()
    root = logging.getLogger()
    root.addHandler(handler)
    level = root.level
    root.setLevel(logging.WARNING)
    yield handler
    root.removeHandler(handler)
    root.setLevel(level)


@jw.task(name="audit_logs")
def _logs(context) -> int:
    logging.getLogger("audit.mod").info("module info")
    logging.info("root info")
    logging.getLogger("audit.mod").debug("module debug")
    logging.getLogger("audit.mod").error("module error")
    context.logger.info("ctx info")
    context.logger.debug("ctx debug")
    context.logger.warning("ctx warn")
    try:
        raise ValueError("inside")
    except ValueError:
        logging.getLogger("audit.mod").exception("caught")
    return 1


FLOW = "name: lg\ntasks:\n  a: {action: audit_logs}\n"


def _logs_of(run) -> list[str]:
    return run.trace()["tasks"][0]["logs"]


def test_info_from_any_logger_and_the_context_logger_is_captured(engine, user_handler):
    run = jw.load(FLOW).run()
    logs = _logs_of(run)
    assert "INFO audit.mod: module info" in logs
    assert "INFO root: root info" in logs
    assert "ERROR audit.mod: module error" in logs
    assert "INFO jupyter_workflows.task: ctx info" in logs
    assert "WARNING jupyter_workflows.task: ctx warn" in logs
    assert "ERROR audit.mod: caught" in logs
    assert any("ValueError: inside" in line for line in logs)  # logger.exception's traceback
    assert not any("debug" in line for line in logs)  # DEBUG only on request
    # The user's handler saw what it would have seen anyway: WARNING and above.
    assert "INFO audit.mod: module info" not in user_handler.records
    assert "ERROR audit.mod: module error" in user_handler.records
    assert all(not r.startswith(("INFO", "DEBUG")) for r in user_handler.records)
    # And the root logger is as it was once no task runs.
    assert logging.getLogger().level == logging.WARNING


def test_debug_is_captured_on_request(engine, monkeypatch):
    monkeypatch.setenv("JUPYTER_WORKFLOWS_LOG_LEVEL", "debug")
    logs = _logs_of(jw.load(FLOW).run())
    assert "DEBUG audit.mod: module debug" in logs
    assert "DEBUG jupyter_workflows.task: ctx debug" in logs


def test_a_logger_with_its_own_level_keeps_it(engine, user_handler):
    chatty = logging.getLogger("audit.chatty")
    chatty.setLevel(logging.DEBUG)
    quiet = logging.getLogger("audit.quiet")
    quiet.setLevel(logging.ERROR)
    try:

        @jw.task(name="audit_levels")
        def levels() -> None:
            chatty.debug("chatty debug")
            quiet.warning("quiet warning")

        run = jw.load("name: lv\ntasks:\n  a: {action: audit_levels}\n").run()
    finally:
        chatty.setLevel(logging.NOTSET)
        quiet.setLevel(logging.NOTSET)
    assert _logs_of(run) == ["DEBUG audit.chatty: chatty debug"]
    assert user_handler.records == ["DEBUG audit.chatty: chatty debug"]  # as before


def test_other_threads_do_not_flood_the_user_handler_while_tasks_run(engine, user_handler):
    started, release = threading.Event(), threading.Event()

    @jw.task(name="audit_block")
    def block() -> None:
        started.set()
        release.wait(10)

    run = jw.load("name: bl\ntasks:\n  a: {action: audit_block}\n").run(wait=False)
    assert started.wait(10)
    assert logging.getLogger().level == logging.INFO  # lowered while the task runs
    logging.getLogger("audit.elsewhere").info("not from a task")
    logging.getLogger("audit.elsewhere").warning("a warning elsewhere")
    release.set()
    run.wait(10)
    assert user_handler.records == ["WARNING audit.elsewhere: a warning elsewhere"]
    assert logging.getLogger().level == logging.WARNING


def test_warnings_outside_tasks_still_reach_stderr_when_nothing_handles_them(capsys):
    logger = logging.getLogger("audit.unhandled")
    logger.propagate = False  # no handler anywhere on its way, like a process with no config
    try:
        handler = ctx_module._CaptureHandler()
        record = logger.makeRecord(logger.name, logging.WARNING, __file__, 1, "lost?", (), None)
        handler.emit(record)
        record = logger.makeRecord(logger.name, logging.INFO, __file__, 1, "quiet", (), None)
        handler.emit(record)
    finally:
        logger.propagate = True
    err = capsys.readouterr().err
    assert "lost?" in err and "quiet" not in err


def test_info_is_captured_on_dask_too(dask_engine):
    logs = _logs_of(jw.load(FLOW).run())
    assert "INFO audit.mod: module info" in logs
    assert "INFO jupyter_workflows.task: ctx info" in logs
