/**
 * A form generated from an inquiry's JSON Schema.
 *
 * Understood: an object whose properties are booleans (checkbox), strings
 * (text, or a select with `enum`), numbers and integers (number input).
 * Anything else, including a schema that is not an object, is a JSON
 * textarea. Python validates the answer against the full schema; this form
 * only makes the common cases pleasant.
 */
import { useId, useMemo, useState } from "react";
import type { FormEvent } from "react";
import type { Inquiry, JsonSchema } from "./types";

export type InquiryState =
  | { phase: "idle" }
  | { phase: "sending" }
  | { phase: "sent" }
  | { phase: "error"; error: string };

type FieldKind = "boolean" | "enum" | "string" | "number" | "integer" | "json";

interface Field {
  /** Property name, or null for a schema answered as a whole. */
  name: string | null;
  kind: FieldKind;
  schema: JsonSchema;
  required: boolean;
}

function typeOf(schema: JsonSchema): string | undefined {
  const t = schema.type;
  if (Array.isArray(t)) return t.find((x) => x !== "null");
  return t;
}

function kindOf(schema: JsonSchema): FieldKind {
  if (Array.isArray(schema.enum) && schema.enum.length > 0) return "enum";
  switch (typeOf(schema)) {
    case "boolean":
      return "boolean";
    case "string":
      return "string";
    case "number":
      return "number";
    case "integer":
      return "integer";
    default:
      return "json";
  }
}

export function fieldsOf(schema: JsonSchema): Field[] {
  const props = schema.properties;
  const isObject = typeOf(schema) === "object" || (typeOf(schema) === undefined && props);
  if (isObject && props && typeof props === "object" && Object.keys(props).length > 0) {
    const required = new Set(Array.isArray(schema.required) ? schema.required : []);
    return Object.entries(props).map(([name, sub]) => ({
      name,
      kind: kindOf(sub ?? {}),
      schema: sub ?? {},
      required: required.has(name),
    }));
  }
  return [{ name: null, kind: "json", schema, required: true }];
}

/** The form keeps every value as what its input holds: a boolean or a string. */
type Raw = boolean | string;

function initialValue(field: Field): Raw {
  const d = field.schema.default;
  switch (field.kind) {
    case "boolean":
      return typeof d === "boolean" ? d : false;
    case "enum": {
      const i = d === undefined ? -1 : (field.schema.enum ?? []).findIndex((v) => deepEqual(v, d));
      if (i >= 0) return String(i);
      return field.required ? "0" : "";
    }
    case "string":
      return typeof d === "string" ? d : "";
    case "number":
    case "integer":
      return typeof d === "number" ? String(d) : "";
    case "json":
      return d === undefined ? "" : JSON.stringify(d, null, 2);
  }
}

function deepEqual(a: unknown, b: unknown): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

/** Turn the raw inputs into the answer, or say what is wrong with them. */
export function collect(fields: Field[], raw: Raw[]): { data: unknown } | { error: string } {
  const out: Record<string, unknown> = {};
  for (let i = 0; i < fields.length; i++) {
    const field = fields[i];
    const value = raw[i];
    const label = field.name ?? "answer";
    let parsed: unknown;
    let present = true;
    switch (field.kind) {
      case "boolean":
        parsed = value === true;
        break;
      case "enum":
        if (value === "") present = false;
        else parsed = (field.schema.enum ?? [])[Number(value)];
        break;
      case "string":
        parsed = value;
        present = value !== "" || field.required;
        break;
      case "number":
      case "integer": {
        const text = String(value).trim();
        if (text === "") {
          present = false;
          break;
        }
        const n = Number(text);
        if (!Number.isFinite(n)) return { error: `${label}: not a number` };
        if (field.kind === "integer" && !Number.isInteger(n))
          return { error: `${label}: must be a whole number` };
        parsed = n;
        break;
      }
      case "json": {
        const text = String(value).trim();
        if (text === "") {
          present = false;
          break;
        }
        try {
          parsed = JSON.parse(text);
        } catch (err) {
          return { error: `${label}: invalid JSON (${(err as Error).message})` };
        }
        break;
      }
    }
    if (!present) {
      if (field.required && field.name !== null) return { error: `${label} is required` };
      if (field.name === null) return { error: "an answer is required" };
      continue;
    }
    if (field.name === null) return { data: parsed };
    out[field.name] = parsed;
  }
  return { data: out };
}

export interface InquiryFormProps {
  inquiry: Inquiry;
  state: InquiryState;
  onSubmit: (data: unknown) => void;
  onSelect: () => void;
}

export function InquiryForm({ inquiry, state, onSubmit, onSelect }: InquiryFormProps) {
  const fields = useMemo(() => fieldsOf(inquiry.schema ?? {}), [inquiry.schema]);
  const [raw, setRaw] = useState<Raw[]>(() => fields.map(initialValue));
  const [localError, setLocalError] = useState<string | null>(null);
  const task = inquiry.task;
  const values = raw.length === fields.length ? raw : fields.map(initialValue);

  const update = (i: number, value: Raw) => {
    setRaw(values.map((v, j) => (j === i ? value : v)));
    setLocalError(null);
  };

  const submit = (event: FormEvent) => {
    event.preventDefault();
    const result = collect(fields, values);
    if ("error" in result) {
      setLocalError(result.error);
      return;
    }
    setLocalError(null);
    onSubmit(result.data);
  };

  const error = localError ?? (state.phase === "error" ? state.error : null);

  return (
    <form
      className="jw-inquiry"
      data-testid={`jw-inquiry-${task}`}
      // Keep JupyterLab's notebook shortcuts (a, b, d d, ...) out of the inputs.
      data-lm-suppress-shortcuts="true"
      onSubmit={submit}
    >
      <div className="jw-inquiry-head">
        <span className="jw-inquiry-title">Answer needed:</span>{" "}
        <button type="button" className="jw-link" onClick={onSelect}>
          {task}
        </button>
      </div>
      <p className="jw-inquiry-prompt">{inquiry.prompt}</p>
      {fields.map((field, i) => (
        <FieldInput
          key={field.name ?? "__whole__"}
          field={field}
          value={values[i]}
          onChange={(v) => update(i, v)}
        />
      ))}
      <div className="jw-inquiry-actions">
        <button
          type="submit"
          className="jw-button"
          data-testid={`jw-inquiry-submit-${task}`}
          disabled={state.phase === "sending"}
        >
          {state.phase === "sending" ? "Sending…" : "Submit"}
        </button>
        {state.phase === "sent" && !localError ? <span className="jw-muted">Sent.</span> : null}
      </div>
      {error ? (
        <div className="jw-form-error" role="alert" data-testid={`jw-inquiry-error-${task}`}>
          {error}
        </div>
      ) : null}
    </form>
  );
}

interface FieldInputProps {
  field: Field;
  value: Raw;
  onChange: (value: Raw) => void;
}

function FieldInput({ field, value, onChange }: FieldInputProps) {
  // The same widget may be displayed twice on a page: ids must be unique per view.
  const id = useId();
  const title = field.schema.title ?? field.name ?? "Answer (JSON)";
  const label = (
    <label htmlFor={id} className="jw-field-label">
      {title}
      {field.required && field.name !== null ? <span className="jw-required"> *</span> : null}
    </label>
  );
  const help = field.schema.description ? (
    <div className="jw-field-help">{field.schema.description}</div>
  ) : null;
  const name = field.name ?? "answer";
  switch (field.kind) {
    case "boolean":
      return (
        <div className="jw-field jw-field-check">
          <input
            id={id}
            name={name}
            type="checkbox"
            checked={value === true}
            onChange={(e) => onChange(e.target.checked)}
          />
          {label}
          {help}
        </div>
      );
    case "enum":
      return (
        <div className="jw-field">
          {label}
          <select id={id} name={name} value={String(value)} onChange={(e) => onChange(e.target.value)}>
            {field.required ? null : <option value="">—</option>}
            {(field.schema.enum ?? []).map((option, i) => (
              <option key={i} value={String(i)}>
                {typeof option === "string" ? option : JSON.stringify(option)}
              </option>
            ))}
          </select>
          {help}
        </div>
      );
    case "string":
      return (
        <div className="jw-field">
          {label}
          <input id={id} name={name} type="text" value={String(value)} onChange={(e) => onChange(e.target.value)} />
          {help}
        </div>
      );
    case "number":
    case "integer":
      return (
        <div className="jw-field">
          {label}
          <input
            id={id}
            name={name}
            type="number"
            step={field.kind === "integer" ? 1 : "any"}
            value={String(value)}
            onChange={(e) => onChange(e.target.value)}
          />
          {help}
        </div>
      );
    case "json":
      return (
        <div className="jw-field">
          {label}
          <textarea
            id={id}
            name={name}
            className="jw-mono"
            rows={3}
            placeholder="JSON"
            value={String(value)}
            onChange={(e) => onChange(e.target.value)}
          />
          {help}
        </div>
      );
  }
}
