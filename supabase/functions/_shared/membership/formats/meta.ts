/**
 * Meta WhatsApp Cloud API group webhooks (`field: "group_participants_update"`):
 *
 * ```json
 * { "object": "whatsapp_business_account",
 *   "entry": [{ "id": "WABA_ID", "changes": [{ "field": "group_participants_update",
 *     "value": { "messaging_product": "whatsapp", "metadata": { "phone_number_id": "…" },
 *       "groups": [{ "timestamp": "1739321024", "group_id": "…", "type": "group_participants_add",
 *                    "added_participants": [{ "wa_id": "16505551234" }] }] } }] }] }
 * ```
 *
 * `group_participants_add` / `group_participants_remove` are handled; join requests and every other
 * field are acknowledged and ignored. `metadata` and `entry[].id` name the business number (the
 * "session") and never enter the key. A participant known only by a username comes with a
 * business-scoped user ID (`user_id`, or a BSUID `input`) and no `wa_id`: it is keyed as
 * `bsuid:<id>`, and merged with the phone once a payload names both (as a LID is). Participants
 * with neither cannot be keyed and are skipped. Group ids that are not JIDs are stored as
 * `meta:<id>`. Signed with `X-Hub-Signature-256` (HMAC-SHA256 with the app secret).
 */
import { z } from "zod";
import {
  InvalidIdentityError,
  looksLikeBsuid,
  normalizeBsuid,
  normalizeCloudApiGroupId,
} from "../../whatsapp/identity.ts";
import {
  MAX_PARTICIPANTS,
  type MembershipFormat,
  type ParsedDelivery,
  type RawMembershipChange,
} from "./delivery.ts";
import {
  isObject,
  parseWith,
  PayloadFormatError,
  timestampField,
} from "../../core/formats/parse.ts";

const ParticipantSchema = z.object({
  wa_id: z.union([z.string().max(64), z.number()]).nullish(),
  input: z.union([z.string().max(128), z.number()]).nullish(),
  user_id: z.string().max(200).nullish().catch(undefined),
  recipient_user_id: z.string().max(200).nullish().catch(undefined),
  parent_user_id: z.string().max(200).nullish().catch(undefined),
}).loose();

const GroupEventSchema = z.object({
  type: z.string().min(1).max(128),
  group_id: z.union([z.string().trim().min(1).max(128), z.number()]).optional(),
  timestamp: timestampField.optional(),
  added_participants: z.array(ParticipantSchema).max(MAX_PARTICIPANTS).optional(),
  removed_participants: z.array(ParticipantSchema).max(MAX_PARTICIPANTS).optional(),
});

const WebhookSchema = z.object({
  object: z.literal("whatsapp_business_account"),
  entry: z.array(z.object({
    changes: z.array(z.object({
      field: z.string().max(128),
      value: z.unknown().optional(),
    })).max(1000).optional(),
  })).max(1000),
});

const ValueSchema = z.object({ groups: z.array(GroupEventSchema).max(1000).optional() });

const PHONE_LIKE = /^\+?[0-9][0-9\s().-]{4,30}$/;

/** Cloud API webhooks; only group participant changes are handled. */
export const metaFormat: MembershipFormat = {
  name: "meta",
  detect(json) {
    // `entry` is checked by the parser, so that a wrong one is a 400 naming it.
    return isObject(json) && json.object === "whatsapp_business_account";
  },
  parse(json): ParsedDelivery {
    const webhook = parseWith(WebhookSchema, json);
    const changes: RawMembershipChange[] = [];
    const skipped: string[] = [];
    webhook.entry.forEach((entry, e) => {
      entry.changes?.forEach((change, c) => {
        if (change.field !== "group_participants_update") {
          skipped.push(`field "${change.field}"`);
          return;
        }
        const prefix = `entry.${e}.changes.${c}.value.`;
        const parsedValue = ValueSchema.safeParse(change.value);
        if (!parsedValue.success) {
          throw new PayloadFormatError(parsedValue.error.issues.map((i) => ({
            path: prefix + i.path.map(String).join("."),
            message: i.message,
          })));
        }
        parsedValue.data.groups?.forEach((group, g) => {
          const at = `${prefix}groups.${g}.`;
          const action = group.type === "group_participants_add"
            ? "join"
            : group.type === "group_participants_remove"
            ? "leave"
            : undefined;
          if (!action) {
            skipped.push(`group event "${group.type}"`);
            return;
          }
          if (group.group_id === undefined) {
            throw new PayloadFormatError([{ path: `${at}group_id`, message: "required" }]);
          }
          let groupId: string;
          try {
            groupId = normalizeCloudApiGroupId(String(group.group_id));
          } catch (error) {
            const message = error instanceof InvalidIdentityError ? error.message : "invalid";
            throw new PayloadFormatError([{ path: `${at}group_id`, message }]);
          }
          const list = action === "join" ? "added_participants" : "removed_participants";
          (group[list] ?? []).forEach((participant, p) => {
            const input = participant.input === null || participant.input === undefined
              ? undefined
              : String(participant.input);
            const phone = participant.wa_id ??
              (input && PHONE_LIKE.test(input) ? input : undefined);
            // A user known only by a username has a business-scoped user ID (BSUID) instead.
            const bsuid = [
              participant.user_id,
              participant.recipient_user_id,
              input,
              participant.parent_user_id,
            ].find((v): v is string => typeof v === "string" && looksLikeBsuid(v));
            const hasPhone = phone !== undefined && phone !== null && String(phone).trim() !== "";
            if (!hasPhone && bsuid === undefined) {
              skipped.push("a participant without wa_id or user_id");
              return;
            }
            const field = participant.wa_id != null
              ? "wa_id"
              : hasPhone
              ? "input"
              : bsuid === participant.user_id
              ? "user_id"
              : bsuid === participant.recipient_user_id
              ? "recipient_user_id"
              : bsuid === input
              ? "input"
              : "parent_user_id";
            changes.push({
              action,
              group: groupId,
              // The phone when known, paired with the BSUID (learned as a LID is); else the BSUID.
              participant: hasPhone ? String(phone) : normalizeBsuid(bsuid ?? ""),
              ...(hasPhone && bsuid !== undefined ? { lid: normalizeBsuid(bsuid) } : {}),
              timestamp: group.timestamp,
              path: `${at}${list}.${p}.${field}`,
            });
          });
        });
      });
    });
    if (changes.length === 0) {
      const reason = skipped.length > 0
        ? `no group participant changes (${[...new Set(skipped)].join(", ")})`
        : "no group participant changes";
      return { kind: "ignored", format: "meta", reason };
    }
    return {
      kind: "changes",
      format: "meta",
      changes,
      paths: { group: "entry.changes.value.groups.group_id", timestamp: "groups.timestamp" },
    };
  },
};
