/**
 * Values written into SQL text as literals, for statements sent over the simple query protocol
 * (one round trip, nothing prepared). Strings become escape-string constants (`E'…'`), whose
 * meaning does not depend on `standard_conforming_strings`; postgres.js always connects with
 * `client_encoding` UTF8, where a quote or a backslash byte never hides inside another character.
 * Types are as postgres.js would send them as parameters: strings and numbers untyped (the server
 * infers them from where they stand), booleans, bytes, times and JSON typed.
 */

/** A JSON document, written as a `jsonb` literal. */
export class JsonbValue {
  constructor(readonly value: unknown) {}
}

/** Marks `value` to be sent as `jsonb`. */
export function jsonb(value: unknown): JsonbValue {
  return new JsonbValue(value);
}

/** What {@link sqlLiteral} accepts. */
export type SqlValue =
  | string
  | number
  | bigint
  | boolean
  | null
  | undefined
  | Date
  | Uint8Array
  | JsonbValue;

/** `text` as an untyped escape-string constant; throws on a NUL character (not valid in text). */
export function quoteString(text: string): string {
  if (text.includes("\0")) throw new TypeError("a SQL string cannot hold a NUL character");
  return `E'${text.replaceAll("\\", "\\\\").replaceAll("'", "''")}'`;
}

/** `value` as a SQL literal; throws TypeError for a value it has no safe literal for. */
export function sqlLiteral(value: SqlValue): string {
  if (value === null || value === undefined) return "null";
  if (typeof value === "string") return quoteString(value);
  if (typeof value === "number") {
    if (!Number.isFinite(value)) throw new TypeError(`not a finite number: ${value}`);
    return quoteString(String(value));
  }
  if (typeof value === "bigint") return `${quoteString(value.toString())}::int8`;
  if (typeof value === "boolean") return value ? "true" : "false";
  if (value instanceof Date) {
    if (Number.isNaN(value.getTime())) throw new TypeError("not a valid date");
    return `${quoteString(value.toISOString())}::timestamptz`;
  }
  if (value instanceof Uint8Array) {
    let hex = "";
    for (const byte of value) hex += byte.toString(16).padStart(2, "0");
    return `${quoteString(`\\x${hex}`)}::bytea`;
  }
  if (value instanceof JsonbValue) {
    const text = JSON.stringify(value.value);
    if (text === undefined) throw new TypeError("not a JSON value");
    return `${quoteString(text)}::jsonb`;
  }
  throw new TypeError(`no SQL literal for ${Object.prototype.toString.call(value)}`);
}
