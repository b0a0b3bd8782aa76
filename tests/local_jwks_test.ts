/**
 * The local stack's signing keys: the runner serves its key set where Supabase Auth does, its
 * gateway check takes ES256 tokens as well as HS256 ones, and a function in a runner process
 * verifies both with no key setting (the runner hands it the key set, as the platform does).
 */
import assert from "node:assert/strict";
import { createRouter, type LocalFunction } from "../scripts/serve_functions.ts";
import { JWKS_PATH, localAuthEnv } from "../scripts/lib/local_jwt.ts";
import { databaseUrl } from "./support/env.ts";
import { startFunctionInstance } from "./support/function_instance.ts";
import { generateSigningKey, LOCAL_SIGNING_KEY, localJwks, mintJwt } from "./support/jwt.ts";

const INFO: Deno.ServeHandlerInfo<Deno.NetAddr> = {
  remoteAddr: { transport: "tcp", hostname: "127.0.0.1", port: 50000 },
  completed: Promise.resolve(),
};

Deno.test("runner: serves the public local key set at /auth/v1/.well-known/jwks.json", async () => {
  const route = createRouter([]);
  const response = await route(new Request(`http://h${JWKS_PATH}`), INFO);
  assert.equal(response.status, 200);
  const body = await response.json();
  assert.deepEqual(body, localJwks());
  assert.equal(body.keys[0].kid, LOCAL_SIGNING_KEY.kid);
  assert.equal(body.keys[0].alg, "ES256");
  assert.ok(!("d" in body.keys[0]), "never the private part");
  assert.equal((await route(new Request("http://h/auth/v1/other"), INFO)).status, 404);
});

Deno.test("runner: the gateway check takes ES256 (local key) and HS256 tokens, refuses others", async () => {
  let reached = 0;
  const fn: LocalFunction = {
    name: "private",
    verifyJwt: true,
    fetch: () => {
      reached++;
      return Response.json({ ok: true });
    },
  };
  const route = createRouter([fn]);
  const status = async (token: string) => {
    const request = new Request("http://h/functions/v1/private", {
      headers: { authorization: `Bearer ${token}` },
    });
    const response = await route(request, INFO);
    await response.body?.cancel();
    return response.status;
  };
  assert.equal(await status(await mintJwt({ sub: "u", alg: "ES256" })), 200);
  assert.equal(await status(await mintJwt({ sub: "u" })), 200);
  assert.equal(reached, 2);
  const stranger = await generateSigningKey(String(LOCAL_SIGNING_KEY.kid));
  assert.equal(await status(await mintJwt({ sub: "u", alg: "ES256", signingKey: stranger })), 401);
  assert.equal(await status(await mintJwt({ sub: "u", alg: "ES256", expiresInS: -60 })), 401);
  assert.equal(reached, 2);
});

Deno.test("runner: functions get the local key set only when nothing names the project's keys", () => {
  assert.deepEqual(JSON.parse(localAuthEnv({}).SUPABASE_JWKS), localJwks());
  assert.deepEqual(localAuthEnv({ SUPABASE_URL: "https://x.supabase.co" }), {});
  assert.deepEqual(localAuthEnv({ SUPABASE_JWKS_URL: "https://x.supabase.co/k" }), {});
  assert.deepEqual(localAuthEnv({ SUPABASE_JWKS: '{"keys":[]}' }), {});
});

Deno.test("runner process: webhook-stats takes the service role's ES256 token and secret key", async () => {
  const secretKey = `sb_secret_${crypto.randomUUID()}`;
  const instance = await startFunctionInstance({
    SUPABASE_DB_URL: databaseUrl(),
    WEBHOOK_SECRET: "local-dev-webhook-secret",
    SUPABASE_SECRET_KEYS: JSON.stringify({ default: secretKey }),
  });
  try {
    const status = async (headers: Record<string, string>) => {
      const response = await fetch(instance.url("webhook-stats"), { headers });
      await response.body?.cancel();
      return response.status;
    };
    const es256 = await mintJwt({ role: "service_role", alg: "ES256" });
    assert.equal(await status({ authorization: `Bearer ${es256}` }), 200);
    assert.equal(await status({ apikey: secretKey }), 200);
    assert.equal(
      await status({ authorization: `Bearer ${await mintJwt({ role: "service_role" })}` }),
      200,
    );
    const stranger = await generateSigningKey();
    const forged = await mintJwt({ role: "service_role", alg: "ES256", signingKey: stranger });
    assert.equal(await status({ authorization: `Bearer ${forged}` }), 401);
  } finally {
    await instance.stop();
  }
});
