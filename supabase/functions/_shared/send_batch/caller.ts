/**
 * Who is calling: the caller's Supabase JWT verified here (HS256 with the project's JWT secret,
 * signature and expiry), as the platform gateway does, so that a forged or expired token never
 * reaches the database.
 */
import { errors as joseErrors, jwtVerify } from "jose";
import { HttpError } from "../core/http.ts";

/** A verified caller: a signed-in user (RLS applies) or the service role (any batch). */
export type Caller =
  | { kind: "user"; userId: string; claims: Record<string, unknown> }
  | { kind: "service"; claims: Record<string, unknown> };

/** 401: the bearer token is missing, forged, expired, or not a user's or the service role's. */
export class UnauthorizedError extends HttpError {
  constructor(message: string) {
    super(401, "unauthorized", message, { headers: { "www-authenticate": "Bearer" } });
    this.name = "UnauthorizedError";
  }
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** Verifies `Authorization: Bearer <jwt>`; throws {@link UnauthorizedError}. */
export async function verifyCaller(request: Request, secret: Uint8Array): Promise<Caller> {
  const header = request.headers.get("authorization") ?? "";
  const match = /^Bearer\s+(\S+)$/i.exec(header);
  if (!match) throw new UnauthorizedError("missing bearer token");
  let claims: Record<string, unknown>;
  try {
    const verified = await jwtVerify(match[1], secret, { algorithms: ["HS256"] });
    claims = verified.payload as Record<string, unknown>;
  } catch (error) {
    if (error instanceof joseErrors.JWTExpired) throw new UnauthorizedError("token expired");
    throw new UnauthorizedError("invalid token");
  }
  if (claims.role === "service_role") return { kind: "service", claims };
  if (claims.role === "authenticated" && typeof claims.sub === "string" && UUID.test(claims.sub)) {
    return { kind: "user", userId: claims.sub, claims };
  }
  throw new UnauthorizedError("a signed-in user's token is required");
}
