/** The whole widget: header, graph canvas, and a side column (inquiries, task details). */
import { useCallback, useEffect, useMemo, useState } from "react";
import type { ColorMode } from "@xyflow/react";
import { ReactFlowProvider } from "@xyflow/react";
import { GraphView } from "./GraphView";
import { InquiryForm } from "./InquiryForm";
import type { InquiryState } from "./InquiryForm";
import { useModel, useModelState, useServerMessages } from "./model";
import { SidePanel } from "./SidePanel";
import { RUN_COLORS } from "./types";
import type { RespondMessage, ServerMessage } from "./types";

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

export function App() {
  const model = useModel();
  const [graph] = useModelState("graph");
  const [status] = useModelState("status");
  const [run] = useModelState("run");
  const [inquiries] = useModelState("inquiries");
  const [dashboardLink] = useModelState("dashboard_link");
  const [selected, setSelected] = useModelState("selected");
  const [answers, setAnswers] = useState<Record<string, InquiryState>>({});
  const colorMode = useColorMode();

  const onServerMessage = useCallback((msg: ServerMessage) => {
    if (msg.type === "respond_error") {
      setAnswers((a) => ({ ...a, [msg.task]: { phase: "error", error: msg.error } }));
    } else if (msg.type === "respond_ok") {
      setAnswers((a) => ({ ...a, [msg.task]: { phase: "sent" } }));
    }
  }, []);
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
  const showAside = selected !== "" || openInquiries.length > 0;
  const runStatus = run?.status ?? null;

  return (
    <div className={`jw-root jw-${colorMode}`} data-testid="jw-root">
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
        {dashboardLink ? (
          <a className="jw-dashboard" href={dashboardLink} target="_blank" rel="noopener noreferrer">
            Dask dashboard
          </a>
        ) : null}
      </header>
      <div className="jw-body">
        <div className="jw-canvas">
          <ReactFlowProvider>
            <GraphView
              graph={safeGraph}
              status={statuses}
              inquiries={openInquiries}
              selected={selected}
              onSelect={setSelected}
              colorMode={colorMode}
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
            {selected !== "" ? (
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
