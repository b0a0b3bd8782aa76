/**
 * Function instances as separate processes: each runs the local runner
 * (`scripts/serve_functions.ts`) with its own port and in-memory tier, sharing the database and
 * Redis through the environment, as separate Edge Function instances would. In the pooled pass an
 * instance given the direct test database connects through PgBouncer instead.
 */
import { childProcessEnv } from "../../scripts/lib/child_env.ts";
import { trackChild } from "../../scripts/lib/cleanup.ts";
import { freePort } from "../../scripts/lib/ports.ts";
import { functionDatabaseUrl } from "./env.ts";

/** A running runner process. */
export interface FunctionInstance {
  /** Base URL, e.g. `http://127.0.0.1:40123/functions/v1`. */
  baseUrl: string;
  /** URL of one function. */
  url(name: string): string;
  stop(): Promise<void>;
  /** Kills the process at once (SIGKILL): no graceful shutdown, as when an instance dies. */
  kill(): Promise<void>;
}

const RUNNER = new URL("../../scripts/serve_functions.ts", import.meta.url).pathname;

/** Starts a runner process with the given environment and waits until it answers. */
export async function startFunctionInstance(
  env: Record<string, string>,
): Promise<FunctionInstance> {
  const port = freePort();
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", RUNNER],
    env: {
      ...childProcessEnv(),
      ...env,
      ...(env.SUPABASE_DB_URL && env.SUPABASE_DB_URL === Deno.env.get("TEST_DATABASE_URL")
        ? { SUPABASE_DB_URL: functionDatabaseUrl() }
        : {}),
      PORT: String(port),
      HOST: "127.0.0.1",
      LOG_LEVEL: env.LOG_LEVEL ?? "error",
    },
    clearEnv: true,
    stdin: "null",
    stdout: "null",
    stderr: "inherit",
  }).spawn();
  trackChild(child);
  let exited = false;
  child.status.then(() => (exited = true));
  const baseUrl = `http://127.0.0.1:${port}/functions/v1`;
  const deadline = Date.now() + 30_000;
  for (;;) {
    if (exited) throw new Error("function runner exited during start-up");
    try {
      const response = await fetch(`${baseUrl}/whatsapp-membership-webhook/health`);
      await response.body?.cancel();
      if (response.ok) break;
    } catch { /* not listening yet */ }
    if (Date.now() > deadline) throw new Error("function runner did not start in 30 s");
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    baseUrl,
    url: (name) => `${baseUrl}/${name}`,
    async stop() {
      if (exited) return;
      child.kill("SIGTERM");
      await child.status;
    },
    async kill() {
      if (exited) return;
      child.kill("SIGKILL");
      await child.status;
    },
  };
}
