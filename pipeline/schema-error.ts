import type { ErrorObject } from 'ajv';

/** Keywords whose failure means a value is out of range (RangeError) rather than of the wrong kind (TypeError). */
const RANGE_KEYWORDS = new Set(['minimum', 'maximum', 'exclusiveMinimum', 'exclusiveMaximum', 'minItems', 'maxItems', 'minLength', 'maxLength', 'const', 'enum']);

/** The value at an ajv instance path ('/grid/cols') inside `json`. */
export function valueAtPath(json: unknown, instancePath: string): unknown {
  let value = json;
  for (const key of instancePath.split('/').slice(1)) value = (value as Record<string, unknown> | undefined)?.[key];
  return value;
}

/** A value as it appears in an error message: numbers as is, arrays by length, the rest as short JSON. */
export function shownValue(value: unknown): string {
  if (typeof value === 'number') return String(value);
  if (Array.isArray(value)) return `an array of ${value.length}`;
  const text = JSON.stringify(value) ?? String(value);
  return text.length > 60 ? `${text.slice(0, 57)}...` : text;
}

/**
 * Turns the first ajv error of a config or file into the error arhud throws:
 * `<source>: field '<dotted.path>' <what is wrong>, got <value>`; RangeError for a value out of range,
 * TypeError for a wrong kind, an unknown field or a missing one.
 */
export function schemaError(source: string, error: ErrorObject, json: unknown): TypeError | RangeError {
  let field = error.instancePath.split('/').slice(1).join('.');
  let what: string;
  if (error.keyword === 'additionalProperties') {
    const extra = (error.params as { additionalProperty: string }).additionalProperty;
    field = field ? `${field}.${extra}` : extra;
    what = 'is not a known field';
  } else if (error.keyword === 'required') {
    const missing = (error.params as { missingProperty: string }).missingProperty;
    field = field ? `${field}.${missing}` : missing;
    what = 'is required';
  } else {
    what = `${error.message ?? 'is invalid'}, got ${shownValue(valueAtPath(json, error.instancePath))}`;
  }
  const message = `${source}: field '${field || '(root)'}' ${what}`;
  return RANGE_KEYWORDS.has(error.keyword) ? new RangeError(message) : new TypeError(message);
}
