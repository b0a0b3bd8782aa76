/**
 * The event time of a delivery and the ordering horizon.
 *
 * A source timestamp is the event's own time and is kept however old it is: replacing an old time
 * by the receive time would turn a captured delivery, replayed later, into a new event. Only a time
 * ahead of the receive time is changed (capped at it). An event older than
 * {@link ORDERING_HORIZON_MS} is beyond the horizon: the exactly-once lifecycle answers it `stale`
 * before any tier, so it takes no claim and is never applied.
 */

/** How far in the future a source timestamp may be (clock skew) before it is ignored. */
export const MAX_FUTURE_SKEW_MS = 5 * 60 * 1000;
/**
 * The ordering horizon: how old an event may be and still be ordered against the state it would
 * change (gateways retry for days, Meta for up to 7). Older events are `stale`, never applied.
 */
export const ORDERING_HORIZON_MS = 30 * 24 * 60 * 60 * 1000;

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
 * Picks the event time: the parsed source timestamp, however old (an old event stays old; one
 * beyond {@link ORDERING_HORIZON_MS} is answered `stale`), capped at the receive time: an event
 * cannot happen after its delivery arrived, and a sender whose clock runs ahead must not make
 * later real events look old. A time more than {@link MAX_FUTURE_SKEW_MS} ahead is the
 * sender's broken clock, and the receive time is used.
 */
export function resolveEventTime(
  raw: string | number | undefined,
  receivedAt: number,
): { at: number; source: EventTimeSource } {
  if (raw === undefined) return { at: receivedAt, source: "received" };
  const at = parseTimestamp(raw);
  return at <= receivedAt + MAX_FUTURE_SKEW_MS
    ? { at: Math.min(at, receivedAt), source: "payload" }
    : { at: receivedAt, source: "received" };
}
