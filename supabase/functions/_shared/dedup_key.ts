/**
 * Time-windowed composite keys: event + group + participant + time bucket.
 *
 * Per-delivery fields (session, instance, delivery id) never enter a key, so every delivery of
 * one real event maps to the same key.
 */
import { type MembershipEvent, OPPOSITE_ACTION } from "./membership_event.ts";

/** The time bucket of an instant for a window width. */
export function timeBucket(at: number, windowMs: number): number {
  return Math.floor(at / windowMs);
}

/** The composite dedup key of an event, e.g. `join|1203…@g.us|+9199…|352460123`. */
export function dedupKey(event: MembershipEvent, windowMs: number): string {
  return `${event.action}|${event.groupJid}|${event.participant}|${timeBucket(event.at, windowMs)}`;
}

/**
 * The key of the opposite action in the same bucket. Claiming an event frees this key, so that
 * a real join → leave → join inside one window is not taken for a duplicate.
 */
export function opposingKey(event: MembershipEvent, windowMs: number): string {
  return dedupKey({ ...event, action: OPPOSITE_ACTION[event.action] }, windowMs);
}
