/**
 * Deterministic fuzzing helpers: a seeded PRNG, random JSON and texts, mutations of example
 * payloads, texts and CSV files, and the check every fuzzed response must pass.
 */
import assert from "node:assert/strict";

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
  "a\u0000b",
  "\ud800",
  "x\udfffy",
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
  if (typeof value === "string" && rand() < 0.2) return mutateText(value, rand);
  return rand() < 0.3 ? randomJson(rand, 4) : value;
}

/** Texts that break naive code: NULs, lone surrogates, controls, markup, SQL, huge and empty. */
export const NASTY_TEXTS = [
  "",
  " ",
  "\u0000",
  "a\u0000b",
  "\ud800",
  "\udc00x",
  "x\ud83d",
  "\u202eevil",
  "\r\n\t",
  "%00",
  "%",
  "'; drop table x; --",
  "\\",
  '"',
  "{{name}}",
  "{{",
  "null",
  "[]",
  "{}",
  "-1",
  "0",
  "1e309",
  "NaN",
  "true",
  "é",
  "🙂",
  "x".repeat(5000),
  "\u0000".repeat(64),
];

/** A random text: a nasty one, printable noise, or a mix of both. */
export function randomText(rand: () => number): string {
  const r = rand();
  if (r < 0.5) return NASTY_TEXTS[Math.floor(rand() * NASTY_TEXTS.length)];
  const noise = Array.from(
    { length: Math.floor(rand() * 24) },
    () => String.fromCharCode(0x20 + Math.floor(rand() * 0x5f)),
  ).join("");
  return r < 0.8 ? noise : mutateText(noise, rand);
}

/** Inserts a NUL, a lone surrogate or a nasty text into a string, or cuts it. */
export function mutateText(text: string, rand: () => number): string {
  const at = Math.floor(rand() * (text.length + 1));
  const r = rand();
  if (r < 0.25) return text.slice(0, at) + "\u0000" + text.slice(at);
  if (r < 0.5) return text.slice(0, at) + (rand() < 0.5 ? "\ud800" : "\udfff") + text.slice(at);
  if (r < 0.75) return text.slice(0, at) + NASTY_TEXTS[Math.floor(rand() * 12)] + text.slice(at);
  return text.slice(0, at);
}

/** A random value the Fetch API accepts in a header (Latin-1 without NUL, CR or LF). */
export function randomHeaderValue(rand: () => number): string {
  const r = rand();
  if (r < 0.2) return "";
  if (r < 0.4) return "x".repeat(Math.floor(rand() * 4096));
  return Array.from({ length: 1 + Math.floor(rand() * 64) }, () => {
    const c = rand();
    if (c < 0.05) return "\t";
    if (c < 0.2) return String.fromCharCode(0x80 + Math.floor(rand() * 0x80));
    return String.fromCharCode(0x20 + Math.floor(rand() * 0x5f));
  }).join("").trim() || "x";
}

/**
 * A random CSV upload built around `phones`: a header row (sometimes without a phone column),
 * separators of every kind, quoted and nasty cells, short and long rows.
 */
export function randomCsv(rand: () => number, phones: readonly string[]): string {
  const separator = [",", ";", "\t"][Math.floor(rand() * 3)];
  const cell = () => {
    const r = rand();
    const text = r < 0.3 ? phones[Math.floor(rand() * phones.length)] : randomText(rand);
    return rand() < 0.3 ? `"${text.replaceAll('"', '""')}"` : text;
  };
  const columns = ["phone", "name", randomText(rand), "time"].filter(() => rand() < 0.85);
  const lines = [columns.join(separator)];
  for (let i = Math.floor(rand() * 6); i > 0; i--) {
    const width = Math.max(0, columns.length + Math.floor(rand() * 3) - 1);
    lines.push(Array.from({ length: width }, cell).join(separator));
  }
  return lines.join(rand() < 0.2 ? "\r\n" : "\n") + (rand() < 0.5 ? "\n" : "");
}

/** What a fuzzed request got back. */
export interface FuzzedResponse {
  status: number;
  // deno-lint-ignore no-explicit-any -- response bodies are checked field by field
  body: any;
}

/**
 * Reads a response to fuzzed input and checks the rules every function keeps: never a 5xx; a
 * refusal (4xx) is a JSON error (`success: false`, `error`, `message`), and a 400 names the path
 * of each problem in `issues`.
 */
export async function checkFuzzedResponse(
  response: Response,
  context: string,
): Promise<FuzzedResponse> {
  const text = await response.text();
  assert.ok(response.status < 500, `${response.status} for ${context}: ${text.slice(0, 300)}`);
  if (response.status < 400) return { status: response.status, body: text };
  let body;
  try {
    body = JSON.parse(text);
  } catch {
    assert.fail(`${response.status} is not JSON for ${context}: ${text.slice(0, 300)}`);
  }
  assert.equal(body.success, false, context);
  assert.equal(typeof body.error, "string", context);
  assert.equal(typeof body.message, "string", context);
  if (response.status === 400) {
    assert.ok(
      Array.isArray(body.issues) && body.issues.length > 0,
      `400 ${body.error} without issues for ${context}`,
    );
    for (const issue of body.issues) {
      assert.equal(typeof issue.path, "string", `${body.error}: ${JSON.stringify(issue)}`);
      assert.ok(issue.path.length > 0, `${body.error}: empty path for ${context}`);
    }
  }
  return { status: response.status, body };
}
