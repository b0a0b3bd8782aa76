/**
 * What a gateway format parser returns: membership changes still in the sender's notation, or
 * the reason a valid delivery is ignored. Normalisation into keys happens after parsing, the same
 * way for every format.
 */
import type { MembershipAction } from "../membership_event.ts";

/** One membership change as the payload states it. */
export interface RawMembershipChange {
  action: MembershipAction;
  /** Group JID as sent. */
  group: string;
  /** Participant as sent: a JID or a phone number. */
  participant: string | number;
  /** Source timestamp as sent, if any: ISO-8601 or epoch seconds/milliseconds. */
  timestamp?: string | number;
  /** Where the participant sits in the payload, for error messages (e.g. `participants.2`). */
  path: string;
}

/** A parsed delivery. */
export type ParsedDelivery =
  | { kind: "changes"; format: string; changes: RawMembershipChange[] }
  | { kind: "ignored"; format: string; reason: string };

/** Most participants one delivery may carry. */
export const MAX_PARTICIPANTS = 1024;
