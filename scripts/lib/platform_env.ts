/**
 * The variables the platform gives every function (as `supabase functions serve` does too) that
 * the local runner stands in for: `SUPABASE_URL` (the runner itself) and the legacy
 * `SUPABASE_ANON_KEY` / `SUPABASE_SERVICE_ROLE_KEY` JWTs, signed with the local JWT secret. A
 * function that calls itself (the send-batch drain's continuation) then does so locally exactly
 * as deployed: a fresh request, with a wall clock of its own.
 */
import { mintJwt } from "./local_jwt.ts";

/** Ten years: the platform's legacy API keys do not expire in practice either. */
const KEY_LIFETIME_S = 10 * 365 * 24 * 3600;

/** The legacy API keys of the local project (HS256 JWTs with roles `anon` and `service_role`). */
export async function localApiKeys(): Promise<{ anon: string; serviceRole: string }> {
  const [anon, serviceRole] = await Promise.all([
    mintJwt({ role: "anon", expiresInS: KEY_LIFETIME_S }),
    mintJwt({ role: "service_role", expiresInS: KEY_LIFETIME_S }),
  ]);
  return { anon, serviceRole };
}

/**
 * The platform's variables for a runner at `baseUrl` (`http://host:port`), leaving out those
 * `env` already sets.
 */
export function platformEnv(
  baseUrl: string,
  keys: { anon: string; serviceRole: string },
  env: Record<string, string | undefined>,
): Record<string, string> {
  const values: Record<string, string> = {
    SUPABASE_URL: baseUrl,
    SUPABASE_ANON_KEY: keys.anon,
    SUPABASE_SERVICE_ROLE_KEY: keys.serviceRole,
  };
  return Object.fromEntries(Object.entries(values).filter(([name]) => !env[name]));
}
