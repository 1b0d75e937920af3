/**
 * The JupyterLab 4 / Notebook 7 extension `jupyter-workflows`.
 *
 * - registers the `GRAPH_MIME` renderer (output.tsx), per notebook and console so that it
 *   can reach that document's widget manager for the live view;
 * - puts the graph widget's front end in the page once (`globalThis.__jupyter_workflows__`),
 *   where the widget's small anywidget stub (widget.py) finds it instead of receiving the
 *   whole bundle with every widget.
 */
import type { JupyterFrontEnd, JupyterFrontEndPlugin } from "@jupyterlab/application";
import { IEditorServices } from "@jupyterlab/codeeditor";
import { INotebookTracker } from "@jupyterlab/notebook";
import { IRenderMimeRegistry } from "@jupyterlab/rendermime";
import { Notification } from "@jupyterlab/apputils";
import { URLExt } from "@jupyterlab/coreutils";
import { ServerConnection } from "@jupyterlab/services";
import { BUILD_ID } from "./build_id";
import { proxiedDashboard } from "./dashboard";
import widget from "./index";
import { EDITOR_FACTORY, WorkflowEditorFactory } from "./editor";
import { GRAPH_RANK, graphRendererFactory } from "./output";
import { RunGraphWidget, RunsSidebar, api } from "./runs";
import type { RunSummary } from "./runs";

/** dask-labextension's commands: set its dashboard URL; open its default layout of panels. */
const DASK_POPULATE = "dask:populate-dashboard-url";
const DASK_LAYOUT = "dask:launch-layout";
const DASK_CHECK_MS = 20000;

/**
 * Point dask-labextension at `url` and open its default layout. Its own
 * `dask:populate-and-launch-layout` launches the layout before its asynchronous URL check has
 * listed the dashboard's plots (nothing opens on a first click), so this checks the dashboard
 * first, the way dask-labextension does (a dashboard it cannot reach is one notification, not
 * empty panels), then waits until its layout command is enabled.
 */
async function openInDaskLabextension(app: JupyterFrontEnd, url: string): Promise<void> {
  const reachable = await dashboardReachable(url).catch(() => false);
  await app.commands.execute(DASK_POPULATE, { url });
  if (!reachable) {
    Notification.warning(`The Dask dashboard at ${url} cannot be reached from the Jupyter server.`, {
      autoClose: 8000,
    });
    return;
  }
  const deadline = Date.now() + DASK_CHECK_MS;
  while (!app.commands.isEnabled(DASK_LAYOUT)) {
    if (Date.now() > deadline) {
      Notification.warning("dask-labextension did not accept the Dask dashboard in time.", { autoClose: 8000 });
      return;
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  await app.commands.execute(DASK_LAYOUT);
}

/** A dashboard under this Jupyter server (through jupyter-server-proxy) is asked directly, with
 * Jupyter's auth; another one through dask-labextension's server check, as it does itself. */
async function dashboardReachable(url: string): Promise<boolean> {
  const settings = ServerConnection.makeSettings();
  const local = url.startsWith(settings.baseUrl);
  const target = local
    ? URLExt.join(url, "individual-plots.json")
    : URLExt.join(settings.baseUrl, "dask", "dashboard-check", encodeURIComponent(url));
  const response = await ServerConnection.makeRequest(target, {}, settings);
  if (!response.ok) return false;
  if (local) return true;
  const info = (await response.json()) as { isActive?: boolean } | null;
  return !!(info && info.isActive);
}

/** The URL dask-labextension gets: a dashboard proxied by this server as an absolute URL under
 * the server's base URL (dask-labextension then checks it from the browser, with Jupyter's
 * auth), any other one as it is; without the `/status` page, as it expects. */
function daskLabextensionUrl(link: string): string {
  const proxied = proxiedDashboard(link);
  const url = proxied === link ? link : new URL(proxied, window.location.href).href;
  return url.replace(/\/status\/?$/, "");
}

const plugin: JupyterFrontEndPlugin<void> = {
  id: "jupyter-workflows:plugin",
  description: "Graphs of jupyter_workflows: saved-output renderer and the live widget's front end.",
  autoStart: true,
  requires: [IRenderMimeRegistry],
  optional: [INotebookTracker, IEditorServices],
  activate: (
    app: JupyterFrontEnd,
    rendermime: IRenderMimeRegistry,
    notebooks: INotebookTracker | null,
    editorServices: IEditorServices | null,
  ) => {
    const shared: Record<string, unknown> = { buildId: BUILD_ID, widget, dashboardProxy: null };
    (globalThis as Record<string, unknown>).__jupyter_workflows__ = shared;
    // Whether Dask dashboards on loopback can be linked through jupyter-server-proxy.
    void api<{ dashboard_proxy?: string | null }>("")
      .then((info) => {
        shared.dashboardProxy = info && info.dashboard_proxy ? info.dashboard_proxy : null;
      })
      .catch(() => undefined);
    // With dask-labextension installed, "Dask dashboard" links open its panels inside
    // JupyterLab (dashboard.ts `openDashboardInLab`). Its server checks the URL itself
    // (`dask/dashboard-check`), without the browser's cookie: a link through
    // jupyter-server-proxy carries the page's token for that check, as a user would type it
    // into its sidebar. Checked at click time: the other extension may activate after this one.
    shared.openDashboard = (link: string): boolean => {
      if (!link || !app.commands.hasCommand(DASK_POPULATE) || !app.commands.hasCommand(DASK_LAYOUT)) {
        return false;
      }
      void openInDaskLabextension(app, daskLabextensionUrl(link)).catch((error) => {
        console.warn("jupyter-workflows: dask-labextension could not open the dashboard", error);
      });
      return true;
    };
    // Everywhere (consoles, output views, other documents): the saved picture.
    rendermime.addFactory(graphRendererFactory(null), GRAPH_RANK);
    // In a notebook: the picture, replaced by the live widget while its model lives.
    const register = (registry: IRenderMimeRegistry) =>
      registry.addFactory(graphRendererFactory(registry), GRAPH_RANK);
    notebooks?.forEach((panel) => register(panel.content.rendermime));
    notebooks?.widgetAdded.connect((_sender, panel) => register(panel.content.rendermime));

    // The runs panel: runs of the server's store, live; a run's graph opens in a tab.
    const openGraph = (run: RunSummary) => {
      const id = `jw-run-graph-${run.run_id}`;
      for (const widget of app.shell.widgets("main")) {
        if (widget.id === id) {
          app.shell.activateById(id);
          return;
        }
      }
      const widget = new RunGraphWidget(run.run_id, `${run.workflow} ${run.run_id.slice(0, 8)}`);
      app.shell.add(widget, "main");
      app.shell.activateById(widget.id);
    };
    // Workflow files as text + graph: "Open With > Workflow Editor" on any YAML file, the
    // default for *.workflow.yaml.
    if (editorServices) {
      app.docRegistry.addFileType({
        name: "jupyter-workflow",
        displayName: "Workflow",
        extensions: [".workflow.yaml", ".workflow.yml"],
        mimeTypes: ["text/x-yaml"],
        contentType: "file",
        fileFormat: "text",
        iconClass: "jw-runs-icon",
      });
      const factory = new WorkflowEditorFactory(
        {
          name: EDITOR_FACTORY,
          label: EDITOR_FACTORY,
          fileTypes: ["yaml", "jupyter-workflow"],
          defaultFor: ["jupyter-workflow"],
        },
        editorServices,
      );
      app.docRegistry.addWidgetFactory(factory);
    }
    try {
      app.shell.add(new RunsSidebar(openGraph), "left", { rank: 650 });
    } catch (err) {
      console.warn("jupyter_workflows: no left area for the runs panel", err);
    }
  },
};

export default plugin;
