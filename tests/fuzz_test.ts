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
import { mutate, prng, randomJson } from "./support/fuzz.ts";

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
