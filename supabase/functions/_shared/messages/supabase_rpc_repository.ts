/**
 * Message database tier through the Data API: supabase-js `rpc` with the service-role key, for
 * deployments without `SUPABASE_DB_URL`. Calls the same SQL function as the postgres.js tier.
 */
import type { SupabaseClient } from "@supabase/supabase-js";
import { callRpc, createServiceClient } from "../core/db/supabase_rpc.ts";
import type { AppliedEvent } from "../core/exactly_once.ts";
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
    this.#client = createServiceClient(options.url, options.serviceRoleKey);
  }

  async apply(events: readonly MessageEvent[]): Promise<AppliedEvent[]> {
    if (events.length === 0) return [];
    const rows = await callRpc<Parameters<typeof messageOutcomes>[0][number]>(
      this.#client,
      APPLY_MESSAGES_FUNCTION,
      { events: toMessageRows(events) },
      this.#timeoutMs,
    );
    return messageOutcomes(rows, events.length);
  }

  close(): Promise<void> {
    return Promise.resolve();
  }
}
