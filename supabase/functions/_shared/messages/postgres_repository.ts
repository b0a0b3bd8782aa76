/**
 * Message database tier over a direct connection (`SUPABASE_DB_URL`) with postgres.js.
 */
import type postgres from "postgres";
import { oneTrip, type OneTripSql } from "../core/db/one_trip.ts";
import { createPostgresPool, withinTimeout } from "../core/db/postgres_pool.ts";
import { jsonb } from "../core/db/sql_literal.ts";
import type { AppliedEvent } from "../core/exactly_once.ts";
import type { MessageEvent } from "./event.ts";
import {
  messageOutcomes,
  type MessageRepository,
  type MessageResultRow,
  toMessageRows,
} from "./repository.ts";

/** Applies events with one `apply_whatsapp_message_events` call (one round trip) per webhook. */
export class PostgresMessageRepository implements MessageRepository {
  readonly name = "postgres";
  readonly #sql: postgres.Sql;
  readonly #call: OneTripSql;
  readonly #timeoutMs: number;

  constructor(options: { url: string; poolMax: number; timeoutMs: number }) {
    this.#timeoutMs = options.timeoutMs;
    this.#sql = createPostgresPool({ ...options, applicationName: "whatsapp-message-webhook" });
    this.#call = oneTrip(this.#sql, options.timeoutMs);
  }

  async apply(events: readonly MessageEvent[]): Promise<AppliedEvent[]> {
    if (events.length === 0) return [];
    const rows = toMessageRows(events);
    const result = await withinTimeout(
      this.#call<MessageResultRow>`
        select idx, outcome, reference_ms
          from public.apply_whatsapp_message_events(${jsonb(rows)})`,
      this.#timeoutMs,
    );
    return messageOutcomes(result, events.length);
  }

  async close(): Promise<void> {
    await this.#sql.end({ timeout: 1 });
  }
}
