/**
 * The Idempotency-Key header rules, the fingerprint and the layer's settings (no servers).
 */
import assert from "node:assert/strict";
import { ConfigError } from "../supabase/functions/_shared/core/config.ts";
import {
  parseKey,
  readIdempotencyKey,
} from "../supabase/functions/_shared/core/idempotency/key.ts";
import { InvalidIdempotencyKeyError } from "../supabase/functions/_shared/core/idempotency/errors.ts";
import { fingerprintRequest } from "../supabase/functions/_shared/core/idempotency/fingerprint.ts";
import { parseIdempotencyConfig } from "../supabase/functions/_shared/core/idempotency/config.ts";
import { isReplayableStatus } from "../supabase/functions/_shared/core/idempotency/layer.ts";

Deno.test("key: bare and quoted structured-field strings, both header names", () => {
  const uuid = crypto.randomUUID();
  assert.equal(readIdempotencyKey(new Headers({ "idempotency-key": uuid }))?.key, uuid);
  assert.equal(readIdempotencyKey(new Headers({ "Idempotency-Key": `"${uuid}"` }))?.key, uuid);
  assert.equal(
    readIdempotencyKey(new Headers({ "x-idempotency-key": "a.b_c:d-1" }))?.key,
    "a.b_c:d-1",
  );
  assert.equal(readIdempotencyKey(new Headers()), undefined);
  const both = readIdempotencyKey(
    new Headers({ "idempotency-key": "one", "x-idempotency-key": "two" }),
  );
  assert.deepEqual(both, { key: "one", header: "Idempotency-Key" });
});

Deno.test("key: webhook-id counts only when Standard Webhooks verified the delivery", () => {
  const headers = new Headers({ "webhook-id": "msg_2KWPBgLlAfxdpx2AI54pPJ85f4W" });
  assert.equal(readIdempotencyKey(headers, "hmac-sha256"), undefined);
  assert.equal(readIdempotencyKey(headers)?.key, undefined);
  assert.deepEqual(readIdempotencyKey(headers, "standard-webhooks"), {
    key: "msg_2KWPBgLlAfxdpx2AI54pPJ85f4W",
    header: "webhook-id",
  });
});

Deno.test("key: space, semicolon, 256 characters, empty, bad quoting → invalid_idempotency_key", () => {
  for (const bad of ["a b", "a;b", "x".repeat(256), "", '""', '"abc', "é", "a/b", "a,b"]) {
    assert.throws(() => parseKey("Idempotency-Key", bad), (error: unknown) => {
      assert.ok(error instanceof InvalidIdempotencyKeyError, bad);
      assert.equal(error.status, 400);
      assert.equal(error.code, "invalid_idempotency_key");
      return true;
    });
  }
  assert.equal(parseKey("Idempotency-Key", "x".repeat(255)), "x".repeat(255));
  assert.equal(parseKey("Idempotency-Key", " k "), "k");
});

Deno.test("fingerprint: method, path with query and body each change it; the host does not", () => {
  const body = new TextEncoder().encode('{"a":1}');
  const base = fingerprintRequest("POST", "http://a/fn", body);
  assert.match(base, /^[0-9a-f]{64}$/);
  assert.equal(fingerprintRequest("post", "http://b/fn", body), base);
  assert.notEqual(fingerprintRequest("PUT", "http://a/fn", body), base);
  assert.notEqual(fingerprintRequest("POST", "http://a/fn2", body), base);
  assert.notEqual(fingerprintRequest("POST", "http://a/fn?format=waha", body), base);
  assert.notEqual(
    fingerprintRequest("POST", "http://a/fn", new TextEncoder().encode('{"a":2}')),
    base,
  );
});

Deno.test("config: defaults, overrides and named errors", () => {
  assert.deepEqual(parseIdempotencyConfig({}), {
    enabled: true,
    ttlSeconds: 86_400,
    leaseSeconds: 60,
    memoryMaxKeys: 1_000,
    timeoutMs: 5_000,
  });
  const set = parseIdempotencyConfig({
    IDEMPOTENCY_ENABLED: "false",
    IDEMPOTENCY_TTL_SECONDS: "3600",
    IDEMPOTENCY_LEASE_SECONDS: "5",
  });
  assert.equal(set.enabled, false);
  assert.equal(set.ttlSeconds, 3600);
  assert.equal(set.leaseSeconds, 5);
  assert.throws(
    () => parseIdempotencyConfig({ IDEMPOTENCY_TTL_SECONDS: "0" }),
    (error: unknown) =>
      error instanceof ConfigError && /IDEMPOTENCY_TTL_SECONDS/.test(error.message),
  );
});

Deno.test("statuses: 2xx kept and replayed; 4xx and 5xx released", () => {
  assert.ok(isReplayableStatus(200) && isReplayableStatus(201) && isReplayableStatus(207));
  for (const status of [400, 401, 403, 409, 413, 422, 500, 503]) {
    assert.ok(!isReplayableStatus(status));
  }
});

Deno.test("webhook-stats layout: verify_jwt = false, index wires export default { fetch }", async () => {
  const { parse } = await import("smol-toml");
  const root = new URL("../", import.meta.url);
  const config = parse(await Deno.readTextFile(new URL("supabase/config.toml", root))) as {
    functions: Record<string, { verify_jwt?: boolean; entrypoint?: string; import_map?: string }>;
  };
  const fn = config.functions["webhook-stats"];
  assert.equal(fn.verify_jwt, false);
  assert.equal(fn.entrypoint, "./functions/webhook-stats/index.ts");
  assert.equal(fn.import_map, "./functions/webhook-stats/deno.json");
  const mod = await import("../supabase/functions/webhook-stats/index.ts");
  assert.deepEqual(Object.keys(mod), ["default"]);
  const imports = (path: string) =>
    Deno.readTextFile(new URL(path, root)).then((t) => JSON.parse(t).imports);
  assert.deepEqual(
    await imports("supabase/functions/webhook-stats/deno.json"),
    await imports("supabase/functions/whatsapp-membership-webhook/deno.json"),
  );
});
