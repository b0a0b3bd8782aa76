/**
 * Reading the idempotency key of a request (draft-ietf-httpapi-idempotency-key-header).
 *
 * `Idempotency-Key` is a structured-field string: `"abc"` and the bare `abc` are both accepted.
 * `X-Idempotency-Key` is read when `Idempotency-Key` is absent. A Standard Webhooks `webhook-id`
 * counts as a key only when the delivery was verified with that scheme (the id is then signed).
 * A key is 1–255 characters of `[A-Za-z0-9._:-]`; anything else is refused.
 */
import { InvalidIdempotencyKeyError } from "./errors.ts";

/** The headers read, in order of preference. */
export const IDEMPOTENCY_HEADERS = ["Idempotency-Key", "X-Idempotency-Key"] as const;

/** The Standard Webhooks delivery id, a key when that scheme verified the delivery. */
export const STANDARD_WEBHOOKS_ID_HEADER = "webhook-id";

/** The verified scheme under which `webhook-id` is signed (see core/webhook_auth.ts). */
export const STANDARD_WEBHOOKS_SCHEME = "standard-webhooks";

const KEY = /^[A-Za-z0-9._:-]{1,255}$/;

/** A key and the header it came from. */
export interface IdempotencyKey {
  key: string;
  header: string;
}

/**
 * Returns the request's key, undefined when it carries none; throws
 * {@link InvalidIdempotencyKeyError} for a malformed one.
 */
export function readIdempotencyKey(
  headers: Headers,
  verifiedScheme?: string,
): IdempotencyKey | undefined {
  for (const header of IDEMPOTENCY_HEADERS) {
    const value = headers.get(header);
    if (value !== null) return { key: parseKey(header, value), header };
  }
  if (verifiedScheme === STANDARD_WEBHOOKS_SCHEME) {
    const id = headers.get(STANDARD_WEBHOOKS_ID_HEADER);
    if (id !== null) {
      return { key: parseKey(STANDARD_WEBHOOKS_ID_HEADER, id), header: "webhook-id" };
    }
  }
  return undefined;
}

/** Validates one header value: a bare token or a quoted structured-field string. */
export function parseKey(header: string, raw: string): string {
  let value = raw.trim();
  if (value.startsWith('"')) {
    if (value.length < 2 || !value.endsWith('"')) {
      throw new InvalidIdempotencyKeyError(header, "is an unterminated quoted string");
    }
    value = value.slice(1, -1);
  }
  if (value.length === 0) throw new InvalidIdempotencyKeyError(header, "is empty");
  if (value.length > 255) throw new InvalidIdempotencyKeyError(header, "is longer than 255");
  if (!KEY.test(value)) throw new InvalidIdempotencyKeyError(header, "has invalid characters");
  return value;
}
