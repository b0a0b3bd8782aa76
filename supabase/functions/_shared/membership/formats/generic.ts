/**
 * The project's own payload:
 *
 * ```json
 * { "event": "join", "groupJid": "120363025246125486@g.us",
 *   "participants": ["919963064165@s.whatsapp.net"], "timestamp": 1763784000, "sessionId": "s1" }
 * ```
 *
 * The participant may be given as `phone_number`, `participant` or `participants[]`.
 */
import { z } from "zod";
import { MEMBERSHIP_ACTIONS, type MembershipAction } from "../event.ts";
import {
  MAX_PARTICIPANTS,
  type MembershipFormat,
  type ParsedDelivery,
  type RawMembershipChange,
} from "./delivery.ts";
import { isObject, parseWith } from "../../core/formats/parse.ts";

/** Events of the generic format that are valid but not handled (answered 200 `ignored`). */
export const GENERIC_IGNORED_EVENTS = ["modify", "subject", "description", "announce"] as const;

const participantValue = z.union([
  z.string().trim().min(1).max(128),
  z.number().int().positive(),
]);

/** The zod schema of the generic payload. */
export const GenericPayloadSchema = z
  .object({
    event: z.enum([...MEMBERSHIP_ACTIONS, ...GENERIC_IGNORED_EVENTS]),
    groupJid: z.string().trim().min(1).max(128),
    phone_number: participantValue.optional(),
    participant: participantValue.optional(),
    // Each participant is checked on its own when normalised: one bad entry rejects only itself.
    participants: z.array(z.unknown()).min(1).max(MAX_PARTICIPANTS).optional(),
    timestamp: z.union([z.string().trim().min(1).max(64), z.number().positive()]).optional(),
  })
  .refine(
    (p) =>
      p.phone_number !== undefined || p.participant !== undefined ||
      p.participants !== undefined,
    {
      message: "one of phone_number, participant or participants is required",
      path: ["participants"],
    },
  );

/** The generic payload after validation. */
export type GenericPayload = z.infer<typeof GenericPayloadSchema>;

/** Parses a validated generic payload into membership changes. */
export function parseGenericPayload(payload: GenericPayload): ParsedDelivery {
  if (!(MEMBERSHIP_ACTIONS as readonly string[]).includes(payload.event)) {
    return {
      kind: "ignored",
      format: "generic",
      reason: `event "${payload.event}" is not handled`,
    };
  }
  const action = payload.event as MembershipAction;
  const base = { action, group: payload.groupJid, timestamp: payload.timestamp };
  const changes: RawMembershipChange[] = [];
  if (payload.phone_number !== undefined) {
    changes.push({ ...base, participant: payload.phone_number, path: "phone_number" });
  }
  if (payload.participant !== undefined) {
    changes.push({ ...base, participant: payload.participant, path: "participant" });
  }
  payload.participants?.forEach((participant, i) => {
    const value = typeof participant === "string" || typeof participant === "number"
      ? participant
      : "";
    changes.push({ ...base, participant: value, path: `participants.${i}` });
  });
  return { kind: "changes", format: "generic", changes };
}

/** The project's own payload format. */
export const genericFormat: MembershipFormat = {
  name: "generic",
  detect(json) {
    return isObject(json) && "groupJid" in json;
  },
  parse(json) {
    return parseGenericPayload(parseWith(GenericPayloadSchema, json));
  },
};
