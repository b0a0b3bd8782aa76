/**
 * One database round trip per call, through a transaction-mode pooler.
 *
 * postgres.js without prepared statements sends a statement with parameters in two round trips
 * (Parse/Describe/Flush, then Bind/Execute/Sync once the parameter types are known). Here the
 * values are written into the text as literals ({@link sqlLiteral}) and the statement goes over
 * the simple query protocol: one Query message, one answer. The statement timeout travels in the
 * same message (`set local`, so it ends with the call's implicit transaction and no session
 * state is left on the pooled connection).
 */
import type postgres from "postgres";
import { sqlLiteral, type SqlValue } from "./sql_literal.ts";

/** A tagged template running its statement in one round trip; values become literals. */
export type OneTripSql = <Row = Record<string, unknown>>(
  strings: TemplateStringsArray,
  ...values: SqlValue[]
) => Promise<Row[]>;

/** The simple-protocol text of a call: the timeout, then the statement with its literals. */
export function oneTripText(
  strings: readonly string[],
  values: readonly SqlValue[],
  timeoutMs: number,
): string {
  let text = strings[0];
  values.forEach((value, i) => (text += sqlLiteral(value) + strings[i + 1]));
  if (!(timeoutMs > 0)) return text;
  return `set local statement_timeout = ${Math.ceil(timeoutMs)}; ${text}`;
}

/** Binds a pool and a server-side statement timeout (milliseconds; 0 for none). */
export function oneTrip(sql: postgres.Sql, timeoutMs: number): OneTripSql {
  return async <Row>(strings: TemplateStringsArray, ...values: SqlValue[]) => {
    // No arguments: postgres.js sends `unsafe` text as one simple Query.
    const out = await sql.unsafe(oneTripText(strings, values, timeoutMs));
    // Several statements with rows answer one result each; the call's rows are the last ones.
    const rows = Array.isArray(out[0]) ? out[out.length - 1] : out;
    return rows as unknown as Row[];
  };
}
