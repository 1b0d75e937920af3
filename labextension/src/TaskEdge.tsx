/**
 * Edges styled by transition kind, drawn along ELK's route.
 *
 * ELK routes every edge (loops back up around the boxes, self-loops beside
 * their node); the route is drawn as a polyline with rounded corners. Without
 * a route (ELK failed and the grid fallback is shown) React Flow's bezier
 * between the handles is used.
 */
import { memo } from "react";
import { BaseEdge, getBezierPath } from "@xyflow/react";
import type { Edge, EdgeProps } from "@xyflow/react";
import type { EdgeRoute, Point } from "./layout";
import type { EdgeKind } from "./types";

export type TaskEdgeData = { kind: EdgeKind; route: EdgeRoute | null };
export type TaskFlowEdge = Edge<TaskEdgeData, "task">;

const CORNER = 8;

function toward(from: Point, to: Point, length: number): Point {
  const dx = to.x - from.x;
  const dy = to.y - from.y;
  const d = Math.hypot(dx, dy) || 1;
  return { x: from.x + (dx / d) * length, y: from.y + (dy / d) * length };
}

export function roundedPath(points: Point[]): string {
  if (points.length === 0) return "";
  const parts = [`M ${points[0].x} ${points[0].y}`];
  for (let i = 1; i < points.length - 1; i++) {
    const [prev, cur, next] = [points[i - 1], points[i], points[i + 1]];
    const r = Math.min(
      CORNER,
      Math.hypot(cur.x - prev.x, cur.y - prev.y) / 2,
      Math.hypot(next.x - cur.x, next.y - cur.y) / 2,
    );
    const a = toward(cur, prev, r);
    const b = toward(cur, next, r);
    parts.push(`L ${a.x} ${a.y} Q ${cur.x} ${cur.y} ${b.x} ${b.y}`);
  }
  const last = points[points.length - 1];
  parts.push(`L ${last.x} ${last.y}`);
  return parts.join(" ");
}

/** Middle of the longest segment: where a label is easiest to read. */
function labelPoint(points: Point[]): Point {
  let best = { x: points[0].x, y: points[0].y };
  let bestLength = -1;
  for (let i = 1; i < points.length; i++) {
    const [a, b] = [points[i - 1], points[i]];
    const length = Math.hypot(b.x - a.x, b.y - a.y);
    if (length > bestLength) {
      bestLength = length;
      best = { x: (a.x + b.x) / 2, y: (a.y + b.y) / 2 };
    }
  }
  return best;
}

function TaskEdgeView(props: EdgeProps<TaskFlowEdge>) {
  const route = props.data?.route;
  let path: string;
  let label: Point;
  if (route && route.points.length >= 2) {
    path = roundedPath(route.points);
    label = route.label ?? labelPoint(route.points);
  } else {
    const [bezier, x, y] = getBezierPath({
      sourceX: props.sourceX,
      sourceY: props.sourceY,
      targetX: props.targetX,
      targetY: props.targetY,
      sourcePosition: props.sourcePosition,
      targetPosition: props.targetPosition,
    });
    path = bezier;
    label = { x, y };
  }
  return (
    <BaseEdge
      id={props.id}
      path={path}
      markerEnd={props.markerEnd}
      style={props.style}
      label={props.label}
      labelX={label.x}
      labelY={label.y}
      labelStyle={props.labelStyle}
      labelShowBg={props.labelShowBg}
      labelBgStyle={props.labelBgStyle}
      labelBgPadding={props.labelBgPadding}
      labelBgBorderRadius={props.labelBgBorderRadius}
      interactionWidth={12}
    />
  );
}

export const TaskEdge = memo(TaskEdgeView);
