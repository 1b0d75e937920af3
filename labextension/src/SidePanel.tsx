/** Details of the selected task: status, attempts, timings, inputs, result, error, logs. */
import { useEffect, useState } from "react";
import { formatDuration, formatTime, prettyJson, progressOf, statusColor, statusText } from "./format";
import type { GraphNode, TaskStatus } from "./types";

export interface SidePanelProps {
  task: string;
  node: GraphNode | undefined;
  status: Partial<TaskStatus> | undefined;
  onClose: () => void;
}

/** Seconds since the epoch, ticking once a second while `live`. */
function useNow(live: boolean): number {
  const [now, setNow] = useState(() => Date.now() / 1000);
  useEffect(() => {
    if (!live) return;
    setNow(Date.now() / 1000);
    const timer = setInterval(() => setNow(Date.now() / 1000), 1000);
    return () => clearInterval(timer);
  }, [live]);
  return now;
}

export function SidePanel({ task, node, status, onClose }: SidePanelProps) {
  const state = status?.status;
  const started = status?.started_at ?? null;
  const ended = status?.ended_at ?? null;
  const now = useNow(started != null && ended == null);
  const duration = started == null ? null : (ended ?? now) - started;
  const progress = progressOf(status);
  const logs = status?.logs ?? [];

  return (
    <section className="jw-panel" data-testid="jw-panel" data-task={task}>
      <header className="jw-panel-head">
        <span className="jw-panel-title" title={task}>
          {node?.label ?? task}
        </span>
        <span className="jw-badge" style={{ background: statusColor(state) }}>
          {statusText(state)}
        </span>
        <button type="button" className="jw-close" aria-label="Close" onClick={onClose}>
          ×
        </button>
      </header>
      {node === undefined ? <p className="jw-muted">No task named “{task}” in this graph.</p> : null}
      <dl className="jw-facts">
        {node?.action ? (
          <>
            <dt>{node.kind === "workflow" ? "workflow" : "action"}</dt>
            <dd className="jw-mono">{node.action}</dd>
          </>
        ) : null}
        <dt>attempts</dt>
        <dd>{status?.attempts ?? 0}</dd>
        {progress ? (
          <>
            <dt>items</dt>
            <dd>{progress.text}</dd>
          </>
        ) : null}
        <dt>started</dt>
        <dd>{formatTime(started)}</dd>
        <dt>ended</dt>
        <dd>{formatTime(ended)}</dd>
        <dt>duration</dt>
        <dd>
          {formatDuration(duration)}
          {started != null && ended == null ? " (so far)" : ""}
        </dd>
      </dl>
      {status?.error ? (
        <>
          <h4>Error</h4>
          <pre className="jw-pre jw-error" data-testid="jw-error">
            {status.error}
          </pre>
        </>
      ) : null}
      {status?.inputs != null ? (
        <>
          <h4>Inputs</h4>
          <pre className="jw-pre" data-testid="jw-inputs">
            {prettyJson(status.inputs)}
          </pre>
        </>
      ) : null}
      {status?.result != null ? (
        <>
          <h4>Result</h4>
          {status.result_view?.html ? (
            <div
              className="jw-result-table"
              data-testid="jw-result-table"
              // pandas' to_html in the kernel, cell text escaped; the kernel is trusted.
              dangerouslySetInnerHTML={{ __html: status.result_view.html }}
            />
          ) : null}
          {status.result_view?.png ? (
            <img
              className="jw-result-image"
              data-testid="jw-result-image"
              alt={status.result_view.text}
              src={`data:image/png;base64,${status.result_view.png}`}
            />
          ) : null}
          <pre className="jw-pre" data-testid="jw-result">
            {/* a table, an image or an array: its summary line; else the repr */}
            {status.result_view?.html || status.result_view?.png || status.result_view?.shape
              ? status.result_view.text
              : status.result}
          </pre>
        </>
      ) : null}
      {logs.length > 0 ? (
        <>
          <h4>Logs</h4>
          <pre className="jw-pre jw-logs" data-testid="jw-logs">
            {logs.join("\n")}
          </pre>
        </>
      ) : null}
      {state == null ? <p className="jw-muted">This task has not started.</p> : null}
    </section>
  );
}
