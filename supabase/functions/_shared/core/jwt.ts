/**
 * Who may call a user-facing function: the caller types and the refusals shared by the JWT and
 * API-key checks (`caller_auth.ts` decides who a request's caller is).
 */
import { HttpError } from "./http.ts";

/** The JWT secret of a local Supabase stack (`supabase start`), used when none is set. */
export const LOCAL_JWT_SECRET = "super-secret-jwt-token-with-at-least-32-characters-long";

/** A verified caller: a signed-in user (RLS applies) or the service role. */
export type Caller =
  | { kind: "user"; userId: string; claims: Record<string, unknown> }
  | { kind: "service"; claims: Record<string, unknown> };

/** 401: the credential is missing, forged, expired, or not a user's or the service role's. */
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
