/** The whole widget: header, graph canvas, and a side column (inquiries, task details). */
import { openDashboardInLab, proxiedDashboard } from "./dashboard";
import { useCallback, useContext, useEffect, useMemo, useRef, useState } from "react";
import type { ColorMode } from "@xyflow/react";
import { ReactFlowProvider } from "@xyflow/react";
import { GraphView } from "./GraphView";
import { InquiryForm } from "./InquiryForm";
import type { InquiryState } from "./InquiryForm";
import { writeCell } from "./cell";
import { EditBar, TaskEditor, YamlPanel } from "./Editing";
import type { EditNotice, SelectedEdge } from "./Editing";
import { HostContext, useModel, useModelState, useServerMessages } from "./model";
import { SidePanel } from "./SidePanel";
import { RUN_COLORS } from "./types";
import type { ConnectKind, EditMessage, EditOp, RespondMessage, ServerMessage } from "./types";

const MIN_CANVAS_HEIGHT = 220;
const ASIDE_MIN_HEIGHT = 420;
const MAX_CANVAS_HEIGHT = 720;
const CANVAS_PADDING = 32;

/** Run states during which the graph follows a run and cannot be edited. */
const LIVE_RUN_STATES = new Set(["pending", "running", "waiting", "paused"]);

/** Follow JupyterLab's light/dark theme (`data-jp-theme-light` on <body>). */
function useColorMode(): ColorMode {
  const read = (): ColorMode =>
    typeof document !== "undefined" && document.body?.dataset.jpThemeLight === "false"
      ? "dark"
      : "light";
  const [mode, setMode] = useState<ColorMode>(read);
  useEffect(() => {
    if (typeof MutationObserver === "undefined" || !document.body) return;
    const observer = new MutationObserver(() => setMode(read()));
    observer.observe(document.body, { attributes: true, attributeFilter: ["data-jp-theme-light"] });
    return () => observer.disconnect();
  }, []);
  return mode;
}

export interface AppProps {
  /** A saved graph drawn from an output's data: no kernel behind it, nothing to edit or answer. */
  readOnly?: boolean;
  /** Open in edit mode (the Workflow Editor document, whose graph is there to be edited). */
  startEditing?: boolean;
  /** The read-only badge's text (default "saved view"). */
  note?: string;
  /** No add-a-task inputs in the edit bar: the host has its own (the Workflow Editor). */
  hideAddTask?: boolean;
}

export function App({
  readOnly = false,
  note = "saved view",
  startEditing = false,
  hideAddTask = false,
}: AppProps = {}) {
  const model = useModel();
  const [graph] = useModelState("graph");
  const [status] = useModelState("status");
  const [run] = useModelState("run");
  const [inquiries] = useModelState("inquiries");
  const [dashboardLink] = useModelState("dashboard_link");
  const [selected, setSelected] = useModelState("selected");
  const [editable] = useModelState("editable");
  const [yamlText] = useModelState("yaml");
  const [taskYaml] = useModelState("task_yaml");
  const [answers, setAnswers] = useState<Record<string, InquiryState>>({});
  const colorMode = useColorMode();
  const host = useContext(HostContext);

  // -- editing: every change is an `edit` message; Python validates it and redraws.
  const [editing, setEditing] = useState(startEditing);
  const [connectKind, setConnectKind] = useState<ConnectKind>("success");
  const [selectedEdge, setSelectedEdge] = useState<SelectedEdge | null>(null);
  const [notice, setNotice] = useState<EditNotice>({ phase: "idle" });
  const [showYaml, setShowYaml] = useState(false);
  const [copyReason, setCopyReason] = useState<string | null>(null);
  // Ids of the edits this view sent: only the view that asked writes the cell.
  const nextId = useRef(Math.floor(Math.random() * 1e6) * 1000);
  const pending = useRef(new Set<number>());
  const runLive = run?.status != null && LIVE_RUN_STATES.has(run.status);
  const canEdit = Boolean(editable) && !runLive && !readOnly;
  useEffect(() => {
    if (!canEdit) setEditing(false);
  }, [canEdit]);

  const sendEdit = useCallback(
    (op: EditOp, fields: Omit<EditMessage, "type" | "id" | "op">) => {
      const id = ++nextId.current;
      pending.current.add(id);
      setNotice({ phase: "sending" });
      const msg: EditMessage = { type: "edit", id, op, ...fields };
      model.send(msg);
    },
    [model],
  );

  const onServerMessage = useCallback((msg: ServerMessage) => {
    if (msg.type === "edit_ok" || msg.type === "edit_error") {
      if (!pending.current.delete(msg.id)) return; // another view's edit
      if (msg.type === "edit_error") {
        setNotice({ phase: "error", error: msg.error });
        return;
      }
      setSelectedEdge(null);
      if (msg.target === "cell") {
        const why = writeCell(host, msg.yaml);
        if (why === null) {
          setNotice({ phase: "saved", target: "cell", where: "the %%workflow cell" });
          setCopyReason(null);
        } else {
          setNotice({ phase: "copy", reason: why });
          setCopyReason(why);
          setShowYaml(true);
        }
      } else if (msg.target === "document") {
        setNotice({ phase: "saved", target: "document", where: msg.path ?? "the text" });
        setCopyReason(null);
      } else if (msg.target === "file") {
        setNotice({ phase: "saved", target: "file", where: msg.path ?? "the file" });
        setCopyReason(null);
      } else {
        const why = "this workflow has no cell or file to write to";
        setNotice({ phase: "copy", reason: why });
        setCopyReason(why);
        setShowYaml(true);
      }
      return;
    }
    if (msg.type === "respond_error") {
      setAnswers((a) => ({ ...a, [msg.task]: { phase: "error", error: msg.error } }));
    } else if (msg.type === "respond_ok") {
      setAnswers((a) => ({ ...a, [msg.task]: { phase: "sent" } }));
    }
  }, [host]);
  useServerMessages(onServerMessage);

  // An inquiry that closed and opens again (a loop) starts with a fresh form state.
  useEffect(() => {
    const open = new Set((Array.isArray(inquiries) ? inquiries : []).map((q) => q.task));
    setAnswers((a) => {
      const kept = Object.entries(a).filter(([task]) => open.has(task));
      return kept.length === Object.keys(a).length ? a : Object.fromEntries(kept);
    });
  }, [inquiries]);

  const respond = useCallback(
    (task: string, data: unknown) => {
      const msg: RespondMessage = { type: "respond", task, data };
      setAnswers((a) => ({ ...a, [task]: { phase: "sending" } }));
      model.send(msg);
    },
    [model],
  );

  // A stable object: a new graph means a new layout.
  const safeGraph = useMemo(
    () =>
      graph && Array.isArray(graph.nodes)
        ? { ...graph, edges: Array.isArray(graph.edges) ? graph.edges : [] }
        : { name: "", nodes: [], edges: [] },
    [graph],
  );
  const nodes = safeGraph.nodes;
  const openInquiries = Array.isArray(inquiries) ? inquiries : [];
  const statuses = status ?? {};
  const yamlOpen = editing && showYaml;
  const showAside = selected !== "" || openInquiries.length > 0 || yamlOpen;
  const taskYamlOf = (task: string): string => (taskYaml && typeof taskYaml[task] === "string" ? taskYaml[task] : "");
  const runStatus = run?.status ?? null;
  // The canvas grows with the graph (at zoom 1) between MIN and MAX; beyond, one pans.
  const [layoutHeight, setLayoutHeight] = useState<number | null>(null);
  const onLayoutSize = useCallback((_w: number, h: number) => setLayoutHeight(h), []);
  const canvasHeight = Math.max(
    showAside ? ASIDE_MIN_HEIGHT : MIN_CANVAS_HEIGHT,
    Math.min(MAX_CANVAS_HEIGHT, (layoutHeight ?? 360) + 2 * CANVAS_PADDING),
  );

  return (
    <div
      className={`jw-root jw-${colorMode}${editing ? " jw-editing" : ""}`}
      data-testid="jw-root"
      data-editing={editing ? "true" : "false"}
      data-readonly={readOnly ? "true" : "false"}
      style={{ height: "auto" }}
      // Delete (or Backspace) removes the selected edge, else the selected task, while editing;
      // never while typing in a field.
      tabIndex={-1}
      onKeyDown={(event) => {
        if (!editing || (event.key !== "Delete" && event.key !== "Backspace")) return;
        const tag = (event.target as HTMLElement).tagName;
        if (tag === "INPUT" || tag === "TEXTAREA" || tag === "SELECT") return;
        if (selectedEdge) {
          event.preventDefault();
          sendEdit("disconnect", { ...selectedEdge });
        } else if (selected !== "") {
          event.preventDefault();
          sendEdit("remove_task", { name: selected });
          setSelected("");
        }
      }}
    >
      <header className="jw-header">
        <span className="jw-title" title={safeGraph.name}>
          {safeGraph.name || "workflow"}
        </span>
        {runStatus ? (
          <span className="jw-badge" data-testid="jw-run-status" style={{ background: RUN_COLORS[runStatus] ?? "#6b7280" }}>
            {runStatus}
          </span>
        ) : null}
        {run?.run_id ? (
          <span className="jw-run-id jw-mono" title="run id">
            {run.run_id}
          </span>
        ) : null}
        {run?.error ? (
          <span className="jw-run-error" title={run.error}>
            {run.error}
          </span>
        ) : null}
        <span className="jw-spacer" />
        {readOnly ? (
          <span className="jw-saved" title="The graph as it was saved with the notebook; run the cell for the live view">
            {note}
          </span>
        ) : null}
        {canEdit ? (
          <button
            type="button"
            className={`jw-button jw-button-quiet${editing ? " jw-active" : ""}`}
            data-testid="jw-edit-toggle"
            aria-pressed={editing}
            onClick={() => {
              setEditing(!editing);
              setSelectedEdge(null);
              setNotice({ phase: "idle" });
            }}
          >
            {editing ? "Done" : "Edit"}
          </button>
        ) : null}
        {dashboardLink ? (
          <a
            className="jw-dashboard"
            data-testid="jw-dashboard-link"
            href={proxiedDashboard(dashboardLink)}
            onClick={(event) => openDashboardInLab(dashboardLink, event)}
            target="_blank"
            rel="noopener noreferrer"
          >
            Dask dashboard
          </a>
        ) : null}
      </header>
      {editing ? (
        <EditBar
          nodes={nodes}
          selectedTask={selected}
          selectedEdge={selectedEdge}
          connectKind={connectKind}
          onConnectKind={setConnectKind}
          onAdd={(name, action, after) => sendEdit("add_task", { name, action, after })}
          onDeleteEdge={(edge) => sendEdit("disconnect", { ...edge })}
          notice={notice}
          showYaml={showYaml}
          onToggleYaml={() => setShowYaml(!showYaml)}
          hideAdd={hideAddTask}
        />
      ) : null}
      <div className="jw-body" style={{ height: canvasHeight }}>
        <div className="jw-canvas" data-testid="jw-canvas">
          <ReactFlowProvider>
            <GraphView
              graph={safeGraph}
              status={statuses}
              inquiries={openInquiries}
              selected={selected}
              onSelect={(task) => {
                setSelected(task);
                setSelectedEdge(null);
              }}
              colorMode={colorMode}
              editing={editing}
              selectedEdge={selectedEdge}
              onSelectEdge={(edge) => {
                setSelectedEdge(edge);
                if (edge) setSelected("");
              }}
              onConnect={(source, target) => sendEdit("connect", { source, target, kind: connectKind })}
              onLayoutSize={onLayoutSize}
            />
          </ReactFlowProvider>
        </div>
        {showAside ? (
          <aside className="jw-aside">
            {openInquiries.map((inquiry) => (
              <InquiryForm
                key={`${inquiry.task}:${JSON.stringify(inquiry.schema)}`}
                inquiry={inquiry}
                state={answers[inquiry.task] ?? { phase: "idle" }}
                onSubmit={(data) => respond(inquiry.task, data)}
                onSelect={() => setSelected(inquiry.task)}
              />
            ))}
            {yamlOpen ? (
              <YamlPanel yaml={yamlText ?? ""} reason={copyReason} onClose={() => setShowYaml(false)} />
            ) : null}
            {selected !== "" && editing ? (
              <TaskEditor
                task={selected}
                yaml={taskYamlOf(selected)}
                busy={notice.phase === "sending"}
                onApply={(text, rename) => sendEdit("set_task", { name: selected, yaml: text, rename })}
                onRemove={() => sendEdit("remove_task", { name: selected })}
                onClose={() => setSelected("")}
              />
            ) : null}
            {selected !== "" && !editing ? (
              <SidePanel
                task={selected}
                node={nodes.find((n) => n.id === selected)}
                status={statuses[selected]}
                onClose={() => setSelected("")}
              />
            ) : null}
          </aside>
        ) : null}
      </div>
    </div>
  );
}
