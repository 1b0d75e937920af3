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
import { BUILD_ID } from "./build_id";
import widget from "./index";
import { EDITOR_FACTORY, WorkflowEditorFactory } from "./editor";
import { GRAPH_RANK, graphRendererFactory } from "./output";
import { RunGraphWidget, RunsSidebar, api } from "./runs";
import type { RunSummary } from "./runs";

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
