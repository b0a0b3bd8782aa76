/**
 * Authentication of webhook deliveries. Each scheme has its own secret, set through env:
 *
 * | header(s)                                         | scheme                         | secret                     |
 * | ------------------------------------------------- | ------------------------------ | -------------------------- |
 * | `webhook-id`, `webhook-timestamp`, `webhook-signature` | Standard Webhooks (±5 min) | `STANDARD_WEBHOOKS_SECRET` |
 * | `X-Hub-Signature-256: sha256=<hex>`               | Meta Cloud API                 | `META_APP_SECRET`          |
 * | `X-Webhook-Hmac: <hex>` (+ `-Algorithm: sha512`)  | WAHA                           | `WAHA_HMAC_KEY`            |
 * | `X-Webhook-Signature: sha256=<hex>`               | this project's HMAC            | `WEBHOOK_SECRET`           |
 * | `Authorization: Bearer <secret>`                  | static token (Evolution API)   | `WEBHOOK_SECRET`           |
 * | `Authorization: Bearer <JWT>`                     | Evolution API `jwt_key` (HS256) | `EVOLUTION_JWT_KEY`       |
 *
 * Every comparison runs in constant time: HMACs and bearer tokens through `timingSafeEqualBytes`
 * (over digests of equal length), Standard Webhooks and JWTs through their libraries. HMACs are computed
 * synchronously with each secret's keyed hash states precomputed once ({@link HmacKey}): several
 * times cheaper per request than an async WebCrypto call or a fresh `createHmac`.
 */
import { createHash } from "node:crypto";
import { jwtVerify } from "jose";
import { Webhook as StandardWebhook } from "standardwebhooks";
import { decodeHex, HmacKey, timingSafeEqualBytes } from "./hmac.ts";
import { verifyTwilioSignature } from "./twilio_signature.ts";
import { UnauthorizedError } from "./unauthorized_error.ts";

export { decodeHex } from "./hmac.ts";

/** How a delivery was authenticated. */
export type AuthScheme =
  | "standard-webhooks"
  | "meta-signature"
  | "waha-hmac"
  | "hmac-sha256"
  | "bearer"
  | "evolution-jwt"
  | "twilio-signature"
  | "unsigned";

/** The secrets of each scheme; a scheme without its secret refuses deliveries that use it. */
export interface WebhookSecrets {
  /** `WEBHOOK_SECRET`: `X-Webhook-Signature` and `Authorization: Bearer`. */
  shared?: string;
  /** `WAHA_HMAC_KEY`: `X-Webhook-Hmac`. */
  wahaHmacKey?: string;
  /** `META_APP_SECRET`: `X-Hub-Signature-256`. */
  metaAppSecret?: string;
  /** `STANDARD_WEBHOOKS_SECRET` (`whsec_…`): Standard Webhooks headers. */
  standardWebhooksSecret?: string;
  /** `EVOLUTION_JWT_KEY`: the `jwt_key` of Evolution API's webhook headers (HS256 bearer JWT). */
  evolutionJwtKey?: string;
  /** `TWILIO_AUTH_TOKEN`: `X-Twilio-Signature` over the URL and the form's parameters. */
  twilioAuthToken?: string;
  /** `TWILIO_WEBHOOK_URL`: the public URL Twilio signs; default the URL of the request. */
  twilioWebhookUrl?: string;
}

/** What a scheme signs besides the body: the request's URL and, for a form post, its fields. */
export interface SignedContext {
  url: string;
  form?: URLSearchParams;
}

export { UnauthorizedError };

const encoder = new TextEncoder();

/** Computes the hex HMAC of a body (SHA-256 by default), as a sender would. */
export function signBody(
  secret: string,
  body: string | Uint8Array,
  hash: "sha256" | "sha512" = "sha256",
): string {
  return new HmacKey(hash, secret).hex(body);
}

/** Whether any scheme has a secret. */
export function hasAnySecret(secrets: WebhookSecrets): boolean {
  return Boolean(
    secrets.shared || secrets.wahaHmacKey || secrets.metaAppSecret ||
      secrets.standardWebhooksSecret || secrets.evolutionJwtKey || secrets.twilioAuthToken,
  );
}

/** Verifies deliveries against the configured secrets. */
export class WebhookAuthenticator {
  readonly #secrets: WebhookSecrets;
  #sharedDigest?: Uint8Array;
  #standard?: StandardWebhook;
  /** Keyed HMAC states, built on first use per (hash, secret). */
  readonly #hmacKeys = new Map<string, HmacKey>();

  constructor(secrets: WebhookSecrets) {
    this.#secrets = secrets;
  }

  /**
   * Returns the scheme that authenticated the delivery; throws {@link UnauthorizedError} when the
   * credential is missing or wrong, or its scheme has no secret configured.
   */
  async verify(
    headers: Headers,
    rawBody: Uint8Array<ArrayBuffer>,
    context?: SignedContext,
  ): Promise<AuthScheme> {
    if (headers.has("webhook-signature")) return this.#standardWebhooks(headers, rawBody);

    const twilio = headers.get("x-twilio-signature");
    if (twilio !== null) {
      const token = this.#require(
        this.#secrets.twilioAuthToken,
        "X-Twilio-Signature",
        "TWILIO_AUTH_TOKEN",
      );
      if (!context?.form) {
        throw new UnauthorizedError("X-Twilio-Signature is only accepted on form posts");
      }
      verifyTwilioSignature(
        token,
        twilio,
        signedTwilioUrl(this.#secrets.twilioWebhookUrl, context.url),
        context.form,
      );
      return "twilio-signature";
    }

    const hub = headers.get("x-hub-signature-256");
    if (hub !== null) {
      const secret = this.#require(
        this.#secrets.metaAppSecret,
        "X-Hub-Signature-256",
        "META_APP_SECRET",
      );
      const hex = /^sha256=([0-9a-fA-F]{64})$/.exec(hub.trim())?.[1];
      if (!hex) throw new UnauthorizedError("X-Hub-Signature-256 must be sha256=<64 hex>");
      this.#verifyHmac(secret, "sha256", hex, rawBody);
      return "meta-signature";
    }

    const waha = headers.get("x-webhook-hmac");
    if (waha !== null) {
      const secret = this.#require(this.#secrets.wahaHmacKey, "X-Webhook-Hmac", "WAHA_HMAC_KEY");
      const algorithm = (headers.get("x-webhook-hmac-algorithm") ?? "sha512").trim().toLowerCase();
      const hash = algorithm === "sha512" || algorithm === "sha256" ? algorithm : undefined;
      if (!hash) throw new UnauthorizedError("X-Webhook-Hmac-Algorithm must be sha512 or sha256");
      this.#verifyHmac(secret, hash, waha.trim(), rawBody);
      return "waha-hmac";
    }

    const signature = headers.get("x-webhook-signature");
    if (signature !== null) {
      const secret = this.#require(this.#secrets.shared, "X-Webhook-Signature", "WEBHOOK_SECRET");
      const hex = /^sha256=([0-9a-fA-F]{64})$/.exec(signature.trim())?.[1];
      if (!hex) throw new UnauthorizedError("X-Webhook-Signature must be sha256=<64 hex>");
      this.#verifyHmac(secret, "sha256", hex, rawBody);
      return "hmac-sha256";
    }

    const authorization = headers.get("authorization");
    if (authorization !== null) {
      const token = /^Bearer\s+(.+)$/i.exec(authorization.trim())?.[1];
      if (!token) throw new UnauthorizedError("Authorization must be Bearer <secret>");
      if (this.#secrets.evolutionJwtKey && /^[\w-]+\.[\w-]+\.[\w-]+$/.test(token)) {
        return await this.#evolutionJwt(this.#secrets.evolutionJwtKey, token);
      }
      const secret = this.#require(this.#secrets.shared, "Authorization", "WEBHOOK_SECRET");
      this.#sharedDigest ??= sha256(secret);
      if (!timingSafeEqualBytes(sha256(token), this.#sharedDigest)) {
        throw new UnauthorizedError("bearer token is wrong");
      }
      return "bearer";
    }
    throw new UnauthorizedError("missing signature or Authorization header");
  }

  #require(secret: string | undefined, header: string, variable: string): string {
    if (!secret) throw new UnauthorizedError(`${header} received but ${variable} is not set`);
    return secret;
  }

  #verifyHmac(
    secret: string,
    hash: "sha256" | "sha512",
    hex: string,
    body: Uint8Array,
  ): void {
    const expected = decodeHex(hex);
    if (!expected) throw new UnauthorizedError("signature is not hex");
    const id = `${hash}:${secret}`;
    let key = this.#hmacKeys.get(id);
    if (!key) this.#hmacKeys.set(id, key = new HmacKey(hash, secret));
    if (!key.verify(body, expected)) {
      throw new UnauthorizedError("signature does not match the body");
    }
  }

  async #evolutionJwt(key: string, token: string): Promise<AuthScheme> {
    try {
      const { payload } = await jwtVerify(token, encoder.encode(key), {
        algorithms: ["HS256"],
        clockTolerance: 60,
        requiredClaims: ["exp"],
      });
      if (payload.app !== "evolution" || payload.action !== "webhook") {
        throw new Error("claims are not app=evolution, action=webhook");
      }
    } catch (error) {
      const reason = error instanceof Error ? error.message : "invalid";
      throw new UnauthorizedError(`Evolution API JWT verification failed: ${reason}`);
    }
    return "evolution-jwt";
  }

  #standardWebhooks(headers: Headers, rawBody: Uint8Array): AuthScheme {
    const secret = this.#require(
      this.#secrets.standardWebhooksSecret,
      "webhook-signature",
      "STANDARD_WEBHOOKS_SECRET",
    );
    try {
      this.#standard ??= new StandardWebhook(secret);
      this.#standard.verify(new TextDecoder().decode(rawBody), {
        "webhook-id": headers.get("webhook-id") ?? "",
        "webhook-timestamp": headers.get("webhook-timestamp") ?? "",
        "webhook-signature": headers.get("webhook-signature") ?? "",
      }, { jsonParse: false });
    } catch (error) {
      const reason = error instanceof Error ? error.message : "invalid";
      throw new UnauthorizedError(`Standard Webhooks verification failed: ${reason}`);
    }
    return "standard-webhooks";
  }
}

function sha256(text: string): Uint8Array {
  return createHash("sha256").update(text).digest();
}

/**
 * The URL Twilio signed: the configured public URL (`TWILIO_WEBHOOK_URL`) with the request's own
 * query string when the configured one has none (Twilio signs the URL it called, query included),
 * else the request's URL.
 */
export function signedTwilioUrl(publicUrl: string | undefined, requestUrl: string): string {
  if (publicUrl === undefined) return requestUrl;
  if (publicUrl.includes("?")) return publicUrl;
  return publicUrl + new URL(requestUrl).search;
}
