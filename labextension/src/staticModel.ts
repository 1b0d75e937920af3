/**
 * A stand-in for the anywidget model, holding the `GRAPH_MIME` data of an output: the
 * same <App> draws a saved graph read-only (no kernel, nothing sent anywhere).
 */
import type { AnyModel } from "@anywidget/types";
import type { GraphMimeData, WidgetModel } from "./types";

type Listener = (...args: unknown[]) => void;

export class StaticModel {
  private state: WidgetModel;
  private listeners = new Map<string, Set<Listener>>();

  /** Where `send` goes: the Workflow Editor answers edits itself (see editor.tsx). */
  onSend: ((msg: unknown) => void) | null = null;

  constructor(data: GraphMimeData, editable: Partial<WidgetModel> = {}) {
    this.state = {
      graph: data.graph,
      spec: {},
      status: data.status ?? {},
      run: data.run ?? { run_id: null, status: null, error: null },
      inquiries: [],
      dashboard_link: "",
      selected: "",
      editable: false,
      edit_target: "",
      edit_path: "",
      yaml: "",
      task_yaml: {},
      ...editable,
    };
  }

  /** New data for the same output (the kernel refreshed it): the selection stays. */
  update(data: GraphMimeData): void {
    this.set("graph", data.graph);
    this.set("status", data.status ?? {});
    this.set("run", data.run ?? { run_id: null, status: null, error: null });
  }

  get<K extends keyof WidgetModel>(key: K): WidgetModel[K] {
    return this.state[key];
  }

  set<K extends keyof WidgetModel>(key: K, value: WidgetModel[K]): void {
    if (this.state[key] === value) return;
    this.state = { ...this.state, [key]: value };
    for (const fn of this.listeners.get(`change:${String(key)}`) ?? []) fn();
  }

  on(event: string, fn: Listener): void {
    let set = this.listeners.get(event);
    if (!set) this.listeners.set(event, (set = new Set()));
    set.add(fn);
  }

  off(event?: string | null, fn?: Listener | null): void {
    if (!event) {
      this.listeners.clear();
      return;
    }
    if (!fn) this.listeners.delete(event);
    else this.listeners.get(event)?.delete(fn);
  }

  save_changes(): void {}

  send(msg?: unknown): void {
    this.onSend?.(msg);
  }

  /** A message "from the kernel" (`msg:custom`), as the live widget gets them. */
  emit(msg: unknown): void {
    for (const fn of this.listeners.get("msg:custom") ?? []) fn(msg);
  }

  asModel(): AnyModel<WidgetModel> {
    return this as unknown as AnyModel<WidgetModel>;
  }
}
