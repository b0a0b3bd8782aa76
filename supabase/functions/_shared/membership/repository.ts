/**
 * The membership domain's apply SQL function, `public.apply_whatsapp_membership_events`: it
 * applies all events of a webhook in one round trip and writes a row only when the state really
 * changes and the event is not older than the last one applied. Both database paths
 * (core/db/event_repository.ts) call it through this descriptor.
 */
import type { ApplyFunction } from "../core/db/event_repository.ts";
import type { ApplyOutcome } from "../core/exactly_once.ts";
import type { MembershipEvent } from "./event.ts";

/** The JSON shape of one event as the SQL function reads it. */
export interface ApplyEventRow {
  group_jid: string;
  phone: string;
  lid?: string;
  action: string;
  event_at: string;
}

/** One row returned by the SQL function. */
export interface MembershipResultRow {
  idx: number;
  outcome: string;
  phone: string;
  reference_ms: number | string;
}

/** Default copy window of the SQL function, in milliseconds. */
export const DEFAULT_COPY_WINDOW_MS = 1000;

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

/**
 * `apply_whatsapp_membership_events(events, copy_window_ms)`: same-action events closer than
 * `copyWindowMs` are copies. Each row gives the identity applied to (a LID resolves to its phone).
 */
export function membershipApply(
  copyWindowMs = DEFAULT_COPY_WINDOW_MS,
): ApplyFunction<MembershipEvent, MembershipResultRow> {
  return {
    name: "apply_whatsapp_membership_events",
    applicationName: "whatsapp-membership-webhook",
    columns: ["idx", "outcome", "phone", "reference_ms"],
    extraArgs: { copy_window_ms: copyWindowMs },
    rows: toApplyRows,
    applied: (row) => ({
      outcome: row.outcome as ApplyOutcome,
      participant: row.phone,
      referenceAt: Number(row.reference_ms),
    }),
  };
}
