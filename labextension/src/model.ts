/**
 * React bindings for the anywidget model: one hook per synced trait.
 */
import { createContext, useCallback, useContext, useEffect, useState } from "react";
import type { AnyModel } from "@anywidget/types";
import type { ServerMessage, WidgetModel } from "./types";

export type Model = AnyModel<WidgetModel>;

export const ModelContext = createContext<Model | null>(null);

export function useModel(): Model {
  const model = useContext(ModelContext);
  if (model === null) throw new Error("jupyter_workflows: no widget model in context");
  return model;
}

/** Current value of a trait, re-rendering on `change:<key>`; the setter syncs it back. */
export function useModelState<K extends keyof WidgetModel>(
  key: K,
): [WidgetModel[K], (value: WidgetModel[K]) => void] {
  const model = useModel();
  const [value, setValue] = useState<WidgetModel[K]>(() => model.get(key));
  useEffect(() => {
    const onChange = () => setValue(model.get(key));
    // The value may have changed between the first render and this effect.
    onChange();
    model.on(`change:${key}`, onChange);
    return () => model.off(`change:${key}`, onChange);
  }, [model, key]);
  const set = useCallback(
    (next: WidgetModel[K]) => {
      model.set(key, next);
      model.save_changes();
    },
    [model, key],
  );
  return [value, set];
}

/** Subscribe to custom messages from Python. */
export function useServerMessages(handler: (msg: ServerMessage) => void): void {
  const model = useModel();
  useEffect(() => {
    const onMsg = (msg: unknown) => {
      if (msg && typeof msg === "object" && "type" in msg) handler(msg as ServerMessage);
    };
    model.on("msg:custom", onMsg);
    return () => model.off("msg:custom", onMsg);
  }, [model, handler]);
}

/** The element the widget renders into: where the cell write-back starts looking. */
export const HostContext = createContext<HTMLElement | null>(null);
