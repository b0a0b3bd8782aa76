/**
 * Database tier over a direct connection (`SUPABASE_DB_URL`) with postgres.js.
 */
import type postgres from "postgres";
import { oneTrip, type OneTripSql } from "../core/db/one_trip.ts";
import { createPostgresPool, withinTimeout } from "../core/db/postgres_pool.ts";
import { jsonb } from "../core/db/sql_literal.ts";
import type { MembershipEvent } from "./event.ts";
import {
  type AppliedEvent,
  type ApplyResultRow,
  DEFAULT_COPY_WINDOW_MS,
  type MembershipRepository,
  outcomesFromRows,
  toApplyRows,
} from "./repository.ts";

/** Options of {@link PostgresMembershipRepository}. */
export interface PostgresRepositoryOptions {
  /** A `postgres://` connection string. */
  url: string;
  /** Connections in the pool. */
  poolMax: number;
  /** Bound on connecting and on one apply call, in milliseconds. */
  timeoutMs: number;
  /** Same-action events closer than this are copies (the SQL function's `copy_window_ms`). */
  copyWindowMs?: number;
}

/** Applies events with one `apply_whatsapp_membership_events` call (one round trip) per webhook. */
export class PostgresMembershipRepository implements MembershipRepository {
  readonly name = "postgres";
  readonly #sql: postgres.Sql;
  readonly #call: OneTripSql;
  readonly #timeoutMs: number;
  readonly #copyWindowMs: number;

  constructor(options: PostgresRepositoryOptions) {
    this.#timeoutMs = options.timeoutMs;
    this.#copyWindowMs = options.copyWindowMs ?? DEFAULT_COPY_WINDOW_MS;
    this.#sql = createPostgresPool({ ...options, applicationName: "whatsapp-membership-webhook" });
    this.#call = oneTrip(this.#sql, options.timeoutMs);
  }

  async apply(events: readonly MembershipEvent[]): Promise<AppliedEvent[]> {
    if (events.length === 0) return [];
    const rows = toApplyRows(events);
    const result = await withinTimeout(
      this.#call<ApplyResultRow>`
        select idx, outcome, phone, reference_ms from public.apply_whatsapp_membership_events(
          ${jsonb(rows)}, ${this.#copyWindowMs}
        )`,
      this.#timeoutMs,
    );
    return outcomesFromRows(result, events.length);
  }

  async close(): Promise<void> {
    await this.#sql.end({ timeout: 1 });
  }
}
