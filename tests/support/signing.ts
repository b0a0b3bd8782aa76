/**
 * Signs test deliveries the way each gateway does.
 */
import { SignJWT } from "jose";
import { Webhook as StandardWebhook } from "standardwebhooks";
import { signBody } from "../../supabase/functions/_shared/core/webhook_auth.ts";

/** Secrets of every scheme, as the test instances are configured. */
export const SECRETS = {
  WEBHOOK_SECRET: "test-webhook-secret-0123456789",
  WAHA_HMAC_KEY: "waha-hmac-key-for-tests",
  META_APP_SECRET: "meta-app-secret-for-tests",
  STANDARD_WEBHOOKS_SECRET: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
  EVOLUTION_JWT_KEY: "evolution-jwt-key-for-tests",
};

/** A signing scheme name. */
export type Scheme = "generic" | "bearer" | "waha" | "meta" | "standard" | "evolution-jwt";

/** An HS256 JWT as Evolution API mints it for its `jwt_key` webhook header. */
export async function evolutionJwt(
  key = SECRETS.EVOLUTION_JWT_KEY,
  claims: Record<string, unknown> = { app: "evolution", action: "webhook" },
  expiresInSeconds = 600,
): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  return await new SignJWT(claims)
    .setProtectedHeader({ alg: "HS256", typ: "JWT" })
    .setIssuedAt(now)
    .setExpirationTime(now + expiresInSeconds)
    .sign(new TextEncoder().encode(key));
}

/** Headers that authenticate `body` under a scheme (with another secret when `wrong`). */
export async function signedHeaders(
  scheme: Scheme,
  body: string,
  wrong = false,
): Promise<Record<string, string>> {
  const pick = (secret: string) => (wrong ? `${secret}-wrong` : secret);
  switch (scheme) {
    case "generic":
      return {
        "x-webhook-signature": `sha256=${signBody(pick(SECRETS.WEBHOOK_SECRET), body)}`,
      };
    case "bearer":
      return { authorization: `Bearer ${pick(SECRETS.WEBHOOK_SECRET)}` };
    case "waha":
      return {
        "x-webhook-hmac": signBody(pick(SECRETS.WAHA_HMAC_KEY), body, "sha512"),
        "x-webhook-hmac-algorithm": "sha512",
        "x-webhook-timestamp": String(Date.now()),
      };
    case "meta":
      return {
        "x-hub-signature-256": `sha256=${signBody(pick(SECRETS.META_APP_SECRET), body)}`,
      };
    case "evolution-jwt":
      return { authorization: `Bearer ${await evolutionJwt(pick(SECRETS.EVOLUTION_JWT_KEY))}` };
    case "standard": {
      const secret = wrong
        ? "whsec_" + btoa("another-secret-of-24-bytes!!")
        : SECRETS.STANDARD_WEBHOOKS_SECRET;
      const id = `msg_${crypto.randomUUID()}`;
      const now = new Date();
      return {
        "webhook-id": id,
        "webhook-timestamp": String(Math.floor(now.getTime() / 1000)),
        "webhook-signature": new StandardWebhook(secret).sign(id, now, body),
      };
    }
  }
}
