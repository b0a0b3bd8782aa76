/**
 * Keys of message events. A WhatsApp message id names one message for ever, so every delivery of
 * a key is a copy (no time bucket, no copy window): `msg|<account>|<id>` for the message and
 * `st|<account>|<id>|<status>` for each status it reaches.
 */
import type { ClaimRequest } from "../core/claims/claim_store.ts";
import type { MessageEvent } from "./event.ts";

/** The copy window of message keys: any two deliveries of one key are copies. */
export const MESSAGE_COPY_WINDOW_MS = Number.POSITIVE_INFINITY;

/** The composite key of a message event. */
export function messageKey(event: MessageEvent): string {
  return event.kind === "message"
    ? `msg|${event.account}|${event.messageId}`
    : `st|${event.account}|${event.messageId}|${event.status}`;
}

/** The claim the lifecycle takes for a message event. */
export function messageClaim(event: MessageEvent): ClaimRequest {
  return { key: messageKey(event), at: event.at };
}
