/**
 * Dask dashboard links that open from any browser.
 *
 * The embedded cluster's dashboard listens on the kernel machine's loopback
 * (`http://127.0.0.1:PORT/status`): a browser elsewhere (Binder, JupyterHub, a remote server)
 * cannot open that. When jupyter-server-proxy is enabled in the Jupyter server, the extension
 * learns its prefix from the REST API (`GET workflows/api/` -> `dashboard_proxy`, kept in
 * `globalThis.__jupyter_workflows__`) and links `{base_url}proxy/PORT/status` instead, behind
 * Jupyter's own auth. Without it, or for a dashboard on another host, the link is kept as is.
 *
 * When dask-labextension is installed too, a plain click on such a link opens the dashboard
 * inside JupyterLab instead (its default layout of dashboard panels, in the main area): the
 * extension puts `openDashboard` in the same global, and `openDashboardInLab` calls it. A
 * click with a modifier, or without the extension, keeps the link's own new-tab behaviour.
 * No imports: the anywidget fallback bundle (no extension, no proxy) uses this too.
 */
const KEY = "__jupyter_workflows__";
const LOOPBACK = new Set(["127.0.0.1", "localhost", "[::1]", "::1", "0.0.0.0"]);

export function dashboardProxy(): string | null {
  const state = (globalThis as Record<string, unknown>)[KEY] as { dashboardProxy?: unknown } | undefined;
  const base = state ? state.dashboardProxy : null;
  return typeof base === "string" && base ? base : null;
}

export function proxiedDashboard(link: string): string {
  const base = dashboardProxy();
  if (!link || !base) return link;
  let url: URL;
  try {
    url = new URL(link);
  } catch {
    return link;
  }
  if (!LOOPBACK.has(url.hostname) || !url.port) return link;
  const path = url.pathname && url.pathname !== "/" ? url.pathname : "/status";
  return `${base}${url.port}${path}${url.search}`;
}

type DashboardOpener = (link: string) => boolean;

/** The click handler of a "Dask dashboard" link: inside JupyterLab when it can be. */
export function openDashboardInLab(
  link: string,
  event: { preventDefault(): void; button?: number; ctrlKey?: boolean; metaKey?: boolean; shiftKey?: boolean; altKey?: boolean },
): void {
  if (event.button || event.ctrlKey || event.metaKey || event.shiftKey || event.altKey) return;
  const state = (globalThis as Record<string, unknown>)[KEY] as { openDashboard?: unknown } | undefined;
  const open = state ? state.openDashboard : null;
  if (typeof open !== "function") return;
  let opened = false;
  try {
    opened = (open as DashboardOpener)(link);
  } catch {
    opened = false;
  }
  if (opened) event.preventDefault();
}
