/**
 * The message domain's apply SQL function, `public.apply_whatsapp_message_events`: it stores each
 * message once per (account, message id) and moves statuses only forward, all events of a
 * webhook in one round trip. Both database paths (core/db/event_repository.ts) call it through
 * this descriptor.
 */
import type { ApplyFunction } from "../core/db/event_repository.ts";
import type { ApplyOutcome } from "../core/exactly_once.ts";
import type { MessageEvent } from "./event.ts";

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

/** `apply_whatsapp_message_events(events)`: no argument besides the events. */
export const messageApply: ApplyFunction<MessageEvent, MessageResultRow> = {
  name: "apply_whatsapp_message_events",
  applicationName: "whatsapp-message-webhook",
  columns: ["idx", "outcome", "reference_ms"],
  extraArgs: {},
  rows: toMessageRows,
  applied: (row) => ({
    outcome: row.outcome as ApplyOutcome,
    referenceAt: Number(row.reference_ms),
  }),
};
