/**
 * The local functions runner: serves every `supabase/functions/<name>/index.ts` at
 * `http://127.0.0.1:$PORT/functions/v1/<name>`, the URL layout of `supabase functions serve`,
 * without Docker. Each function is imported unchanged and called through its
 * `export default { fetch }` with the very request the server received (same URL, headers and
 * body), as the Supabase Edge Runtime does.
 *
 * As on the platform:
 * - functions whose `config.toml` section has `verify_jwt = true` (the default) only receive
 *   requests with a valid JWT (HS256 with `SUPABASE_JWT_SECRET`, default the CLI's local secret,
 *   or ES256 with the local signing key; `exp` checked; see `lib/local_jwt.ts`); others get the
 *   gateway's 401;
 * - the local key set is served at `/auth/v1/.well-known/jwks.json`, and given to the functions as
 *   `SUPABASE_JWKS` unless `SUPABASE_JWKS`, `SUPABASE_JWKS_URL` or `SUPABASE_URL` is set;
 * - `EdgeRuntime.waitUntil(promise)` keeps work running after the response; on SIGINT/SIGTERM the
 *   runner stops accepting requests and waits up to `WAIT_UNTIL_DRAIN_MS` (default 10000) for it.
 *
 * Environment: PORT (default 54321), HOST (default 127.0.0.1), SUPABASE_JWT_SECRET,
 * WAIT_UNTIL_DRAIN_MS, and whatever the functions read.
 */
import { parse as parseToml } from "smol-toml";
import { BackgroundTasks, installEdgeRuntime } from "./lib/edge_runtime.ts";
import { GatewayJwtCheck, localAuthEnv, localJwksResponse } from "./lib/local_jwt.ts";

/** The functions directory of this repository. */
export const FUNCTIONS_DIR = new URL("../supabase/functions/", import.meta.url);
const CONFIG_TOML = new URL("../supabase/config.toml", import.meta.url);
const PREFIX = "/functions/v1/";

/** A function found on disk. */
export interface LocalFunction {
  name: string;
  verifyJwt: boolean;
  fetch: (request: Request, info: Deno.ServeHandlerInfo) => Response | Promise<Response>;
}

/** Imports every function under `supabase/functions` (folders starting with `_` or `.` are shared code). */
export async function loadFunctions(): Promise<LocalFunction[]> {
  const config = parseToml(await Deno.readTextFile(CONFIG_TOML)) as {
    functions?: Record<string, { verify_jwt?: boolean; enabled?: boolean; entrypoint?: string }>;
  };
  const names: string[] = [];
  for await (const entry of Deno.readDir(FUNCTIONS_DIR)) {
    if (entry.isDirectory && !entry.name.startsWith("_") && !entry.name.startsWith(".")) {
      names.push(entry.name);
    }
  }
  names.sort();
  const functions: LocalFunction[] = [];
  for (const name of names) {
    const settings = config.functions?.[name] ?? {};
    if (settings.enabled === false) continue;
    const entry = new URL(`${name}/index.ts`, FUNCTIONS_DIR);
    const mod = await import(entry.href);
    const handler = mod.default?.fetch;
    if (typeof handler !== "function") {
      throw new Error(`${name}/index.ts must export default { fetch }`);
    }
    functions.push({ name, verifyJwt: settings.verify_jwt ?? true, fetch: handler });
  }
  return functions;
}

/**
 * The function name in `/functions/v1/<name>[/rest][?query]`, cut from the URL string without
 * parsing it; undefined for any other path.
 */
export function functionNameOf(url: string): string | undefined {
  const scheme = url.indexOf("://");
  const pathStart = url.indexOf("/", scheme + 3);
  if (scheme === -1 || pathStart === -1 || !url.startsWith(PREFIX, pathStart)) return undefined;
  const nameStart = pathStart + PREFIX.length;
  let nameEnd = nameStart;
  while (nameEnd < url.length) {
    const c = url.charCodeAt(nameEnd);
    if (c === 47 /* / */ || c === 63 /* ? */ || c === 35 /* # */) break;
    nameEnd++;
  }
  return nameEnd > nameStart ? url.slice(nameStart, nameEnd) : undefined;
}

/** A request handler with the connection info `Deno.serve` gives. */
export type Router = (
  request: Request,
  info: Deno.ServeHandlerInfo,
) => Response | Promise<Response>;

/**
 * Builds the router: `/functions/v1/<name>…` → that function's `fetch`, called with the request
 * itself. Functions with `verifyJwt` first pass the gateway's JWT check (`jwtSecret`, default
 * `SUPABASE_JWT_SECRET` or the CLI's local secret); CORS preflights (OPTIONS) skip it, as there.
 */
export function createRouter(
  functions: LocalFunction[],
  options: { jwtSecret?: string } = {},
): Router {
  const byName = new Map(functions.map((f) => [f.name, f]));
  let gateway: GatewayJwtCheck | undefined;
  const guarded = async (fn: LocalFunction, request: Request, info: Deno.ServeHandlerInfo) => {
    gateway ??= new GatewayJwtCheck(options.jwtSecret);
    const refusal = await gateway.check(request);
    return refusal ?? await fn.fetch(request, info);
  };
  // Not async: a function without the JWT check gets the request with no extra promise in between.
  return (request, info) => {
    const name = functionNameOf(request.url);
    const fn = name === undefined ? undefined : byName.get(name);
    if (!fn) {
      const jwks = localJwksResponse(request.url);
      if (jwks) return jwks;
      return Response.json(
        { error: "not_found", message: "no such function", functions: [...byName.keys()] },
        { status: 404 },
      );
    }
    if (fn.verifyJwt && request.method !== "OPTIONS") return guarded(fn, request, info);
    return fn.fetch(request, info);
  };
}

/** A running runner. */
export interface FunctionsServer {
  addr: Deno.NetAddr;
  /** Work handed to `EdgeRuntime.waitUntil`. */
  tasks: BackgroundTasks;
  /** Stops accepting requests, then waits (bounded) for pending `waitUntil` work. */
  shutdown(): Promise<void>;
}

/** Starts the runner (and the `EdgeRuntime` global); resolves once it listens. */
export async function serveFunctions(
  options: { port?: number; hostname?: string; quiet?: boolean; drainTimeoutMs?: number } = {},
): Promise<FunctionsServer> {
  const tasks = installEdgeRuntime();
  for (const [name, value] of Object.entries(localAuthEnv(Deno.env.toObject()))) {
    Deno.env.set(name, value);
  }
  const functions = await loadFunctions();
  const hostname = options.hostname ?? "127.0.0.1";
  const drainTimeoutMs = options.drainTimeoutMs ??
    Number(Deno.env.get("WAIT_UNTIL_DRAIN_MS") ?? 10_000);
  const server = Deno.serve({
    port: options.port ?? 54321,
    hostname,
    onListen: ({ port }) => {
      if (options.quiet) return;
      for (const fn of functions) {
        console.log(`Serving ${fn.name} at http://${hostname}:${port}/functions/v1/${fn.name}`);
      }
    },
  }, createRouter(functions));
  return {
    addr: server.addr,
    tasks,
    async shutdown() {
      await server.shutdown();
      const left = await tasks.drain(drainTimeoutMs);
      if (left > 0) {
        console.error(
          `shutdown: ${left} waitUntil task(s) still pending after ${drainTimeoutMs} ms`,
        );
      }
    },
  };
}

if (import.meta.main) {
  const server = await serveFunctions({
    port: Number(Deno.env.get("PORT") ?? 54321),
    hostname: Deno.env.get("HOST") ?? "127.0.0.1",
  });
  for (const signal of ["SIGINT", "SIGTERM"] as const) {
    Deno.addSignalListener(signal, () => {
      server.shutdown().then(() => Deno.exit(0));
    });
  }
}
