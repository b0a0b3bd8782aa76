/**
 * An apply SQL function over a direct connection (`SUPABASE_DB_URL`) with postgres.js: one
 * `select … from public.<fn>(…)` per call, one round trip (see one_trip.ts).
 */
import type postgres from "postgres";
import type { AppliedEvent, EventRepository } from "../exactly_once.ts";
import { type ApplyRow, resultsInOrder } from "./apply_rows.ts";
import type { ApplyFunction } from "./event_repository.ts";
import { oneTrip, type OneTripSql } from "./one_trip.ts";
import { createPostgresPool, type PostgresPoolOptions, withinTimeout } from "./postgres_pool.ts";
import { jsonb, type SqlValue } from "./sql_literal.ts";

/** Options of {@link PostgresEventRepository}: the pool's, but for its application name. */
export type PostgresEventRepositoryOptions = Omit<PostgresPoolOptions, "applicationName">;

/** Applies events with one call of the domain's SQL function (one round trip) per webhook. */
export class PostgresEventRepository<E, Row extends ApplyRow> implements EventRepository<E> {
  readonly name = "postgres";
  readonly #fn: ApplyFunction<E, Row>;
  readonly #sql: postgres.Sql;
  readonly #call: OneTripSql;
  readonly #timeoutMs: number;
  /** The statement's text around its values, built once. */
  readonly #text: TemplateStringsArray;
  readonly #extra: SqlValue[];

  constructor(fn: ApplyFunction<E, Row>, options: PostgresEventRepositoryOptions) {
    this.#fn = fn;
    this.#timeoutMs = options.timeoutMs;
    this.#sql = createPostgresPool({ ...options, applicationName: fn.applicationName });
    this.#call = oneTrip(this.#sql, options.timeoutMs);
    this.#extra = Object.values(fn.extraArgs);
    const parts = [
      `select ${fn.columns.join(", ")} from public.${fn.name}(`,
      ...this.#extra.map(() => ", "),
      ")",
    ];
    this.#text = Object.assign(parts, { raw: parts });
  }

  /** Applies the events; throws `DatabaseUnavailableError` when the database could not. */
  async apply(events: readonly E[]): Promise<AppliedEvent[]> {
    if (events.length === 0) return [];
    const rows = await withinTimeout(
      this.#call<Row>(this.#text, jsonb(this.#fn.rows(events)), ...this.#extra),
      this.#timeoutMs,
    );
    return resultsInOrder(rows, events.length, this.#fn.applied);
  }

  /** Closes the pool. */
  async close(): Promise<void> {
    await this.#sql.end({ timeout: 1 });
  }
}
