/**
 * Baileys `group-participants.update`, raw or wrapped as `{ event, data }`:
 *
 * ```json
 * { "id": "120363…@g.us", "author": "…@lid", "authorPn": "…@s.whatsapp.net",
 *   "participants": [{ "id": "…@lid", "phoneNumber": "…@s.whatsapp.net", "admin": null }],
 *   "action": "add" }
 * ```
 *
 * Baileys before 7.0.0-rc.6 sends `participants` as JID strings; later versions send objects with
 * `phoneNumber` (for a LID id) or `lid` (for a phone id). The event carries no timestamp, and a
 * member leaving on their own is reported as `remove`.
 */
import { z } from "zod";
import type { MembershipAction } from "../event.ts";
import {
  MAX_PARTICIPANTS,
  type MembershipFormat,
  type ParsedDelivery,
  type RawMembershipChange,
} from "./delivery.ts";
import { isObject, jidField, parseWith } from "../../core/formats/parse.ts";

/**
 * One participant: a JID string, or an object with optional phone/LID pairing. A malformed entry
 * becomes an empty participant, which normalisation rejects on its own: the valid ones still apply.
 */
export const BaileysParticipantSchema = z.union([
  jidField,
  z.object({
    id: jidField,
    phoneNumber: z.string().max(128).nullish().catch(undefined),
    lid: z.string().max(128).nullish().catch(undefined),
  }),
]).catch("");

/** The `group-participants.update` event object. */
export const BaileysUpdateSchema = z.object({
  id: jidField,
  author: z.string().max(128).nullish(),
  participants: z.array(BaileysParticipantSchema).min(1).max(MAX_PARTICIPANTS),
  action: z.enum(["add", "remove", "promote", "demote", "modify"]),
});

/** The event object after validation. */
export type BaileysUpdate = z.infer<typeof BaileysUpdateSchema>;

const ACTIONS: Record<string, MembershipAction | undefined> = {
  add: "join",
  remove: "leave",
  promote: "promote",
  demote: "demote",
};

/**
 * Turns a validated update into changes. `prefix` is the update's path in the payload;
 * `phones` maps participant JIDs to phones known from elsewhere in the payload.
 */
export function changesFromBaileysUpdate(
  format: string,
  update: BaileysUpdate,
  prefix: string,
  phones: ReadonlyMap<string, string> = new Map(),
): ParsedDelivery {
  const action = ACTIONS[update.action];
  if (!action) {
    return { kind: "ignored", format, reason: `action "${update.action}" is not handled` };
  }
  const changes: RawMembershipChange[] = update.participants.map((participant, i) => {
    const path = `${prefix}participants.${i}`;
    if (typeof participant === "string") {
      const phone = phones.get(participant);
      return { action, group: update.id, participant, ...(phone ? { phone } : {}), path };
    }
    return {
      action,
      group: update.id,
      participant: participant.id,
      ...(participant.phoneNumber ? { phone: participant.phoneNumber } : {}),
      ...(participant.lid ? { lid: participant.lid } : {}),
      path: `${path}.id`,
    };
  });
  return { kind: "changes", format, changes, paths: { group: `${prefix}id`, timestamp: "" } };
}

const WrappedSchema = z.object({
  event: z.literal("group-participants.update"),
  data: z.unknown(),
});

/** Raw Baileys events, and `{ event: "group-participants.update", data }` without an envelope. */
export const baileysFormat: MembershipFormat = {
  name: "baileys",
  detect(json) {
    if (!isObject(json)) return false;
    if (
      json.event === "group-participants.update" && isObject(json.data) && !("instance" in json)
    ) {
      return true;
    }
    // `participants` is checked by the parser, so that a wrong one is a 400 naming it.
    return typeof json.id === "string" && json.id.includes("@g.us") &&
      "participants" in json && typeof json.action === "string";
  },
  parse(json) {
    if (isObject(json) && "event" in json) {
      const wrapped = parseWith(WrappedSchema, json);
      const update = parseWith(z.object({ data: BaileysUpdateSchema }), wrapped).data;
      return changesFromBaileysUpdate("baileys", update, "data.");
    }
    return changesFromBaileysUpdate("baileys", parseWith(BaileysUpdateSchema, json), "");
  },
};
