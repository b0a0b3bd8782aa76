import assert from "node:assert/strict";
import { ConfigError, parseConfig } from "../supabase/functions/_shared/core/config.ts";

const DB = { SUPABASE_DB_URL: "postgres://postgres@127.0.0.1:5432/postgres" };

Deno.test("config: defaults", () => {
  const config = parseConfig({ ...DB, WEBHOOK_SECRET: "0123456789abcdef" });
  assert.equal(config.dedup.windowMs, 5000);
  assert.equal(config.dedup.memoryMaxKeys, 10000);
  assert.equal(config.allowUnsigned, false);
  assert.equal(config.redis, undefined);
  assert.equal(config.database.kind, "postgres");
});

Deno.test("config: Redis needs both URL and token; a short secret is refused", () => {
  assert.throws(
    () => parseConfig({ ...DB, UPSTASH_REDIS_REST_URL: "https://example.upstash.io" }),
    ConfigError,
  );
  assert.throws(() => parseConfig({ ...DB, WEBHOOK_SECRET: "short" }), /at least 16/);
  const config = parseConfig({
    ...DB,
    UPSTASH_REDIS_REST_URL: "https://example.upstash.io",
    UPSTASH_REDIS_REST_TOKEN: "t",
    REDIS_TIMEOUT_MS: "250",
  });
  assert.equal(config.redis?.timeoutMs, 250);
});

Deno.test("config: a database is required; the Data API is used without SUPABASE_DB_URL", () => {
  assert.throws(() => parseConfig({}), /SUPABASE_DB_URL/);
  const config = parseConfig({
    SUPABASE_URL: "https://abc.supabase.co",
    SUPABASE_SERVICE_ROLE_KEY: "service-role",
  });
  assert.equal(config.database.kind, "supabase-rpc");
});

Deno.test("config: numbers are checked", () => {
  assert.throws(() => parseConfig({ ...DB, DEDUP_WINDOW_MS: "0" }), /DEDUP_WINDOW_MS/);
  assert.throws(() => parseConfig({ ...DB, DEDUP_MEMORY_MAX_KEYS: "-1" }), /DEDUP_MEMORY_MAX_KEYS/);
  assert.throws(
    () => parseConfig({ ...DB, DEDUP_WINDOW_MS: "60000", DEDUP_CLAIM_TTL_MS: "1000" }),
    /DEDUP_CLAIM_TTL_MS/,
  );
  assert.equal(parseConfig({ ...DB, ALLOW_UNSIGNED_WEBHOOKS: "true" }).allowUnsigned, true);
  assert.throws(() => parseConfig({ ...DB, ALLOW_UNSIGNED_WEBHOOKS: "maybe" }), ConfigError);
});

Deno.test("logs: phone numbers are masked, batch and message ids stay readable", async () => {
  const { maskNumbers } = await import("../supabase/functions/_shared/core/log.ts");
  assert.equal(maskNumbers("from 5511988887777@c.us"), "from **********777@c.us");
  assert.equal(maskNumbers("call +5511988887777 now"), "call +55********777 now");
  const uuid = "04e12345-1234-4a5b-8c9d-012345678901";
  assert.equal(maskNumbers(`batch ${uuid}`), `batch ${uuid}`);
  assert.equal(maskNumbers("wamid.HBgM5511988887777"), "wamid.HBgM5511988887777");
});
