/**
 * Time rules shared by every tier: the time bucket that enters a key, and the copy window that
 * tells a copy of an event from a new event with the same key.
 */

/** The time bucket of an instant for a window width. */
export function timeBucket(at: number, windowMs: number): number {
  return Math.floor(at / windowMs);
}

/**
 * Whether two deliveries of one key are copies of one event: their event times lie within the
 * copy window. `Infinity` makes every delivery of a key a copy (keys that name one event, such as
 * a WhatsApp message id).
 */
export function isCopy(at: number, otherAt: number, copyWindowMs: number): boolean {
  return Math.abs(at - otherAt) < copyWindowMs;
}
