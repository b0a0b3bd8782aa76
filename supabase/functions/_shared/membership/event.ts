/**
 * The normalised membership event: what every gateway format is parsed into.
 */
import type { ParticipantId } from "../whatsapp/identity.ts";
import type { EventTimeSource } from "../whatsapp/event_time.ts";

/** Membership changes the webhook applies. */
export const MEMBERSHIP_ACTIONS = ["join", "leave", "promote", "demote"] as const;

/** A membership change the webhook applies. */
export type MembershipAction = typeof MEMBERSHIP_ACTIONS[number];

/** One real-world change of one participant in one group. */
export interface MembershipEvent {
  action: MembershipAction;
  /** Normalised group JID, e.g. `120363025246125486@g.us`. */
  groupJid: string;
  /** Canonical participant: `+E.164` when known, else `lid:<digits>` or `bsuid:<id>`. */
  participant: ParticipantId;
  /**
   * The participant's LID (`lid:<digits>`) or BSUID (`bsuid:<id>`) when the payload paired it
   * with the phone.
   */
  lid?: ParticipantId;
  /** Event time in epoch milliseconds. */
  at: number;
  /** Whether {@link at} came from the payload or is the receive time. */
  atSource: EventTimeSource;
}

export type { EventOutcome } from "../core/exactly_once.ts";
