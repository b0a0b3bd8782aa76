/**
 * Starts a local Redis server (Debian's `redis-server`) on loopback, without persistence. A start
 * resolves once the server answers PING; a started server is stopped by the command's cleanup
 * (`cleanup.ts`) if nothing else stops it.
 */
import { onCleanup } from "./cleanup.ts";
import { waitForRedisPing } from "./readiness.ts";

/** A running local Redis server. */
export interface RedisServer {
  /** `redis://127.0.0.1:<port>` */
  url: string;
  port: number;
  stop(): Promise<void>;
  start(): Promise<void>;
}

/** Starts `redis-server` on a loopback port; it keeps nothing on disk. */
export async function startRedis(
  options: { port: number; logFile?: string },
): Promise<RedisServer> {
  let child: Deno.ChildProcess | undefined;
  let exited = true;
  const server: RedisServer = {
    url: `redis://127.0.0.1:${options.port}`,
    port: options.port,
    async start() {
      if (!exited) return;
      const args = [
        "--port",
        String(options.port),
        "--bind",
        "127.0.0.1",
        "--save",
        "",
        "--appendonly",
        "no",
        "--daemonize",
        "no",
        "--logfile",
        options.logFile ?? "",
      ];
      try {
        child = new Deno.Command("redis-server", {
          args,
          stdin: "null",
          stdout: "null",
          stderr: "null",
        }).spawn();
      } catch (error) {
        throw new Error(
          "redis-server not found. Install it (Debian: apt-get install redis-server).",
          { cause: error },
        );
      }
      exited = false;
      const current = child;
      const forget = onCleanup(() => server.stop());
      current.status.then(() => {
        if (child === current) exited = true;
        forget();
      });
      try {
        await waitForRedisPing(options.port, { timeoutMs: 10_000, exited: () => exited });
      } catch (error) {
        await server.stop();
        throw error;
      }
    },
    async stop() {
      if (!child || exited) return;
      const current = child;
      try {
        current.kill("SIGKILL");
      } catch { /* already gone */ }
      await current.status;
      exited = true;
    },
  };
  await server.start();
  return server;
}
