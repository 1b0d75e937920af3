/**
 * The MIME renderer of `GRAPH_MIME`: a graph output drawn from its saved data.
 *
 * Every graph output carries, beside the widget view, the graph and its last known task
 * states. This renderer ranks before the widget renderer, so an output always shows
 * something: the saved graph, read-only, straight away. When the output also names a widget
 * model (a live kernel), the notebook's own widget renderer is asked for the live view in
 * a hidden child; only when that produced a view is the live widget shown instead of the
 * picture. A model that is not there ("model not found": a reopened notebook) leaves the
 * picture alone, and a live view that goes away (kernel restart) brings the picture back.
 */
import { MimeModel } from "@jupyterlab/rendermime";
import type { IRenderMimeRegistry } from "@jupyterlab/rendermime";
import type { IRenderMime } from "@jupyterlab/rendermime-interfaces";
import { Panel, Widget } from "@lumino/widgets";
import { StrictMode } from "react";
import { createRoot } from "react-dom/client";
import type { Root } from "react-dom/client";
import { App } from "./App";
import { HostContext, ModelContext } from "./model";
import { StaticModel } from "./staticModel";
import { GRAPH_MIME } from "./types";
import type { GraphMimeData } from "./types";

export const WIDGET_MIME = "application/vnd.jupyter.widget-view+json";

/** Before ipywidgets' renderer (-10) and every built-in one. */
export const GRAPH_RANK = -20;

function isGraphData(value: unknown): value is GraphMimeData {
  if (!value || typeof value !== "object") return false;
  const graph = (value as GraphMimeData).graph;
  return Boolean(graph && Array.isArray(graph.nodes));
}

export class GraphOutput extends Panel implements IRenderMime.IRenderer {
  private readonly rendermime: IRenderMimeRegistry | null;
  private readonly sanitizer: IRenderMime.ISanitizer;
  private readonly picture: Widget;
  private readonly details: Widget;
  private readonly graphHost: HTMLDivElement;
  private staticModel: StaticModel | null = null;
  private root: Root | null = null;
  private live: IRenderMime.IRenderer | null = null;
  private liveId: string | null = null;
  private observer: MutationObserver | null = null;

  constructor(options: IRenderMime.IRendererOptions, rendermime: IRenderMimeRegistry | null) {
    super();
    this.rendermime = rendermime;
    this.sanitizer = options.sanitizer;
    this.addClass("jw-output");
    this.picture = new Widget();
    this.picture.addClass("jw-output-static");
    this.picture.node.dataset.testid = "jw-static";
    this.graphHost = document.createElement("div");
    this.graphHost.className = "jw-host";
    this.picture.node.appendChild(this.graphHost);
    this.details = new Widget();
    this.details.addClass("jw-output-details");
    this.picture.node.appendChild(this.details.node);
    this.addWidget(this.picture);
  }

  async renderModel(model: IRenderMime.IMimeModel): Promise<void> {
    const data = model.data[GRAPH_MIME];
    if (!isGraphData(data)) {
      this.graphHost.textContent = "jupyter_workflows: this output has no graph data";
      return;
    }
    this.renderPicture(data);
    this.renderDetails(model);
    const view = model.data[WIDGET_MIME] as { model_id?: string } | undefined;
    const modelId = view && typeof view.model_id === "string" ? view.model_id : "";
    if (modelId && model.trusted && this.rendermime && modelId !== this.liveId) {
      this.tryLive(model, modelId);
    }
  }

  private renderPicture(data: GraphMimeData): void {
    if (this.staticModel) {
      this.staticModel.update(data);
      return;
    }
    this.staticModel = new StaticModel(data);
    this.mountPicture();
  }

  /** Draw the saved graph (again, after a live view went away). */
  private mountPicture(): void {
    if (this.root || !this.staticModel) return;
    this.root = createRoot(this.graphHost);
    this.root.render(
      <StrictMode>
        <ModelContext.Provider value={this.staticModel.asModel()}>
          <HostContext.Provider value={this.graphHost}>
            <App readOnly />
          </HostContext.Provider>
        </ModelContext.Provider>
      </StrictMode>,
    );
  }

  /** The rest of the bundle's HTML (a run's task table, a workflow's parameters), sanitized. */
  private renderDetails(model: IRenderMime.IMimeModel): void {
    const html = model.data["text/html"];
    const node = this.details.node;
    node.textContent = "";
    if (typeof html !== "string" || !html) return;
    const holder = document.createElement("div");
    holder.innerHTML = this.sanitizer.sanitize(html);
    holder.querySelectorAll(".jupyter-workflows-graph").forEach((el) => el.remove());
    if (holder.textContent?.trim()) node.appendChild(holder);
  }

  private tryLive(model: IRenderMime.IMimeModel, modelId: string): void {
    this.dropLive();
    let renderer: IRenderMime.IRenderer;
    try {
      renderer = this.rendermime!.createRenderer(WIDGET_MIME);
    } catch {
      return; // no widget manager in this front end: the picture stays
    }
    this.live = renderer;
    this.liveId = modelId;
    renderer.addClass("jw-output-live");
    renderer.addClass("jw-output-live-pending");
    this.addWidget(renderer);
    const check = () => {
      // A widget view is an element; "model not found" is text only; not restored yet is empty.
      const hasView = renderer.node.firstElementChild !== null;
      renderer.toggleClass("jw-output-live-pending", !hasView);
      this.picture.setHidden(hasView);
      // One graph in the page at a time: the hidden picture is unmounted, not just hidden
      // (two copies of every node would confuse find-in-page, screen readers and tests).
      if (hasView) this.unmountPicture();
      else this.mountPicture();
      this.node.dataset.live = hasView ? "true" : "false";
    };
    this.observer = new MutationObserver(check);
    this.observer.observe(renderer.node, { childList: true });
    const liveModel = new MimeModel({
      data: { [WIDGET_MIME]: model.data[WIDGET_MIME] },
      metadata: model.metadata,
      trusted: model.trusted,
    });
    void Promise.resolve(renderer.renderModel(liveModel))
      .catch(() => undefined)
      .then(check);
  }

  private unmountPicture(): void {
    this.root?.unmount();
    this.root = null;
  }

  private dropLive(): void {
    this.observer?.disconnect();
    this.observer = null;
    if (this.live) {
      this.live.dispose();
      this.live = null;
    }
    this.liveId = null;
    this.picture.setHidden(false);
    this.mountPicture();
  }

  dispose(): void {
    if (this.isDisposed) return;
    this.staticModel = null; // nothing to draw again
    this.dropLive();
    this.unmountPicture();
    super.dispose();
  }
}

/** A renderer factory; `rendermime` is the notebook's registry (with its widget manager), if any. */
export function graphRendererFactory(
  rendermime: IRenderMimeRegistry | null,
): IRenderMime.IRendererFactory {
  return {
    safe: true,
    mimeTypes: [GRAPH_MIME],
    defaultRank: GRAPH_RANK,
    createRenderer: (options) => new GraphOutput(options, rendermime),
  };
}
