/**
 * Supabase-style JWTs for tests, signed HS256 with the CLI's local JWT secret.
 */
import { SignJWT } from "jose";
import { LOCAL_JWT_SECRET } from "../../supabase/functions/_shared/send_batch/config.ts";

/** Mints a token: a user's (`sub` + role authenticated) or the service role's. */
export async function mintJwt(options: {
  sub?: string;
  role?: "authenticated" | "service_role" | "anon";
  expiresInSeconds?: number;
  secret?: string;
}): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  const claims: Record<string, unknown> = {
    role: options.role ?? "authenticated",
    aud: "authenticated",
  };
  if (options.sub) claims.sub = options.sub;
  return await new SignJWT(claims)
    .setProtectedHeader({ alg: "HS256", typ: "JWT" })
    .setIssuedAt(now - 60)
    .setExpirationTime(now + (options.expiresInSeconds ?? 3600))
    .sign(new TextEncoder().encode(options.secret ?? LOCAL_JWT_SECRET));
}

/** A user's token for a fresh random user id; returns both. */
export async function newUser(): Promise<{ id: string; jwt: string }> {
  const id = crypto.randomUUID();
  return { id, jwt: await mintJwt({ sub: id }) };
}
