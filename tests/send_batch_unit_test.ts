/**
 * Pure parts of whatsapp-send-batch: configuration, message rendering, WAHA ids, pacing.
 */
import assert from "node:assert/strict";
import { ConfigError } from "../supabase/functions/_shared/core/config.ts";
import { parseSendBatchConfig } from "../supabase/functions/_shared/send_batch/config.ts";
import { renderMessage } from "../supabase/functions/_shared/send_batch/message.ts";
import { wahaMessageId } from "../supabase/functions/_shared/send_batch/providers/waha.ts";

Deno.test("config: defaults (80/s, 50 s budget, lease = timeout + 30 s) and required provider settings", () => {
  const config = parseSendBatchConfig({
    SUPABASE_DB_URL: "postgres://x@127.0.0.1/db",
    META_PHONE_NUMBER_ID: "1065",
    META_ACCESS_TOKEN: "t",
  });
  assert.equal(config.ratePerSecond, 80);
  assert.equal(config.timeBudgetMs, 50_000);
  assert.equal(config.leaseMs, 45_000);
  assert.equal(config.provider.kind, "meta");
  assert.throws(
    () =>
      parseSendBatchConfig({ SUPABASE_DB_URL: "postgres://x@h/db", SEND_PROVIDER: "evolution" }),
    (error) => {
      assert.ok(error instanceof ConfigError);
      assert.ok(error.problems.some((p) => p.startsWith("EVOLUTION_API_URL")));
      return true;
    },
  );
  assert.throws(() =>
    parseSendBatchConfig({
      SUPABASE_DB_URL: "postgres://x@h/db",
      SEND_PROVIDER: "waha",
      WAHA_API_URL: "http://w",
      SEND_PROVIDER_TIMEOUT_MS: "5000",
      SEND_LEASE_MS: "4000",
    }), ConfigError);
});

Deno.test("message: {{placeholders}} filled from name and variables, in text and template components", () => {
  const recipient = { phone: "+14155552671", name: "Ana", variables: { time: "9:00" } };
  assert.deepEqual(
    renderMessage({ type: "text", text: "Hi {{ name }}, at {{time}}{{missing}}" }, recipient),
    {
      type: "text",
      text: "Hi Ana, at 9:00",
    },
  );
  const template = renderMessage({
    type: "template",
    template: {
      name: "t",
      language: "en",
      components: [{ type: "body", parameters: [{ type: "text", text: "{{time}}" }] }],
    },
  }, recipient);
  assert.deepEqual(template, {
    type: "template",
    template: {
      name: "t",
      language: "en",
      components: [{ type: "body", parameters: [{ type: "text", text: "9:00" }] }],
    },
  });
});

Deno.test("WAHA message ids are normalised as whatsapp_messages stores them", () => {
  assert.equal(wahaMessageId({ id: "true_14155552671@c.us_3EB0ABC" }), "3EB0ABC");
  assert.equal(
    wahaMessageId({ id: { id: "3EB0DEF", _serialized: "true_1@c.us_3EB0DEF" } }),
    "3EB0DEF",
  );
  assert.equal(wahaMessageId({ key: { id: "BAE5123" } }), "BAE5123");
  assert.equal(wahaMessageId({}), undefined);
});
