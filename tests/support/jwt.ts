/**
 * Supabase-style JWTs for tests: HS256 with the CLI's local JWT secret (legacy projects) or ES256
 * with a signing key and its `kid` (projects on JWT signing keys), minted by the runner's
 * `scripts/lib/local_jwt.ts`.
 */
import {
  generateSigningKey,
  LOCAL_SIGNING_KEY,
  localJwks,
  mintJwt,
  publicJwk,
} from "../../scripts/lib/local_jwt.ts";

export { generateSigningKey, LOCAL_SIGNING_KEY, localJwks, mintJwt, publicJwk };

/** A user's token for a fresh random user id (HS256 unless `alg` says ES256); returns both. */
export async function newUser(
  alg: "HS256" | "ES256" = "HS256",
): Promise<{ id: string; jwt: string }> {
  const id = crypto.randomUUID();
  return { id, jwt: await mintJwt({ sub: id, alg }) };
}
