/**
 * Layered top-to-bottom layout with elkjs.
 *
 * Only the graph's shape is laid out; statuses change often and never move a
 * node. A node whose `group` names another node is drawn inside it (a
 * parallel task holds its sub-tasks), so ELK lays out the hierarchy in one
 * pass (`INCLUDE_CHILDREN`) and hands back positions relative to the parent,
 * which is what React Flow expects for `parentId`.
 *
 * Edges are routed by ELK too (orthogonal, labels given room), in absolute
 * coordinates (`elk.json.edgeCoords: ROOT`), the space React Flow draws edges
 * in. Loops come back up around the boxes instead of cutting through them.
 */
// elkjs is 1.6 MB: imported on the first layout, not with the extension (a lazy chunk in
// JupyterLab; inlined in the anywidget fallback bundle, which cannot load chunks).
import type ELKType from "elkjs/lib/elk.bundled.js";
import type { ElkExtendedEdge, ElkNode } from "elkjs/lib/elk.bundled.js";
import type { Graph, GraphNode } from "./types";

export const NODE_WIDTH = 200;
export const NODE_HEIGHT = 66;
/** The widest a box grows for its name; a longer name is cut with "…" (the tooltip has it all). */
export const MAX_NODE_WIDTH = 420;

let measureContext: CanvasRenderingContext2D | null | undefined;

/** The width of `text` in pixels as the page draws it; estimated where there is no page. */
export function textWidth(text: string, size: number, weight: number, perChar: number): number {
  if (measureContext === undefined) {
    try {
      measureContext = typeof document !== "undefined" ? document.createElement("canvas").getContext("2d") : null;
    } catch {
      measureContext = null;
    }
  }
  if (!measureContext) return Math.ceil(text.length * perChar);
  const family =
    (typeof document !== "undefined" && document.body
      ? getComputedStyle(document.body).getPropertyValue("--jp-ui-font-family").trim()
      : "") || 'system-ui, -apple-system, "Segoe UI", Roboto, sans-serif';
  measureContext.font = `${weight} ${size}px ${family}`;
  return Math.ceil(measureContext.measureText(text).width);
}

/** A box wide enough for the task's full name (12.5px semi-bold) beside its status badge. */
export function nodeWidth(node: GraphNode): number {
  // padding + border (23) + gap (6) + the widest badge ("succeeded", "cancelled": ~78) + slack
  const label = textWidth(node.label, 12.5, 600, 8.6) + 120;
  const action = textWidth(node.action ?? "", 11, 400, 6.8) + 90;
  return Math.min(MAX_NODE_WIDTH, Math.max(NODE_WIDTH, label, action));
}

export interface PlacedNode {
  node: GraphNode;
  x: number;
  y: number;
  width: number;
  height: number;
  /** Id of the containing node, if drawn inside one. */
  parent: string | null;
  /** True when other nodes are drawn inside this one. */
  container: boolean;
}

export interface Point {
  x: number;
  y: number;
}

export interface EdgeRoute {
  /** Start, bends, end; absolute. */
  points: Point[];
  /** Centre of the label, when the edge has one. */
  label: Point | null;
}

export interface Layout {
  /** Parents come before their children, as React Flow requires. */
  nodes: PlacedNode[];
  /** By index into `graph.edges`; an edge ELK could not route is absent. */
  routes: Map<number, EdgeRoute>;
  width: number;
  height: number;
}

/** Width of an edge label at 11px, estimated: ELK needs a size to leave room. */
export function labelSize(text: string): { width: number; height: number } {
  return { width: Math.ceil(text.length * 6.4) + 10, height: 16 };
}

const ROOT_OPTIONS: Record<string, string> = {
  "elk.algorithm": "layered",
  "elk.direction": "DOWN",
  "elk.hierarchyHandling": "INCLUDE_CHILDREN",
  "elk.layered.spacing.nodeNodeBetweenLayers": "56",
  "elk.spacing.nodeNode": "32",
  "elk.spacing.edgeNode": "24",
  // Loops (a task transitioning back to an earlier one) are common; breaking
  // cycles depth-first keeps the start task on top and loops pointing up.
  "elk.layered.cycleBreaking.strategy": "DEPTH_FIRST",
  "elk.layered.nodePlacement.strategy": "BRANDES_KOEPF",
  "elk.padding": "[top=16,left=16,bottom=16,right=16]",
  "elk.json.edgeCoords": "ROOT",
  "elk.edgeLabels.placement": "CENTER",
  "elk.layered.edgeLabels.sideSelection": "ALWAYS_RIGHT",
};

/**
 * Above this many tasks ELK's defaults take seconds (a 200-task graph: 1.5 s warm): fewer
 * crossing-minimisation passes, the linear-time node placement, and no hierarchy pass when
 * no task is drawn inside another. A big graph is read by panning anyway.
 */
export const BIG_GRAPH = 60;
export const BIG_OPTIONS: Record<string, string> = {
  "elk.layered.thoroughness": "1",
  "elk.layered.nodePlacement.strategy": "LINEAR_SEGMENTS",
  "elk.layered.crossingMinimization.greedySwitch.type": "OFF",
  "elk.layered.compaction.postCompaction.strategy": "NONE",
  // Orthogonal routing is most of the rest; straight segments are 2-3x faster.
  "elk.edgeRouting": "POLYLINE",
};

const CONTAINER_OPTIONS: Record<string, string> = {
  "elk.padding": "[top=52,left=16,bottom=16,right=16]",
};

type Elk = InstanceType<typeof ELKType>;
type ElkMode = "worker" | "main-thread";

let elk: Promise<Elk> | null = null;
let workerFailed = false;

/** Where the layouts run; `globalThis.__jupyterWorkflowsElk` tells the browser tests too. */
export let elkMode: ElkMode | null = null;

function setMode(mode: ElkMode): void {
  elkMode = mode;
  (globalThis as Record<string, unknown>).__jupyterWorkflowsElk = mode;
}

/**
 * ELK runs in a Web Worker started from a Blob URL of elkjs's worker script, so a
 * 200-task layout does not block the page. Where no worker can be made (no `Worker`,
 * a content security policy without `blob:`, a worker that errors), the same script
 * runs on the main thread through elkjs's FakeWorker, as before.
 */
function loadElk(): Promise<Elk> {
  elk ??= Promise.all([import("elkjs/lib/elk-api.js"), import("./elk_worker_source")]).then(
    ([api, source]) => {
      const ELK = ((api as unknown as { default?: typeof ELKType }).default ?? api) as typeof ELKType;
      const text = source.ELK_WORKER_SOURCE;
      if (!workerFailed && typeof Worker !== "undefined" && typeof Blob !== "undefined") {
        try {
          const url = URL.createObjectURL(new Blob([text], { type: "text/javascript" }));
          const worker = new Worker(url);
          worker.addEventListener("error", () => {
            // A worker that cannot start (e.g. blocked by a CSP) reports here; the
            // pending layout is then retried on the main thread (see layoutGraph).
            workerFailed = true;
            for (const reject of pending) reject(new Error("ELK web worker failed"));
          });
          setMode("worker");
          return new ELK({ workerFactory: () => worker });
        } catch {
          workerFailed = true;
        }
      }
      const mod: { exports: { Worker?: new () => Worker } } = { exports: {} };
      // eslint-disable-next-line @typescript-eslint/no-implied-eval
      new Function("module", "exports", text)(mod, mod.exports);
      const FakeWorker = mod.exports.Worker!;
      setMode("main-thread");
      return new ELK({ workerFactory: () => new FakeWorker() });
    },
  );
  return elk;
}

/** The reject functions of the layouts in flight in the worker. */
const pending = new Set<(err: Error) => void>();

/** One ELK layout; a worker that fails mid-way makes it (and later ones) run on the main thread. */
async function runElk(root: ElkNode): Promise<ElkNode> {
  const instance = await loadElk();
  if (elkMode !== "worker") return instance.layout(root);
  let rejectThis: ((err: Error) => void) | null = null;
  try {
    return await new Promise<ElkNode>((resolve, reject) => {
      rejectThis = reject;
      pending.add(reject);
      instance.layout(root).then(resolve, reject);
    });
  } catch (err) {
    if (!workerFailed) throw err;
    console.warn("jupyter_workflows: ELK web worker failed, laying out on the main thread", err);
    if (elkMode === "worker") {
      instance.terminateWorker();
      elk = null;
    }
    return (await loadElk()).layout(root);
  } finally {
    if (rejectThis) pending.delete(rejectThis);
  }
}

/** The parent of each node; a `group` that is unknown or would nest a node in itself is ignored. */
export function parentsOf(graph: Graph): Map<string, string | null> {
  const ids = new Set(graph.nodes.map((n) => n.id));
  const raw = new Map(graph.nodes.map((n) => [n.id, n.group && ids.has(n.group) ? n.group : null]));
  const parents = new Map<string, string | null>();
  for (const node of graph.nodes) {
    const seen = new Set([node.id]);
    let up = raw.get(node.id) ?? null;
    while (up !== null && !seen.has(up)) {
      seen.add(up);
      up = raw.get(up) ?? null;
    }
    // Walking up ended at the top: keep the group. It ended on a node already
    // seen: the groups form a cycle, so draw this node at the top level.
    parents.set(node.id, up === null ? (raw.get(node.id) ?? null) : null);
  }
  return parents;
}

export async function layoutGraph(graph: Graph): Promise<Layout> {
  const parents = parentsOf(graph);
  const elkNodes = new Map<string, ElkNode>();
  for (const node of graph.nodes) {
    elkNodes.set(node.id, { id: node.id, width: nodeWidth(node), height: NODE_HEIGHT, children: [] });
  }
  const big = graph.nodes.length > BIG_GRAPH;
  const nested = graph.nodes.some((n) => n.group);
  const options = {
    ...ROOT_OPTIONS,
    ...(big ? BIG_OPTIONS : {}),
    ...(nested ? {} : { "elk.hierarchyHandling": "SEPARATE_CHILDREN" }),
  };
  const root: ElkNode = { id: "__root__", layoutOptions: options, children: [], edges: [] };
  for (const node of graph.nodes) {
    const parent = parents.get(node.id);
    const into = parent ? elkNodes.get(parent)! : root;
    into.children!.push(elkNodes.get(node.id)!);
  }
  for (const elkNode of elkNodes.values()) {
    if (elkNode.children!.length > 0) {
      // A container's size is ELK's to compute from its children.
      delete elkNode.width;
      delete elkNode.height;
      elkNode.layoutOptions = CONTAINER_OPTIONS;
    }
  }
  const edges: ElkExtendedEdge[] = [];
  graph.edges.forEach((edge, i) => {
    if (!elkNodes.has(edge.source) || !elkNodes.has(edge.target)) return;
    const labels = edge.label ? [{ id: `e${i}-label`, text: edge.label, ...labelSize(edge.label) }] : [];
    edges.push({ id: `e${i}`, sources: [edge.source], targets: [edge.target], labels });
  });
  root.edges = edges;

  try {
    const laid = await runElk(root);
    return {
      nodes: flatten(laid, null, graph),
      routes: routesOf(laid),
      width: laid.width ?? 0,
      height: laid.height ?? 0,
    };
  } catch (err) {
    console.warn("jupyter_workflows: ELK layout failed, using a grid", err);
    return gridLayout(graph);
  }
}

function flatten(elkNode: ElkNode, parent: string | null, graph: Graph): PlacedNode[] {
  const byId = new Map(graph.nodes.map((n) => [n.id, n]));
  const out: PlacedNode[] = [];
  const walk = (children: ElkNode[] | undefined, parentId: string | null) => {
    for (const child of children ?? []) {
      const node = byId.get(child.id);
      if (!node) continue;
      const container = (child.children?.length ?? 0) > 0;
      out.push({
        node,
        x: child.x ?? 0,
        y: child.y ?? 0,
        width: child.width ?? NODE_WIDTH,
        height: child.height ?? NODE_HEIGHT,
        parent: parentId,
        container,
      });
      if (container) walk(child.children, child.id);
    }
  };
  walk(elkNode.children, parent);
  return out;
}

/** Edge routes, wherever ELK put the edges (with INCLUDE_CHILDREN, some move into containers). */
function routesOf(laid: ElkNode): Map<number, EdgeRoute> {
  const routes = new Map<number, EdgeRoute>();
  const visit = (node: ElkNode) => {
    for (const edge of (node.edges ?? []) as ElkExtendedEdge[]) {
      const section = edge.sections?.[0];
      const index = Number(edge.id.slice(1));
      if (!section || !Number.isInteger(index)) continue;
      const label = edge.labels?.[0];
      routes.set(index, {
        points: [section.startPoint, ...(section.bendPoints ?? []), section.endPoint],
        label:
          label && label.x != null && label.y != null
            ? { x: label.x + (label.width ?? 0) / 2, y: label.y + (label.height ?? 0) / 2 }
            : null,
      });
    }
    for (const child of node.children ?? []) visit(child);
  };
  visit(laid);
  return routes;
}

/** Last resort when ELK fails: one row per 4 nodes, no nesting, React Flow's own edges. */
function gridLayout(graph: Graph): Layout {
  return {
    routes: new Map(),
    width: 4 * (NODE_WIDTH + 32),
    height: Math.ceil(graph.nodes.length / 4) * (NODE_HEIGHT + 56),
    nodes: graph.nodes.map((node, i) => ({
      node,
      x: (i % 4) * (NODE_WIDTH + 32),
      y: Math.floor(i / 4) * (NODE_HEIGHT + 56),
      width: NODE_WIDTH,
      height: NODE_HEIGHT,
      parent: null,
      container: false,
    })),
  };
}
