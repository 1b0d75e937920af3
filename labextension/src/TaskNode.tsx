/**
 * The custom React Flow node: label, action, status badge and item progress.
 *
 * `data-testid="jw-node-<task>"` and `data-status` are part of the widget's
 * test contract (browser tests locate nodes by them).
 */
import { memo } from "react";
import { Handle, Position } from "@xyflow/react";
import type { Node, NodeProps } from "@xyflow/react";
import { progressOf, statusColor, statusText } from "./format";
import type { GraphNode, TaskStatus } from "./types";

export type TaskNodeData = {
  node: GraphNode;
  status: Partial<TaskStatus> | undefined;
  selected: boolean;
  container: boolean;
  hasInquiry: boolean;
  /** Edit mode: the handles start and end new connections. */
  editing?: boolean;
};

export type TaskFlowNode = Node<TaskNodeData, "task">;

function subtitle(node: GraphNode): string {
  if (node.action) return node.kind === "workflow" ? `workflow: ${node.action}` : node.action;
  switch (node.kind) {
    case "routing":
      return "routing";
    case "join":
      return "join";
    case "parallel":
      return "parallel";
    case "workflow":
      return "workflow";
    default:
      return "";
  }
}

function TaskNodeView({ data }: NodeProps<TaskFlowNode>) {
  const { node, status, selected, container, hasInquiry } = data;
  const editing = data.editing ?? false;
  const state = status?.status;
  const color = statusColor(state);
  const progress = progressOf(status);
  const classes = [
    "jw-node",
    `jw-kind-${node.kind}`,
    container ? "jw-container" : "",
    selected ? "jw-selected" : "",
    state ? `jw-status-${state}` : "jw-status-none",
  ].join(" ");
  return (
    <div
      className={classes}
      data-testid={`jw-node-${node.id}`}
      data-status={state ?? "none"}
      style={{ borderColor: color }}
      title={`${node.label} — ${statusText(state)}`}
    >
      <Handle
        type="target"
        position={Position.Top}
        isConnectable={editing}
        className={editing ? "jw-handle jw-handle-on" : "jw-handle"}
        data-testid={editing ? `jw-handle-in-${node.id}` : undefined}
      />
      <div className="jw-node-head">
        <span className="jw-node-label">{node.label}</span>
        <span className="jw-badge" style={{ background: color }}>
          {statusText(state)}
        </span>
      </div>
      <div className="jw-node-sub">
        <span className="jw-node-action">{subtitle(node)}</span>
        {node.with_items && !progress ? <span className="jw-tag">each item</span> : null}
        {hasInquiry ? <span className="jw-tag jw-tag-inquiry">needs answer</span> : null}
        {status && (status.attempts ?? 0) > 1 ? (
          <span className="jw-tag">try {status.attempts}</span>
        ) : null}
        {progress ? (
          <span className="jw-progress-text" data-testid={`jw-progress-${node.id}`}>
            {node.with_items ? `${progress.text} items` : progress.text}
          </span>
        ) : null}
      </div>
      {progress ? (
        <div className="jw-progress" aria-label={`progress ${progress.text}`}>
          <div
            className="jw-progress-bar"
            style={{ width: `${progress.fraction * 100}%`, background: color }}
          />
        </div>
      ) : null}
      <Handle
        type="source"
        position={Position.Bottom}
        isConnectable={editing}
        className={editing ? "jw-handle jw-handle-on" : "jw-handle"}
        data-testid={editing ? `jw-handle-out-${node.id}` : undefined}
      />
    </div>
  );
}

export const TaskNode = memo(TaskNodeView);
