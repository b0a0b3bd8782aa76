/**
 * What a message format parser returns: one result per message or status in the payload, each
 * already normalised (or rejected with its reason), or the reason a valid delivery is ignored.
 * A format module only knows its gateway's shapes; identities go through `normalize.ts`.
 */
import type { MessageEvent } from "../event.ts";
import { NotAConversationError } from "../normalize.ts";
import { cleanText } from "../../core/sanitize.ts";
import { resolveEventTime } from "../../whatsapp/event_time.ts";

/** The request as a format sees it: the JSON body, or the form fields of a form post. */
export type DeliveryInput =
  | { kind: "json"; json: unknown }
  | {
    kind: "form";
    form: URLSearchParams;
    /** The request URL's query (signed with the form by Twilio): e.g. `callback_data`. */
    query?: URLSearchParams;
  };

/** One message or status of a payload: its event, or why it cannot be stored. */
export type ItemResult =
  | { ok: true; path: string; event: MessageEvent }
  | { ok: false; path: string; reason: string; ignored?: boolean };

/** A parsed delivery. */
export type ParsedMessages =
  | { kind: "items"; format: string; items: ItemResult[] }
  | { kind: "ignored"; format: string; reason: string };

/** One gateway format: how to recognise its payloads and how to parse them. */
export interface MessageFormat {
  /** Name used by `?format=` and in responses. */
  readonly name: string;
  /** Whether the input looks like this format (cheap, structural). */
  detect(input: DeliveryInput): boolean;
  /** Parses it; throws {@link PayloadFormatError} when the envelope itself is unusable. */
  parse(input: DeliveryInput, receivedAt: number): ParsedMessages;
}

export { isObject, PayloadFormatError } from "../../core/payload.ts";

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
 * Text of a field, cleaned for storage (the shared sanitiser), or undefined when it is not a
 * non-empty string (or a number).
 */
export function text(value: unknown, max = 65_536): string | undefined {
  if (typeof value === "number" && Number.isFinite(value)) return String(value);
  if (typeof value !== "string") return undefined;
  const clean = cleanText(value, max);
  return clean.trim() === "" ? undefined : clean;
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

/** Text of a required field; throws naming it. */
export function required(value: unknown, name: string, max = 1024): string {
  const result = text(value, max);
  if (result === undefined) throw new Error(`${name} is required`);
  return result;
}
