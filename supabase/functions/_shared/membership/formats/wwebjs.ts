/**
 * whatsapp-web.js `group_join` / `group_leave` / `group_admin_changed` notifications, raw or
 * wrapped as `{ event, data: { notification } }` (or `{ event, data: notification }`):
 *
 * ```json
 * { "id": { "fromMe": false, "remote": "1203…@g.us", "id": "AAA…", "participant": "…@c.us",
 *           "_serialized": "…" },
 *   "body": "", "type": "add", "timestamp": 1738935259, "chatId": "1203…@g.us",
 *   "author": "987654321@c.us", "recipientIds": ["123456789@c.us"] }
 * ```
 *
 * `timestamp` is WhatsApp's own (seconds), the same for every session.
 */
import { z } from "zod";
import type { MembershipAction } from "../event.ts";
import {
  MAX_PARTICIPANTS,
  type MembershipFormat,
  type ParsedDelivery,
  type RawMembershipChange,
} from "./delivery.ts";
import { isObject, jidField, parseWith, timestampField } from "../../core/formats/parse.ts";

/** A serialised GroupNotification. */
export const GroupNotificationSchema = z.object({
  id: z.object({ remote: z.unknown() }).partial().optional(),
  type: z.string().min(1).max(64),
  timestamp: timestampField.optional(),
  chatId: jidField,
  author: z.string().max(128).nullish(),
  // A malformed entry becomes an empty participant, rejected on its own by normalisation.
  recipientIds: z.array(jidField.catch("")).max(MAX_PARTICIPANTS),
});

const ACTIONS: Record<string, MembershipAction | undefined> = {
  add: "join",
  invite: "join",
  linked_group_join: "join",
  remove: "leave",
  leave: "leave",
  promote: "promote",
  demote: "demote",
};

const EVENTS = new Set(["group_join", "group_leave", "group_admin_changed"]);

/** `recipientIds` is checked by the parser, so that a wrong one is a 400 naming it. */
function looksLikeNotification(value: unknown): boolean {
  return isObject(value) && typeof value.chatId === "string" && "recipientIds" in value;
}

/** Turns a validated notification into changes; `prefix` is its path in the payload. */
export function changesFromNotification(
  format: string,
  json: unknown,
  prefix: string,
): ParsedDelivery {
  const notification = parseWith(GroupNotificationSchema, json);
  const action = ACTIONS[notification.type];
  if (!action) {
    return {
      kind: "ignored",
      format,
      reason: `notification type "${notification.type}" is not handled`,
    };
  }
  // A member leaving on their own may be named only as the author; for every other type the
  // author is the admin who acted, never the participant.
  const people = notification.recipientIds.length > 0
    ? notification.recipientIds.map((id, i) => ({ id, path: `${prefix}recipientIds.${i}` }))
    : notification.type === "leave" && notification.author
    ? [{ id: notification.author, path: `${prefix}author` }]
    : [];
  if (people.length === 0) {
    return { kind: "ignored", format, reason: "notification names no participant" };
  }
  const changes: RawMembershipChange[] = people.map(({ id, path }) => ({
    action,
    group: notification.chatId,
    participant: id,
    timestamp: notification.timestamp,
    path,
  }));
  return {
    kind: "changes",
    format,
    changes,
    paths: { group: `${prefix}chatId`, timestamp: `${prefix}timestamp` },
  };
}

/** whatsapp-web.js group notifications. */
export const wwebjsFormat: MembershipFormat = {
  name: "wwebjs",
  detect(json) {
    if (looksLikeNotification(json)) return true;
    return isObject(json) && typeof json.event === "string" && EVENTS.has(json.event) &&
      isObject(json.data);
  },
  parse(json) {
    if (isObject(json) && isObject(json.data)) {
      if (isObject(json.data.notification)) {
        return changesFromNotification("wwebjs", json.data.notification, "data.notification.");
      }
      return changesFromNotification("wwebjs", json.data, "data.");
    }
    return changesFromNotification("wwebjs", json, "");
  },
};
