/**
 * {@link IdempotencyStore} over PostgreSQL with postgres.js: one statement and one round trip per
 * call, each a SQL function of supabase/migrations/20261122000200_webhook_idempotency.sql.
 */
import type postgres from "postgres";
import { oneTrip, type OneTripSql } from "../db/one_trip.ts";
import { createPostgresPool, withinTimeout } from "../db/postgres_pool.ts";
import { jsonb } from "../db/sql_literal.ts";
import {
  type BeginInput,
  type BeginOutcome,
  type IdempotencyStore,
  IdempotencyStoreUnavailableError,
  type StoredResponse,
} from "./store.ts";

/** Options of {@link PostgresIdempotencyStore}. */
export interface PostgresIdempotencyStoreOptions {
  /** A `postgres://` connection string, or an existing client to share (not closed by us). */
  url?: string;
  sql?: postgres.Sql;
  poolMax?: number;
  /** Bound on connecting and on one call, in milliseconds. */
  timeoutMs: number;
}

interface BeginRow {
  outcome: "started" | "replay" | "mismatch" | "in_progress";
  token: string | null;
  response_status: number | null;
  response_content_type: string | null;
  response_body: Uint8Array | null;
  retry_after_ms: number | null;
  expires_at: Date | null;
}

/** Records keys in `public.webhook_idempotency`. */
export class PostgresIdempotencyStore implements IdempotencyStore {
  readonly name = "postgres";
  readonly #sql: postgres.Sql;
  readonly #call: OneTripSql;
  readonly #owned: boolean;
  readonly #timeoutMs: number;

  constructor(options: PostgresIdempotencyStoreOptions) {
    this.#timeoutMs = options.timeoutMs;
    this.#owned = !options.sql;
    this.#sql = options.sql ?? createPostgresPool({
      url: options.url!,
      poolMax: options.poolMax ?? 2,
      timeoutMs: options.timeoutMs,
      applicationName: "idempotency",
    });
    this.#call = oneTrip(this.#sql, options.timeoutMs);
  }

  async begin(input: BeginInput): Promise<BeginOutcome> {
    const [row] = await this.#bounded(this.#call<BeginRow>`
      select outcome, token, response_status, response_content_type, response_body, retry_after_ms,
        expires_at
      from public.begin_webhook_idempotency(${input.scope}, ${input.key}, ${input.webhookType},
        ${input.fingerprint}, ${input.leaseMs}, ${input.ttlSeconds}, ${input.sourceIp ?? null})`);
    switch (row?.outcome) {
      case "started":
        return { kind: "started", token: row.token! };
      case "replay":
        return {
          kind: "replay",
          response: {
            status: row.response_status!,
            contentType: row.response_content_type,
            body: new Uint8Array(row.response_body ?? new Uint8Array(0)),
          },
          expiresAt: row.expires_at?.getTime() ?? 0,
        };
      case "mismatch":
        return { kind: "mismatch" };
      case "in_progress":
        return { kind: "in_progress", retryAfterMs: row.retry_after_ms ?? 1000 };
      default:
        throw new IdempotencyStoreUnavailableError({ cause: new Error("no outcome returned") });
    }
  }

  async complete(
    scope: string,
    key: string,
    token: string,
    response: StoredResponse,
  ): Promise<boolean> {
    const [row] = await this.#bounded(this.#call<{ ok: boolean }>`
      select public.complete_webhook_idempotency(${scope}, ${key}, ${token}, ${response.status},
        ${response.contentType}, ${response.body}) as ok`);
    return row?.ok === true;
  }

  async release(scope: string, key: string, token: string): Promise<boolean> {
    const [row] = await this.#bounded(this.#call<{ ok: boolean }>`
      select public.release_webhook_idempotency(${scope}, ${key}, ${token}) as ok`);
    return row?.ok === true;
  }

  async countReplays(
    replays: readonly { scope: string; key: string; count: number }[],
  ): Promise<void> {
    if (replays.length === 0) return;
    await this.#bounded(this.#call`
      update public.webhook_idempotency as w set replay_count = w.replay_count + r.count
        from jsonb_to_recordset(${jsonb(replays)}) as r(scope text, key text, count integer)
       where w.scope = r.scope and w.key = r.key`);
  }

  async close(): Promise<void> {
    if (this.#owned) await this.#sql.end({ timeout: 1 });
  }

  async #bounded<T>(query: Promise<T>): Promise<T> {
    try {
      return await withinTimeout(query, this.#timeoutMs);
    } catch (error) {
      throw new IdempotencyStoreUnavailableError({ cause: error });
    }
  }
}
