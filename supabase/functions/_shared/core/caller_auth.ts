/**
 * The caller of a user-facing function, checked here as the platform would, so that a forged,
 * expired or unknown credential never reaches the database:
 *
 * - `Authorization: Bearer <JWT>`: a user's or the service role's token, legacy HS256 or signed
 *   with the project's signing keys ({@link JwtVerifier});
 * - a secret API key (`apikey` header, or as the bearer token): the service role;
 * - a publishable key, or another role's token: valid, but neither a user nor the service role.
 *
 * A JWT in `Authorization` decides on its own (supabase-js sends the publishable key in `apikey`
 * beside a user's token); a bad JWT is refused even when a valid key comes with it.
 */
import { ApiKeys, isApiKey } from "./api_keys.ts";
import type { AuthConfig } from "./auth_config.ts";
import { type Caller, InvalidJwtError } from "./jwt.ts";
import { JwtVerifier } from "./jwt_verifier.ts";

/** Who sent a request: a {@link Caller}, or a valid credential of another role (`anon`, …). */
export type Principal = Caller | { kind: "other"; role: string };

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** Authenticates requests with one project's keys; built once per function instance. */
export class CallerAuth {
  readonly #jwt: JwtVerifier;
  readonly #keys: ApiKeys;

  constructor(config: AuthConfig) {
    this.#jwt = new JwtVerifier(config);
    this.#keys = new ApiKeys({ secret: config.secretKeys, publishable: config.publishableKeys });
  }

  /** The request's principal; throws InvalidJwtError (401) or KeySetUnavailableError (503). */
  async authenticate(request: Request): Promise<Principal> {
    const authorization = request.headers.get("authorization")?.trim();
    const bearer = authorization ? /^Bearer\s+(\S+)$/i.exec(authorization)?.[1] : undefined;
    if (authorization && !bearer) throw new InvalidJwtError("malformed authorization header");
    if (bearer && !isApiKey(bearer)) return principalOf(await this.#jwt.verify(bearer));
    const presented = [request.headers.get("apikey")?.trim(), bearer].filter((key) => !!key);
    if (presented.length === 0) throw new InvalidJwtError("missing bearer token or apikey");
    const kinds = presented.map((key) => this.#keys.kindOf(key!));
    if (kinds.includes("secret")) return { kind: "service", claims: { role: "service_role" } };
    if (kinds.includes("publishable")) return { kind: "other", role: "anon" };
    throw new InvalidJwtError("invalid API key");
  }
}

function principalOf(claims: Record<string, unknown>): Principal {
  if (claims.role === "service_role") return { kind: "service", claims };
  if (claims.role === "authenticated" && typeof claims.sub === "string" && UUID.test(claims.sub)) {
    return { kind: "user", userId: claims.sub, claims };
  }
  return { kind: "other", role: typeof claims.role === "string" ? claims.role : "unknown" };
}

/** The caller: a signed-in user or the service role; anyone else is a 401. */
export async function verifyCaller(request: Request, auth: CallerAuth): Promise<Caller> {
  const principal = await auth.authenticate(request);
  if (principal.kind === "other") {
    throw new InvalidJwtError("a signed-in user's token is required");
  }
  return principal;
}
