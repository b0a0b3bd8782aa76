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

/**
 * Whether a delivery at `at` is a copy of the event at `heldAt` of the same action, given the
 * latest known times of the subject's actions: within the copy window, and no distinct event of
 * another action of the subject lies strictly between them (a leave between a join and a rejoin).
 */
export function isCopyOfHeld(
  heldAt: number,
  at: number,
  copyWindowMs: number,
  action?: string,
  subjectTimes?: Readonly<Record<string, number>>,
): boolean {
  if (!isCopy(heldAt, at, copyWindowMs)) return false;
  if (!subjectTimes || action === undefined) return true;
  const low = Math.min(heldAt, at);
  const high = Math.max(heldAt, at);
  for (const other in subjectTimes) {
    if (other === action) continue;
    const t = subjectTimes[other];
    if (t > low && t < high) return false;
  }
  return true;
}
