/**
 * Normalisation of WhatsApp identities: group JIDs and participants.
 *
 * Two deliveries of one event must produce the same strings whatever JID flavour or number
 * formatting the gateway used, so that they produce the same dedup key and the same row.
 */
import { parsePhoneNumberFromString } from "libphonenumber-js";

/**
 * A participant in canonical form: `+<E.164 digits>`, `lid:<digits>` for a WhatsApp LID, or
 * `bsuid:<id>` for Meta's business-scoped user ID (a user known only by a username).
 */
export type ParticipantId = string;

/** Raised when a group or participant identity cannot be normalised. */
export class InvalidIdentityError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "InvalidIdentityError";
  }
}

const PHONE_SERVERS = new Set(["s.whatsapp.net", "c.us"]);
const GROUP_USER = /^[0-9]{5,40}(-[0-9]{5,20})?$/;
const META_GROUP = /^meta:[A-Za-z0-9._=-]{1,128}$/;
const FORMATTING = /[\s().\-\u00a0]/g;

/**
 * Normalises a group JID: lower case, `@g.us` appended when missing. The whole user part is
 * kept, including the `creator-timestamp` form of legacy groups; it is never phone-parsed.
 */
export function normalizeGroupJid(raw: string): string {
  const trimmed = raw.trim();
  if (trimmed.startsWith("meta:")) {
    if (!META_GROUP.test(trimmed)) throw new InvalidIdentityError("invalid Cloud API group id");
    return trimmed;
  }
  const value = trimmed.toLowerCase();
  const at = value.indexOf("@");
  const user = at === -1 ? value : value.slice(0, at);
  const server = at === -1 ? "g.us" : value.slice(at + 1);
  if (server !== "g.us") {
    throw new InvalidIdentityError(`group JID must end with @g.us, got "@${server}"`);
  }
  if (!GROUP_USER.test(user)) {
    throw new InvalidIdentityError("group JID user part must be digits, or creator-timestamp");
  }
  return `${user}@g.us`;
}

/**
 * Normalises a Cloud API `group_id`: a JID-shaped id becomes a group JID, any other id is kept
 * as `meta:<id>`.
 */
export function normalizeCloudApiGroupId(raw: string): string {
  const value = raw.trim();
  if (GROUP_USER.test(value.replace(/@g\.us$/i, ""))) return normalizeGroupJid(value);
  return normalizeGroupJid(`meta:${value}`);
}

/** Whether a canonical participant is a LID (`lid:<digits>`). */
export function isLid(participant: ParticipantId): boolean {
  return participant.startsWith("lid:");
}

/** Whether a canonical participant is a Meta business-scoped user ID (`bsuid:<id>`). */
export function isBsuid(participant: ParticipantId): boolean {
  return participant.startsWith("bsuid:");
}

/**
 * Whether a canonical participant stands in for a phone number that may be learned later (a LID
 * or a BSUID): such an identity is merged with the phone once a payload pairs them.
 */
export function isAlias(participant: ParticipantId): boolean {
  return isLid(participant) || isBsuid(participant);
}

// `CC.<id>` or a parent `CC.ENT.<id>`; kept as given (case and all), only the shape is checked.
const BSUID = /^[A-Za-z]{2}(\.[A-Za-z0-9]{1,32})?\.[A-Za-z0-9]{1,128}$/;

/**
 * Normalises a Meta business-scoped user ID (`US.13491208655302741918`, with or without a
 * `bsuid:` prefix) to `bsuid:<id>`; throws {@link InvalidIdentityError}.
 */
export function normalizeBsuid(raw: string): ParticipantId {
  const value = raw.trim();
  const id = value.toLowerCase().startsWith("bsuid:") ? value.slice(6) : value;
  if (!BSUID.test(id)) {
    throw new InvalidIdentityError("business-scoped user id must be CC.<letters and digits>");
  }
  return `bsuid:${id}`;
}

/** Whether a raw value has the shape of a business-scoped user ID (`CC.<id>`). */
export function looksLikeBsuid(raw: string): boolean {
  return BSUID.test(raw.trim().replace(/^bsuid:/i, ""));
}

/**
 * Splits a JID into its user and server parts, dropping the device (`:12`) and agent (`_1`)
 * suffixes of multi-device JIDs. Returns undefined for a value without `@`.
 */
export function splitJid(raw: string): { user: string; server: string } | undefined {
  const value = raw.trim().toLowerCase();
  const at = value.lastIndexOf("@");
  if (at === -1) return undefined;
  const userWithDevice = value.slice(0, at);
  const user = userWithDevice.split(":")[0].split("_")[0];
  return { user, server: value.slice(at + 1) };
}

/**
 * Normalises a participant given as a JID (`…@s.whatsapp.net`, `…@c.us`, `…@lid`, with or
 * without a device suffix) or as a phone number with or without `+` and formatting.
 * Phone numbers become E.164 through libphonenumber-js; LIDs become `lid:<digits>` and are
 * never phone-parsed. Bare digits are read as an international number, as WhatsApp sends them.
 */
export function normalizeParticipant(raw: string | number): ParticipantId {
  const cached = participantCache.get(raw);
  if (cached !== undefined) return cached;
  const participant = parseParticipant(raw);
  // Copies of an event repeat the same raw values; libphonenumber is the costly step.
  if (participantCache.size >= PARTICIPANT_CACHE_SIZE) participantCache.clear();
  participantCache.set(raw, participant);
  return participant;
}

const PARTICIPANT_CACHE_SIZE = 10_000;
const participantCache = new Map<string | number, ParticipantId>();

function parseParticipant(raw: string | number): ParticipantId {
  const text = String(raw).trim();
  const jid = splitJid(text);
  if (jid) {
    if (jid.server === "lid") return normalizeLid(jid.user);
    if (!PHONE_SERVERS.has(jid.server)) {
      throw new InvalidIdentityError(`participant JID server "@${jid.server}" is not a user`);
    }
    return normalizePhone(jid.user);
  }
  if (text.toLowerCase().startsWith("lid:")) return normalizeLid(text.slice(4));
  if (text.toLowerCase().startsWith("bsuid:")) return normalizeBsuid(text);
  return normalizePhone(text);
}

/** Normalises a phone number to E.164 (`+` and digits); throws {@link InvalidIdentityError}. */
export function normalizePhone(raw: string): ParticipantId {
  const compact = raw.replace(FORMATTING, "");
  const digits = compact.startsWith("+") ? compact.slice(1) : compact;
  if (!/^[0-9]{6,17}$/.test(digits)) {
    throw new InvalidIdentityError("phone number must be 6 to 17 digits, with an optional +");
  }
  const phone = parsePhoneNumberFromString(`+${digits}`);
  if (!phone || !phone.isPossible()) {
    throw new InvalidIdentityError("not a possible international phone number");
  }
  return phone.number;
}

function normalizeLid(user: string): ParticipantId {
  if (!/^[0-9]{1,32}$/.test(user)) throw new InvalidIdentityError("LID must be digits");
  return `lid:${user}`;
}
