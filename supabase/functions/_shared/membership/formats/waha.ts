/**
 * WAHA webhooks:
 *
 * ```json
 * { "id": "evt_01…", "timestamp": 1760000000123, "event": "group.v2.participants",
 *   "session": "default", "engine": "NOWEB", "me": { "id": "…@c.us", "lid": "…@lid" },
 *   "payload": { "group": { "id": "1203…@g.us" }, "type": "join", "timestamp": 1760000000120,
 *                "participants": [{ "id": "…@lid", "pn": "…@c.us", "role": "participant" }] },
 *   "environment": { … } }
 * ```
 *
 * Handled: `group.v2.participants`; `group.v2.join` / `group.v2.leave` (the session's own account
 * joined or left); legacy `group.join` / `group.leave` (a whatsapp-web.js notification, or the
 * group metadata when the session itself joined). The envelope's `id`, `timestamp`, `session`, `me`,
 * `metadata`, `engine` and `environment` differ per session and never enter the key.
 * `payload.timestamp` is milliseconds (NOWEB, GOWS) or seconds (WEBJS); both are read.
 * Signed with `X-Webhook-Hmac` (hex HMAC-SHA512 of the body) when WAHA has an HMAC key.
 */
import { z } from "zod";
import {
  MAX_PARTICIPANTS,
  type MembershipFormat,
  type ParsedDelivery,
  type RawMembershipChange,
} from "./delivery.ts";
import { isObject, jidField, parseWith, timestampField } from "../../core/formats/parse.ts";
import { changesFromNotification } from "./wwebjs.ts";

const timestamp = timestampField.optional();

// Only what becomes part of an event is validated: `session`, `me` (unless the event is the
// session's own join or leave), `metadata`, `environment` and the rest are tolerated as they come.
const EnvelopeSchema = z.object({
  event: z.string().min(1).max(128),
  me: z.unknown().optional(),
  payload: z.unknown().optional(),
});

/** The session's own account, when `me` carries usable text ids. */
function sessionAccount(me: unknown): { id: string; lid?: string } | undefined {
  if (!isObject(me) || typeof me.id !== "string" || me.id.trim() === "") return undefined;
  const lid = typeof me.lid === "string" && me.lid.trim() !== "" ? me.lid : undefined;
  return { id: me.id.slice(0, 128), ...(lid ? { lid: lid.slice(0, 128) } : {}) };
}

const ParticipantsPayloadSchema = z.object({
  payload: z.object({
    group: z.object({ id: jidField }),
    type: z.enum(["join", "leave", "promote", "demote"]),
    timestamp,
    // A malformed entry becomes an empty participant, rejected on its own by normalisation.
    participants: z.array(
      z.object({
        id: jidField.catch(""),
        pn: z.string().max(128).nullish().catch(undefined),
      }).catch({ id: "" }),
    ).min(1).max(MAX_PARTICIPANTS),
  }),
});

const SelfPayloadSchema = z.object({
  payload: z.object({ group: z.object({ id: jidField }), timestamp }),
});

const LegacyJoinSchema = z.object({ payload: z.object({ id: jidField }) });

function selfChange(
  envelope: z.infer<typeof EnvelopeSchema>,
  action: "join" | "leave",
  group: string,
  at: string | number | undefined,
): ParsedDelivery {
  const me = sessionAccount(envelope.me);
  if (!me) {
    return { kind: "ignored", format: "waha", reason: "session account (me) is unknown" };
  }
  const change: RawMembershipChange = {
    action,
    group,
    participant: me.id,
    ...(me.lid ? { lid: me.lid } : {}),
    timestamp: at,
    path: "me.id",
  };
  return {
    kind: "changes",
    format: "waha",
    changes: [change],
    paths: { group: "payload.group.id", timestamp: "payload.timestamp" },
  };
}

/** WAHA envelopes; only group membership events are handled. */
export const wahaFormat: MembershipFormat = {
  name: "waha",
  detect(json) {
    return isObject(json) && typeof json.event === "string" && "payload" in json &&
      ("session" in json || "engine" in json);
  },
  parse(json) {
    const envelope = parseWith(EnvelopeSchema, json);
    switch (envelope.event) {
      case "group.v2.participants": {
        const { payload } = parseWith(ParticipantsPayloadSchema, json);
        const changes: RawMembershipChange[] = payload.participants.map((p, i) => ({
          action: payload.type,
          group: payload.group.id,
          participant: p.id,
          ...(p.pn ? { phone: p.pn } : {}),
          timestamp: payload.timestamp,
          path: `payload.participants.${i}.id`,
        }));
        return {
          kind: "changes",
          format: "waha",
          changes,
          paths: { group: "payload.group.id", timestamp: "payload.timestamp" },
        };
      }
      case "group.v2.join":
      case "group.v2.leave": {
        const { payload } = parseWith(SelfPayloadSchema, json);
        const action = envelope.event === "group.v2.join" ? "join" : "leave";
        return selfChange(envelope, action, payload.group.id, payload.timestamp);
      }
      case "group.join":
      case "group.leave": {
        if (isObject(envelope.payload) && "recipientIds" in envelope.payload) {
          const parsed = changesFromNotification("waha", envelope.payload, "payload.");
          return parsed;
        }
        if (envelope.event === "group.join") {
          const { payload } = parseWith(LegacyJoinSchema, json);
          return selfChange(envelope, "join", payload.id, undefined);
        }
        return { kind: "ignored", format: "waha", reason: "group.leave without a notification" };
      }
      default:
        return {
          kind: "ignored",
          format: "waha",
          reason: `event "${envelope.event}" is not handled`,
        };
    }
  },
};
