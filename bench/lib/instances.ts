/**
 * Function instances as separate processes running `bench/instance_runner.ts`, each with its own
 * port and memory, sharing the database and Redis through the environment.
 */
import { childProcessEnv } from "../../scripts/lib/child_env.ts";
import { trackChild } from "../../scripts/lib/cleanup.ts";
import { freePort } from "../../scripts/lib/ports.ts";
import { FUNCTION_PATH, type InstanceStats } from "../instance_runner.ts";

/** A running instance process. */
export interface Instance {
  /** URL of the webhook function. */
  url: string;
  baseUrl: string;
  pid: number;
  /** Settles when the process has exited, for whatever reason. */
  status: Promise<Deno.CommandStatus>;
  /** Heap and Map entries now. */
  stats(): Promise<InstanceStats>;
  /** SIGKILL: the process dies with requests in flight. */
  kill(): Promise<void>;
  /** SIGTERM and wait. */
  stop(): Promise<void>;
}

const RUNNER = new URL("../instance_runner.ts", import.meta.url).pathname;

/** Starts one instance and waits until it answers; `path` is the function it is driven at. */
export async function startInstance(
  strategy: string,
  env: Record<string, string>,
  path: string = FUNCTION_PATH,
): Promise<Instance> {
  const port = freePort();
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", RUNNER],
    env: {
      ...childProcessEnv(),
      ...env,
      BENCH_STRATEGY: strategy,
      PORT: String(port),
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
  const baseUrl = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 30_000;
  for (;;) {
    if (exited) throw new Error(`instance (${strategy}) exited during start-up`);
    try {
      const response = await fetch(`${baseUrl}/__bench/ready`);
      await response.body?.cancel();
      if (response.ok) break;
    } catch { /* not listening yet */ }
    if (Date.now() > deadline) throw new Error("instance did not start in 30 s");
    await new Promise((r) => setTimeout(r, 50));
  }
  return {
    url: `${baseUrl}${path}`,
    baseUrl,
    pid: child.pid,
    status: child.status,
    async stats() {
      const response = await fetch(`${baseUrl}/__bench/stats`);
      return await response.json() as InstanceStats;
    },
    async kill() {
      if (exited) return;
      child.kill("SIGKILL");
      await child.status;
    },
    async stop() {
      if (exited) return;
      child.kill("SIGTERM");
      const timer = setTimeout(() => {
        if (!exited) child.kill("SIGKILL");
      }, 5000);
      await child.status;
      clearTimeout(timer);
    },
  };
}

/** Starts `count` instances concurrently. */
export function startInstances(
  count: number,
  strategy: string,
  env: Record<string, string>,
  path: string = FUNCTION_PATH,
): Promise<Instance[]> {
  return Promise.all(Array.from({ length: count }, () => startInstance(strategy, env, path)));
}
