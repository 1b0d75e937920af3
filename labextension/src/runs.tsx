/**
 * The runs panel (left sidebar) and a run's graph (a main-area tab).
 *
 * Everything comes from the server extension's REST API (`{base_url}/workflows/api/`, see
 * docs/rest.md) through `ServerConnection.makeRequest`: Jupyter's own auth (token, cookie,
 * XSRF), nothing of our own. The panel polls while it is visible; a run's graph tab polls
 * `runs/{id}/graph` while the run is not over.
 */
import { openDashboardInLab, proxiedDashboard } from "./dashboard";
import { ServerConnection } from "@jupyterlab/services";
import { URLExt } from "@jupyterlab/coreutils";
import { Widget } from "@lumino/widgets";
import { StrictMode, useCallback, useEffect, useMemo, useState } from "react";
import { createRoot } from "react-dom/client";
import type { Root } from "react-dom/client";
import { App } from "./App";
import { InquiryForm } from "./InquiryForm";
import type { InquiryState } from "./InquiryForm";
import { HostContext, ModelContext } from "./model";
import { StaticModel } from "./staticModel";
import { RUN_COLORS } from "./types";
import type { GraphMimeData, Inquiry, RunState } from "./types";

const POLL_MS = 2000;
const RUN_STATES: RunState[] = [
  "pending",
  "running",
  "waiting",
  "paused",
  "succeeded",
  "failed",
  "cancelled",
  "interrupted",
];
const OVER = new Set(["succeeded", "failed", "cancelled"]);

export interface RunSummary {
  run_id: string;
  workflow: string;
  status: RunState;
  started_at: string | null;
  ended_at: string | null;
}

interface TaskRecord {
  task: string;
  status: string;
  attempts: number | null;
  error: string | null;
}

interface RunDetail {
  run_id: string;
  workflow: string;
  status: RunState;
  error: string | null;
  tasks: TaskRecord[];
}

export type RunGraph = GraphMimeData & { inquiries: Inquiry[] };

/** One call to the REST API; a non-2xx answer throws its one-line `error`. */
export async function api<T>(path: string, init: RequestInit = {}): Promise<T> {
  const settings = ServerConnection.makeSettings();
  const url = URLExt.join(settings.baseUrl, "workflows/api", path);
  const response = await ServerConnection.makeRequest(url, init, settings);
  const text = await response.text();
  let body: unknown = null;
  try {
    body = text ? JSON.parse(text) : null;
  } catch {
    body = null;
  }
  if (!response.ok) {
    const error = body && typeof body === "object" && "error" in body ? String((body as { error: unknown }).error) : "";
    throw new Error(error || `${response.status} ${response.statusText}`);
  }
  return body as T;
}

function useVisiblePoll(callback: () => void | Promise<void>, active: boolean, deps: unknown[]): void {
  useEffect(() => {
    if (!active) return;
    let stopped = false;
    let timer: ReturnType<typeof setTimeout> | null = null;
    const tick = async () => {
      try {
        await callback();
      } finally {
        if (!stopped) timer = setTimeout(tick, POLL_MS);
      }
    };
    void tick();
    return () => {
      stopped = true;
      if (timer) clearTimeout(timer);
    };
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [active, ...deps]);
}

function Badge({ status }: { status: string | null | undefined }) {
  const color = (status && RUN_COLORS[status as RunState]) || "#6b7280";
  return (
    <span className="jw-badge" style={{ background: color }}>
      {status ?? "?"}
    </span>
  );
}

function when(iso: string | null): string {
  if (!iso) return "";
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? iso : d.toLocaleString();
}

export interface RunsPanelProps {
  visible: () => boolean;
  onOpenGraph: (run: RunSummary) => void;
}

export function RunsPanel({ visible, onOpenGraph }: RunsPanelProps) {
  const [runs, setRuns] = useState<RunSummary[] | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [workflow, setWorkflow] = useState("");
  const [status, setStatus] = useState("");
  const [selected, setSelected] = useState<string | null>(null);
  const [tick, setTick] = useState(0);
  const [dashboard, setDashboard] = useState<string | null>(null);

  // Poll only while the panel is shown: a hidden sidebar costs nothing.
  const [shown, setShown] = useState(visible());
  useEffect(() => {
    const timer = setInterval(() => setShown(visible()), 500);
    return () => clearInterval(timer);
  }, [visible]);

  useVisiblePoll(
    async () => {
      const query = new URLSearchParams({ limit: "100" });
      if (workflow.trim()) query.set("workflow", workflow.trim());
      if (status) query.set("status", status);
      try {
        setRuns(await api<RunSummary[]>(`runs?${query.toString()}`));
        setError(null);
        const info = await api<{ dashboard?: string | null }>("");
        setDashboard(info && info.dashboard ? info.dashboard : null);
      } catch (err) {
        setError((err as Error).message);
      }
    },
    shown,
    [workflow, status, tick],
  );

  return (
    <div className="jw-root jw-runs" data-testid="jw-runs-panel" style={{ height: "100%" }}>
      <header className="jw-header">
        <span className="jw-title">Workflow runs</span>
        <span className="jw-spacer" />
        {dashboard ? (
          <a
            className="jw-dashboard"
            data-testid="jw-runs-dashboard-link"
            href={proxiedDashboard(dashboard)}
            onClick={(event) => openDashboardInLab(dashboard, event)}
            target="_blank"
            rel="noopener noreferrer"
          >
            Dask dashboard
          </a>
        ) : null}
        <button type="button" className="jw-button jw-button-quiet" onClick={() => setTick(tick + 1)}>
          Refresh
        </button>
      </header>
      <div className="jw-runs-filters">
        <input
          className="jw-input"
          data-testid="jw-runs-filter-workflow"
          placeholder="workflow"
          value={workflow}
          onChange={(e) => setWorkflow(e.target.value)}
        />
        <select
          className="jw-input"
          data-testid="jw-runs-filter-status"
          value={status}
          onChange={(e) => setStatus(e.target.value)}
        >
          <option value="">any status</option>
          {RUN_STATES.map((s) => (
            <option key={s} value={s}>
              {s}
            </option>
          ))}
        </select>
      </div>
      {error ? (
        <div className="jw-edit-error" data-testid="jw-runs-error">
          {error}
        </div>
      ) : null}
      <div className="jw-runs-list">
        {runs === null ? <div className="jw-empty">Loading runs…</div> : null}
        {runs !== null && runs.length === 0 ? <div className="jw-empty">No runs.</div> : null}
        {(runs ?? []).map((run) => (
          <div key={run.run_id}>
            <div
              className={`jw-run-row${selected === run.run_id ? " jw-active" : ""}`}
              data-testid={`jw-run-${run.run_id}`}
              data-status={run.status}
              onClick={() => setSelected(selected === run.run_id ? null : run.run_id)}
            >
              <span className="jw-run-name">{run.workflow}</span>
              <Badge status={run.status} />
              <span className="jw-run-id jw-mono" title={run.run_id}>
                {run.run_id.slice(0, 8)}
              </span>
              <span className="jw-run-when">{when(run.started_at)}</span>
            </div>
            {selected === run.run_id ? (
              <RunDetails runId={run.run_id} active={shown} onOpenGraph={() => onOpenGraph(run)} />
            ) : null}
          </div>
        ))}
      </div>
    </div>
  );
}

function RunDetails({ runId, active, onOpenGraph }: { runId: string; active: boolean; onOpenGraph: () => void }) {
  const [detail, setDetail] = useState<RunDetail | null>(null);
  const [graph, setGraph] = useState<RunGraph | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [notice, setNotice] = useState<string | null>(null);
  const [answers, setAnswers] = useState<Record<string, InquiryState>>({});
  const [logsOf, setLogsOf] = useState<string | null>(null);
  const [logs, setLogs] = useState<string[] | null>(null);

  const load = useCallback(async () => {
    try {
      const [d, g] = await Promise.all([
        api<RunDetail>(`runs/${runId}`),
        api<RunGraph>(`runs/${runId}/graph`).catch(() => null),
      ]);
      setDetail(d);
      setGraph(g);
      setError(null);
    } catch (err) {
      setError((err as Error).message);
    }
  }, [runId]);
  useVisiblePoll(load, active, [load]);

  useEffect(() => {
    if (logsOf === null) return;
    let cancelled = false;
    api<{ tasks: { task: string; logs: string[] }[] }>(`runs/${runId}/trace`)
      .then((trace) => {
        if (cancelled) return;
        const lines = trace.tasks.filter((t) => t.task === logsOf).flatMap((t) => t.logs ?? []);
        setLogs(lines);
      })
      .catch((err) => !cancelled && setLogs([`cannot read the logs: ${(err as Error).message}`]));
    return () => {
      cancelled = true;
    };
  }, [runId, logsOf, detail?.status]);

  const control = async (action: "pause" | "resume" | "cancel") => {
    setNotice(`${action}…`);
    try {
      const run = await api<RunDetail>(`runs/${runId}/${action}`, { method: "POST" });
      setNotice(`${action}: ${run.status}`);
      await load();
    } catch (err) {
      setNotice(null);
      setError((err as Error).message);
    }
  };

  const respond = async (task: string, data: unknown) => {
    setAnswers((a) => ({ ...a, [task]: { phase: "sending" } }));
    try {
      const run = await api<RunDetail>(`runs/${runId}/tasks/${encodeURIComponent(task)}/respond`, {
        method: "POST",
        body: JSON.stringify(data),
      });
      setAnswers((a) => ({ ...a, [task]: { phase: "sent" } }));
      setNotice(
        run.status === "waiting" || run.status === "interrupted"
          ? "answer recorded; Resume continues the run"
          : `answered: ${run.status}`,
      );
      await load();
    } catch (err) {
      setAnswers((a) => ({ ...a, [task]: { phase: "error", error: (err as Error).message } }));
    }
  };

  const inquiries = graph?.inquiries ?? [];
  const over = detail ? OVER.has(detail.status) : false;
  const latest = useMemo(() => {
    const byTask = new Map<string, TaskRecord>();
    for (const t of detail?.tasks ?? []) byTask.set(t.task, t); // the latest execution wins
    return [...byTask.values()];
  }, [detail]);

  return (
    <div className="jw-run-details" data-testid={`jw-run-details-${runId}`}>
      {error ? <div className="jw-edit-error">{error}</div> : null}
      {detail === null ? <div className="jw-empty">Loading…</div> : null}
      {detail ? (
        <>
          <div className="jw-run-actions">
            <button type="button" className="jw-button" data-testid="jw-run-open" onClick={onOpenGraph}>
              Graph
            </button>
            <button type="button" className="jw-button" data-testid="jw-run-pause" disabled={over} onClick={() => void control("pause")}>
              Pause
            </button>
            <button type="button" className="jw-button" data-testid="jw-run-resume" disabled={over} onClick={() => void control("resume")}>
              Resume
            </button>
            <button type="button" className="jw-button" data-testid="jw-run-cancel" disabled={over} onClick={() => void control("cancel")}>
              Cancel
            </button>
          </div>
          {notice ? (
            <div className="jw-edit-notice" data-testid="jw-run-notice">
              {notice}
            </div>
          ) : null}
          {detail.error ? <div className="jw-run-error">{detail.error}</div> : null}
          {inquiries.map((inquiry) => (
            <InquiryForm
              key={`${inquiry.task}:${JSON.stringify(inquiry.schema)}`}
              inquiry={inquiry}
              state={answers[inquiry.task] ?? { phase: "idle" }}
              onSubmit={(data) => void respond(inquiry.task, data)}
              onSelect={() => setLogsOf(inquiry.task)}
            />
          ))}
          <table className="jw-run-tasks">
            <tbody>
              {latest.map((t) => (
                <tr key={t.task} data-testid={`jw-run-task-${t.task}`} data-status={t.status}>
                  <td className="jw-mono">{t.task}</td>
                  <td>
                    <Badge status={t.status} />
                  </td>
                  <td>
                    <button
                      type="button"
                      className="jw-button jw-button-quiet"
                      data-testid={`jw-run-logs-${t.task}`}
                      onClick={() => {
                        setLogs(null);
                        setLogsOf(logsOf === t.task ? null : t.task);
                      }}
                    >
                      logs
                    </button>
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
          {logsOf !== null ? (
            <pre className="jw-logs" data-testid="jw-run-logs">
              {logs === null ? "…" : logs.length ? logs.join("\n") : `(no log lines from ${logsOf})`}
            </pre>
          ) : null}
        </>
      ) : null}
    </div>
  );
}

/** A run's graph in a main-area tab: the saved-view renderer fed by `runs/{id}/graph`. */
export class RunGraphWidget extends Widget {
  private root: Root;
  private model: StaticModel | null = null;
  private timer: ReturnType<typeof setTimeout> | null = null;
  private readonly host: HTMLDivElement;

  constructor(readonly runId: string, label: string) {
    super();
    this.id = `jw-run-graph-${runId}`;
    this.title.label = label;
    this.title.closable = true;
    this.addClass("jw-run-graph");
    this.node.dataset.testid = "jw-run-graph";
    this.node.style.overflow = "auto";
    this.host = document.createElement("div");
    this.host.className = "jw-host";
    this.node.appendChild(this.host);
    this.root = createRoot(this.host);
    void this.poll();
  }

  private async poll(): Promise<void> {
    let over = false;
    try {
      const data = await api<RunGraph>(`runs/${this.runId}/graph`);
      over = OVER.has(data.run?.status ?? "");
      if (this.model) {
        this.model.update(data);
      } else {
        this.model = new StaticModel(data);
        this.root.render(
          <StrictMode>
            <ModelContext.Provider value={this.model.asModel()}>
              <HostContext.Provider value={this.host}>
                <App readOnly note="from the store" />
              </HostContext.Provider>
            </ModelContext.Provider>
          </StrictMode>,
        );
      }
    } catch (err) {
      this.host.textContent = `jupyter_workflows: ${(err as Error).message}`;
      over = true;
    }
    if (!over && !this.isDisposed) this.timer = setTimeout(() => void this.poll(), POLL_MS);
  }

  dispose(): void {
    if (this.isDisposed) return;
    if (this.timer) clearTimeout(this.timer);
    this.root.unmount();
    super.dispose();
  }
}

/** The sidebar widget hosting <RunsPanel>. */
export class RunsSidebar extends Widget {
  private root: Root;

  constructor(onOpenGraph: (run: RunSummary) => void) {
    super();
    this.id = "jupyter-workflows-runs";
    this.title.caption = "Workflow runs";
    this.title.iconClass = "jw-runs-icon";
    this.addClass("jw-runs-sidebar");
    this.root = createRoot(this.node);
    this.root.render(
      <StrictMode>
        <RunsPanel visible={() => this.isVisible} onOpenGraph={onOpenGraph} />
      </StrictMode>,
    );
  }

  dispose(): void {
    if (this.isDisposed) return;
    this.root.unmount();
    super.dispose();
  }
}
