/**
 * The normalised message events every gateway format is parsed into: an incoming (or echoed
 * outgoing) message, or a delivery status of a message.
 */

/** Delivery statuses, in the order they move forward (`failed` only over pending/sent). */
export const MESSAGE_STATUSES = [
  "pending",
  "sent",
  "delivered",
  "read",
  "played",
  "failed",
] as const;

/** A delivery status. */
export type MessageStatus = typeof MESSAGE_STATUSES[number];

/** Media metadata (never the media itself). */
export interface MediaInfo {
  id?: string;
  url?: string;
  mimeType?: string;
  sha256?: string;
  fileName?: string;
  caption?: string;
}

/** Fields shared by both kinds. */
interface MessageEventBase {
  /** The connected business account: `+E.164`, or the Cloud API phone_number_id. */
  account: string;
  /** WhatsApp's message id, normalised across gateways. */
  messageId: string;
  /** Event time in epoch milliseconds. */
  at: number;
}

/** A message: written once per (account, message id). */
export interface MessageReceived extends MessageEventBase {
  kind: "message";
  /** The chat: `+E.164`, a group JID, `lid:<digits>` or `bsuid:<id>`. */
  chat: string;
  /** Who wrote it: `+E.164`, `lid:<digits>` or `bsuid:<id>` (a Cloud API `from` that is not a
   * possible phone number and has no BSUID is kept as given). */
  sender?: string;
  fromMe: boolean;
  /** `text`, `image`, `audio`, … as the gateway names it. */
  type: string;
  body?: string;
  media?: MediaInfo;
  /** The sender's display name, when given (never logged). */
  senderName?: string;
}

/** A delivery status of a message: applied only when it moves the status forward. */
export interface StatusChanged extends MessageEventBase {
  kind: "status";
  status: MessageStatus;
  /** The chat the message went to, when the status names it. */
  chat?: string;
  /** Whether the message was sent by the account (default: yes, statuses are for sent ones). */
  fromMe?: boolean;
  errorCode?: string;
  /** Cloud API `biz_opaque_callback_data`, echoed back from the send request. */
  callbackData?: string;
}

/** One normalised message event. */
export type MessageEvent = MessageReceived | StatusChanged;
