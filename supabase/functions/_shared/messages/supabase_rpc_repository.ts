/**
 * Message database tier through the Data API: supabase-js `rpc` with the service-role key, for
 * deployments without `SUPABASE_DB_URL`. Calls the same SQL function as the postgres.js tier.
 */
import { createClient, type SupabaseClient } from "@supabase/supabase-js";
import { type AppliedEvent, DatabaseUnavailableError } from "../core/exactly_once.ts";
import type { MessageEvent } from "./event.ts";
import {
  APPLY_MESSAGES_FUNCTION,
  messageOutcomes,
  type MessageRepository,
  toMessageRows,
} from "./repository.ts";

/** Applies events with one `POST /rest/v1/rpc/apply_whatsapp_message_events` per webhook. */
export class SupabaseRpcMessageRepository implements MessageRepository {
  readonly name = "supabase-rpc";
  readonly #client: SupabaseClient;
  readonly #timeoutMs: number;

  constructor(options: { url: string; serviceRoleKey: string; timeoutMs: number }) {
    this.#timeoutMs = options.timeoutMs;
    this.#client = createClient(options.url, options.serviceRoleKey, {
      auth: { persistSession: false, autoRefreshToken: false, detectSessionInUrl: false },
    });
  }

  async apply(events: readonly MessageEvent[]): Promise<AppliedEvent[]> {
    if (events.length === 0) return [];
    let response;
    try {
      response = await this.#client
        .rpc(APPLY_MESSAGES_FUNCTION, { events: toMessageRows(events) })
        .abortSignal(AbortSignal.timeout(this.#timeoutMs));
    } catch (error) {
      throw new DatabaseUnavailableError({ cause: error });
    }
    if (response.error || !Array.isArray(response.data)) {
      throw new DatabaseUnavailableError({
        cause: new Error(response.error?.message ?? "rpc returned no rows"),
      });
    }
    return messageOutcomes(response.data, events.length);
  }

  close(): Promise<void> {
    return Promise.resolve();
  }
}
