/**
 * Time-windowed composite keys: event + group + participant + time bucket.
 *
 * Per-delivery fields (session, instance, delivery id) never enter a key, so every delivery of
 * one real event maps to the same key.
 */
import { timeBucket } from "../core/copy_window.ts";
import type { MembershipEvent } from "./event.ts";

/** The composite dedup key of an event, e.g. `join|1203…@g.us|+9199…|352460123`. */
export function dedupKey(
  event: Pick<MembershipEvent, "action" | "groupJid" | "participant" | "at">,
  windowMs: number,
): string {
  return `${event.action}|${event.groupJid}|${event.participant}|${timeBucket(event.at, windowMs)}`;
}
