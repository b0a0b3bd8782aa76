/**
 * JWTs as the local Supabase stack signs them (HS256 with the project's JWT secret): the runner's
 * gateway check verifies them, and tests mint them for users (`authenticated`) or the service role.
 */
import { jwtVerify, SignJWT } from "jose";

/** The Supabase CLI's local JWT secret, used when `SUPABASE_JWT_SECRET` is not set. */
import { LOCAL_JWT_SECRET } from "../../supabase/functions/_shared/core/jwt.ts";

export { LOCAL_JWT_SECRET };

/** `SUPABASE_JWT_SECRET`, or the CLI's local default. */
export function localJwtSecret(): string {
  return Deno.env.get("SUPABASE_JWT_SECRET") || LOCAL_JWT_SECRET;
}

/** Claims of a minted token. */
export interface MintJwtOptions {
  /** The user id (`sub`); omitted for the service role unless given. */
  sub?: string;
  /** `authenticated` (default), `service_role` or `anon`. */
  role?: "authenticated" | "service_role" | "anon";
  /** Seconds until `exp` (default 3600); negative for an already expired token. */
  expiresInS?: number;
  /** The signing secret (default {@link localJwtSecret}). */
  secret?: string;
  /** Extra claims (e.g. `email`, `app_metadata`). */
  claims?: Record<string, unknown>;
}

/** Signs an HS256 JWT shaped like Supabase Auth's (`sub`, `role`, `aud`, `iat`, `exp`). */
export async function mintJwt(options: MintJwtOptions = {}): Promise<string> {
  const role = options.role ?? "authenticated";
  const now = Math.floor(Date.now() / 1000);
  const payload: Record<string, unknown> = { ...options.claims, role };
  if (role === "authenticated") payload.aud = "authenticated";
  if (options.sub !== undefined) payload.sub = options.sub;
  return await new SignJWT(payload)
    .setProtectedHeader({ alg: "HS256", typ: "JWT" })
    .setIssuer("supabase-demo")
    .setIssuedAt(now)
    .setExpirationTime(now + (options.expiresInS ?? 3600))
    .sign(new TextEncoder().encode(options.secret ?? localJwtSecret()));
}

/**
 * The gateway's check for functions with `verify_jwt = true`: an `Authorization: Bearer <JWT>`
 * signed HS256 with the project's secret and not expired. Returns the 401 response the platform
 * gives, or undefined when the request may pass (untouched: the function verifies it again).
 */
export class GatewayJwtCheck {
  readonly #key: Uint8Array;

  /** Checks against `secret` (default {@link localJwtSecret}). */
  constructor(secret: string = localJwtSecret()) {
    this.#key = new TextEncoder().encode(secret);
  }

  /** Undefined when the request carries a valid JWT; else the 401 JSON response. */
  async check(request: Request): Promise<Response | undefined> {
    const authorization = request.headers.get("authorization");
    if (authorization === null) return unauthorized("Missing authorization header");
    const token = /^Bearer\s+(\S+)\s*$/i.exec(authorization)?.[1];
    if (!token) return unauthorized("Auth header is not 'Bearer {token}'");
    try {
      await jwtVerify(token, this.#key, { algorithms: ["HS256"], requiredClaims: ["exp"] });
      return undefined;
    } catch {
      return unauthorized("Invalid JWT");
    }
  }
}

function unauthorized(message: string): Response {
  return Response.json({ code: 401, message }, { status: 401 });
}
