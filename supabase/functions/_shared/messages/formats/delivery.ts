/**
 * What a message format parser returns: one result per message or status in the payload, each
 * already normalised (or rejected with its reason), or the reason a valid delivery is ignored.
 * A format module only knows its gateway's shapes; identities go through `normalize.ts`.
 */
import type { MessageEvent } from "../event.ts";
import { NotAConversationError } from "../normalize.ts";
import type { Format, IgnoredDelivery } from "../../core/formats/format.ts";
import { text } from "../../core/formats/parse.ts";
import type { FormInput } from "../../core/webhook/body.ts";
import { resolveEventTime } from "../../whatsapp/event_time.ts";

/** The request as a format sees it: the JSON body, or the form fields of a form post. */
export type DeliveryInput = { kind: "json"; json: unknown } | FormInput;

/** One message or status of a payload: its event, or why it cannot be stored. */
export type ItemResult =
  | { ok: true; path: string; event: MessageEvent }
  | { ok: false; path: string; reason: string; ignored?: boolean };

/** The messages and statuses of a delivery, each normalised or rejected. */
export interface MessageItems {
  kind: "items";
  format: string;
  items: ItemResult[];
}

/** A parsed delivery: items, or ignored. */
export type ParsedMessages = MessageItems | IgnoredDelivery;

/** One message gateway format: recognises and parses a JSON body or a form post. */
export type MessageFormat = Format<DeliveryInput, MessageItems>;

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
