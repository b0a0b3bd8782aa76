/**
 * The caller of a user-facing function: a Supabase JWT verified here (HS256 with the project's JWT
 * secret, signature and expiry), as the platform gateway does, so that a forged or expired token
 * never reaches the database.
 */
import { errors as joseErrors, jwtVerify } from "jose";
import { HttpError } from "./http.ts";

/** The JWT secret of a local Supabase stack (`supabase start`), used when none is set. */
export const LOCAL_JWT_SECRET = "super-secret-jwt-token-with-at-least-32-characters-long";

/** A verified caller: a signed-in user (RLS applies) or the service role. */
export type Caller =
  | { kind: "user"; userId: string; claims: Record<string, unknown> }
  | { kind: "service"; claims: Record<string, unknown> };

/** 401: the bearer token is missing, forged, expired, or not a user's or the service role's. */
export class InvalidJwtError extends HttpError {
  constructor(message: string) {
    super(401, "unauthorized", message, { headers: { "www-authenticate": "Bearer" } });
    this.name = "InvalidJwtError";
  }
}

/** 403: a valid token of a role the function does not serve. */
export class ForbiddenRoleError extends HttpError {
  constructor(message: string) {
    super(403, "forbidden", message);
    this.name = "ForbiddenRoleError";
  }
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** Verifies `Authorization: Bearer <jwt>` and returns its claims; throws {@link InvalidJwtError}. */
export async function verifyJwt(
  request: Request,
  secret: Uint8Array,
): Promise<Record<string, unknown>> {
  const header = request.headers.get("authorization") ?? "";
  const match = /^Bearer\s+(\S+)$/i.exec(header.trim());
  if (!match) throw new InvalidJwtError("missing bearer token");
  try {
    const verified = await jwtVerify(match[1], secret, { algorithms: ["HS256"] });
    return verified.payload as Record<string, unknown>;
  } catch (error) {
    if (error instanceof joseErrors.JWTExpired) throw new InvalidJwtError("token expired");
    throw new InvalidJwtError("invalid token");
  }
}

/** The caller of a verified token: a signed-in user or the service role; anyone else is a 401. */
export async function verifyCaller(request: Request, secret: Uint8Array): Promise<Caller> {
  const claims = await verifyJwt(request, secret);
  if (claims.role === "service_role") return { kind: "service", claims };
  if (claims.role === "authenticated" && typeof claims.sub === "string" && UUID.test(claims.sub)) {
    return { kind: "user", userId: claims.sub, claims };
  }
  throw new InvalidJwtError("a signed-in user's token is required");
}
