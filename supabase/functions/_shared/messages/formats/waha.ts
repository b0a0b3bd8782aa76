/**
 * WAHA message webhooks:
 *
 * ```json
 * { "event": "message", "session": "default", "me": { "id": "5511999990000@c.us" },
 *   "payload": { "id": "false_5511988887777@c.us_3EB0C431C26A1916E07A", "timestamp": 1760000000,
 *                "from": "5511988887777@c.us", "to": "5511999990000@c.us", "fromMe": false,
 *                "body": "Olá", "hasMedia": false, "participant": null } }
 * { "event": "message.ack", "me": { … },
 *   "payload": { "id": "true_5511988887777@c.us_3EB0…", "from": "…", "to": "…", "fromMe": true,
 *                "ack": 3, "ackName": "READ" } }
 * ```
 *
 * `message` carries incoming messages, `message.any` also the account's own; both name the same
 * message with the same id, so a session posting both stores it once. WAHA's serialised id
 * `false_<chat>_<id>[_<participant>]` becomes `<id>`, as Baileys and Evolution name it. The account
 * is `me.id`. Signed with `X-Webhook-Hmac` (HMAC-SHA512).
 */
import type { MessageStatus } from "../event.ts";
import {
  normalizeAccount,
  normalizeChat,
  normalizeMessageId,
  normalizePerson,
  tryNormalizeChat,
} from "../normalize.ts";
import type { ItemResult, MessageFormat } from "./delivery.ts";
import { eventTime, IgnoredItem, itemResult, jsonObject, statusChanged } from "./items.ts";
import { isObject, required, text } from "../../core/formats/parse.ts";

const MESSAGE_EVENTS = new Set(["message", "message.any"]);

const ACK: Record<string, MessageStatus> = {
  "-1": "failed",
  "0": "pending",
  "1": "sent",
  "2": "delivered",
  "3": "read",
  "4": "played",
};

/**
 * The connected account: `me.id`, or, when `me` is missing or not a phone number (a LID, a
 * session name), the side of the message that is the account's (`to` of an incoming message,
 * `from` of one it sent). Only when neither is a phone is the item rejected.
 */
function accountOf(me: unknown, payload: Record<string, unknown>): string {
  const id = isObject(me) ? text(me.id, 128) : undefined;
  const own = text(payload.fromMe === true ? payload.from : payload.to, 128);
  for (const candidate of [id, own]) {
    if (candidate === undefined) continue;
    try {
      return normalizeAccount(candidate);
    } catch { /* try the next one */ }
  }
  return normalizeAccount(required(id ?? own, "me.id", 128));
}

function messageItem(me: unknown, raw: unknown, receivedAt: number): ItemResult {
  return itemResult("payload", () => {
    if (!isObject(raw)) throw new Error("payload must be an object");
    const account = accountOf(me, raw);
    const fromMe = raw.fromMe === true;
    const chat = normalizeChat(required(fromMe ? raw.to : raw.from, fromMe ? "to" : "from", 128));
    const participant = text(raw.participant, 128);
    const media = isObject(raw.media)
      ? {
        url: text(raw.media.url, 2048),
        mimeType: text(raw.media.mimetype, 256),
        fileName: text(raw.media.filename, 512),
      }
      : undefined;
    const data = isObject(raw._data) ? raw._data : {};
    return {
      kind: "message",
      account,
      messageId: normalizeMessageId(required(raw.id, "id", 512)),
      at: eventTime(raw.timestamp, receivedAt),
      chat,
      sender: fromMe ? account : participant ? normalizePerson(participant) : chat,
      fromMe,
      type: text(data.type, 64) ?? (raw.hasMedia === true ? "media" : "text"),
      body: text(raw.body),
      ...(media ? { media } : {}),
    };
  });
}

function ackItem(me: unknown, raw: unknown, receivedAt: number): ItemResult {
  return itemResult("payload", () => {
    if (!isObject(raw)) throw new Error("payload must be an object");
    const ack = text(raw.ack, 8);
    const status = ack === undefined ? undefined : ACK[ack];
    if (!status) throw new IgnoredItem(`ack "${String(raw.ack).slice(0, 16)}" is not stored`);
    const fromMe = raw.fromMe !== false;
    const chat = tryNormalizeChat(text(fromMe ? raw.to : raw.from, 128));
    return statusChanged({
      account: accountOf(me, raw),
      messageId: normalizeMessageId(required(raw.id, "id", 512)),
      at: eventTime(raw.timestamp, receivedAt),
      status,
      chat,
      fromMe,
    });
  });
}

/** WAHA envelopes; only `message`, `message.any` and `message.ack` are stored. */
export const wahaFormat: MessageFormat = {
  name: "waha",
  detect(input) {
    const json = jsonObject(input);
    return json !== undefined && typeof json.event === "string" && "payload" in json &&
      ("session" in json || "engine" in json || "me" in json);
  },
  parse(input, receivedAt: number) {
    const json = jsonObject(input) ?? {};
    const event = String(json.event);
    if (MESSAGE_EVENTS.has(event)) {
      return {
        kind: "items",
        format: "waha",
        items: [messageItem(json.me, json.payload, receivedAt)],
      };
    }
    if (event === "message.ack") {
      return { kind: "items", format: "waha", items: [ackItem(json.me, json.payload, receivedAt)] };
    }
    return {
      kind: "ignored",
      format: "waha",
      reason: `event "${event.slice(0, 64)}" is not handled`,
    };
  },
};
