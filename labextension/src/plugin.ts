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
import { INotebookTracker } from "@jupyterlab/notebook";
import { IRenderMimeRegistry } from "@jupyterlab/rendermime";
import { BUILD_ID } from "./build_id";
import widget from "./index";
import { GRAPH_RANK, graphRendererFactory } from "./output";
import { RunGraphWidget, RunsSidebar } from "./runs";
import type { RunSummary } from "./runs";

const plugin: JupyterFrontEndPlugin<void> = {
  id: "jupyter-workflows:plugin",
  description: "Graphs of jupyter_workflows: saved-output renderer and the live widget's front end.",
  autoStart: true,
  requires: [IRenderMimeRegistry],
  optional: [INotebookTracker],
  activate: (
    app: JupyterFrontEnd,
    rendermime: IRenderMimeRegistry,
    notebooks: INotebookTracker | null,
  ) => {
    (globalThis as Record<string, unknown>).__jupyter_workflows__ = { buildId: BUILD_ID, widget };
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
    try {
      app.shell.add(new RunsSidebar(openGraph), "left", { rank: 650 });
    } catch (err) {
      console.warn("jupyter_workflows: no left area for the runs panel", err);
    }
  },
};

export default plugin;
