/**
 * One event repository for every webhook: a domain describes its apply SQL function once (an
 * {@link ApplyFunction}: name, argument building, row mapper) and gets both database paths, a
 * direct postgres.js connection (one round trip per call) or the Data API (supabase-js `rpc`).
 */
import type { DatabaseConfig } from "../config.ts";
import type { AppliedEvent, EventRepository } from "../exactly_once.ts";
import type { ApplyRow } from "./apply_rows.ts";
import { PostgresEventRepository } from "./postgres_event_repository.ts";
import type { SqlValue } from "./sql_literal.ts";
import { SupabaseRpcEventRepository } from "./supabase_rpc_event_repository.ts";

/**
 * A domain's apply SQL function, `public.<name>(events jsonb, <extra arguments>)`, returning one
 * `(idx, outcome, …)` row per event.
 */
export interface ApplyFunction<E, Row extends ApplyRow = ApplyRow> {
  /** The SQL function's name (schema `public`). */
  readonly name: string;
  /** The function name shown in `pg_stat_activity` for the postgres.js pool. */
  readonly applicationName: string;
  /** The result columns the mapper reads. */
  readonly columns: readonly string[];
  /** The arguments after `events`, by name, in the SQL function's order. */
  readonly extraArgs: Readonly<Record<string, SqlValue>>;
  /** The JSON rows of the `events` argument, one per event. */
  rows(events: readonly E[]): unknown[];
  /** One result row as the lifecycle's {@link AppliedEvent}. */
  applied(row: Row): AppliedEvent;
}

/** Builds the repository the database configuration asks for. */
export function createEventRepository<E, Row extends ApplyRow>(
  database: DatabaseConfig,
  fn: ApplyFunction<E, Row>,
): EventRepository<E> {
  return database.kind === "postgres"
    ? new PostgresEventRepository(fn, database)
    : new SupabaseRpcEventRepository(fn, database);
}
