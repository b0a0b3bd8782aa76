/**
 * `public.webhook_dead_letters` through its SQL functions: keeping letters (postgres.js, or the
 * Data API for deployments without `SUPABASE_DB_URL`), and claiming and finishing replays.
 */
import type postgres from "postgres";
import type { DatabaseConfig } from "../config.ts";
import { createPostgresPool, withinTimeout } from "../db/postgres_pool.ts";
import { callRpc, createServiceClient } from "../db/supabase_rpc.ts";
import type { DeadLetterBatch, DeadLetterStore, ReplayResult } from "./dead_letter.ts";

function hex(bytes: Uint8Array): string {
  let out = "\\x";
  for (const b of bytes) out += b.toString(16).padStart(2, "0");
  return out;
}

/** Keeps dead letters with one SQL call per delivery (a connection opened on first use). */
export class PostgresDeadLetterStore implements DeadLetterStore {
  readonly #sql: postgres.Sql;
  readonly #timeoutMs: number;

  constructor(options: { url: string; timeoutMs: number; applicationName: string }) {
    this.#sql = createPostgresPool({ ...options, poolMax: 1 });
    this.#timeoutMs = options.timeoutMs;
  }

  async record(batch: DeadLetterBatch): Promise<void> {
    const sql = this.#sql;
    await withinTimeout(
      sql`select public.record_webhook_dead_letters(
        ${batch.functionName}, ${batch.kind}, ${batch.format ?? null}, ${batch.authScheme},
        ${batch.query}, ${sql.json(batch.headers)}, ${batch.body},
        ${batch.letters.map((l) => l.path)}::text[], ${batch.letters.map((l) => l.reason)}::text[])`
        .execute(),
      this.#timeoutMs,
    );
  }

  close(): Promise<void> {
    return this.#sql.end({ timeout: 1 });
  }
}

/** Keeps dead letters through `rpc/record_webhook_dead_letters` with the service-role key. */
export class RpcDeadLetterStore implements DeadLetterStore {
  readonly #client;
  readonly #timeoutMs: number;

  constructor(options: { url: string; serviceRoleKey: string; timeoutMs: number }) {
    this.#client = createServiceClient(options.url, options.serviceRoleKey);
    this.#timeoutMs = options.timeoutMs;
  }

  async record(batch: DeadLetterBatch): Promise<void> {
    await callRpc(this.#client, "record_webhook_dead_letters", {
      p_function: batch.functionName,
      p_kind: batch.kind,
      p_format: batch.format ?? null,
      p_auth_scheme: batch.authScheme,
      p_query: batch.query,
      p_headers: batch.headers,
      p_body: hex(batch.body),
      p_paths: batch.letters.map((l) => l.path),
      p_reasons: batch.letters.map((l) => l.reason),
    }, this.#timeoutMs);
  }

  close(): Promise<void> {
    return Promise.resolve();
  }
}

/** The store the webhook's database settings ask for. */
export function createDeadLetterStore(
  database: DatabaseConfig,
  functionName: string,
): DeadLetterStore {
  return database.kind === "postgres"
    ? new PostgresDeadLetterStore({
      url: database.url,
      timeoutMs: database.timeoutMs,
      applicationName: `${functionName}:dead-letters`,
    })
    : new RpcDeadLetterStore(database);
}

/** Which dead letters a replay takes: ids, or a filter on one function. */
export type ReplaySelection = { ids: number[] } | {
  function: string;
  since?: Date;
  reason?: string;
};

/** A dead letter as a replay claims it. */
export interface ClaimedLetter {
  id: number;
  functionName: string;
  kind: "delivery" | "item";
  path: string | null;
  reason: string;
  authScheme: string;
  query: string;
  headers: Record<string, string>;
  body: Uint8Array;
  truncated: boolean;
  receivedAt: Date;
  /** Set when this replay holds the row. */
  token: string | null;
}

/** Claims and finishes replays of dead letters. */
export interface DeadLetterReplayStore {
  claim(selection: ReplaySelection, leaseSeconds: number, limit: number): Promise<ClaimedLetter[]>;
  /** Records the result; a null result gives the claim back. */
  finish(id: number, token: string, result: ReplayResult | null, reason?: string): Promise<void>;
  close(): Promise<void>;
}

/** {@link DeadLetterReplayStore} over postgres.js. */
export class PostgresDeadLetterReplayStore implements DeadLetterReplayStore {
  readonly #sql: postgres.Sql;
  readonly #timeoutMs: number;

  constructor(options: { url: string; timeoutMs: number; applicationName: string }) {
    this.#sql = createPostgresPool({ ...options, poolMax: 1 });
    this.#timeoutMs = options.timeoutMs;
  }

  async claim(
    selection: ReplaySelection,
    leaseSeconds: number,
    limit: number,
  ): Promise<ClaimedLetter[]> {
    const ids = "ids" in selection ? selection.ids : null;
    const fn = "ids" in selection ? null : selection.function;
    const since = "ids" in selection ? null : selection.since ?? null;
    const reason = "ids" in selection ? null : selection.reason ?? null;
    const rows = await withinTimeout(
      this.#sql<
        {
          id: string;
          function_name: string;
          kind: "delivery" | "item";
          path: string | null;
          reason: string;
          auth_scheme: string;
          query: string;
          headers: Record<string, string>;
          body: Uint8Array;
          truncated: boolean;
          received_at: Date;
          replay_token: string | null;
        }[]
      >`select * from public.claim_webhook_dead_letters(
          ${ids}::bigint[], ${fn}, ${since}, ${reason}, ${leaseSeconds}, ${limit})`
        .execute(),
      this.#timeoutMs,
    );
    return rows.map((r) => ({
      id: Number(r.id),
      functionName: r.function_name,
      kind: r.kind,
      path: r.path,
      reason: r.reason,
      authScheme: r.auth_scheme,
      query: r.query,
      headers: r.headers,
      body: new Uint8Array(r.body),
      truncated: r.truncated,
      receivedAt: r.received_at,
      token: r.replay_token,
    }));
  }

  async finish(
    id: number,
    token: string,
    result: ReplayResult | null,
    reason?: string,
  ): Promise<void> {
    await withinTimeout(
      this.#sql`select public.finish_webhook_dead_letter_replay(
        ${id}, ${token}, ${result}, ${reason ?? null})`.execute(),
      this.#timeoutMs,
    );
  }

  close(): Promise<void> {
    return this.#sql.end({ timeout: 1 });
  }
}
