/**
 * Twilio WhatsApp webhooks, `application/x-www-form-urlencoded`:
 *
 * - incoming message: `MessageSid`, `AccountSid`, `From=whatsapp:+<customer>`,
 *   `To=whatsapp:+<business>`, `Body`, `NumMedia`, `MediaUrl0`, `MediaContentType0`,
 *   `ProfileName`, `WaId`, `SmsStatus=received`;
 * - status callback: `MessageSid`, `MessageStatus` (queued, sent, delivered, read, failed,
 *   undelivered, …), `From=whatsapp:+<business>`, `To=whatsapp:+<customer>`, `ErrorCode`.
 *
 * The account is the business number: `To` of an incoming message, `From` of a status. Twilio gives
 * no event time: the receive time is used. Signed with `X-Twilio-Signature` (over the URL with its
 * query and the form). whatsapp-send-batch asks Twilio for status callbacks at this URL with
 * `?callback_data=<recipient id>`, which comes back as the status's callback data, as Cloud API's
 * `biz_opaque_callback_data` does: a recipient whose send timed out is reconciled by it.
 */
import type { MessageStatus } from "../event.ts";
import {
  normalizeAccount,
  normalizeMessageId,
  normalizePerson,
  tryNormalizeChat,
} from "../normalize.ts";
import type { MessageFormat } from "./delivery.ts";
import { IgnoredItem, itemResult, statusChanged } from "./items.ts";
import { required, text } from "../../core/formats/parse.ts";

const STATUS: Record<string, MessageStatus> = {
  accepted: "pending",
  scheduled: "pending",
  queued: "pending",
  sending: "pending",
  sent: "sent",
  delivered: "delivered",
  read: "read",
  failed: "failed",
  undelivered: "failed",
};

const INCOMING = new Set(["received", "receiving"]);

/** Twilio's form posts with a `MessageSid`. */
export const twilioFormat: MessageFormat = {
  name: "twilio",
  detect(input) {
    return input.kind === "form" && (input.form.has("MessageSid") || input.form.has("SmsSid"));
  },
  parse(input, receivedAt: number) {
    const form = input.kind === "form" ? input.form : new URLSearchParams();
    const state = (form.get("MessageStatus") ?? form.get("SmsStatus") ?? "").toLowerCase();
    const incoming = INCOMING.has(state) || (state === "" && form.has("Body"));
    const item = itemResult(incoming ? "MessageSid" : "MessageStatus", () => {
      const messageId = normalizeMessageId(
        required(form.get("MessageSid") ?? form.get("SmsSid"), "MessageSid", 128),
      );
      if (incoming) {
        const from = normalizePerson(required(form.get("From"), "From", 128));
        const media = Number(form.get("NumMedia") ?? "0") > 0
          ? {
            url: text(form.get("MediaUrl0"), 2048),
            mimeType: text(form.get("MediaContentType0"), 256),
          }
          : undefined;
        return {
          kind: "message",
          account: normalizeAccount(required(form.get("To"), "To", 128)),
          messageId,
          at: receivedAt,
          chat: from,
          sender: from,
          fromMe: false,
          type: media ? (media.mimeType?.split("/")[0] ?? "media") : "text",
          body: text(form.get("Body")),
          ...(media ? { media } : {}),
        };
      }
      const status = STATUS[state];
      if (!status) throw new IgnoredItem(`MessageStatus "${state.slice(0, 32)}" is not stored`);
      const chat = tryNormalizeChat(text(form.get("To"), 128));
      const errorCode = text(form.get("ErrorCode"), 32);
      const callbackData = input.kind === "form"
        ? text(input.query?.get("callback_data"), 512)
        : undefined;
      return statusChanged({
        account: normalizeAccount(required(form.get("From"), "From", 128)),
        messageId,
        at: receivedAt,
        status,
        chat,
        fromMe: true,
        errorCode,
        callbackData,
      });
    });
    return { kind: "items", format: "twilio", items: [item] };
  },
};
