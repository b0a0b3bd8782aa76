/**
 * Deterministic fuzzing helpers: a seeded PRNG, random JSON and mutations of example payloads.
 */

/** A small deterministic PRNG (mulberry32), so a failure can be replayed from its seed. */
export function prng(seed: number) {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Keys the gateway formats use, so random objects reach the parsers' deeper paths. */
const KEYS = [
  "event",
  "data",
  "payload",
  "participants",
  "participant",
  "id",
  "groupJid",
  "object",
  "entry",
  "changes",
  "field",
  "value",
  "groups",
  "type",
  "action",
  "instance",
  "session",
  "engine",
  "me",
  "chatId",
  "recipientIds",
  "timestamp",
  "phone_number",
  "pn",
  "lid",
  "phoneNumber",
  "group",
  "group_id",
  "added_participants",
  "wa_id",
  "notification",
  "messages",
  "statuses",
  "metadata",
  "phone_number_id",
  "from",
  "to",
  "key",
  "remoteJid",
  "fromMe",
  "keyId",
  "status",
  "ack",
  "body",
  "text",
  "message",
  "sender",
];
/** Strings that mean something to a parser, and some that break naive ones. */
const STRINGS = [
  "",
  "join",
  "leave",
  "add",
  "remove",
  "promote",
  "group-participants.update",
  "group_join",
  "group.v2.participants",
  "whatsapp_business_account",
  "group_participants_update",
  "group_participants_add",
  "@g.us",
  "x@lid",
  "@c.us",
  "NaN",
  "-1",
  "1e309",
  "\u0000",
  "🙂",
  "messages",
  "messages.upsert",
  "messages.update",
  "message.ack",
  "READ",
  "delivered",
  "false_5511@c.us_ABC",
  "wamid.X",
];

/** A random JSON value built from the known keys and strings. */
export function randomJson(rand: () => number, depth = 0): unknown {
  const r = rand();
  if (depth > 4 || r < 0.3) {
    const leaf = rand();
    if (leaf < 0.4) return STRINGS[Math.floor(rand() * STRINGS.length)];
    if (leaf < 0.6) return Math.floor(rand() * 1e13) * (rand() < 0.1 ? -1 : 1);
    if (leaf < 0.7) return rand() < 0.5;
    if (leaf < 0.8) return null;
    return String(rand()).slice(0, Math.floor(rand() * 12));
  }
  if (r < 0.5) {
    return Array.from({ length: Math.floor(rand() * 4) }, () => randomJson(rand, depth + 1));
  }
  const object: Record<string, unknown> = {};
  for (let i = Math.floor(rand() * 6); i > 0; i--) {
    object[KEYS[Math.floor(rand() * KEYS.length)]] = randomJson(rand, depth + 1);
  }
  return object;
}

/** A random mutation of a value: fields dropped, replaced or mutated in depth. */
export function mutate(value: unknown, rand: () => number): unknown {
  if (Array.isArray(value)) {
    const copy = value.map((v) => (rand() < 0.3 ? mutate(v, rand) : v));
    if (rand() < 0.2) copy.pop();
    return copy;
  }
  if (value && typeof value === "object") {
    const copy: Record<string, unknown> = { ...(value as Record<string, unknown>) };
    for (const key of Object.keys(copy)) {
      const r = rand();
      if (r < 0.1) delete copy[key];
      else if (r < 0.2) copy[key] = randomJson(rand, 3);
      else if (r < 0.5) copy[key] = mutate(copy[key], rand);
    }
    return copy;
  }
  return rand() < 0.3 ? randomJson(rand, 4) : value;
}
