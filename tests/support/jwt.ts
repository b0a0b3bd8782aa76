/**
 * Supabase-style JWTs for tests, signed HS256 with the CLI's local JWT secret (the runner's
 * `scripts/lib/local_jwt.ts` mints them).
 */
import { mintJwt } from "../../scripts/lib/local_jwt.ts";

export { mintJwt };

/** A user's token for a fresh random user id; returns both. */
export async function newUser(): Promise<{ id: string; jwt: string }> {
  const id = crypto.randomUUID();
  return { id, jwt: await mintJwt({ sub: id }) };
}
