/**
 * What a membership format parser returns: membership changes still in the sender's notation, or
 * the reason a valid delivery is ignored. Normalisation into keys happens after parsing, the same
 * way for every format.
 */
import type { Format, IgnoredDelivery } from "../../core/formats/format.ts";
import type { MembershipAction } from "../event.ts";

/** One membership change as the payload states it. */
export interface RawMembershipChange {
  action: MembershipAction;
  /** Group JID as sent. */
  group: string;
  /** Participant as sent: a JID (phone or LID) or a phone number. */
  participant: string | number;
  /** The participant's phone, when the payload pairs it with a LID participant. */
  phone?: string | number;
  /** The participant's LID, when the payload pairs it with a phone participant. */
  lid?: string;
  /** Source timestamp as sent, if any: ISO-8601 or epoch seconds/milliseconds. */
  timestamp?: string | number;
  /** Where the participant sits in the payload, for error messages (e.g. `participants.2`). */
  path: string;
}

/** The changes of a delivery; `paths` name the group and timestamp fields for errors. */
export interface MembershipChanges {
  kind: "changes";
  format: string;
  changes: RawMembershipChange[];
  paths?: { group: string; timestamp: string };
}

/** A parsed delivery: changes, or ignored. */
export type ParsedDelivery = MembershipChanges | IgnoredDelivery;

/** One membership gateway format: recognises and parses a JSON payload. */
export type MembershipFormat = Format<unknown, MembershipChanges>;

/** Most participants one delivery may carry. */
export const MAX_PARTICIPANTS = 1024;
