/**
 * The local functions runner: serves every `supabase/functions/<name>/index.ts` at
 * `http://127.0.0.1:$PORT/functions/v1/<name>`, the URL layout of `supabase functions serve`,
 * without Docker. Each function is imported unchanged and called through its
 * `export default { fetch }`, as the Supabase Edge Runtime does.
 *
 * Functions whose `config.toml` section has `verify_jwt = true` (the Supabase default) get the
 * gateway's check that a Bearer token is present; the runner does not verify JWT signatures.
 *
 * Environment: PORT (default 54321), HOST (default 127.0.0.1), and whatever the functions read.
 */
import { parse as parseToml } from "smol-toml";

/** The functions directory of this repository. */
export const FUNCTIONS_DIR = new URL("../supabase/functions/", import.meta.url);
const CONFIG_TOML = new URL("../supabase/config.toml", import.meta.url);

/** A function found on disk. */
export interface LocalFunction {
  name: string;
  verifyJwt: boolean;
  fetch: (request: Request) => Response | Promise<Response>;
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

/** Builds the router: `/functions/v1/<name>/<rest>` → the function, with the URL the runtime gives it. */
export function createRouter(functions: LocalFunction[]): (request: Request) => Promise<Response> {
  const byName = new Map(functions.map((f) => [f.name, f]));
  return async (request: Request) => {
    const url = new URL(request.url);
    const match = /^\/functions\/v1\/([^/]+)(\/.*)?$/.exec(url.pathname);
    const fn = match ? byName.get(match[1]) : undefined;
    if (!match || !fn) {
      return Response.json(
        { error: "not_found", message: "no such function", functions: [...byName.keys()] },
        { status: 404 },
      );
    }
    if (fn.verifyJwt && !/^Bearer\s+\S+/i.test(request.headers.get("authorization") ?? "")) {
      return Response.json({ msg: "Missing authorization header" }, { status: 401 });
    }
    // The Edge Runtime hands a function its own path, without the /functions/v1 prefix.
    const inner = new URL(`/${fn.name}${match[2] ?? ""}${url.search}`, url.origin);
    const forwarded = new Request(inner, {
      method: request.method,
      headers: request.headers,
      body: request.body,
    });
    return await fn.fetch(forwarded);
  };
}

/** Starts the runner; resolves with the server once it listens. */
export async function serveFunctions(
  options: { port?: number; hostname?: string; quiet?: boolean } = {},
): Promise<Deno.HttpServer<Deno.NetAddr>> {
  const functions = await loadFunctions();
  const hostname = options.hostname ?? "127.0.0.1";
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
  return server;
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
