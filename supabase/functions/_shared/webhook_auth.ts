/**
 * Authentication of webhook deliveries with a shared secret (`WEBHOOK_SECRET`):
 *
 * - `X-Webhook-Signature: sha256=<hex HMAC-SHA256 of the raw body>`, or
 * - `Authorization: Bearer <secret>`.
 *
 * Both comparisons run in constant time: the HMAC through WebCrypto's `verify`, the bearer token
 * through `timingSafeEqual` over SHA-256 digests of equal length.
 */
import { timingSafeEqual } from "node:crypto";

/** How a delivery was authenticated. */
export type AuthScheme = "hmac-sha256" | "bearer" | "unsigned";

/** Raised when a delivery carries no valid credential. */
export class UnauthorizedError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "UnauthorizedError";
  }
}

const encoder = new TextEncoder();

/** Decodes lower- or upper-case hex; undefined when the text is not hex. */
export function decodeHex(hex: string): Uint8Array<ArrayBuffer> | undefined {
  if (hex.length === 0 || hex.length % 2 !== 0 || !/^[0-9a-fA-F]+$/.test(hex)) return undefined;
  const bytes = new Uint8Array(hex.length / 2);
  for (let i = 0; i < bytes.length; i++) bytes[i] = parseInt(hex.slice(i * 2, i * 2 + 2), 16);
  return bytes;
}

/** Encodes bytes as lower-case hex. */
export function encodeHex(bytes: Uint8Array): string {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

/** Computes the hex HMAC-SHA256 of a body, as a sender would put in `X-Webhook-Signature`. */
export async function signBody(secret: string, body: string | Uint8Array): Promise<string> {
  const key = await crypto.subtle.importKey(
    "raw",
    encoder.encode(secret),
    { name: "HMAC", hash: "SHA-256" },
    false,
    ["sign"],
  );
  const data = typeof body === "string" ? encoder.encode(body) : body;
  return encodeHex(new Uint8Array(await crypto.subtle.sign("HMAC", key, new Uint8Array(data))));
}

/** Verifies deliveries against one shared secret. */
export class WebhookAuthenticator {
  readonly #secret: string;
  #hmacKey?: Promise<CryptoKey>;
  #secretDigest?: Promise<Uint8Array>;

  constructor(secret: string) {
    this.#secret = secret;
  }

  /**
   * Returns the scheme that authenticated the delivery; throws {@link UnauthorizedError} when the
   * signature or token is missing or wrong.
   */
  async verify(headers: Headers, rawBody: Uint8Array<ArrayBuffer>): Promise<AuthScheme> {
    const signature = headers.get("x-webhook-signature");
    if (signature !== null) {
      const match = /^sha256=([0-9a-fA-F]{64})$/.exec(signature.trim());
      const expected = match ? decodeHex(match[1]) : undefined;
      if (!expected) throw new UnauthorizedError("X-Webhook-Signature must be sha256=<64 hex>");
      this.#hmacKey ??= crypto.subtle.importKey(
        "raw",
        encoder.encode(this.#secret),
        { name: "HMAC", hash: "SHA-256" },
        false,
        ["verify"],
      );
      const valid = await crypto.subtle.verify("HMAC", await this.#hmacKey, expected, rawBody);
      if (!valid) throw new UnauthorizedError("signature does not match the body");
      return "hmac-sha256";
    }
    const authorization = headers.get("authorization");
    if (authorization !== null) {
      const match = /^Bearer\s+(.+)$/i.exec(authorization.trim());
      if (!match) throw new UnauthorizedError("Authorization must be Bearer <secret>");
      this.#secretDigest ??= sha256(this.#secret);
      const [given, expected] = await Promise.all([sha256(match[1]), this.#secretDigest]);
      if (!timingSafeEqual(given, expected)) throw new UnauthorizedError("bearer token is wrong");
      return "bearer";
    }
    throw new UnauthorizedError("missing X-Webhook-Signature or Authorization header");
  }
}

async function sha256(text: string): Promise<Uint8Array> {
  return new Uint8Array(await crypto.subtle.digest("SHA-256", encoder.encode(text)));
}
