/**
 * Wire format shared with Python (`jupyter_workflows/jupyter/wire.py`).
 *
 * Python computes every value; the front end only draws it. Keep both files
 * in step: a field renamed here must be renamed there.
 */

export type TaskState =
  | "pending"
  | "scheduled"
  | "running"
  | "retrying"
  | "waiting"
  | "succeeded"
  | "failed"
  | "skipped"
  | "cancelled"
  | "cached";

export type RunState =
  | "pending"
  | "running"
  | "succeeded"
  | "failed"
  | "cancelled"
  | "paused"
  | "waiting"
  | "interrupted";

export type NodeKind = "action" | "workflow" | "routing" | "join" | "parallel";

export type EdgeKind = "success" | "failure" | "complete" | "needs" | "when" | "decision";

export interface GraphNode {
  id: string;
  label: string;
  kind: NodeKind;
  action: string | null;
  with_items: boolean;
  /** The parallel task this one belongs to (drawn inside it), or null. */
  group: string | null;
}

export interface GraphEdge {
  source: string;
  target: string;
  kind: EdgeKind;
  label: string | null;
}

export interface Graph {
  name: string;
  nodes: GraphNode[];
  edges: GraphEdge[];
}

export interface TaskStatus {
  status: TaskState;
  done: number | null;
  total: number | null;
  attempts: number;
  inputs: Record<string, unknown> | null;
  /** A short repr of the result, made by Python. */
  result: string | null;
  /** A bounded view of the result, made by Python (values.preview). */
  result_view?: ResultView | null;
  error: string | null;
  logs: string[];
  /** Seconds since the epoch. */
  started_at: number | null;
  ended_at: number | null;
}

/** What the task panel shows of a result: a table, an image or a shape line. */
export interface ResultView {
  type: string;
  text: string;
  /** A DataFrame's first rows, HTML made (escaped) by pandas in the kernel. */
  html?: string;
  /** A figure, base64 PNG. */
  png?: string;
  shape?: number[];
  dtype?: string;
}

export interface RunInfo {
  run_id: string | null;
  status: RunState | null;
  error: string | null;
}

export interface Inquiry {
  task: string;
  prompt: string;
  schema: JsonSchema;
}

/** The subset of JSON Schema the inquiry form understands; the rest is a JSON textarea. */
export interface JsonSchema {
  type?: string | string[];
  title?: string;
  description?: string;
  properties?: Record<string, JsonSchema>;
  required?: string[];
  enum?: unknown[];
  default?: unknown;
  [key: string]: unknown;
}

/** Synced traitlets of `GraphWidget`. */
export interface WidgetModel {
  graph: Graph;
  spec: Record<string, unknown>;
  status: Record<string, Partial<TaskStatus>>;
  run: RunInfo;
  inquiries: Inquiry[];
  dashboard_link: string;
  selected: string;
  /** Whether the Edit toggle is offered (Python: `GraphWidget.enable_editing`). */
  editable: boolean;
  edit_target: EditTarget | "";
  edit_path: string;
  /** The workflow's current YAML (for a cell: the text under the `%%workflow` line). */
  yaml: string;
  /** Task name -> its fields as YAML, as written. */
  task_yaml: Record<string, string>;
}

export type EditOp = "add_task" | "remove_task" | "connect" | "disconnect" | "set_task" | "replace";
export type ConnectKind = "success" | "failure" | "complete";
/** Where accepted edits go: the `%%workflow` cell (written here), the file (by Python), nowhere. */
/** `document`: the Workflow Editor's text (in the document, not yet saved). */
export type EditTarget = "cell" | "file" | "document" | "none";

/** Front end -> Python: one edit; Python validates it and answers `edit_ok` or `edit_error`. */
export interface EditMessage {
  type: "edit";
  id: number;
  op: EditOp;
  name?: string;
  action?: string;
  after?: string | null;
  source?: string;
  target?: string;
  kind?: EdgeKind;
  yaml?: string;
  rename?: string | null;
}

/** Front end -> Python. */
export interface RespondMessage {
  type: "respond";
  task: string;
  data: unknown;
}

/** Python -> front end. */
export type ServerMessage =
  | { type: "respond_error"; task: string; error: string }
  | { type: "respond_ok"; task: string }
  | { type: "edit_ok"; id: number; yaml: string; target: EditTarget; path: string | null }
  | { type: "edit_error"; id: number; error: string };

/**
 * One colour per task state; `none` is a task absent from `status` (not started).
 * Mirrors `STATUS_COLORS` in wire.py so the static SVG and the live widget agree.
 */
export const STATUS_COLORS: Record<TaskState | "none", string> = {
  none: "#d1d5db",
  pending: "#64748b",
  scheduled: "#8b5cf6",
  running: "#2563eb",
  retrying: "#f97316",
  waiting: "#eab308",
  succeeded: "#16a34a",
  failed: "#dc2626",
  skipped: "#a8a29e",
  cancelled: "#db2777",
  cached: "#0d9488",
};

/** Run states reuse the task palette where the meaning is the same. */
export const RUN_COLORS: Record<RunState, string> = {
  pending: STATUS_COLORS.pending,
  running: STATUS_COLORS.running,
  succeeded: STATUS_COLORS.succeeded,
  failed: STATUS_COLORS.failed,
  cancelled: STATUS_COLORS.cancelled,
  paused: "#0891b2",
  waiting: STATUS_COLORS.waiting,
  interrupted: "#7c3aed",
};

export const EDGE_STYLES: Record<EdgeKind, { color: string; dash?: string }> = {
  success: { color: "#16a34a" },
  failure: { color: "#dc2626", dash: "6 4" },
  complete: { color: "#6b7280" },
  needs: { color: "#2563eb", dash: "2 4" },
  when: { color: "#d97706" },
  decision: { color: "#d97706" },
};

/** The MIME type of a graph output (wire.py `GRAPH_MIME`). */
export const GRAPH_MIME = "application/vnd.jupyter-workflows.graph+json";

/** The data under `GRAPH_MIME` (wire.py `GraphMimeData`): a graph and its last known state. */
export interface GraphMimeData {
  version: number;
  graph: Graph;
  status: Record<string, Partial<TaskStatus>>;
  run: RunInfo | null;
  model_id: string | null;
}
