/**
 * A stand-in for the PostgREST `rpc` endpoint of the Supabase Data API, for the supabase-js
 * path: `POST /rest/v1/rpc/<function>` with named JSON arguments runs the real SQL function in
 * the real database as `service_role`, and answers as PostgREST does. Only what supabase-js
 * `rpc` uses is served. (PostgREST itself is not packaged for this machine.)
 */
import postgres from "postgres";

/** A running stand-in. */
export interface PostgrestRpc {
  /** Value for `SUPABASE_URL`. */
  url: string;
  /** Value for `SUPABASE_SERVICE_ROLE_KEY`. */
  serviceRoleKey: string;
  calls: number;
  close(): Promise<void>;
}

/** Starts the stand-in on 127.0.0.1. */
export function startPostgrestRpc(databaseUrl: string): PostgrestRpc {
  const sql = postgres(databaseUrl, { max: 4, onnotice: () => {} });
  const serviceRoleKey = `test-service-role-${crypto.randomUUID()}`;
  const state = { calls: 0 };
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, async (req) => {
    const match = /^\/rest\/v1\/rpc\/([a-z_][a-z0-9_]*)$/.exec(new URL(req.url).pathname);
    if (!match || req.method !== "POST") {
      return Response.json({ message: "not found" }, { status: 404 });
    }
    if (
      req.headers.get("apikey") !== serviceRoleKey ||
      req.headers.get("authorization") !== `Bearer ${serviceRoleKey}`
    ) {
      return Response.json({ code: "PGRST301", message: "JWT invalid" }, { status: 401 });
    }
    state.calls++;
    const args = await req.json() as Record<string, unknown>;
    const names = Object.keys(args);
    try {
      const rows = await sql.begin(async (tx) => {
        await tx`set local role service_role`;
        const params = names.map((name, i) => `${name} => $${i + 1}`).join(", ");
        return await tx.unsafe(
          `select * from public.${match[1]}(${params})`,
          names.map((n) => args[n] as postgres.JSONValue) as never[],
        );
      });
      return Response.json([...rows]);
    } catch (error) {
      const e = error as { code?: string; message?: string };
      return Response.json({ code: e.code, message: e.message, details: null, hint: null }, {
        status: 400,
      });
    }
  });
  return {
    url: `http://127.0.0.1:${server.addr.port}`,
    serviceRoleKey,
    get calls() {
      return state.calls;
    },
    async close() {
      await server.shutdown();
      await sql.end();
    },
  };
}
