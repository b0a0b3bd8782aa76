/**
 * A key set endpoint like Supabase Auth's `/auth/v1/.well-known/jwks.json`, whose keys a test can
 * rotate, counting the fetches it answers.
 */
import type { JWK } from "jose";
import { JWKS_PATH, publicJwk } from "../../scripts/lib/local_jwt.ts";

/** A running key set endpoint. */
export interface JwksServer {
  /** The project URL (`SUPABASE_URL`): the key set is at `${url}/auth/v1/.well-known/jwks.json`. */
  url: string;
  /** The key set's URL (`SUPABASE_JWKS_URL`). */
  jwksUrl: string;
  /** Key set requests answered so far. */
  readonly fetches: number;
  /** Publishes the public halves of these signing keys from now on. */
  publish(keys: readonly JWK[]): void;
  close(): Promise<void>;
}

/** Starts the endpoint on 127.0.0.1 publishing `keys`. */
export function startJwksServer(keys: readonly JWK[]): JwksServer {
  let published = keys.map(publicJwk);
  let fetches = 0;
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, (request) => {
    if (new URL(request.url).pathname !== JWKS_PATH) return new Response(null, { status: 404 });
    fetches++;
    return Response.json({ keys: published });
  });
  const url = `http://127.0.0.1:${server.addr.port}`;
  return {
    url,
    jwksUrl: `${url}${JWKS_PATH}`,
    get fetches() {
      return fetches;
    },
    publish(next) {
      published = next.map(publicJwk);
    },
    close: () => server.shutdown(),
  };
}
