/**
 * whatsapp-message-webhook over HTTP: three function instances (runner processes, index.ts as
 * deployed) sharing the database and Redis; every signature scheme accepted, wrong or missing.
 */
import assert from "node:assert/strict";
import { freePort } from "../scripts/lib/ports.ts";
import { startRedis } from "../scripts/lib/redis_server.ts";
import { startUpstashRestServer } from "../scripts/lib/upstash_rest_server.ts";
import * as ex from "./fixtures/message_examples.ts";
import { databaseUrl, sqlClient } from "./support/env.ts";
import { startFunctionInstance } from "./support/function_instance.ts";
import { MESSAGE_ENV } from "./support/message_webhook.ts";
import { RealtimeChangeFeed } from "./support/realtime_changes.ts";
import { type Scheme, signedHeaders } from "./support/signing.ts";
import { twilioSignature } from "../supabase/functions/_shared/core/twilio_signature.ts";

const FN = "whatsapp-message-webhook";
/** The public URL Twilio is given; behind the platform's gateway the function sees another one. */
const PUBLIC_URL = "https://project-ref.supabase.co/functions/v1/whatsapp-message-webhook";

Deno.test("message e2e: three instances, shared database and Redis", async (t) => {
  const redis = await startRedis({ port: freePort() });
  const endpoint = await startUpstashRestServer({ redisUrl: redis.url, token: "e2e-token" });
  const env = {
    SUPABASE_DB_URL: databaseUrl(),
    ...MESSAGE_ENV,
    UPSTASH_REDIS_REST_URL: endpoint.url,
    UPSTASH_REDIS_REST_TOKEN: "e2e-token",
    TWILIO_WEBHOOK_URL: PUBLIC_URL,
  };
  const instances = await Promise.all([0, 1, 2].map(() => startFunctionInstance(env)));
  const urls = instances.map((i) => i.url(FN));
  const sql = sqlClient();
  const feed = await RealtimeChangeFeed.open(sql);
  const post = async (url: string, body: string, headers: Record<string, string>) => {
    const response = await fetch(url, {
      method: "POST",
      body,
      headers: { "content-type": "application/json", ...headers },
    });
    return { status: response.status, body: await response.json() };
  };
  try {
    await t.step(
      "20 copies of one message at once across three instances → one insert",
      async () => {
        const account = ex.phoneNumberId();
        const id = `wamid.${ex.messageId("HBgM")}`;
        const body = JSON.stringify(
          ex.metaWebhook(account, [{ messages: [ex.metaMessage({ id, from: ex.phoneDigits() })] }]),
        );
        const results = await Promise.all(
          Array.from(
            { length: 20 },
            async (_, i) => post(urls[i % 3], body, await signedHeaders("meta", body)),
          ),
        );
        assert.ok(results.every((r) => r.status === 200));
        const outcomes = results.map((r) => r.body.results[0].outcome);
        assert.equal(outcomes.filter((o) => o === "applied").length, 1, outcomes.join());
        assert.equal((await feed.changes(id)).length, 1);
      },
    );

    await t.step(
      "each scheme: accepted, wrong secret 401, missing 401; nothing written",
      async () => {
        const business = ex.phoneDigits();
        const cases: [Scheme, (id: string) => unknown][] = [
          ["meta", (id) =>
            ex.metaWebhook(ex.phoneNumberId(), [{
              messages: [ex.metaMessage({ id, from: business })],
            }])],
          ["waha", (id) =>
            ex.wahaMessage({
              session: "s",
              me: `${business}@c.us`,
              id,
              from: "5511988887777@c.us",
              to: `${business}@c.us`,
            })],
          ["bearer", (id) =>
            ex.evolutionUpsert({
              instance: "i",
              sender: `${business}@s.whatsapp.net`,
              id,
              remoteJid: "5511988887777@s.whatsapp.net",
            })],
          ["generic", (id) =>
            ex.evolutionUpsert({
              instance: "i",
              sender: `${business}@s.whatsapp.net`,
              id,
              remoteJid: "5511988887777@s.whatsapp.net",
            })],
          ["standard", (id) =>
            ex.evolutionUpsert({
              instance: "i",
              sender: `${business}@s.whatsapp.net`,
              id,
              remoteJid: "5511988887777@s.whatsapp.net",
            })],
        ];
        for (const [scheme, payload] of cases) {
          const id = ex.messageId();
          const body = JSON.stringify(payload(id));
          const wrong = await post(urls[0], body, await signedHeaders(scheme, body, true));
          assert.equal(wrong.status, 401, `${scheme}: wrong`);
          const missing = await post(urls[1], body, {});
          assert.equal(missing.status, 401, `${scheme}: missing`);
          assert.equal((await feed.changes(id)).length, 0, `${scheme}: nothing written`);
          const ok = await post(urls[2], body, await signedHeaders(scheme, body));
          assert.equal(ok.status, 200, `${scheme}: ${JSON.stringify(ok.body)}`);
          assert.equal(ok.body.results[0].outcome, "applied", scheme);
          assert.equal((await feed.changes(id)).length, 1, `${scheme}: one insert`);
        }
      },
    );

    await t.step(
      "twilio: signed over the public URL (TWILIO_WEBHOOK_URL), not the URL seen here",
      async () => {
        const sid = `SM${crypto.randomUUID().replaceAll("-", "")}`;
        const form = ex.twilioIncoming({ sid, from: ex.phoneDigits(), to: ex.phoneDigits() });
        const send = (signedUrl: string) =>
          fetch(urls[0], {
            method: "POST",
            body: form.toString(),
            headers: {
              "content-type": "application/x-www-form-urlencoded",
              "x-twilio-signature": twilioSignature(MESSAGE_ENV.TWILIO_AUTH_TOKEN, signedUrl, form),
            },
          });
        const local = await send(urls[0]);
        assert.equal(local.status, 401);
        await local.body?.cancel();
        const response = await send(PUBLIC_URL);
        assert.equal(response.status, 200);
        assert.equal(response.headers.get("x-webhook-outcomes"), "applied");
        await response.body?.cancel();
        assert.equal((await feed.changes(sid)).length, 1);
      },
    );

    await t.step("GET handshake through the runner", async () => {
      const response = await fetch(
        `${
          urls[0]
        }?hub.mode=subscribe&hub.verify_token=${MESSAGE_ENV.META_VERIFY_TOKEN}&hub.challenge=42`,
      );
      assert.equal(await response.text(), "42");
    });
  } finally {
    await feed.close();
    await sql.end();
    for (const instance of instances) await instance.stop();
    await endpoint.close();
    await redis.stop();
  }
});
