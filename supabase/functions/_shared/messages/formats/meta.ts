/**
 * WhatsApp Cloud API (Meta) message webhooks:
 *
 * ```json
 * { "object": "whatsapp_business_account",
 *   "entry": [{ "id": "<WABA id>", "changes": [{ "field": "messages", "value": {
 *     "messaging_product": "whatsapp",
 *     "metadata": { "display_phone_number": "15550001111", "phone_number_id": "106540352242922" },
 *     "contacts": [{ "profile": { "name": "Kerry" }, "wa_id": "16315551181" }],
 *     "messages": [{ "from": "16315551181", "id": "wamid.ABG…", "timestamp": "1603059201",
 *                    "type": "text", "text": { "body": "Hello" } }],
 *     "statuses": [{ "id": "wamid.HBg…", "status": "delivered", "timestamp": "1603086313",
 *                    "recipient_id": "16315551181", "biz_opaque_callback_data": "r-42",
 *                    "errors": [{ "code": 131026, "title": "Message undeliverable" }] }] } }] }] }
 * ```
 *
 * Users known only by a username come with a business-scoped user ID (BSUID) instead of a phone:
 * `from_user_id` (`US.13491208655302741918`) without `from`; such a sender is stored as
 * `bsuid:<id>`. A message in a group names it in `group_id` (the chat). A `system` message of type
 * `user_changed_user_id` (the user's BSUID changed; `system.user_id` is the new one) is stored as a
 * message of type `system` from the user (`from`, `from_user_id`, else the new BSUID); it changes
 * no stored identity (messages keep the sender they came with).
 *
 * One webhook may carry many entries, changes, messages and statuses (up to 1000): each is one
 * item. The account is `metadata.phone_number_id`. Signed with `X-Hub-Signature-256`.
 */
import { z } from "zod";
import {
  looksLikeBsuid,
  normalizeBsuid,
  normalizeCloudApiGroupId,
} from "../../whatsapp/identity.ts";
import type { MediaInfo, MessageStatus } from "../event.ts";
import {
  normalizeMessageId,
  normalizePerson,
  normalizePhoneNumberId,
  tryNormalizeChat,
} from "../normalize.ts";
import type { ItemResult, MessageFormat } from "./delivery.ts";
import { eventTime, IgnoredItem, itemResult, jsonObject, statusChanged } from "./items.ts";
import { isObject, parseWith, required, text } from "../../core/formats/parse.ts";

const WebhookSchema = z.object({
  object: z.literal("whatsapp_business_account"),
  entry: z.array(z.object({
    changes: z.array(z.object({ field: z.string().max(128), value: z.unknown().optional() }))
      .max(1000),
  })).max(1000),
});

const STATUS: Record<string, MessageStatus> = {
  sent: "sent",
  delivered: "delivered",
  read: "read",
  played: "played",
  failed: "failed",
};

const MEDIA_TYPES = ["image", "video", "audio", "document", "sticker", "voice"];

/** Media metadata of a Cloud API message of a media type. */
function mediaOf(message: Record<string, unknown>, type: string): MediaInfo | undefined {
  const media = message[type];
  if (!MEDIA_TYPES.includes(type) || !isObject(media)) return undefined;
  return {
    id: text(media.id, 256),
    mimeType: text(media.mime_type, 256),
    sha256: text(media.sha256, 256),
    fileName: text(media.filename, 512),
    caption: text(media.caption),
  };
}

/** The readable text of a message of any type (text, caption, button, reply, reaction…). */
function bodyOf(message: Record<string, unknown>, type: string): string | undefined {
  const part = message[type];
  if (!isObject(part)) return undefined;
  if (type === "text") return text(part.body);
  if (type === "button") return text(part.text);
  if (type === "reaction") return text(part.emoji, 64);
  if (type === "location") return text(part.name) ?? text(part.address);
  if (type === "interactive") {
    for (const reply of [part.button_reply, part.list_reply, part.nfm_reply]) {
      if (isObject(reply)) return text(reply.title) ?? text(reply.body);
    }
  }
  return text(part.caption);
}

/**
 * The sender of a Cloud API message: the phone (`from`) when it is a possible phone number, else
 * the business-scoped user ID (`from_user_id`, users known only by a username), else `from` kept
 * as given. A `user_changed_user_id` system message has neither: its sender is the user's new
 * BSUID (`system.user_id`). A message is never refused because its sender is not a phone number.
 */
function senderOf(raw: Record<string, unknown>, type: string): string {
  const from = text(raw.from, 128)?.trim();
  if (from) {
    try {
      return normalizePerson(from);
    } catch {
      // Not a possible phone number: the BSUID below, or the value as given.
    }
  }
  const system = type === "system" && isObject(raw.system) ? raw.system : undefined;
  for (const candidate of [raw.from_user_id, system?.user_id, raw.from_parent_user_id]) {
    const id = text(candidate, 200);
    if (id && looksLikeBsuid(id)) return normalizeBsuid(id);
  }
  if (from) return from;
  throw new Error("from or from_user_id is required");
}

function messageItem(account: string, raw: unknown, path: string, receivedAt: number): ItemResult {
  return itemResult(path, () => {
    if (!isObject(raw)) throw new Error("message must be an object");
    // Every message is stored, `unsupported` and `system` ones too (type kept, no body).
    const type = text(raw.type, 64) ?? "unknown";
    const from = senderOf(raw, type);
    const groupId = text(raw.group_id, 128);
    const media = mediaOf(raw, type);
    return {
      kind: "message",
      account,
      messageId: normalizeMessageId(required(raw.id, "id", 512)),
      at: eventTime(raw.timestamp, receivedAt),
      chat: groupId ? normalizeCloudApiGroupId(groupId) : from,
      sender: from,
      fromMe: false,
      type,
      body: bodyOf(raw, type),
      ...(media ? { media } : {}),
    };
  });
}

function statusItem(account: string, raw: unknown, path: string, receivedAt: number): ItemResult {
  return itemResult(path, () => {
    if (!isObject(raw)) throw new Error("status must be an object");
    const name = required(raw.status, "status", 64);
    const status = STATUS[name];
    if (!status) throw new IgnoredItem(`status "${name.slice(0, 32)}" is not stored`);
    const errors = Array.isArray(raw.errors) ? raw.errors : [];
    const firstError = isObject(errors[0]) ? text(errors[0].code, 32) : undefined;
    const recipient = text(raw.recipient_id, 128);
    return statusChanged({
      account,
      messageId: normalizeMessageId(required(raw.id, "id", 512)),
      at: eventTime(raw.timestamp, receivedAt),
      status,
      chat: tryNormalizeChat(recipient),
      fromMe: true,
      errorCode: firstError,
      callbackData: text(raw.biz_opaque_callback_data, 512),
    });
  });
}

/**
 * The list `value[name]` (at most 1000 entries): empty when absent, and a rejected item naming
 * its path when it is there but not a list.
 */
function listAt(
  value: Record<string, unknown>,
  name: "messages" | "statuses",
  base: string,
  items: ItemResult[],
): unknown[] {
  const list = value[name];
  if (list == null) return [];
  if (Array.isArray(list)) return list.slice(0, 1000);
  items.push({ ok: false, path: `${base}.${name}`, reason: `${name} must be a list` });
  return [];
}

/** Cloud API webhooks with `field: "messages"`; other fields are acknowledged and ignored. */
export const metaFormat: MessageFormat = {
  name: "meta",
  detect(input) {
    return jsonObject(input)?.object === "whatsapp_business_account";
  },
  parse(input, receivedAt: number) {
    const webhook = parseWith(WebhookSchema, input.kind === "json" ? input.json : undefined);
    const items: ItemResult[] = [];
    webhook.entry.forEach((entry, e) => {
      entry.changes.forEach((change, c) => {
        // A change of another field, or without a value, carries nothing this function uses.
        if (change.field !== "messages" || change.value == null) return;
        const base = `entry.${e}.changes.${c}.value`;
        const value = change.value;
        if (!isObject(value)) {
          items.push({ ok: false, path: base, reason: "value must be an object" });
          return;
        }
        const metadata = isObject(value.metadata) ? value.metadata : {};
        let account: string;
        try {
          account = normalizePhoneNumberId(required(metadata.phone_number_id, "phone_number_id"));
        } catch (error) {
          const reason = error instanceof Error ? error.message : String(error);
          items.push({ ok: false, path: `${base}.metadata.phone_number_id`, reason });
          return;
        }
        const messages = listAt(value, "messages", base, items);
        const statuses = listAt(value, "statuses", base, items);
        messages.forEach((m, i) =>
          items.push(messageItem(account, m, `${base}.messages.${i}`, receivedAt))
        );
        statuses.forEach((s, i) =>
          items.push(statusItem(account, s, `${base}.statuses.${i}`, receivedAt))
        );
      });
    });
    if (items.length === 0) {
      return { kind: "ignored", format: "meta", reason: "no messages or statuses" };
    }
    return { kind: "items", format: "meta", items };
  },
};
