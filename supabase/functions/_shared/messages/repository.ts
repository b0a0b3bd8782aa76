/**
 * The database tier of the message webhook: `public.apply_whatsapp_message_events` stores each
 * message once per (account, message id) and moves statuses only forward, all events of a
 * webhook in one round trip. Every implementation calls that same function.
 */
import { resultsInOrder } from "../core/db/apply_rows.ts";
import type { AppliedEvent, ApplyOutcome, EventRepository } from "../core/exactly_once.ts";
import type { MessageEvent } from "./event.ts";

/** The SQL function every repository calls. */
export const APPLY_MESSAGES_FUNCTION = "apply_whatsapp_message_events";

/** Applies message events to the database, one round trip per webhook. */
export type MessageRepository = EventRepository<MessageEvent, AppliedEvent>;

/** One row returned by the SQL function. */
export interface MessageResultRow {
  idx: number;
  outcome: string;
  reference_ms: number | string;
}

/** Converts events to the JSON rows the SQL function reads. */
export function toMessageRows(events: readonly MessageEvent[]): Record<string, unknown>[] {
  return events.map((e) =>
    e.kind === "message"
      ? {
        kind: "message",
        account: e.account,
        message_id: e.messageId,
        chat: e.chat,
        sender: e.sender ?? null,
        from_me: e.fromMe,
        type: e.type,
        body: e.body ?? null,
        media: e.media ?? null,
        at_ms: e.at,
      }
      : {
        kind: "status",
        account: e.account,
        message_id: e.messageId,
        status: e.status,
        chat: e.chat ?? null,
        from_me: e.fromMe ?? true,
        error_code: e.errorCode ?? null,
        callback_data: e.callbackData ?? null,
        at_ms: e.at,
      }
  );
}

/** Orders the SQL function's rows by idx, checking each event got one. */
export function messageOutcomes(
  rows: readonly MessageResultRow[],
  expected: number,
): AppliedEvent[] {
  return resultsInOrder(rows, expected, (row) => ({
    outcome: row.outcome as ApplyOutcome,
    referenceAt: Number(row.reference_ms),
  }));
}
