/**
 * Evolution API v2 webhooks:
 *
 * ```json
 * { "event": "group-participants.update", "instance": "sales-1",
 *   "data": { "id": "120363…@g.us", "author": "…", "participants": [...], "action": "add" },
 *   "destination": "…", "date_time": "2025-11-02T00:30:25.622Z", "sender": "…@s.whatsapp.net",
 *   "server_url": "…", "apikey": "…" }
 * ```
 *
 * `data` is the Baileys event (see `baileys.ts`). `instance`, `sender`, `apikey`, `destination` and
 * `date_time` differ per session and never enter the key; `date_time` is the send time in the
 * server's local clock marked `Z`, so it is never used as the event time (the receive time is).
 * `participantsData` pairs are used only when the phone is a real phone JID or number.
 * Evolution signs nothing: configure its webhook headers with `Authorization: Bearer <secret>`.
 */
import { z } from "zod";
import { isLid, normalizeParticipant } from "../../whatsapp/identity.ts";
import { BaileysUpdateSchema, changesFromBaileysUpdate } from "./baileys.ts";
import { type MembershipFormat } from "./delivery.ts";
import { isObject, parseWith } from "../../core/formats/parse.ts";

const GROUP_PARTICIPANTS_EVENTS = new Set([
  "group-participants.update",
  "GROUP_PARTICIPANTS_UPDATE",
]);

const EnvelopeSchema = z.object({
  event: z.string().min(1).max(128),
  data: z.unknown(),
});

const ParticipantsDataSchema = z.array(
  z.object({ jid: z.unknown(), phoneNumber: z.unknown() }).partial(),
).max(2048).optional().catch(undefined);

/** LID → phone pairs from `participantsData`, keeping only trustworthy phones. */
function phonesFromParticipantsData(data: unknown): Map<string, string> {
  const phones = new Map<string, string>();
  if (!isObject(data)) return phones;
  for (const item of ParticipantsDataSchema.parse(data.participantsData) ?? []) {
    if (typeof item.jid !== "string" || typeof item.phoneNumber !== "string") continue;
    const phone = item.phoneNumber.trim();
    // Evolution falls back to the JID's user part, which for a LID is the LID, not a phone.
    if (phone === item.jid.split("@")[0]) continue;
    try {
      if (isLid(normalizeParticipant(item.jid)) && !isLid(normalizeParticipant(phone))) {
        phones.set(item.jid, phone);
      }
    } catch {
      // Not a usable pair; the participant stays keyed by its LID.
    }
  }
  return phones;
}

/** Evolution API v2 envelopes; only group participant events are handled. */
export const evolutionFormat: MembershipFormat = {
  name: "evolution",
  detect(json) {
    return isObject(json) && typeof json.event === "string" && "instance" in json &&
      "data" in json;
  },
  parse(json) {
    const envelope = parseWith(EnvelopeSchema, json);
    if (!GROUP_PARTICIPANTS_EVENTS.has(envelope.event)) {
      return {
        kind: "ignored",
        format: "evolution",
        reason: `event "${envelope.event}" is not handled`,
      };
    }
    const { data } = parseWith(z.object({ data: BaileysUpdateSchema }), json);
    return changesFromBaileysUpdate(
      "evolution",
      data,
      "data.",
      phonesFromParticipantsData(envelope.data),
    );
  },
};
