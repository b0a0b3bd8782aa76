/**
 * Normalisation of message identities, so that one message seen through different gateways, or
 * through two sessions of one gateway, has one (account, message id) and one chat.
 */
import {
  InvalidIdentityError,
  normalizeGroupJid,
  normalizeParticipant,
} from "../whatsapp/identity.ts";

export { InvalidIdentityError };

const CLOUD_API_PHONE_NUMBER_ID = /^[0-9]{5,32}$/;
const WAHA_SERIALIZED_ID = /^(?:true|false)_[^_]+_([^_]+)(?:_.*)?$/;
const MESSAGE_ID = /^[\x21-\x7e]{1,256}$/;

/** Chats that are not conversations: status broadcasts (stories), newsletters, calls. */
export class NotAConversationError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "NotAConversationError";
  }
}

/** Removes Twilio's `whatsapp:` channel prefix. */
function withoutChannel(raw: string): string {
  const value = raw.trim();
  return value.toLowerCase().startsWith("whatsapp:") ? value.slice(9) : value;
}

/**
 * The connected business account as `+E.164` (a JID, `whatsapp:+…` or a phone number). A LID or
 * a name (a session called `default`) is not an account: throws {@link InvalidIdentityError}.
 */
export function normalizeAccount(raw: string): string {
  const id = normalizeParticipant(withoutChannel(raw));
  if (!id.startsWith("+")) {
    throw new InvalidIdentityError("the connected account must be a phone number");
  }
  return id;
}

/** The Cloud API account: `metadata.phone_number_id`, digits kept as they are. */
export function normalizePhoneNumberId(raw: string | number): string {
  const value = String(raw).trim();
  if (!CLOUD_API_PHONE_NUMBER_ID.test(value)) {
    throw new InvalidIdentityError("phone_number_id must be 5 to 32 digits");
  }
  return value;
}

/**
 * A chat: a group JID, `+E.164` for a person (JID, `whatsapp:+…`, digits) or `lid:<digits>`.
 * Status broadcasts and newsletters throw {@link NotAConversationError}.
 */
export function normalizeChat(raw: string): string {
  const value = withoutChannel(raw).toLowerCase();
  if (value.endsWith("@g.us")) return normalizeGroupJid(value);
  if (value.endsWith("@broadcast") || value.endsWith("@newsletter") || value.endsWith("@call")) {
    throw new NotAConversationError(`chat "@${value.split("@")[1]}" is not a conversation`);
  }
  return normalizeParticipant(value);
}

/** A person: `+E.164` or `lid:<digits>`. */
export function normalizePerson(raw: string): string {
  return normalizeParticipant(withoutChannel(raw));
}

/**
 * WhatsApp's message id: WAHA's serialised `false_<chat>_<id>[_<participant>]` becomes `<id>`;
 * Baileys/Evolution `key.id`, Cloud API `wamid…` and Twilio `SM…` are kept as they are.
 */
export function normalizeMessageId(raw: string): string {
  const value = raw.trim();
  const id = WAHA_SERIALIZED_ID.exec(value)?.[1] ?? value;
  if (!MESSAGE_ID.test(id)) {
    throw new InvalidIdentityError("message id must be 1 to 256 printable characters");
  }
  return id;
}

/** {@link normalizeChat}, or undefined when the value is not a usable chat (an optional field). */
export function tryNormalizeChat(raw: string | undefined): string | undefined {
  if (raw === undefined) return undefined;
  try {
    return normalizeChat(raw);
  } catch {
    return undefined;
  }
}
