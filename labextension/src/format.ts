/** Small pure formatting helpers (no React). */
import { STATUS_COLORS } from "./types";
import type { TaskState, TaskStatus } from "./types";

export function statusColor(status: TaskState | null | undefined): string {
  return (status && STATUS_COLORS[status]) || STATUS_COLORS.none;
}

export function statusText(status: TaskState | null | undefined): string {
  return status ?? "not started";
}

/** `k/n` and a 0..1 fraction when the task reports item progress, else null. */
export function progressOf(
  st: Partial<TaskStatus> | undefined,
): { text: string; fraction: number } | null {
  if (!st || st.done == null || st.total == null) return null;
  const fraction = st.total > 0 ? Math.min(1, Math.max(0, st.done / st.total)) : 1;
  return { text: `${st.done}/${st.total}`, fraction };
}

export function formatTime(epochSeconds: number | null | undefined): string {
  if (epochSeconds == null) return "—";
  const d = new Date(epochSeconds * 1000);
  return `${d.toLocaleDateString()} ${d.toLocaleTimeString()}`;
}

export function formatDuration(seconds: number | null): string {
  if (seconds == null || !Number.isFinite(seconds)) return "—";
  if (seconds < 1) return `${Math.round(seconds * 1000)} ms`;
  if (seconds < 60) return `${seconds.toFixed(1)} s`;
  const m = Math.floor(seconds / 60);
  const s = Math.round(seconds % 60);
  if (m < 60) return `${m} min ${s} s`;
  return `${Math.floor(m / 60)} h ${m % 60} min`;
}

export function prettyJson(value: unknown): string {
  try {
    return JSON.stringify(value, null, 2) ?? String(value);
  } catch {
    return String(value);
  }
}
