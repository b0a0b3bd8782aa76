/**
 * Database tier through the Data API: supabase-js `rpc` with the service-role key, for
 * deployments without `SUPABASE_DB_URL`. Calls the same SQL function as the postgres.js tier.
 */
import type { SupabaseClient } from "@supabase/supabase-js";
import { callRpc, createServiceClient } from "../core/db/supabase_rpc.ts";
import type { MembershipEvent } from "./event.ts";
import {
  type AppliedEvent,
  APPLY_FUNCTION,
  DEFAULT_COPY_WINDOW_MS,
  type MembershipRepository,
  outcomesFromRows,
  toApplyRows,
} from "./repository.ts";

/** Options of {@link SupabaseRpcMembershipRepository}. */
export interface SupabaseRpcRepositoryOptions {
  /** The project URL (`SUPABASE_URL`). */
  url: string;
  /** The service-role key (`SUPABASE_SERVICE_ROLE_KEY`). */
  serviceRoleKey: string;
  /** Bound on one apply call, in milliseconds. */
  timeoutMs: number;
  /** Same-action events closer than this are copies (the SQL function's `copy_window_ms`). */
  copyWindowMs?: number;
}

/** Applies events with one `POST /rest/v1/rpc/apply_whatsapp_membership_events` per webhook. */
export class SupabaseRpcMembershipRepository implements MembershipRepository {
  readonly name = "supabase-rpc";
  readonly #client: SupabaseClient;
  readonly #timeoutMs: number;
  readonly #copyWindowMs: number;

  constructor(options: SupabaseRpcRepositoryOptions) {
    this.#timeoutMs = options.timeoutMs;
    this.#copyWindowMs = options.copyWindowMs ?? DEFAULT_COPY_WINDOW_MS;
    this.#client = createServiceClient(options.url, options.serviceRoleKey);
  }

  async apply(events: readonly MembershipEvent[]): Promise<AppliedEvent[]> {
    if (events.length === 0) return [];
    const rows = await callRpc<Parameters<typeof outcomesFromRows>[0][number]>(
      this.#client,
      APPLY_FUNCTION,
      { events: toApplyRows(events), copy_window_ms: this.#copyWindowMs },
      this.#timeoutMs,
    );
    return outcomesFromRows(rows, events.length);
  }

  close(): Promise<void> {
    return Promise.resolve();
  }
}
