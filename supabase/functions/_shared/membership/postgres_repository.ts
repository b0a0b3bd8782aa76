/**
 * Database tier over a direct connection (`SUPABASE_DB_URL`) with postgres.js.
 */
import postgres from "postgres";
import type { MembershipEvent } from "./event.ts";
import {
  type AppliedEvent,
  type ApplyResultRow,
  DatabaseUnavailableError,
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

/** Applies events with one `select … from apply_whatsapp_membership_events($1)` per webhook. */
export class PostgresMembershipRepository implements MembershipRepository {
  readonly name = "postgres";
  readonly #sql: postgres.Sql;
  readonly #timeoutMs: number;
  readonly #copyWindowMs: number;

  constructor(options: PostgresRepositoryOptions) {
    this.#timeoutMs = options.timeoutMs;
    this.#copyWindowMs = options.copyWindowMs ?? DEFAULT_COPY_WINDOW_MS;
    this.#sql = postgres(options.url, {
      max: options.poolMax,
      // Prepared statements do not survive a transaction-mode pooler (Supavisor on port 6543).
      prepare: false,
      connect_timeout: Math.max(1, Math.ceil(options.timeoutMs / 1000)),
      idle_timeout: 30,
      max_lifetime: 30 * 60,
      onnotice: () => {},
      connection: {
        application_name: "whatsapp-membership-webhook",
        statement_timeout: options.timeoutMs,
      },
    });
  }

  async apply(events: readonly MembershipEvent[]): Promise<AppliedEvent[]> {
    if (events.length === 0) return [];
    const rows = toApplyRows(events);
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new Error(`apply took longer than ${this.#timeoutMs} ms`)),
        this.#timeoutMs,
      );
    });
    try {
      const query = this.#sql<ApplyResultRow[]>`
        select idx, outcome, phone, reference_ms from public.apply_whatsapp_membership_events(
          ${this.#sql.json(rows as unknown as postgres.JSONValue)}, ${this.#copyWindowMs}
        )`;
      const result = await Promise.race([query, timeout]);
      return outcomesFromRows(result, events.length);
    } catch (error) {
      if (error instanceof DatabaseUnavailableError) throw error;
      throw new DatabaseUnavailableError({ cause: error });
    } finally {
      clearTimeout(timer);
    }
  }

  async close(): Promise<void> {
    await this.#sql.end({ timeout: 1 });
  }
}
