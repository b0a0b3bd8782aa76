/**
 * The database tier of the message webhook: `public.apply_whatsapp_message_events` stores each
 * message once per (account, message id) and moves statuses only forward, all events of a
 * webhook in one round trip. Every implementation calls that same function.
 */
import {
  type AppliedEvent,
  type ApplyOutcome,
  DatabaseUnavailableError,
  type EventRepository,
} from "../core/exactly_once.ts";
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

const OUTCOMES = new Set<string>(["applied", "unchanged", "stale"]);

/** Orders the SQL function's rows by idx, checking each event got one. */
export function messageOutcomes(
  rows: readonly MessageResultRow[],
  expected: number,
): AppliedEvent[] {
  const outcomes = new Array<AppliedEvent | undefined>(expected);
  for (const row of rows) {
    if (!OUTCOMES.has(row.outcome) || !(row.idx >= 0 && row.idx < expected)) {
      throw new DatabaseUnavailableError({
        cause: new Error(`unexpected row from the apply function (outcome ${row.outcome})`),
      });
    }
    outcomes[row.idx] = {
      outcome: row.outcome as ApplyOutcome,
      referenceAt: Number(row.reference_ms),
    };
  }
  if (outcomes.some((o) => o === undefined)) {
    throw new DatabaseUnavailableError({ cause: new Error("apply function skipped an event") });
  }
  return outcomes as AppliedEvent[];
}
