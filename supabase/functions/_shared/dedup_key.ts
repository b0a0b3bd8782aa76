/**
 * Time-windowed composite keys: event + group + participant + time bucket.
 *
 * Per-delivery fields (session, instance, delivery id) never enter a key, so every delivery of
 * one real event maps to the same key.
 */
import type { MembershipEvent } from "./membership_event.ts";

/** The time bucket of an instant for a window width. */
export function timeBucket(at: number, windowMs: number): number {
  return Math.floor(at / windowMs);
}

/** The composite dedup key of an event, e.g. `join|1203…@g.us|+9199…|352460123`. */
export function dedupKey(
  event: Pick<MembershipEvent, "action" | "groupJid" | "participant" | "at">,
  windowMs: number,
): string {
  return `${event.action}|${event.groupJid}|${event.participant}|${timeBucket(event.at, windowMs)}`;
}

/**
 * Whether two deliveries of one key are copies of one event: their event times lie within the
 * copy window. Every tier (webhook, memory, Redis) uses this rule; the database applies the same.
 */
export function isCopy(at: number, otherAt: number, copyWindowMs: number): boolean {
  return Math.abs(at - otherAt) < copyWindowMs;
}
