/**
 * Callers as Supabase authenticates them now and before: ES256 user tokens with a `kid` (inline
 * key set, or fetched and refetched after a rotation), secret API keys as the service role,
 * publishable keys as nobody in particular, and legacy HS256 tokens, for whatsapp-send-batch
 * (real database, RLS) and webhook-stats.
 */
import assert from "node:assert/strict";
import { parseStatsConfig } from "../supabase/functions/webhook-stats/config.ts";
import { createStatsHandler } from "../supabase/functions/webhook-stats/handler.ts";
import { parseSendBatchConfig } from "../supabase/functions/_shared/send_batch/config.ts";
import { ConfigError } from "../supabase/functions/_shared/core/config.ts";
import { silentLogger } from "../supabase/functions/_shared/core/log.ts";
import { FakeWhatsAppProvider, providerEnv } from "./support/fake_whatsapp_provider.ts";
import { startJwksServer } from "./support/jwks_server.ts";
import { generateSigningKey, LOCAL_SIGNING_KEY, localJwks, mintJwt } from "./support/jwt.ts";
import { call, phones, sendBatchHandler } from "./support/send_batch.ts";

const opts = { sanitizeResources: false, sanitizeOps: false };
const SECRET_KEY = `sb_secret_${crypto.randomUUID().replaceAll("-", "")}`;
const PUBLISHABLE_KEY = `sb_publishable_${crypto.randomUUID().replaceAll("-", "")}`;
/** A project on JWT signing keys and the new API keys, with its key set inline. */
const SIGNING_KEYS_ENV = {
  SUPABASE_JWKS: JSON.stringify(localJwks()),
  SUPABASE_SECRET_KEYS: JSON.stringify({ default: SECRET_KEY }),
  SUPABASE_PUBLISHABLE_KEYS: JSON.stringify({ default: PUBLISHABLE_KEY, web: "sb_publishable_w1" }),
};

/** A request to the handler with exactly these headers. */
async function send(
  handler: (request: Request) => Promise<Response>,
  method: string,
  path: string,
  headers: Record<string, string>,
  body?: unknown,
) {
  const response = await handler(
    new Request(`http://localhost/whatsapp-send-batch${path}`, {
      method,
      headers: body === undefined ? headers : { ...headers, "content-type": "application/json" },
      body: body === undefined ? undefined : JSON.stringify(body),
    }),
  );
  const text = await response.text();
  return { status: response.status, body: text ? JSON.parse(text) : {} };
}

function statsHandler(env: Record<string, string>) {
  const config = parseStatsConfig({ SUPABASE_DB_URL: "postgres://unused", ...env });
  return createStatsHandler({
    auth: config.auth,
    read: () => Promise.resolve({ total: 0 }),
    logger: silentLogger,
  });
}

async function statsStatus(
  handler: (request: Request) => Promise<Response>,
  headers: Record<string, string>,
): Promise<number> {
  const response = await handler(new Request("http://localhost/webhook-stats", { headers }));
  await response.body?.cancel();
  return response.status;
}

Deno.test("config: inline key set first, else SUPABASE_JWKS_URL, else the project's well-known URL", () => {
  const base = { SUPABASE_DB_URL: "postgres://unused" };
  const inline = parseStatsConfig({
    ...base,
    ...SIGNING_KEYS_ENV,
    SUPABASE_JWKS_URL: "https://x.supabase.co/keys",
  });
  assert.equal(inline.auth.keySet?.kind, "inline");
  assert.deepEqual(inline.auth.secretKeys, [SECRET_KEY]);
  assert.deepEqual(inline.auth.publishableKeys, [PUBLISHABLE_KEY, "sb_publishable_w1"]);
  const url = parseStatsConfig({
    ...base,
    SUPABASE_JWKS_URL: "https://x.supabase.co/keys",
    SUPABASE_URL: "https://y.supabase.co",
  });
  assert.deepEqual(url.auth.keySet, { kind: "remote", url: "https://x.supabase.co/keys" });
  const derived = parseStatsConfig({ ...base, SUPABASE_URL: "https://y.supabase.co/" });
  assert.deepEqual(derived.auth.keySet, {
    kind: "remote",
    url: "https://y.supabase.co/auth/v1/.well-known/jwks.json",
  });
  // A plaintext hop to another host could swap the keys: never fetched from there.
  const docker = parseStatsConfig({ ...base, SUPABASE_URL: "http://kong:8000" });
  assert.equal(docker.auth.keySet, undefined);
  assert.equal(parseStatsConfig(base).auth.keySet, undefined);
  const sendBatch = parseSendBatchConfig({
    ...base,
    ...providerEnv({ url: "http://127.0.0.1:9" }, "meta"),
    ...SIGNING_KEYS_ENV,
  });
  assert.equal(sendBatch.auth.keySet?.kind, "inline");
  assert.equal(sendBatch.serviceRoleKey, SECRET_KEY, "the continuation calls with the secret key");
});

Deno.test("config: bad key settings are named, and never echo a key", () => {
  const bad: [Record<string, string>, string][] = [
    [{ SUPABASE_SECRET_KEYS: `sb_secret_${"q".repeat(30)}` }, "SUPABASE_SECRET_KEYS"],
    [{ SUPABASE_SECRET_KEYS: '["sb_secret_in_a_list_not_a_map"]' }, "SUPABASE_SECRET_KEYS"],
    [{ SUPABASE_PUBLISHABLE_KEYS: '{"default":42}' }, "SUPABASE_PUBLISHABLE_KEYS"],
    [{ SUPABASE_JWKS: "{not json" }, "SUPABASE_JWKS"],
    [{ SUPABASE_JWKS: JSON.stringify({ keys: [LOCAL_SIGNING_KEY] }) }, "SUPABASE_JWKS"],
    [{ SUPABASE_JWKS_URL: "http://auth.example.com/jwks.json" }, "SUPABASE_JWKS_URL"],
  ];
  for (const [env, name] of bad) {
    assert.throws(
      () => parseStatsConfig({ SUPABASE_DB_URL: "postgres://unused", ...env }),
      (error: unknown) => {
        assert.ok(error instanceof ConfigError);
        assert.ok(error.problems.some((p) => p.startsWith(name)), error.message);
        assert.ok(!error.message.includes("qqqq") && !error.message.includes("in_a_list"));
        assert.ok(!error.message.includes(String(LOCAL_SIGNING_KEY.d)));
        return true;
      },
    );
  }
});

Deno.test("webhook-stats: the service role by ES256 token, secret key or legacy HS256; others refused", async () => {
  const handler = statsHandler(SIGNING_KEYS_ENV);
  const stranger = await generateSigningKey(String(LOCAL_SIGNING_KEY.kid));
  const accepted: [string, Record<string, string>][] = [
    ["ES256", { authorization: `Bearer ${await mintJwt({ role: "service_role", alg: "ES256" })}` }],
    ["secret key in apikey", { apikey: SECRET_KEY }],
    ["secret key as bearer", { authorization: `Bearer ${SECRET_KEY}` }],
    ["secret key beside the publishable one", {
      apikey: PUBLISHABLE_KEY,
      authorization: `Bearer ${SECRET_KEY}`,
    }],
    ["legacy HS256", { authorization: `Bearer ${await mintJwt({ role: "service_role" })}` }],
  ];
  for (const [label, headers] of accepted) {
    assert.equal(await statsStatus(handler, headers), 200, label);
  }
  const refused: [string, Record<string, string>, number][] = [
    ["nothing", {}, 401],
    ["publishable key", { apikey: PUBLISHABLE_KEY }, 403],
    ["publishable key as bearer", {
      authorization: `Bearer ${PUBLISHABLE_KEY}`,
      apikey: PUBLISHABLE_KEY,
    }, 403],
    ["another publishable key", { apikey: "sb_publishable_w1" }, 403],
    ["unknown key", { apikey: `${SECRET_KEY}x` }, 401],
    ["user token", {
      authorization: `Bearer ${await mintJwt({ sub: crypto.randomUUID(), alg: "ES256" })}`,
    }, 403],
    [
      "signed by an unknown key with a known kid",
      {
        authorization: `Bearer ${await mintJwt({
          role: "service_role",
          alg: "ES256",
          signingKey: stranger,
        })}`,
      },
      401,
    ],
    [
      "signed by an unknown kid",
      {
        authorization: `Bearer ${await mintJwt({
          role: "service_role",
          alg: "ES256",
          signingKey: await generateSigningKey(),
        })}`,
      },
      401,
    ],
    [
      "expired ES256",
      {
        authorization: `Bearer ${await mintJwt({
          role: "service_role",
          alg: "ES256",
          expiresInS: -60,
        })}`,
      },
      401,
    ],
    [
      "bad JWT beside a good secret key",
      { authorization: "Bearer not.a.jwt", apikey: SECRET_KEY },
      401,
    ],
  ];
  for (const [label, headers, status] of refused) {
    assert.equal(await statsStatus(handler, headers), status, label);
  }
});

Deno.test("webhook-stats: a legacy project (no key set, no API keys) still takes HS256 only", async () => {
  const handler = statsHandler({});
  const hs256 = await mintJwt({ role: "service_role" });
  assert.equal(await statsStatus(handler, { authorization: `Bearer ${hs256}` }), 200);
  const es256 = await mintJwt({ role: "service_role", alg: "ES256" });
  assert.equal(await statsStatus(handler, { authorization: `Bearer ${es256}` }), 401);
  assert.equal(await statsStatus(handler, { apikey: SECRET_KEY }), 401);
});

Deno.test(
  "send-batch: ES256 users under RLS, the secret key as the service role, publishable keys refused",
  opts,
  async () => {
    const fake = FakeWhatsAppProvider.start();
    const fn = sendBatchHandler(fake, SIGNING_KEYS_ENV);
    try {
      const id = crypto.randomUUID();
      const es256 = await mintJwt({ sub: id, alg: "ES256" });
      const created = await call(fn.handler, "POST", "", es256, {
        message: "Hello",
        recipients: phones(2).map((phone) => ({ phone })),
      });
      assert.equal(created.status, 201, JSON.stringify(created.body));
      const batchId = created.body.batch_id as string;
      assert.equal((await call(fn.handler, "GET", `/${batchId}`, es256)).status, 200);
      // Another user (legacy HS256 still works) sees nothing of it: RLS as that user.
      const other = await mintJwt({ sub: crypto.randomUUID() });
      assert.equal((await call(fn.handler, "GET", `/${batchId}`, other)).status, 404);

      const asService = await send(fn.handler, "GET", `/${batchId}`, { apikey: SECRET_KEY });
      assert.equal(asService.status, 200);
      assert.equal(asService.body.total, 2);
      // The drain schedule (service role only) resumes whatever batches of the database need it.
      assert.equal((await send(fn.handler, "POST", "/drain", { apikey: SECRET_KEY })).status, 200);
      assert.equal((await call(fn.handler, "POST", "/drain", es256)).status, 403);

      const stranger = await generateSigningKey();
      const refused: [string, Record<string, string>][] = [
        ["publishable key", { apikey: PUBLISHABLE_KEY }],
        ["publishable key as bearer", { authorization: `Bearer ${PUBLISHABLE_KEY}` }],
        ["unknown key", {
          authorization: `Bearer ${await mintJwt({ sub: id, alg: "ES256", signingKey: stranger })}`,
        }],
        ["expired", {
          authorization: `Bearer ${await mintJwt({ sub: id, alg: "ES256", expiresInS: -60 })}`,
        }],
      ];
      for (const [label, headers] of refused) {
        const answer = await send(fn.handler, "GET", `/${batchId}`, headers);
        assert.equal(answer.status, 401, label);
        assert.equal(answer.body.error, "unauthorized", label);
        assert.equal((await send(fn.handler, "POST", "/drain", headers)).status, 401, label);
      }
    } finally {
      await fn.close();
      await fake.stop();
    }
  },
);

Deno.test(
  "send-batch: a rotated signing key is picked up by fetching the project's key set again",
  opts,
  async () => {
    const fake = FakeWhatsAppProvider.start();
    const first = await generateSigningKey("key-1");
    const rotated = await generateSigningKey("key-2");
    const jwks = startJwksServer([first]);
    const fn = sendBatchHandler(fake, { SUPABASE_URL: jwks.url, JWKS_COOLDOWN_MS: "0" });
    try {
      const id = crypto.randomUUID();
      const progress = async (signingKey = first) =>
        (await call(
          fn.handler,
          "GET",
          `/${crypto.randomUUID()}`,
          await mintJwt({ sub: id, alg: "ES256", signingKey }),
        ))
          .status;
      assert.equal(await progress(), 404, "verified (no such batch for this user)");
      assert.equal(await progress(), 404);
      assert.equal(jwks.fetches, 1, "the key set is cached");

      jwks.publish([first, rotated]);
      assert.equal(await progress(rotated), 404, "the new kid is fetched and verified");
      assert.equal(jwks.fetches, 2);
      assert.equal(await progress(first), 404);
      assert.equal(jwks.fetches, 2);

      // Gone from the set: refused after one more fetch.
      jwks.publish([rotated]);
      assert.equal(await progress(await generateSigningKey("key-3")), 401);
      assert.equal(jwks.fetches, 3);
      assert.equal(await progress(first), 401, "the retired key is gone");

      // The key set cannot be fetched: 503 with Retry-After, not a 401 that signs the user out.
      await jwks.close();
      const unreachable = await call(
        fn.handler,
        "GET",
        `/${crypto.randomUUID()}`,
        await mintJwt({ sub: id, alg: "ES256", signingKey: await generateSigningKey("key-4") }),
      );
      assert.equal(unreachable.status, 503);
      assert.equal(unreachable.body.error, "auth_unavailable");
    } finally {
      await fn.close();
      await fake.stop();
    }
  },
);
