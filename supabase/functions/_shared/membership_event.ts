/**
 * The normalised membership event: what every gateway format is parsed into.
 */
import type { ParticipantId } from "./identity.ts";
import type { EventTimeSource } from "./event_time.ts";

/** Membership changes the webhook applies. */
export const MEMBERSHIP_ACTIONS = ["join", "leave"] as const;

/** A membership change the webhook applies. */
export type MembershipAction = typeof MEMBERSHIP_ACTIONS[number];

/** The action that undoes another one: a real leave lets the next join through, and back. */
export const OPPOSITE_ACTION: Record<MembershipAction, MembershipAction> = {
  join: "leave",
  leave: "join",
};

/** One real-world change of one participant in one group. */
export interface MembershipEvent {
  action: MembershipAction;
  /** Normalised group JID, e.g. `120363025246125486@g.us`. */
  groupJid: string;
  /** Canonical participant: `+E.164` or `lid:<digits>`. */
  participant: ParticipantId;
  /** Event time in epoch milliseconds. */
  at: number;
  /** Whether {@link at} came from the payload or is the receive time. */
  atSource: EventTimeSource;
}

/** What applying one event did, as reported to the sender. */
export type EventOutcome = "applied" | "duplicate" | "unchanged" | "stale";
