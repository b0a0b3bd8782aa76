/**
 * Evolution API v2 message webhooks:
 *
 * ```json
 * { "event": "messages.upsert", "instance": "sales-1", "sender": "5511999990000@s.whatsapp.net",
 *   "data": { "key": { "id": "3EB0C431C26A1916E07A", "remoteJid": "5511988887777@s.whatsapp.net",
 *                      "remoteJidAlt": "…@lid", "fromMe": false, "participant": "…" },
 *             "pushName": "Ana", "messageType": "conversation",
 *             "message": { "conversation": "Olá" }, "messageTimestamp": 1760000000 } }
 * { "event": "messages.update", "sender": "…",
 *   "data": { "keyId": "3EB0C431C26A1916E07A", "messageId": "<Evolution's row id>",
 *             "remoteJid": "…", "fromMe": true, "status": "READ" } }
 * ```
 *
 * The account is `sender` (the connected number), never `instance`: two instances of one number
 * dedupe. `data` may be one object or a list. Other events (presence, contacts, chats, calls…)
 * are acknowledged and ignored. Evolution signs nothing: use `Authorization: Bearer`.
 */
import type { MediaInfo, MessageStatus } from "../event.ts";
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

const UPSERT = new Set(["messages.upsert", "MESSAGES_UPSERT"]);
const UPDATE = new Set(["messages.update", "MESSAGES_UPDATE"]);

const STATUS: Record<string, MessageStatus> = {
  ERROR: "failed",
  PENDING: "pending",
  SERVER_ACK: "sent",
  DELIVERY_ACK: "delivered",
  READ: "read",
  PLAYED: "played",
};

const NOT_STORED = new Set([
  "protocolMessage",
  "senderKeyDistributionMessage",
  "messageContextInfo",
  "pollUpdateMessage",
]);

/** The event time of `messageTimestamp`: seconds as a number, text, or a protobuf Long. */
function timestampOf(raw: unknown): string | number | undefined {
  if (isObject(raw) && typeof raw.low === "number") {
    return (raw.low >>> 0) + (typeof raw.high === "number" ? raw.high * 2 ** 32 : 0);
  }
  return typeof raw === "number" || typeof raw === "string" ? raw : undefined;
}

/** The readable text and media of a Baileys message object. */
function contentOf(message: Record<string, unknown>, type: string) {
  const inner = isObject(message[type]) ? message[type] as Record<string, unknown> : {};
  const body = text(message.conversation) ?? text(inner.text) ?? text(inner.caption) ??
    text(inner.selectedDisplayText) ?? text(inner.title) ?? text(inner.name);
  let media: MediaInfo | undefined;
  if (/^(image|video|audio|document|sticker|ptv)Message$/.test(type)) {
    media = {
      url: text(inner.url, 2048),
      mimeType: text(inner.mimetype, 256),
      sha256: text(inner.fileSha256, 256),
      fileName: text(inner.fileName, 512),
      caption: text(inner.caption),
    };
  }
  return { body, media };
}

/** `conversation` and `extendedTextMessage` are text; `imageMessage` is image, … */
function typeName(messageType: string): string {
  if (messageType === "conversation" || messageType === "extendedTextMessage") return "text";
  return messageType.replace(/Message$/, "") || "unknown";
}

function upsertItem(sender: unknown, raw: unknown, path: string, receivedAt: number): ItemResult {
  return itemResult(path, () => {
    if (!isObject(raw) || !isObject(raw.key)) throw new Error("key is required");
    const key = raw.key;
    const message = isObject(raw.message) ? raw.message : {};
    const messageType = text(raw.messageType, 64) ?? Object.keys(message)[0] ?? "unknown";
    if (NOT_STORED.has(messageType)) throw new IgnoredItem(`${messageType} is not stored`);
    const account = normalizeAccount(required(sender, "sender", 128));
    const remote = required(key.remoteJid, "key.remoteJid", 128);
    // A LID chat with its phone alongside: the phone is the chat.
    const alt = text(key.remoteJidAlt, 128);
    const chat = remote.endsWith("@lid") && alt ? normalizeChat(alt) : normalizeChat(remote);
    const fromMe = key.fromMe === true;
    const participant = text(key.participantAlt, 128) ?? text(key.participant, 128);
    const sender_ = fromMe ? account : participant ? normalizePerson(participant) : chat;
    const { body, media } = contentOf(message, messageType);
    return {
      kind: "message",
      account,
      messageId: normalizeMessageId(required(key.id, "key.id", 256)),
      at: eventTime(timestampOf(raw.messageTimestamp), receivedAt),
      chat,
      sender: sender_,
      fromMe,
      type: typeName(messageType),
      body,
      ...(media ? { media } : {}),
    };
  });
}

/** Baileys' numeric WAMessageStatus, as older Evolution versions forward it. */
const NUMERIC_STATUS: MessageStatus[] = [
  "failed",
  "pending",
  "sent",
  "delivered",
  "read",
  "played",
];

function updateItem(sender: unknown, raw: unknown, path: string, receivedAt: number): ItemResult {
  return itemResult(path, () => {
    if (!isObject(raw)) throw new Error("data must be an object");
    const update = isObject(raw.update) ? raw.update : raw;
    const given = update.status ?? raw.status;
    // Edits, reactions and poll votes arrive as messages.update without a status.
    if (given === undefined || given === null) throw new IgnoredItem("an update without a status");
    const status = typeof given === "number"
      ? NUMERIC_STATUS[given]
      : STATUS[String(given).toUpperCase()];
    if (!status) throw new IgnoredItem(`status "${String(given).slice(0, 32)}" is not stored`);
    // keyId (or key.id) is WhatsApp's id; Evolution's own `messageId` is its row id, never used.
    const key = isObject(raw.key) ? raw.key : {};
    const keyId = text(raw.keyId, 256) ?? text(key.id, 256);
    const chat = tryNormalizeChat(text(raw.remoteJid, 128) ?? text(key.remoteJid, 128));
    const fromMe = (raw.fromMe ?? key.fromMe) !== false;
    return statusChanged({
      account: normalizeAccount(required(sender, "sender", 128)),
      messageId: normalizeMessageId(required(keyId, "keyId", 256)),
      at: receivedAt,
      status,
      chat,
      fromMe,
    });
  });
}

/** Evolution API envelopes; only `messages.upsert` and `messages.update` are stored. */
export const evolutionFormat: MessageFormat = {
  name: "evolution",
  detect(input) {
    const json = jsonObject(input);
    return json !== undefined && typeof json.event === "string" && "data" in json &&
      ("instance" in json || "sender" in json || "server_url" in json || "apikey" in json);
  },
  parse(input, receivedAt: number) {
    const json = jsonObject(input) ?? {};
    const event = String(json.event);
    const upsert = UPSERT.has(event);
    if (!upsert && !UPDATE.has(event)) {
      return {
        kind: "ignored",
        format: "evolution",
        reason: `event "${event.slice(0, 64)}" is not handled`,
      };
    }
    const list = Array.isArray(json.data) ? json.data.slice(0, 1000) : [json.data];
    const items = list.map((data, i) => {
      const path = Array.isArray(json.data) ? `data.${i}` : "data";
      return upsert
        ? upsertItem(json.sender, data, path, receivedAt)
        : updateItem(json.sender, data, path, receivedAt);
    });
    return { kind: "items", format: "evolution", items };
  },
};
