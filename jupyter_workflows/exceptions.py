"""The errors jupyter_workflows raises.

Every error a user can cause is a :class:`WorkflowError` whose ``str()`` is one line that says
where (``FILE:LINE:COL``, a task name, a run id) and what. Surfaces rely on that: the CLI prints
``str(error)`` and exits 2, the magics re-raise it as ``UsageError``.

::

    WorkflowError
    ├── SpecError            a workflow document is invalid (file, line, col)
    ├── ParameterError       run parameters do not fit the declared ones
    ├── ActionNotFound       an action or nested workflow does not resolve
    ├── RunNotFound          no run with that id in the store
    ├── StoreError           the store cannot be read or written (corrupt, newer schema)
    ├── InquiryError         a response does not fit the inquiry's schema, or nothing waits
    └── RunStateError        the run cannot do that now (resume a running run, ...)

And the one home of one-line error text: :func:`first_line` (what surfaces print for an error
they did not expect to be long), :func:`error_line` (``Type: message``, what a failed task
reports, CONTRACT §2), :func:`describe` (our errors as they are, others with their type) and
:func:`one_line` (any text folded onto one line).
"""

from __future__ import annotations

__all__ = [
    "NO_MESSAGE",
    "ActionNotFound",
    "InquiryError",
    "ParameterError",
    "RunNotFound",
    "RunStateError",
    "SpecError",
    "StoreError",
    "WorkflowError",
    "describe",
    "error_line",
    "first_line",
    "one_line",
]


class WorkflowError(Exception):
    """Base class of every error jupyter_workflows raises on purpose."""


#: Longest SpecError message; longer ones (a document's huge key quoted back) are elided.
_MAX_MESSAGE = 1000


class SpecError(WorkflowError):
    """A workflow document is invalid.

    ``str()`` is ``FILE:LINE:COL: message`` when the position is known, else
    ``FILE: message`` or only the message.
    """

    def __init__(
        self,
        message: str,
        *,
        file: str | None = None,
        line: int | None = None,
        col: int | None = None,
    ) -> None:
        # One line, of a readable length, whatever a document put in it (a multi-line or
        # 10 MB key quoted back): the CLI prints one line per error.
        if "\n" in message or "\r" in message or len(message) > _MAX_MESSAGE:
            from .limits import shorten

            message = shorten(message, _MAX_MESSAGE)
        self.message = message
        self.file = file
        self.line = line
        self.col = col
        super().__init__(self.__str__())

    def __str__(self) -> str:
        where = [str(p) for p in (self.file or "<string>", self.line, self.col) if p is not None]
        if self.line is None and self.file is None:
            return self.message
        return f"{':'.join(where)}: {self.message}"

    def __reduce__(self):  # keep pickling (dask, multiprocessing) lossless
        return (_rebuild_spec_error, (self.message, self.file, self.line, self.col))


def _rebuild_spec_error(message, file, line, col):
    return SpecError(message, file=file, line=line, col=col)


class ParameterError(WorkflowError):
    """Run parameters do not fit the workflow's declared parameters."""


class ActionNotFound(WorkflowError):
    """An action or a nested workflow named by a task does not resolve."""


class RunNotFound(WorkflowError):
    """No run with the given id exists in the store."""


class StoreError(WorkflowError):
    """The store cannot be used: not a database, corrupt, or from a newer schema."""


class InquiryError(WorkflowError):
    """A response to an inquiry is invalid, or no inquiry is waiting."""


class RunStateError(WorkflowError):
    """The run is in a state that does not allow the request."""


# -- one-line error text ------------------------------------------------------------------------
#: The message of an exception raised without one (``raise KeyError()``).
NO_MESSAGE = "(no message)"


def first_line(exc: BaseException) -> str:
    """The first line of ``str(exc)``, else the exception type's name (a message-less error)."""
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__


def describe(exc: BaseException) -> str:
    """One line for a person: a :class:`WorkflowError` as it is (it already says where and
    what), any other error prefixed with its type (``KeyError: 'x'``, or only the type's name)."""
    if isinstance(exc, WorkflowError):
        return first_line(exc)
    lines = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {lines[0]}" if lines else type(exc).__name__


def error_line(exc: BaseException) -> str:
    """``Type: message`` on one line, always: the first line of the message that says
    something (blank and rule-only lines such as ``-----`` are skipped), or :data:`NO_MESSAGE`
    when the exception has none (CONTRACT §2)."""
    try:
        text = str(exc)
    except Exception:  # a broken __str__ must not hide the error itself
        text = ""
    message = next((line.strip() for line in text.splitlines() if _says_something(line)), "")
    name = type(exc).__name__
    if isinstance(exc, TimeoutError):
        name = "TimeoutError"
    return f"{name}: {message or NO_MESSAGE}"


def _says_something(line: str) -> bool:
    return any(c.isalnum() for c in line)


def one_line(text: str, *, squeeze: bool = False) -> str:
    """``text`` on one line: its non-blank lines, stripped, joined by a space; with ``squeeze``
    every run of white space (inside lines too) becomes one space."""
    if squeeze:
        return " ".join(str(text).split())
    return " ".join(line.strip() for line in str(text).strip().splitlines() if line.strip())
