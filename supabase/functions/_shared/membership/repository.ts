/**
 * The database tier: the source of truth for membership state.
 *
 * One SQL function, `public.apply_whatsapp_membership_events`, applies all events of a webhook in
 * one round trip and writes a row only when the state really changes and the event is not older
 * than the last one applied. Every implementation calls that same function.
 */
import { resultsInOrder } from "../core/db/apply_rows.ts";
import {
  type ApplyOutcome,
  DatabaseUnavailableError,
  type EventRepository,
} from "../core/exactly_once.ts";
import type { MembershipEvent } from "./event.ts";

export { type ApplyOutcome, DatabaseUnavailableError };

/** The SQL function every repository calls. */
export const APPLY_FUNCTION = "apply_whatsapp_membership_events";

/** The database's answer for one membership event. */
export interface AppliedEvent {
  outcome: ApplyOutcome;
  /** The identity the event was applied to: a LID resolves to its phone once the pair is known. */
  participant: string;
  /** Event time of the distinct event this delivery belongs to (the original's, for a copy). */
  referenceAt: number;
}

/** The JSON shape of one event as the SQL function reads it. */
export interface ApplyEventRow {
  group_jid: string;
  phone: string;
  lid?: string;
  action: string;
  event_at: string;
}

/** One row returned by the SQL function. */
export interface ApplyResultRow {
  idx: number;
  outcome: string;
  phone: string;
  reference_ms: number | string;
}

/** Default copy window of the SQL function, in milliseconds. */
export const DEFAULT_COPY_WINDOW_MS = 1000;

/** Applies membership events to the database, one round trip per webhook. */
export type MembershipRepository = EventRepository<MembershipEvent, AppliedEvent>;

/** Converts events to the rows the SQL function reads. */
export function toApplyRows(events: readonly MembershipEvent[]): ApplyEventRow[] {
  return events.map((event) => ({
    group_jid: event.groupJid,
    phone: event.participant,
    ...(event.lid ? { lid: event.lid } : {}),
    action: event.action,
    event_at: new Date(event.at).toISOString(),
  }));
}

/** Orders the SQL function's `(idx, outcome, phone)` rows by idx, checking each event got one. */
export function outcomesFromRows(
  rows: readonly ApplyResultRow[],
  expected: number,
): AppliedEvent[] {
  return resultsInOrder(rows, expected, (row) => ({
    outcome: row.outcome as ApplyOutcome,
    participant: row.phone,
    referenceAt: Number(row.reference_ms),
  }));
}
