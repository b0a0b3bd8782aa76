/**
 * What a gateway format parser returns: membership changes still in the sender's notation, or
 * the reason a valid delivery is ignored. Normalisation into keys happens after parsing, the same
 * way for every format.
 */
import type { MembershipAction } from "../event.ts";
import { isObject, PayloadFormatError, zodIssues } from "../../core/payload.ts";

export { isObject, PayloadFormatError, zodIssues };

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

/** A parsed delivery: changes (paths name the group and timestamp fields for errors), or ignored. */
export type ParsedDelivery =
  | {
    kind: "changes";
    format: string;
    changes: RawMembershipChange[];
    paths?: { group: string; timestamp: string };
  }
  | { kind: "ignored"; format: string; reason: string };

/** One gateway format: how to recognise its payloads and how to parse them. */
export interface WebhookFormat {
  /** Name used by `?format=` and in responses. */
  readonly name: string;
  /** Whether a JSON value looks like this format (cheap, structural). */
  detect(json: unknown): boolean;
  /** Parses a payload of this format; throws {@link PayloadFormatError}. */
  parse(json: unknown): ParsedDelivery;
}

/** Most participants one delivery may carry. */
export const MAX_PARTICIPANTS = 1024;
