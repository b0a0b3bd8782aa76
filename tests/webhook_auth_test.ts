/**
 * Every signature scheme, in-process: accepted with its secret, refused with another one, and
 * refused when its secret is not configured.
 */
import assert from "node:assert/strict";
import {
  signBody,
  UnauthorizedError,
  WebhookAuthenticator,
} from "../supabase/functions/_shared/core/webhook_auth.ts";
import { evolutionJwt, type Scheme, SECRETS, signedHeaders } from "./support/signing.ts";

const ALL = new WebhookAuthenticator({
  shared: SECRETS.WEBHOOK_SECRET,
  wahaHmacKey: SECRETS.WAHA_HMAC_KEY,
  metaAppSecret: SECRETS.META_APP_SECRET,
  standardWebhooksSecret: SECRETS.STANDARD_WEBHOOKS_SECRET,
  evolutionJwtKey: SECRETS.EVOLUTION_JWT_KEY,
});
const BODY = JSON.stringify({
  event: "join",
  groupJid: "120363025246125486@g.us",
  participant: "1",
});
const bytes = () => new TextEncoder().encode(BODY);

const EXPECTED: Record<Scheme, string> = {
  generic: "hmac-sha256",
  bearer: "bearer",
  waha: "waha-hmac",
  meta: "meta-signature",
  standard: "standard-webhooks",
  "evolution-jwt": "evolution-jwt",
};

Deno.test("auth: each scheme accepts its own signature and refuses another secret's", async () => {
  for (const [scheme, name] of Object.entries(EXPECTED) as [Scheme, string][]) {
    const good = new Headers(await signedHeaders(scheme, BODY));
    assert.equal(await ALL.verify(good, bytes()), name, scheme);
    const bad = new Headers(await signedHeaders(scheme, BODY, true));
    await assert.rejects(ALL.verify(bad, bytes()), UnauthorizedError, `${scheme} wrong secret`);
    const tampered = new TextEncoder().encode(BODY.replace("join", "leave"));
    if (scheme !== "bearer" && scheme !== "evolution-jwt") {
      await assert.rejects(ALL.verify(good, tampered), UnauthorizedError, `${scheme} tampered`);
    }
  }
  await assert.rejects(ALL.verify(new Headers(), bytes()), /missing signature/);
});

Deno.test("auth: a scheme whose secret is not configured is refused, naming the variable", async () => {
  const sharedOnly = new WebhookAuthenticator({ shared: SECRETS.WEBHOOK_SECRET });
  const cases: [Scheme, RegExp][] = [
    ["waha", /WAHA_HMAC_KEY/],
    ["meta", /META_APP_SECRET/],
    ["standard", /STANDARD_WEBHOOKS_SECRET/],
  ];
  for (const [scheme, variable] of cases) {
    const headers = new Headers(await signedHeaders(scheme, BODY));
    await assert.rejects(sharedOnly.verify(headers, bytes()), variable);
  }
  // Without EVOLUTION_JWT_KEY a JWT is just a wrong static token.
  const jwt = new Headers(await signedHeaders("evolution-jwt", BODY));
  await assert.rejects(sharedOnly.verify(jwt, bytes()), /bearer token is wrong/);
});

Deno.test("auth: WAHA's published HMAC-SHA512 vector", async () => {
  const body = '{"event":"message","session":"default","engine":"WEBJS"}';
  const hex = signBody("my-secret-key", body, "sha512");
  assert.equal(
    hex,
    "208f8a55dde9e05519e898b10b89bf0d0b3b0fdf11fdbf09b6b90476301b98d8097c462b2b17a6ce93b6b47a136cf2e78a33a63f6752c2c1631777076153fa89",
  );
  const waha = new WebhookAuthenticator({ wahaHmacKey: "my-secret-key" });
  const headers = new Headers({ "x-webhook-hmac": hex, "x-webhook-hmac-algorithm": "sha512" });
  assert.equal(await waha.verify(headers, new TextEncoder().encode(body)), "waha-hmac");
});

Deno.test("auth: Standard Webhooks timestamps outside ±5 minutes are refused", async () => {
  for (const offset of [-3600, 3600]) {
    const headers = await signedHeaders("standard", BODY);
    const id = headers["webhook-id"];
    const when = new Date(Date.now() + offset * 1000);
    const { Webhook } = await import("standardwebhooks");
    const signature = new Webhook(SECRETS.STANDARD_WEBHOOKS_SECRET).sign(id, when, BODY);
    const stale = new Headers({
      "webhook-id": id,
      "webhook-timestamp": String(Math.floor(when.getTime() / 1000)),
      "webhook-signature": signature,
    });
    await assert.rejects(ALL.verify(stale, bytes()), /too (old|new)/);
  }
});

Deno.test("auth: Evolution JWTs must be unexpired and carry Evolution's claims", async () => {
  const expired = await evolutionJwt(SECRETS.EVOLUTION_JWT_KEY, undefined, -3600);
  await assert.rejects(
    ALL.verify(new Headers({ authorization: `Bearer ${expired}` }), bytes()),
    /exp/,
  );
  const otherApp = await evolutionJwt(SECRETS.EVOLUTION_JWT_KEY, { app: "x", action: "webhook" });
  await assert.rejects(
    ALL.verify(new Headers({ authorization: `Bearer ${otherApp}` }), bytes()),
    /claims/,
  );
});
