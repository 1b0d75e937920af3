/**
 * The editor's pieces: the toolbar (add a task, the kind of new connections, delete the
 * selected edge, show the YAML), the task form in the side column, and the YAML panel with
 * its Copy button (also the fallback when the cell cannot be written).
 *
 * Nothing here changes the workflow: every button sends an edit to Python, which validates it
 * and redraws the graph (or answers with the error shown in the toolbar).
 *
 * `data-testid`s are part of the widget's test contract (labextension/README.md).
 */
import { useEffect, useRef, useState } from "react";
import { copyText } from "./cell";
import type { ConnectKind, EdgeKind, EditTarget, GraphNode } from "./types";

export interface SelectedEdge {
  source: string;
  target: string;
  kind: EdgeKind;
}

export type EditNotice =
  | { phase: "idle" }
  | { phase: "sending" }
  | { phase: "saved"; target: EditTarget; where: string }
  | { phase: "copy"; reason: string }
  | { phase: "error"; error: string };

export interface EditBarProps {
  nodes: GraphNode[];
  selectedTask: string;
  selectedEdge: SelectedEdge | null;
  connectKind: ConnectKind;
  onConnectKind: (kind: ConnectKind) => void;
  onAdd: (name: string, action: string, after: string | null) => void;
  onDeleteEdge: (edge: SelectedEdge) => void;
  notice: EditNotice;
  showYaml: boolean;
  onToggleYaml: () => void;
  /** Leave out the add-a-task inputs (the Workflow Editor has its own, with an "after" list). */
  hideAdd?: boolean;
}

export function EditBar(props: EditBarProps) {
  const { nodes, selectedTask, selectedEdge, connectKind, notice } = props;
  const [name, setName] = useState("");
  const [action, setAction] = useState("core.noop");
  const [after, setAfter] = useState(true);
  const actions = Array.from(new Set(nodes.map((n) => n.action).filter((a): a is string => !!a)));
  const busy = notice.phase === "sending";
  const canAfter = selectedTask !== "" && nodes.some((n) => n.id === selectedTask);
  // The name is kept while an edit is checked or refused, so that a refused one can be fixed.
  useEffect(() => {
    if (notice.phase === "saved" || notice.phase === "copy") setName("");
  }, [notice]);

  return (
    <div className="jw-editbar" data-testid="jw-editbar">
      <form
        className="jw-editbar-row"
        onSubmit={(event) => {
          event.preventDefault();
          if (props.hideAdd || !name.trim() || !action.trim()) return;
          props.onAdd(name.trim(), action.trim(), after && canAfter ? selectedTask : null);
        }}
      >
        {props.hideAdd ? null : (
          <>
            <input
              className="jw-input"
              data-testid="jw-add-name"
              placeholder="new task name"
              aria-label="new task name"
              value={name}
              onChange={(e) => setName(e.target.value)}
            />
            <input
              className="jw-input jw-mono"
              data-testid="jw-add-action"
              placeholder="action"
              aria-label="action"
              list="jw-actions"
              value={action}
              onChange={(e) => setAction(e.target.value)}
            />
            <datalist id="jw-actions">
              {actions.map((a) => (
                <option key={a} value={a} />
              ))}
            </datalist>
            {canAfter ? (
              <label className="jw-check" title={`${selectedTask} goes on to the new task on success`}>
                <input type="checkbox" checked={after} onChange={(e) => setAfter(e.target.checked)} />
                after {selectedTask}
              </label>
            ) : null}
            <button type="submit" className="jw-button" data-testid="jw-add-submit" disabled={busy || !name.trim()}>
              Add task
            </button>
          </>
        )}
        <span className="jw-spacer" />
        <label className="jw-check" title="what a new connection (drag from a task's bottom handle) means">
          connect on
          <select
            className="jw-input"
            data-testid="jw-connect-kind"
            value={connectKind}
            onChange={(e) => props.onConnectKind(e.target.value as ConnectKind)}
          >
            <option value="success">success</option>
            <option value="failure">failure</option>
            <option value="complete">complete</option>
          </select>
        </label>
        <button type="button" className="jw-button jw-button-quiet" data-testid="jw-yaml-toggle" onClick={props.onToggleYaml}>
          {props.showYaml ? "Hide YAML" : "YAML"}
        </button>
      </form>
      <div className="jw-editbar-row jw-editbar-status">
        {selectedEdge ? (
          <button
            type="button"
            className="jw-button jw-button-danger"
            data-testid="jw-edge-delete"
            disabled={busy}
            onClick={() => props.onDeleteEdge(selectedEdge)}
          >
            Delete {selectedEdge.source} → {selectedEdge.target} ({selectedEdge.kind})
          </button>
        ) : (
          <span className="jw-muted">
            Drag from a task's bottom handle to another task to connect; click an edge to delete it; click a task to edit it.
          </span>
        )}
        <span className="jw-spacer" />
        <NoticeLine notice={notice} />
      </div>
    </div>
  );
}

function NoticeLine({ notice }: { notice: EditNotice }) {
  switch (notice.phase) {
    case "sending":
      return <span className="jw-muted" data-testid="jw-edit-notice" data-phase="sending">checking…</span>;
    case "saved":
      return (
        <span className="jw-edit-ok" data-testid="jw-edit-notice" data-phase="saved" title={notice.where}>
          {notice.target === "cell"
            ? "written to the cell"
            : notice.target === "document"
              ? "changed in the text: save to write the file"
              : `saved to ${notice.where}`}
        </span>
      );
    case "copy":
      return (
        <span className="jw-muted" data-testid="jw-edit-notice" data-phase="copy" title={notice.reason}>
          valid; copy the YAML ({notice.reason})
        </span>
      );
    case "error":
      return (
        <span className="jw-edit-error" data-testid="jw-edit-error" title={notice.error}>
          {notice.error}
        </span>
      );
    default:
      return null;
  }
}

export interface YamlPanelProps {
  yaml: string;
  reason: string | null;
  onClose: () => void;
}

/** The workflow's YAML with a Copy button: on demand, or when it could not be written. */
export function YamlPanel({ yaml, reason, onClose }: YamlPanelProps) {
  const area = useRef<HTMLTextAreaElement>(null);
  const [copied, setCopied] = useState<boolean | null>(null);
  useEffect(() => setCopied(null), [yaml]);
  return (
    <section className="jw-panel jw-yaml-panel" data-testid="jw-yaml-panel">
      <header className="jw-panel-head">
        <span className="jw-panel-title">YAML</span>
        <button
          type="button"
          className="jw-button"
          data-testid="jw-yaml-copy"
          onClick={() => void copyText(yaml, area.current).then(setCopied)}
        >
          {copied === true ? "Copied" : "Copy"}
        </button>
        <button type="button" className="jw-close" aria-label="Close" onClick={onClose}>
          ×
        </button>
      </header>
      {reason ? <p className="jw-muted">Not written anywhere ({reason}): paste it where it belongs.</p> : null}
      {copied === false ? <p className="jw-form-error">Copy failed: select the text and copy it.</p> : null}
      <textarea
        ref={area}
        className="jw-yaml jw-mono"
        data-testid="jw-yaml-text"
        readOnly
        value={yaml}
        rows={Math.min(24, yaml.split("\n").length + 1)}
      />
    </section>
  );
}

export interface TaskEditorProps {
  task: string;
  yaml: string;
  busy: boolean;
  onApply: (yaml: string, rename: string | null) => void;
  onRemove: () => void;
  onClose: () => void;
}

/** A task's fields as YAML (action, input, retry, timeout, ...), and its name. */
export function TaskEditor({ task, yaml, busy, onApply, onRemove, onClose }: TaskEditorProps) {
  const [text, setText] = useState(yaml);
  const [name, setName] = useState(task);
  // A new task, or the same task changed by an accepted edit: start from what Python has.
  useEffect(() => {
    setText(yaml);
    setName(task);
  }, [task, yaml]);
  return (
    <section className="jw-panel" data-testid="jw-task-editor" data-task={task}>
      <header className="jw-panel-head">
        <span className="jw-panel-title">Edit {task}</span>
        <button type="button" className="jw-close" aria-label="Close" onClick={onClose}>
          ×
        </button>
      </header>
      <form
        className="jw-task-form"
        onSubmit={(event) => {
          event.preventDefault();
          onApply(text, name.trim() && name.trim() !== task ? name.trim() : null);
        }}
      >
        <label className="jw-field">
          <span>name</span>
          <input className="jw-input jw-mono" data-testid="jw-task-name" value={name} onChange={(e) => setName(e.target.value)} />
        </label>
        <label className="jw-field">
          <span>fields (YAML: action, input, retry, timeout, next, …)</span>
          <textarea
            className="jw-yaml jw-mono"
            data-testid="jw-task-yaml"
            spellCheck={false}
            rows={Math.max(4, Math.min(18, text.split("\n").length + 1))}
            value={text}
            onChange={(e) => setText(e.target.value)}
          />
        </label>
        <div className="jw-inquiry-actions">
          <button type="submit" className="jw-button" data-testid="jw-task-apply" disabled={busy}>
            Apply
          </button>
          <button type="button" className="jw-button jw-button-danger" data-testid="jw-task-remove" disabled={busy} onClick={onRemove}>
            Remove task
          </button>
        </div>
      </form>
    </section>
  );
}
