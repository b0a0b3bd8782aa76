/**
 * Helpers every payload parser shares: the error naming the bad fields, zod issues turned into
 * paths, zod parsing into that error, and the plain-object check.
 */
import type { z } from "zod";

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
