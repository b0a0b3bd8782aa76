/**
 * `deno task jwt [user-uuid]`: prints access tokens for the local stack (`./scripts/dev.sh`),
 * signed as Supabase Auth signs them locally: a signed-in user's (ES256 with the local signing
 * key; a new user id when none is given) and the service role's. For local use only: the keys are
 * the public development keys in scripts/lib/local_jwt.ts.
 */
import { mintJwt } from "./lib/local_jwt.ts";

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

if (import.meta.main) {
  const sub = Deno.args[0] ?? crypto.randomUUID();
  if (!UUID.test(sub)) {
    console.error("usage: deno task jwt [user-uuid]");
    Deno.exit(2);
  }
  const hours = 24;
  const user = await mintJwt({ sub, alg: "ES256", expiresInS: hours * 3600 });
  const service = await mintJwt({ role: "service_role", expiresInS: hours * 3600 });
  console.log(`# user ${sub}, valid ${hours} h`);
  console.log(`JWT=${user}`);
  console.log(`# the service role, valid ${hours} h`);
  console.log(`SERVICE_ROLE_KEY=${service}`);
}
