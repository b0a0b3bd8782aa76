/**
 * Helpers every payload parser shares: the error naming the bad fields, zod issues turned into
 * paths, zod parsing into that error, the plain-object check, the text field readers and the
 * JID/timestamp field schemas.
 */
import { z } from "zod";
import { cleanText } from "../sanitize.ts";

/** Raised by a parser for a payload of its format that is not valid; `issues` name the paths. */
export class PayloadFormatError extends Error {
  readonly issues: { path: string; message: string }[];
  constructor(issues: { path: string; message: string }[]) {
    super(issues.map((i) => `${i.path}: ${i.message}`).join("; "));
    this.name = "PayloadFormatError";
    this.issues = issues;
  }
}

/** Turns zod issues into {@link PayloadFormatError} issues with a path prefix. */
export function zodIssues(
  issues: readonly { path: readonly PropertyKey[]; message: string }[],
): { path: string; message: string }[] {
  return issues.map((i) => ({
    path: i.path.map(String).join(".") || "(root)",
    message: i.message,
  }));
}

/** Whether a value is a plain JSON object. */
export function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** Parses with a schema, turning zod issues into {@link PayloadFormatError}. */
export function parseWith<T>(schema: z.ZodType<T>, json: unknown): T {
  const parsed = schema.safeParse(json);
  if (!parsed.success) throw new PayloadFormatError(zodIssues(parsed.error.issues));
  return parsed.data;
}

/**
 * Text of a field, cleaned for storage (the shared sanitiser), or undefined when it is not a
 * non-empty string (or a number).
 */
export function text(value: unknown, max = 65_536): string | undefined {
  if (typeof value === "number" && Number.isFinite(value)) return String(value);
  if (typeof value !== "string") return undefined;
  const clean = cleanText(value, max);
  return clean.trim() === "" ? undefined : clean;
}

/** Text of a required field; throws naming it. */
export function required(value: unknown, name: string, max = 1024): string {
  const result = text(value, max);
  if (result === undefined) throw new Error(`${name} is required`);
  return result;
}

/** A JID or phone as a gateway sends it (normalised later). */
export const jidField = z.string().trim().min(1).max(128);

/** A source timestamp: epoch seconds/milliseconds as a number or text, or ISO-8601 text. */
export const timestampField = z.union([z.number().positive(), z.string().trim().min(1).max(64)]);
