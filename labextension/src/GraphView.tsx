/**
 * The graph canvas: ELK positions (recomputed only when `graph` changes)
 * combined with live statuses (cheap, on every `status` change).
 */
import { useCallback, useEffect, useMemo, useRef, useState } from "react";
import { Controls, MarkerType, MiniMap, ReactFlow, useReactFlow, useStore } from "@xyflow/react";
import type { ColorMode, EdgeTypes, NodeTypes } from "@xyflow/react";
import { layoutGraph } from "./layout";
import type { Layout } from "./layout";
import { TaskEdge } from "./TaskEdge";
import type { TaskFlowEdge } from "./TaskEdge";
import { TaskNode } from "./TaskNode";
import type { TaskFlowNode } from "./TaskNode";
import { EDGE_STYLES, STATUS_COLORS } from "./types";
import type { Graph, Inquiry, TaskStatus } from "./types";
import type { SelectedEdge } from "./Editing";

const nodeTypes: NodeTypes = { task: TaskNode };
const edgeTypes: EdgeTypes = { task: TaskEdge };

export interface GraphViewProps {
  graph: Graph;
  status: Record<string, Partial<TaskStatus>>;
  inquiries: Inquiry[];
  selected: string;
  onSelect: (task: string) => void;
  colorMode: ColorMode;
  /** Edit mode: handles connect, edges can be selected for deletion. */
  editing?: boolean;
  selectedEdge?: SelectedEdge | null;
  onSelectEdge?: (edge: SelectedEdge | null) => void;
  onConnect?: (source: string, target: string) => void;
  /** Told the laid-out graph's size (at zoom 1), so the canvas can grow with it. */
  onLayoutSize?: (width: number, height: number) => void;
}

export function GraphView(props: GraphViewProps) {
  const { graph, status, inquiries, selected, onSelect, colorMode } = props;
  const editing = props.editing ?? false;
  const selectedEdge = props.selectedEdge ?? null;
  const [layout, setLayout] = useState<{ graph: Graph; layout: Layout; version: number } | null>(
    null,
  );

  useEffect(() => {
    let cancelled = false;
    const started = performance.now();
    layoutGraph(graph).then((laid) => {
      if (cancelled) return;
      const took = performance.now() - started;
      if (graph.nodes.length > 0) {
        (globalThis as Record<string, unknown>).__jw_last_layout_ms__ = took;
      }
      setLayout((old) => ({ graph, layout: laid, version: (old?.version ?? 0) + 1 }));
    });
    return () => {
      cancelled = true;
    };
  }, [graph]);

  // The layout version in which the user last panned or zoomed: framing
  // leaves that layout alone, and takes over again for the next one.
  const movedIn = useRef<number | null>(null);
  const version = layout?.version ?? 0;
  const userMoved = useCallback(() => movedIn.current === version, [version]);
  const markMoved = useCallback(() => {
    movedIn.current = version;
  }, [version]);

  const onLayoutSize = props.onLayoutSize;
  useEffect(() => {
    if (layout) onLayoutSize?.(layout.layout.width, layout.layout.height);
  }, [layout, onLayoutSize]);

  const waiting = useMemo(() => new Set(inquiries.map((q) => q.task)), [inquiries]);

  // Node objects are kept from one update to the next while what a box shows is unchanged:
  // a live run re-sends every task's status, and a new object per node made React Flow and
  // the memoized boxes redraw all 200 of a big graph for each change of one.
  const previous = useRef<{ version: number; byId: Map<string, [string, TaskFlowNode]> }>({
    version: -1,
    byId: new Map(),
  });
  const nodes: TaskFlowNode[] = useMemo(() => {
    if (!layout) return [];
    const cache = previous.current;
    const reuse =
      cache.version === layout.version ? cache.byId : new Map<string, [string, TaskFlowNode]>();
    const next = new Map<string, [string, TaskFlowNode]>();
    const built = layout.layout.nodes.map((placed) => {
      const id = placed.node.id;
      const st = status[id];
      const shown = JSON.stringify([
        st ? [st.status, st.done, st.total, st.attempts] : null,
        id === selected,
        waiting.has(id),
        editing,
      ]);
      const kept = reuse.get(id);
      if (kept && kept[0] === shown) {
        next.set(id, kept);
        return kept[1];
      }
      const node = buildNode(placed, st);
      next.set(id, [shown, node]);
      return node;
    });
    previous.current = { version: layout.version, byId: next };
    return built;

    function buildNode(placed: Layout["nodes"][number], st: (typeof status)[string]): TaskFlowNode {
      return {
        id: placed.node.id,
        type: "task",
        position: { x: placed.x, y: placed.y },
        ...(placed.parent ? { parentId: placed.parent, extent: "parent" as const } : {}),
        style: { width: placed.width, height: placed.height },
        width: placed.width,
        height: placed.height,
        draggable: false,
        connectable: editing,
        selectable: true,
        zIndex: placed.container ? 0 : 1,
        data: {
          node: placed.node,
          status: st,
          selected: placed.node.id === selected,
          container: placed.container,
          hasInquiry: waiting.has(placed.node.id),
          editing,
        },
      };
    }
  }, [layout, status, selected, waiting, editing]);

  const edges: TaskFlowEdge[] = useMemo(() => {
    if (!layout) return [];
    const ids = new Set(layout.graph.nodes.map((n) => n.id));
    const out: TaskFlowEdge[] = [];
    layout.graph.edges.forEach((e, i) => {
      if (!ids.has(e.source) || !ids.has(e.target)) return;
      const look = EDGE_STYLES[e.kind] ?? EDGE_STYLES.complete;
      const labelled = e.label != null && e.label !== "";
      const chosen =
        selectedEdge !== null &&
        selectedEdge.source === e.source &&
        selectedEdge.target === e.target &&
        selectedEdge.kind === e.kind;
      out.push({
        id: `e${i}`,
        source: e.source,
        target: e.target,
        type: "task",
        data: { kind: e.kind, route: layout.layout.routes.get(i) ?? null },
        className: `jw-edge jw-edge-${e.kind}${chosen ? " jw-edge-chosen" : ""}`,
        style: {
          stroke: look.color,
          strokeWidth: chosen ? 3.2 : 1.6,
          ...(look.dash ? { strokeDasharray: look.dash } : {}),
        },
        markerEnd: { type: MarkerType.ArrowClosed, color: look.color, width: 16, height: 16 },
        // Above container nodes, so edges into a parallel group stay visible.
        zIndex: 2,
        ...(labelled
          ? {
              label: e.label ?? "",
              labelStyle: { fill: look.color, fontSize: 11, fontWeight: 600 },
              labelShowBg: true,
              labelBgStyle: { fill: "var(--jw-bg)", fillOpacity: 0.9 },
              labelBgPadding: [4, 2] as [number, number],
              labelBgBorderRadius: 3,
            }
          : {}),
      });
    });
    return out;
  }, [layout, selectedEdge]);

  
  if (!layout) return <div className="jw-empty">Laying out {graph.nodes.length} tasks…</div>;
  if (graph.nodes.length === 0) return <div className="jw-empty">This workflow has no tasks.</div>;

  return (
    <ReactFlow<TaskFlowNode, TaskFlowEdge>
      // A new layout is a new picture: remount so that it is framed again.
      key={layout.version}
      nodes={nodes}
      edges={edges}
      nodeTypes={nodeTypes}
      edgeTypes={edgeTypes}
      colorMode={colorMode}
      minZoom={0.1}
      maxZoom={2}
      nodesDraggable={false}
      nodesConnectable={editing}
      onConnect={(connection) => {
        if (connection.source && connection.target) props.onConnect?.(connection.source, connection.target);
      }}
      onEdgeClick={(_, edge) => {
        if (!editing) return;
        const kind = (edge.data?.kind ?? "success") as SelectedEdge["kind"];
        props.onSelectEdge?.({ source: edge.source, target: edge.target, kind });
      }}
      edgesFocusable={false}
      elementsSelectable
      // Let the notebook scroll: the wheel must not zoom a widget in the middle of a page.
      // With Ctrl (or Cmd) held, it does.
      zoomOnScroll={false}
      zoomActivationKeyCode={ZOOM_KEYS}
      panOnScroll={false}
      preventScrolling={false}
      // Only moves the user starts carry an event; ours (framing) do not.
      onMoveStart={(event) => {
        if (event) markMoved();
      }}
      onNodeClick={(_, node) => onSelect(node.id)}
      onPaneClick={() => {
        onSelect("");
        props.onSelectEdge?.(null);
      }}
    >
      <Controls
        showInteractive={false}
        position="bottom-left"
        onZoomIn={markMoved}
        onZoomOut={markMoved}
        onFitView={markMoved}
      />
      {layout.layout.width > MINIMAP_ABOVE.width || layout.layout.height > MINIMAP_ABOVE.height ? (
        <MiniMap<TaskFlowNode>
          position="bottom-right"
          pannable
          zoomable
          ariaLabel="overview of the graph"
          className="jw-minimap"
          nodeColor={(n) => STATUS_COLORS[n.data.status?.status ?? "none"] ?? STATUS_COLORS.none}
          nodeStrokeWidth={0}
          onClick={markMoved}
        />
      ) : null}
      <div className="jw-zoom-hint">Ctrl + wheel to zoom, drag to move</div>
      <AutoFrame width={layout.layout.width} height={layout.layout.height} userMoved={userMoved} />
    </ReactFlow>
  );
}

const ZOOM_KEYS = ["Control", "Meta"];
/** A graph larger than this (at zoom 1) gets an overview map. */
const MINIMAP_ABOVE = { width: 900, height: 640 };

/** Below this zoom labels are hard to read: frame the top of a big graph instead of all of it. */
const READABLE_ZOOM = 0.75;
const FRAME_PADDING = 24;

/**
 * Frame the layout: the whole graph if it fits at a readable zoom, else its
 * top (where the run starts), centred. The "fit view" control still shows
 * everything. Framing is redone whenever the canvas changes size (the side
 * column opens, a widget rendered while hidden is shown) until the user pans
 * or zooms: from then on the view is theirs.
 */
interface AutoFrameProps {
  width: number;
  height: number;
  userMoved: () => boolean;
}

function AutoFrame({ width, height, userMoved }: AutoFrameProps) {
  const flow = useReactFlow();
  const domNode = useStore((s) => s.domNode);
  useEffect(() => {
    if (!domNode) return;
    const frame = () => {
      if (userMoved()) return;
      const cw = domNode.clientWidth;
      const ch = domNode.clientHeight;
      if (cw === 0 || ch === 0) return;
      const w = width + 2 * FRAME_PADDING;
      const h = height + 2 * FRAME_PADDING;
      const zoom = Math.max(READABLE_ZOOM, Math.min(cw / w, ch / h, 1.1));
      const x = (cw - width * zoom) / 2;
      const y = h * zoom <= ch ? (ch - height * zoom) / 2 : FRAME_PADDING * zoom;
      void flow.setViewport({ x, y, zoom });
    };
    frame();
    if (typeof ResizeObserver === "undefined") return;
    const observer = new ResizeObserver(frame);
    observer.observe(domNode);
    return () => observer.disconnect();
  }, [domNode, flow, width, height, userMoved]);
  return null;
}
