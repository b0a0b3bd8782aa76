/**
 * JWTs as the local Supabase stack signs them: HS256 with the project's legacy JWT secret, or ES256
 * with a signing key (a `kid` in the header) whose public half the runner serves at
 * `/auth/v1/.well-known/jwks.json`. The runner's gateway check verifies both, as the platform's
 * does, and tests mint them for users (`authenticated`) or the service role.
 */
import { exportJWK, generateKeyPair, importJWK, type JWK, SignJWT } from "jose";
import { JWKS_PATH, type PublicJwk } from "../../supabase/functions/_shared/core/auth_config.ts";
import { JwtVerifier } from "../../supabase/functions/_shared/core/jwt_verifier.ts";

/** The Supabase CLI's local JWT secret, used when `SUPABASE_JWT_SECRET` is not set. */
import { LOCAL_JWT_SECRET } from "../../supabase/functions/_shared/core/jwt.ts";

export { JWKS_PATH, LOCAL_JWT_SECRET };

/**
 * The local stack's ES256 signing key. Like the CLI's local JWT secret it is public, for local
 * development and tests only: a deployed project's keys are Supabase's own.
 */
export const LOCAL_SIGNING_KEY: Readonly<JWK> = Object.freeze({
  kty: "EC",
  crv: "P-256",
  kid: "local-dev-es256",
  alg: "ES256",
  x: "eQkgxXy0XVReiNEHjy8UsZtfNHESUl9FHGWaTldxC7s",
  y: "FUocrN84CwGmmHzByErQFirnrZ4OL2RUfCJ6dtFJkDY",
  d: "Q-kb-iWX_K4z09FMSGtNCYCq7HMDUdHPnF-Sl93OLco",
});

/** `SUPABASE_JWT_SECRET`, or the CLI's local default. */
export function localJwtSecret(): string {
  return Deno.env.get("SUPABASE_JWT_SECRET") || LOCAL_JWT_SECRET;
}

/** A signing key's public half (what a key set publishes). */
export function publicJwk(key: Readonly<JWK>): PublicJwk {
  const { d: _d, ...rest } = key;
  return { ...rest, kty: key.kty! };
}

/** The local stack's key set, as `/auth/v1/.well-known/jwks.json` answers it. */
export function localJwks(): { keys: PublicJwk[] } {
  return { keys: [publicJwk(LOCAL_SIGNING_KEY)] };
}

/** A fresh ES256 signing key (private JWK with `kid` and `alg`), e.g. a rotated one in tests. */
export async function generateSigningKey(kid: string = crypto.randomUUID()): Promise<JWK> {
  const { privateKey } = await generateKeyPair("ES256", { extractable: true });
  return { ...await exportJWK(privateKey), kid, alg: "ES256" };
}

/**
 * What the runner gives its functions when nothing names the project's signing keys (as the
 * platform injects `SUPABASE_JWKS`): the local key set inline.
 */
export function localAuthEnv(env: Record<string, string | undefined>): Record<string, string> {
  if (env.SUPABASE_JWKS || env.SUPABASE_JWKS_URL || env.SUPABASE_URL) return {};
  return { SUPABASE_JWKS: JSON.stringify(localJwks()) };
}

/** The runner's answer at {@link JWKS_PATH}; undefined for any other URL. */
export function localJwksResponse(url: string): Response | undefined {
  if (new URL(url).pathname !== JWKS_PATH) return undefined;
  return Response.json(localJwks(), { headers: { "cache-control": "public, max-age=600" } });
}

/** Claims of a minted token. */
export interface MintJwtOptions {
  /** The user id (`sub`); omitted for the service role unless given. */
  sub?: string;
  /** `authenticated` (default), `service_role` or `anon`. */
  role?: "authenticated" | "service_role" | "anon";
  /** Seconds until `exp` (default 3600); negative for an already expired token. */
  expiresInS?: number;
  /** `HS256` with the legacy secret (default), or `ES256` with a signing key. */
  alg?: "HS256" | "ES256";
  /** The HS256 secret (default {@link localJwtSecret}). */
  secret?: string;
  /** The ES256 private key with its `kid` (default {@link LOCAL_SIGNING_KEY}). */
  signingKey?: Readonly<JWK>;
  /** Extra claims (e.g. `email`, `app_metadata`). */
  claims?: Record<string, unknown>;
}

/** Signs a JWT shaped like Supabase Auth's (`sub`, `role`, `aud`, `iat`, `exp`). */
export async function mintJwt(options: MintJwtOptions = {}): Promise<string> {
  const role = options.role ?? "authenticated";
  const now = Math.floor(Date.now() / 1000);
  const payload: Record<string, unknown> = { ...options.claims, role };
  if (role === "authenticated") payload.aud = "authenticated";
  if (options.sub !== undefined) payload.sub = options.sub;
  const token = new SignJWT(payload)
    .setIssuer("supabase-demo")
    .setIssuedAt(now)
    .setExpirationTime(now + (options.expiresInS ?? 3600));
  if (options.alg !== "ES256") {
    return await token.setProtectedHeader({ alg: "HS256", typ: "JWT" })
      .sign(new TextEncoder().encode(options.secret ?? localJwtSecret()));
  }
  const key = options.signingKey ?? LOCAL_SIGNING_KEY;
  return await token.setProtectedHeader({ alg: "ES256", typ: "JWT", kid: key.kid })
    .sign(await importJWK({ ...key }, "ES256"));
}

/**
 * The gateway's check for functions with `verify_jwt = true`: an `Authorization: Bearer <JWT>`,
 * HS256 with the project's secret or ES256/RS256 with a key of the local key set, not expired
 * (the functions' own {@link JwtVerifier}). Returns the 401 response the platform gives, or
 * undefined when the request may pass (untouched: the function verifies it again).
 */
export class GatewayJwtCheck {
  readonly #verifier: JwtVerifier;

  /** Checks against `secret` (default {@link localJwtSecret}) and the local key set. */
  constructor(secret: string = localJwtSecret()) {
    this.#verifier = new JwtVerifier({
      jwtSecret: secret,
      keySet: { kind: "inline", keys: localJwks().keys },
      keySetCooldownMs: 0,
    });
  }

  /** Undefined when the request carries a valid JWT; else the 401 JSON response. */
  async check(request: Request): Promise<Response | undefined> {
    const authorization = request.headers.get("authorization");
    if (authorization === null) return unauthorized("Missing authorization header");
    const token = /^Bearer\s+(\S+)\s*$/i.exec(authorization)?.[1];
    if (!token) return unauthorized("Auth header is not 'Bearer {token}'");
    try {
      await this.#verifier.verify(token);
      return undefined;
    } catch {
      return unauthorized("Invalid JWT");
    }
  }
}

function unauthorized(message: string): Response {
  return Response.json({ code: 401, message }, { status: 401 });
}
