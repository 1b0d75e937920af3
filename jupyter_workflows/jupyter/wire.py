"""The graph widget's wire format: what Python sends to the browser and back.

Every synced trait of :class:`~jupyter_workflows.jupyter.widget.GraphWidget`
and every custom message is typed here, and mirrored field for field by
``labextension/src/types.ts``. Python computes all of it; the front end only
draws it, so a change of meaning starts here and is copied there.

The palettes (:data:`STATUS_COLORS`, :data:`EDGE_STYLES`) live here too, so
the static SVG fallback and the live widget colour a state the same way.
The edit operations (:data:`EditOp`, :data:`ConnectKind`) are defined with the
edits themselves, in :mod:`jupyter_workflows.spec.edits`, and re-exported here.
"""

from __future__ import annotations

import json
from typing import Any, Literal, TypedDict, get_args

from ..spec.edits import CONNECT_KINDS, EDIT_OPS, ConnectKind, EditOp
from ..statuses import RUN_STATUSES, TASK_STATUSES, RunStatus
from ..statuses import TaskStatus as TaskStatus_
from ..values import summary_line

__all__ = [
    "CONNECT_KINDS",
    "EDGE_KINDS",
    "EDGE_STYLES",
    "EDIT_OPS",
    "GRAPH_MIME",
    "NODE_KINDS",
    "RUN_STATES",
    "STATUS_COLORS",
    "TASK_STATES",
    "TASK_STATUS_FIELDS",
    "ConnectKind",
    "EdgeKind",
    "EditErrorMessage",
    "EditMessage",
    "EditOk",
    "EditOp",
    "EditTarget",
    "Graph",
    "GraphEdge",
    "GraphMimeData",
    "GraphNode",
    "Inquiry",
    "NodeKind",
    "RespondErrorMessage",
    "RespondMessage",
    "RespondOkMessage",
    "RunInfo",
    "RunState",
    "TaskState",
    "TaskStatus",
    "jsonable",
]

#: The status names have one home, :mod:`jupyter_workflows.statuses`.
TaskState = TaskStatus_
RunState = RunStatus
NodeKind = Literal["action", "workflow", "routing", "join", "parallel"]
EdgeKind = Literal["success", "failure", "complete", "needs", "when", "decision"]
EditTarget = Literal[
    "cell",  # the %%workflow cell the widget is shown under: the front end rewrites it
    "file",  # the YAML/JSON file the workflow was loaded from: the kernel rewrites it
    "none",  # nowhere to write: the YAML is shown with a Copy button (and is widget.yaml)
]

TASK_STATES: tuple[str, ...] = TASK_STATUSES
RUN_STATES: tuple[str, ...] = RUN_STATUSES
NODE_KINDS: tuple[str, ...] = get_args(NodeKind)
EDGE_KINDS: tuple[str, ...] = get_args(EdgeKind)


class GraphNode(TypedDict):
    """One task of the workflow."""

    id: str
    label: str
    kind: NodeKind
    action: str | None
    with_items: bool
    group: str | None  # the task this one is drawn inside (a parallel's sub-tasks), or None


class GraphEdge(TypedDict):
    """One transition between tasks."""

    source: str
    target: str
    kind: EdgeKind
    label: str | None


class Graph(TypedDict):
    """The ``graph`` trait: the workflow's shape, computed in Python."""

    name: str
    nodes: list[GraphNode]
    edges: list[GraphEdge]


class TaskStatus(TypedDict):
    """One entry of the ``status`` trait, keyed by task name.

    A task absent from ``status`` has not started and is drawn grey.
    """

    status: TaskState
    done: int | None
    total: int | None
    attempts: int
    inputs: dict[str, Any] | None
    result: str | None  # a short repr made in Python: results need not be JSON
    #: What the task panel shows of the result (``values.preview``): ``{"type", "text"}``
    #: plus ``html`` (a DataFrame's first rows), ``png`` (a figure, base64) or ``shape`` and
    #: ``dtype`` (an array); small by construction.
    result_view: dict[str, Any] | None
    error: str | None  # one line, ``Type: message``
    logs: list[str]
    started_at: float | None  # seconds since the epoch
    ended_at: float | None


TASK_STATUS_FIELDS: tuple[str, ...] = tuple(TaskStatus.__annotations__)


class RunInfo(TypedDict):
    """The ``run`` trait."""

    run_id: str | None
    status: RunState | None
    error: str | None


GRAPH_MIME = "application/vnd.jupyter-workflows.graph+json"
"""The MIME type of a graph output: the data every graph output carries beside the widget view.

JupyterLab and Notebook 7 with the ``jupyter-workflows`` extension draw it read-only (a saved
notebook reopened, no kernel, no widget state) and swap in the live widget while its model lives;
other front ends fall back to the bundle's ``text/html`` picture.
"""

GRAPH_MIME_STATUS_FIELDS = (
    "status",
    "done",
    "total",
    "attempts",
    "error",
    "started_at",
    "ended_at",
)
"""The fields of a :class:`TaskStatus` kept in :class:`GraphMimeData` (no inputs, results, logs)."""


class GraphMimeData(TypedDict):
    """The data under :data:`GRAPH_MIME`: a graph and its last known run state, saved with outputs."""

    version: int  # 1
    graph: Graph
    status: dict[str, dict[str, Any]]  # task -> the GRAPH_MIME_STATUS_FIELDS of its TaskStatus
    run: RunInfo | None
    model_id: str | None  # the live widget's model id, when the output also carries a widget view


class Inquiry(TypedDict):
    """One open human approval in the ``inquiries`` trait."""

    task: str
    prompt: str
    schema: dict[str, Any]


class RespondMessage(TypedDict):
    """Front end -> Python: the user submitted an inquiry form."""

    type: Literal["respond"]
    task: str
    data: Any


class RespondErrorMessage(TypedDict):
    """Python -> front end: the response was refused; shown under the form."""

    type: Literal["respond_error"]
    task: str
    error: str


class RespondOkMessage(TypedDict):
    """Python -> front end: the response was accepted."""

    type: Literal["respond_ok"]
    task: str


class EditMessage(TypedDict, total=False):
    """Front end -> Python: change the workflow (see :data:`EditOp` for the fields each takes).

    Only ``type``, ``id`` and ``op`` are always there.
    """

    type: Literal["edit"]
    id: int  # echoed in the answer, so the view that asked is the one that writes the cell
    op: EditOp
    name: str
    action: str
    after: str | None
    source: str
    target: str
    kind: EdgeKind
    yaml: str
    rename: str | None


class EditOk(TypedDict):
    """Python -> front end: the edit was valid and applied (traits already updated)."""

    type: Literal["edit_ok"]
    id: int
    yaml: str  # the new document; for a cell, what goes under the %%workflow line
    target: EditTarget
    path: str | None  # the file written, for target "file"


class EditErrorMessage(TypedDict):
    """Python -> front end: the edit was refused; nothing was written anywhere."""

    type: Literal["edit_error"]
    id: int
    error: str  # one line, positioned: ``<cell>:LINE:COL: message`` or ``FILE:LINE:COL: ...``


STATUS_COLORS: dict[str, str] = {
    "none": "#d1d5db",  # absent from ``status``: not started
    "pending": "#64748b",
    "scheduled": "#8b5cf6",
    "running": "#2563eb",
    "retrying": "#f97316",
    "waiting": "#eab308",
    "succeeded": "#16a34a",
    "failed": "#dc2626",
    "skipped": "#a8a29e",
    "cancelled": "#db2777",
    "cached": "#0d9488",
}
"""One colour per task state, plus ``none``; mirrors ``STATUS_COLORS`` in types.ts."""

EDGE_STYLES: dict[str, tuple[str, str | None]] = {
    "success": ("#16a34a", None),
    "failure": ("#dc2626", "6 4"),
    "complete": ("#6b7280", None),
    "needs": ("#2563eb", "2 4"),
    "when": ("#d97706", None),
    "decision": ("#d97706", None),
}
"""Edge kind -> (stroke colour, SVG dash array or None); mirrors ``EDGE_STYLES`` in types.ts."""


def jsonable(value: object) -> Any:
    """``value`` as plain JSON, anything JSON cannot hold replaced by its one-line summary.

    A trait that is not JSON breaks the comm message that carries it, and the
    widget with it; a task's inputs are user data, so they are made safe here.
    """
    return json.loads(json.dumps(value, default=summary_line))
