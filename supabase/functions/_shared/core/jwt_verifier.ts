/**
 * Verifies a Supabase JWT as Supabase issues it: HS256 with the project's legacy JWT secret, or
 * ES256/RS256 with a `kid` against the signing keys' set (inline, or fetched from a URL, cached,
 * and fetched again when a token names a `kid` it does not hold). Signature and expiry are checked;
 * a token that fails is a 401, a key set that cannot be fetched a 503.
 */
import {
  createLocalJWKSet,
  createRemoteJWKSet,
  decodeProtectedHeader,
  errors as joseErrors,
  type JWTPayload,
  jwtVerify,
  type JWTVerifyGetKey,
} from "jose";
import type { AuthConfig } from "./auth_config.ts";
import { HttpError } from "./http.ts";
import { InvalidJwtError } from "./jwt.ts";

/** The asymmetric algorithms Supabase Auth signs with. */
export const SIGNING_KEY_ALGORITHMS = ["ES256", "RS256"];

/** 503: the signing keys could not be fetched; nothing is known about the token yet. */
export class KeySetUnavailableError extends HttpError {
  constructor(cause: unknown) {
    super(503, "auth_unavailable", "the signing keys could not be fetched; retry later", {
      headers: { "retry-after": "5" },
      cause,
    });
    this.name = "KeySetUnavailableError";
  }
}

/** Errors that say the token is bad, not that the key set could not be read. */
const TOKEN_ERRORS = new Set([
  "ERR_JWT_EXPIRED",
  "ERR_JWT_CLAIM_VALIDATION_FAILED",
  "ERR_JWT_INVALID",
  "ERR_JWS_INVALID",
  "ERR_JWS_SIGNATURE_VERIFICATION_FAILED",
  "ERR_JWKS_NO_MATCHING_KEY",
  "ERR_JWKS_MULTIPLE_MATCHING_KEYS",
  "ERR_JOSE_ALG_NOT_ALLOWED",
  "ERR_JOSE_NOT_SUPPORTED",
]);

/** Verifies tokens with one project's keys; built once per function instance. */
export class JwtVerifier {
  readonly #secret: Uint8Array;
  readonly #keySet?: JWTVerifyGetKey;
  readonly #remote: boolean;

  constructor(config: Pick<AuthConfig, "jwtSecret" | "keySet" | "keySetCooldownMs">) {
    this.#secret = new TextEncoder().encode(config.jwtSecret);
    const source = config.keySet;
    this.#remote = source?.kind === "remote";
    this.#keySet = source?.kind === "inline"
      ? createLocalJWKSet({ keys: source.keys })
      : source?.kind === "remote"
      ? createRemoteJWKSet(new URL(source.url), { cooldownDuration: config.keySetCooldownMs })
      : undefined;
  }

  /** The verified claims; throws {@link InvalidJwtError} or {@link KeySetUnavailableError}. */
  async verify(token: string): Promise<JWTPayload> {
    let header;
    try {
      header = decodeProtectedHeader(token);
    } catch {
      throw new InvalidJwtError("invalid token");
    }
    const asymmetric = SIGNING_KEY_ALGORITHMS.includes(header.alg ?? "");
    if (header.alg !== "HS256" && !asymmetric) throw new InvalidJwtError("invalid token");
    if (asymmetric && (typeof header.kid !== "string" || !this.#keySet)) {
      throw new InvalidJwtError("invalid token");
    }
    try {
      const { payload } = asymmetric
        ? await jwtVerify(token, this.#keySet!, {
          algorithms: SIGNING_KEY_ALGORITHMS,
          requiredClaims: ["exp"],
        })
        : await jwtVerify(token, this.#secret, { algorithms: ["HS256"], requiredClaims: ["exp"] });
      return payload;
    } catch (error) {
      if (error instanceof joseErrors.JWTExpired) throw new InvalidJwtError("token expired");
      const code = error instanceof joseErrors.JOSEError ? error.code : undefined;
      if (asymmetric && this.#remote && !TOKEN_ERRORS.has(code ?? "")) {
        throw new KeySetUnavailableError(error);
      }
      throw new InvalidJwtError("invalid token");
    }
  }
}
