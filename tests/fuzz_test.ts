/**
 * Fuzzing the format detector and parsers through the handler: random JSON, every truncation of
 * each example payload, and random mutations of them. Always 200 or 400, never 500; random and
 * truncated JSON never writes.
 */
import assert from "node:assert/strict";
import { parseConfig } from "../supabase/functions/_shared/core/config.ts";
import { silentLogger } from "../supabase/functions/_shared/core/log.ts";
import { parseDelivery } from "../supabase/functions/_shared/membership/formats/registry.ts";
import { createMembershipWebhookFromConfig } from "../supabase/functions/whatsapp-membership-webhook/handler.ts";
import { databaseUrl, sqlClient } from "./support/env.ts";
import { SECRETS, signedHeaders } from "./support/signing.ts";
import * as examples from "./fixtures/gateway_examples.ts";

/** A small deterministic PRNG (mulberry32), so a failure can be replayed from its seed. */
function prng(seed: number) {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

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
];
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
];

function randomJson(rand: () => number, depth = 0): unknown {
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

function mutate(value: unknown, rand: () => number): unknown {
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

const EXAMPLES: unknown[] = Object.values(examples).filter((v) =>
  v && typeof v === "object" && !("generic" in (v as object)) && !("group" in (v as object))
);

Deno.test("fuzz: the detector and parsers never throw anything but their own errors", () => {
  const rand = prng(20261122);
  for (let i = 0; i < 5000; i++) {
    const json = i % 2 === 0 ? randomJson(rand) : mutate(EXAMPLES[i % EXAMPLES.length], rand);
    try {
      parseDelivery(json);
    } catch (error) {
      const name = (error as Error).name;
      assert.ok(
        name === "UnknownFormatError" || name === "PayloadFormatError",
        `input ${JSON.stringify(json)} threw ${name}: ${(error as Error).message}`,
      );
    }
  }
});

Deno.test("fuzz: over HTTP, always 200 or 400; random and truncated JSON never write", async () => {
  const { handler, close } = createMembershipWebhookFromConfig(
    parseConfig({ SUPABASE_DB_URL: databaseUrl(), ...SECRETS }),
    silentLogger,
  );
  const sql = sqlClient();
  const count = async () =>
    Number((await sql`select count(*)::int as n from public.whatsapp_group_members`)[0].n);
  const send = async (body: string) => {
    const response = await handler(
      new Request("http://x/whatsapp-membership-webhook", {
        method: "POST",
        body,
        headers: await signedHeaders("generic", body),
      }),
    );
    const json = await response.json();
    assert.ok([200, 400].includes(response.status), `${response.status} for ${body}`);
    assert.equal(typeof json.success, "boolean");
    return response.status;
  };
  try {
    const before = await count();
    const rand = prng(42);
    for (let i = 0; i < 600; i++) await send(JSON.stringify(randomJson(rand)));
    for (const example of EXAMPLES) {
      const text = JSON.stringify(example);
      for (let cut = 0; cut < text.length; cut += Math.max(1, Math.floor(text.length / 40))) {
        assert.equal(await send(text.slice(0, cut)), 400);
      }
    }
    assert.equal(await count(), before, "random and truncated JSON wrote nothing");
    for (let i = 0; i < 300; i++) {
      await send(JSON.stringify(mutate(EXAMPLES[i % EXAMPLES.length], rand)));
    }
  } finally {
    await sql.end();
    await close();
  }
});
