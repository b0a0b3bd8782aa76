/**
 * An apply SQL function through the Data API: supabase-js `rpc` with the service-role key, for
 * deployments without `SUPABASE_DB_URL`. Calls the same SQL function as the postgres.js path.
 */
import type { SupabaseClient } from "@supabase/supabase-js";
import type { AppliedEvent, EventRepository } from "../exactly_once.ts";
import { type ApplyRow, resultsInOrder } from "./apply_rows.ts";
import type { ApplyFunction } from "./event_repository.ts";
import { callRpc, createServiceClient } from "./supabase_rpc.ts";

/** Options of {@link SupabaseRpcEventRepository}. */
export interface SupabaseRpcEventRepositoryOptions {
  /** The project URL (`SUPABASE_URL`). */
  url: string;
  /** The service-role key (`SUPABASE_SERVICE_ROLE_KEY`). */
  serviceRoleKey: string;
  /** Bound on one apply call, in milliseconds. */
  timeoutMs: number;
}

/** Applies events with one `POST /rest/v1/rpc/<fn>` per webhook. */
export class SupabaseRpcEventRepository<E, Row extends ApplyRow> implements EventRepository<E> {
  readonly name = "supabase-rpc";
  readonly #fn: ApplyFunction<E, Row>;
  readonly #client: SupabaseClient;
  readonly #timeoutMs: number;

  constructor(fn: ApplyFunction<E, Row>, options: SupabaseRpcEventRepositoryOptions) {
    this.#fn = fn;
    this.#timeoutMs = options.timeoutMs;
    this.#client = createServiceClient(options.url, options.serviceRoleKey);
  }

  /** Applies the events; throws `DatabaseUnavailableError` when the Data API could not. */
  async apply(events: readonly E[]): Promise<AppliedEvent[]> {
    if (events.length === 0) return [];
    const rows = await callRpc<Row>(
      this.#client,
      this.#fn.name,
      { events: this.#fn.rows(events), ...this.#fn.extraArgs },
      this.#timeoutMs,
    );
    return resultsInOrder(rows, events.length, this.#fn.applied);
  }

  /** Nothing to close: the client keeps no connection. */
  close(): Promise<void> {
    return Promise.resolve();
  }
}
