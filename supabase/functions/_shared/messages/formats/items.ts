/**
 * Helpers every message format shares while building its items: the JSON object of a delivery,
 * one item's result (or why it is rejected or ignored), a status event, and an item's event time.
 */
import { isObject, text } from "../../core/formats/parse.ts";
import { resolveEventTime } from "../../whatsapp/event_time.ts";
import type { MessageEvent, StatusChanged } from "../event.ts";
import { NotAConversationError } from "../normalize.ts";
import type { DeliveryInput, ItemResult } from "./delivery.ts";

/** The JSON object of a JSON delivery; undefined for a form post or a JSON value not an object. */
export function jsonObject(input: DeliveryInput): Record<string, unknown> | undefined {
  return input.kind === "json" && isObject(input.json) ? input.json : undefined;
}

/** Builds one item's result, turning a thrown reason into a rejected (or ignored) item. */
export function itemResult(path: string, build: () => MessageEvent | undefined): ItemResult {
  try {
    const event = build();
    if (event === undefined) return { ok: false, path, reason: "not a message", ignored: true };
    return { ok: true, path, event };
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error);
    if (error instanceof IgnoredItem || error instanceof NotAConversationError) {
      return { ok: false, path, reason, ignored: true };
    }
    return { ok: false, path, reason };
  }
}

/** Thrown while building an item that is valid but not stored (a story, an unknown status). */
export class IgnoredItem extends Error {
  constructor(message: string) {
    super(message);
    this.name = "IgnoredItem";
  }
}

/**
 * The event time of a timestamp field: its own time however old (the lifecycle answers one beyond
 * the ordering horizon `stale`), capped at the receive time; an unusable one falls back to the
 * receive time (a message is stored once whatever its time, and statuses are ordered by rank).
 */
export function eventTime(raw: unknown, receivedAt: number): number {
  try {
    return resolveEventTime(text(raw, 64), receivedAt).at;
  } catch {
    return receivedAt;
  }
}

/** A status event; `chat`, `errorCode` and `callbackData` only when known. */
export function statusChanged(fields: Omit<StatusChanged, "kind">): StatusChanged {
  const event: StatusChanged = {
    kind: "status",
    account: fields.account,
    messageId: fields.messageId,
    at: fields.at,
    status: fields.status,
    fromMe: fields.fromMe,
  };
  if (fields.chat) event.chat = fields.chat;
  if (fields.errorCode) event.errorCode = fields.errorCode;
  if (fields.callbackData) event.callbackData = fields.callbackData;
  return event;
}
