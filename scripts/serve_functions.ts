/**
 * The local functions runner: serves every `supabase/functions/<name>/index.ts` at
 * `http://127.0.0.1:$PORT/functions/v1/<name>`, the URL layout of `supabase functions serve`,
 * without Docker. Each function is imported unchanged and called through its
 * `export default { fetch }` with the request the server received (same method, URL, headers and
 * body bytes, streamed), as the Supabase Edge Runtime does.
 *
 * As on the platform:
 * - each function runs in instances of its own (a Web Worker each: own isolate, own module
 *   state), started on demand, with the platform's limits (`lib/edge_limits.ts`): a wall clock
 *   per instance (`EDGE_WALL_CLOCK_MS`, default 150000) that cuts its requests and its
 *   `waitUntil` work, and, with `EDGE_EVICT_AFTER_RESPONSE=1`, a fresh instance after each
 *   response;
 * - functions get `SUPABASE_URL` (this runner) and the legacy `SUPABASE_ANON_KEY` and
 *   `SUPABASE_SERVICE_ROLE_KEY` (signed with the local JWT secret) unless set
 *   (`lib/platform_env.ts`);
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
 * WAIT_UNTIL_DRAIN_MS, EDGE_WALL_CLOCK_MS, EDGE_EVICT_AFTER_RESPONSE, and whatever the functions
 * read. `loadFunctions` + `createRouter` serve the functions in this process instead, without
 * instances or limits (the benchmark's instances do).
 */
import { parse as parseToml } from "smol-toml";
import { type EdgeLimits, edgeLimitsFromEnv } from "./lib/edge_limits.ts";
import { EdgeFunctionPool } from "./lib/edge_pool.ts";
import { BackgroundTasks, installEdgeRuntime } from "./lib/edge_runtime.ts";
import { GatewayJwtCheck, localAuthEnv, localJwksResponse } from "./lib/local_jwt.ts";
import { localApiKeys, platformEnv } from "./lib/platform_env.ts";

/** The functions directory of this repository. */
export const FUNCTIONS_DIR = new URL("../supabase/functions/", import.meta.url);
const PREFIX = "/functions/v1/";

/** A function found on disk. */
export interface LocalFunction {
  name: string;
  verifyJwt: boolean;
  fetch: (request: Request, info: Deno.ServeHandlerInfo) => Response | Promise<Response>;
}

/** A function's entry module and settings, before anything is imported. */
export interface FunctionEntry {
  name: string;
  verifyJwt: boolean;
  /** Its `index.ts`. */
  entry: URL;
}

/**
 * Lists the functions under `functionsDir` (default `supabase/functions`; folders starting with
 * `_` or `.` are shared code) with their `config.toml` settings (the file beside that folder).
 */
export async function listFunctions(functionsDir: URL = FUNCTIONS_DIR): Promise<FunctionEntry[]> {
  const config = parseToml(await Deno.readTextFile(new URL("../config.toml", functionsDir))) as {
    functions?: Record<string, { verify_jwt?: boolean; enabled?: boolean; entrypoint?: string }>;
  };
  const names: string[] = [];
  for await (const entry of Deno.readDir(functionsDir)) {
    if (entry.isDirectory && !entry.name.startsWith("_") && !entry.name.startsWith(".")) {
      names.push(entry.name);
    }
  }
  names.sort();
  return names
    .filter((name) => config.functions?.[name]?.enabled !== false)
    .map((name) => ({
      name,
      verifyJwt: config.functions?.[name]?.verify_jwt ?? true,
      entry: new URL(`${name}/index.ts`, functionsDir),
    }));
}

/** Imports every function into this process (no instances, no limits). */
export async function loadFunctions(functionsDir: URL = FUNCTIONS_DIR): Promise<LocalFunction[]> {
  const functions: LocalFunction[] = [];
  for (const { name, verifyJwt, entry } of await listFunctions(functionsDir)) {
    const mod = await import(entry.href);
    const handler = mod.default?.fetch;
    if (typeof handler !== "function") {
      throw new Error(`${name}/index.ts must export default { fetch }`);
    }
    functions.push({ name, verifyJwt, fetch: handler });
  }
  return functions;
}

/** Each function served by instances of its own, within `limits`. */
export function isolatedFunctions(
  entries: FunctionEntry[],
  limits: EdgeLimits,
): { functions: LocalFunction[]; pools: EdgeFunctionPool[] } {
  const pools = entries.map((fn) => new EdgeFunctionPool({ ...fn, limits }));
  const functions = entries.map((fn, i): LocalFunction => ({
    name: fn.name,
    verifyJwt: fn.verifyJwt,
    fetch: (request, info) => pools[i].fetch(request, info),
  }));
  return { functions, pools };
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
  /** Work handed to `EdgeRuntime.waitUntil` in this process (functions use their instance's). */
  tasks: BackgroundTasks;
  /** Each function's instances. */
  pools: EdgeFunctionPool[];
  /**
   * Stops accepting requests, then waits (bounded) for the instances' responses and pending
   * `waitUntil` work, and ends them.
   */
  shutdown(): Promise<void>;
}

/** Starts the runner (and the `EdgeRuntime` global); resolves once it listens. */
export async function serveFunctions(
  options: {
    port?: number;
    hostname?: string;
    quiet?: boolean;
    drainTimeoutMs?: number;
    /** Default from `EDGE_WALL_CLOCK_MS` and `EDGE_EVICT_AFTER_RESPONSE`. */
    limits?: EdgeLimits;
    /** Default `supabase/functions` (tests serve functions of their own). */
    functionsDir?: URL;
  } = {},
): Promise<FunctionsServer> {
  const tasks = installEdgeRuntime();
  for (const [name, value] of Object.entries(localAuthEnv(Deno.env.toObject()))) {
    Deno.env.set(name, value);
  }
  const limits = options.limits ?? edgeLimitsFromEnv(Deno.env.toObject());
  const { functions, pools } = isolatedFunctions(await listFunctions(options.functionsDir), limits);
  const keys = await localApiKeys();
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
  // Set before any request is handled: instances start on demand and read them then.
  const host = hostname === "0.0.0.0" || hostname === "::" ? "127.0.0.1" : hostname;
  const base = `http://${host}:${server.addr.port}`;
  for (const [name, value] of Object.entries(platformEnv(base, keys, Deno.env.toObject()))) {
    Deno.env.set(name, value);
  }
  return {
    addr: server.addr,
    tasks,
    pools,
    async shutdown() {
      await server.shutdown();
      const started = Date.now();
      const left = await tasks.drain(drainTimeoutMs);
      const cut = await Promise.all(
        pools.map((pool) => pool.close(Math.max(0, drainTimeoutMs - (Date.now() - started)))),
      );
      const instances = cut.reduce((a, b) => a + b, 0);
      if (left + instances > 0) {
        console.error(
          `shutdown: ${left + instances} instance(s) or waitUntil task(s) still busy after ` +
            `${drainTimeoutMs} ms`,
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
