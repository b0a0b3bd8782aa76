/**
 * The rows an apply SQL function returns — one `(idx, outcome, …)` row per event — put back in
 * the events' order, checking that every event got exactly one known outcome.
 */
import { DatabaseUnavailableError } from "../exactly_once.ts";

const OUTCOMES = new Set<string>(["applied", "unchanged", "stale"]);

/** One row of an apply function: the event's 0-based position and what was done. */
export interface ApplyRow {
  idx: number;
  outcome: string;
}

/**
 * Orders rows by `idx` and converts each; throws {@link DatabaseUnavailableError} for an unknown
 * outcome, an index out of range, or an event without a row.
 */
export function resultsInOrder<Row extends ApplyRow, R>(
  rows: readonly Row[],
  expected: number,
  convert: (row: Row) => R,
): R[] {
  const results = new Array<R | undefined>(expected);
  for (const row of rows) {
    if (!OUTCOMES.has(row.outcome) || !(row.idx >= 0 && row.idx < expected)) {
      // Rows can hold identities: name only the outcome in the error.
      throw new DatabaseUnavailableError({
        cause: new Error(`unexpected row from the apply function (outcome ${row.outcome})`),
      });
    }
    results[row.idx] = convert(row);
  }
  if (results.some((result) => result === undefined)) {
    throw new DatabaseUnavailableError({ cause: new Error("apply function skipped an event") });
  }
  return results as R[];
}
