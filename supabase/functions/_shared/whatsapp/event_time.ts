/**
 * The event time of a delivery: the source timestamp when it is plausible, else the receive time.
 */

/** How far in the future a source timestamp may be (clock skew) before it is ignored. */
export const MAX_FUTURE_SKEW_MS = 5 * 60 * 1000;
/** How old a source timestamp may be (retries go on for days) before it is ignored. */
export const MAX_EVENT_AGE_MS = 30 * 24 * 60 * 60 * 1000;

const NUMERIC = /^[0-9]{1,16}(\.[0-9]+)?$/;
const ISO_DATE_TIME =
  /^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:?\d{2})?$/i;

/** Where an event time came from. */
export type EventTimeSource = "payload" | "received";

/** Raised when a timestamp is present but is neither ISO-8601 nor epoch seconds/milliseconds. */
export class InvalidTimestampError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "InvalidTimestampError";
  }
}

/**
 * Parses a timestamp given as ISO-8601 text or epoch seconds or milliseconds (number or digits)
 * into epoch milliseconds. Values below 10^11 are seconds. Throws {@link InvalidTimestampError}.
 */
export function parseTimestamp(raw: string | number): number {
  let value: number;
  if (typeof raw === "number" || NUMERIC.test(raw)) {
    const n = Number(raw);
    if (!Number.isFinite(n) || n <= 0) {
      throw new InvalidTimestampError("timestamp must be positive");
    }
    value = n < 1e11 ? n * 1000 : n;
  } else if (ISO_DATE_TIME.test(raw.trim())) {
    const text = raw.trim();
    const zoned = /(Z|[+-]\d{2}:?\d{2})$/i.test(text) ? text : `${text}Z`;
    value = Date.parse(zoned.replace(" ", "T"));
  } else {
    throw new InvalidTimestampError("timestamp must be ISO-8601 or epoch seconds/milliseconds");
  }
  if (!Number.isFinite(value)) throw new InvalidTimestampError("timestamp is not a valid date");
  return Math.trunc(value);
}

/**
 * Picks the event time: the parsed source timestamp when it lies within
 * [receivedAt − {@link MAX_EVENT_AGE_MS}, receivedAt + {@link MAX_FUTURE_SKEW_MS}], else receivedAt.
 * A source time ahead of the receive time is capped at it: an event cannot happen after its
 * delivery arrived, and a sender whose clock runs ahead must not make later real events look old.
 */
export function resolveEventTime(
  raw: string | number | undefined,
  receivedAt: number,
): { at: number; source: EventTimeSource } {
  if (raw === undefined) return { at: receivedAt, source: "received" };
  const at = parseTimestamp(raw);
  const plausible = at >= receivedAt - MAX_EVENT_AGE_MS && at <= receivedAt + MAX_FUTURE_SKEW_MS;
  return plausible
    ? { at: Math.min(at, receivedAt), source: "payload" }
    : { at: receivedAt, source: "received" };
}
