/**
 * A local endpoint that speaks the Upstash Redis REST protocol, backed by a real Redis server.
 *
 * Upstash's own local proxy needs Docker; this one lets `@upstash/redis` run unchanged against a
 * local `redis-server`. It serves what the client uses: `POST /` with one command as a JSON array,
 * `POST /pipeline` and `POST /multi-exec` with an array of commands, `Authorization: Bearer`,
 * and `Upstash-Encoding: base64` responses.
 */
import { createHash } from "node:crypto";
import { createClient } from "@redis/client";
import { onCleanup } from "./cleanup.ts";

/** A running endpoint. */
export interface UpstashRestServer {
  /** Value for `UPSTASH_REDIS_REST_URL`. */
  url: string;
  /** Value for `UPSTASH_REDIS_REST_TOKEN`. */
  token: string;
  /** Requests and Redis commands served so far. */
  stats: { requests: number; commands: number };
  /** Faults to inject: a delay before every answer. */
  faults: { delayMs: number };
  close(): Promise<void>;
}

type Reply = string | number | null | Reply[];

function encode(reply: Reply, base64: boolean): Reply {
  if (!base64) return reply;
  if (typeof reply === "string") {
    const bytes = new TextEncoder().encode(reply);
    let binary = "";
    for (const b of bytes) binary += String.fromCharCode(b);
    return btoa(binary);
  }
  if (Array.isArray(reply)) return reply.map((r) => encode(r, base64));
  return reply;
}

function isCommand(value: unknown): value is (string | number)[] {
  return Array.isArray(value) && value.length > 0 &&
    value.every((v) => typeof v === "string" || typeof v === "number");
}

/** Starts the endpoint on 127.0.0.1. */
export async function startUpstashRestServer(options: {
  redisUrl: string;
  token: string;
  port?: number;
}): Promise<UpstashRestServer> {
  const redis = createClient({
    url: options.redisUrl,
    RESP: 2,
    socket: { reconnectStrategy: (retries) => Math.min(retries * 50, 500), connectTimeout: 1000 },
    disableOfflineQueue: true,
  });
  redis.on("error", () => {/* reconnects by itself; requests meanwhile answer 500 */});
  await redis.connect();
  const stats = { requests: 0, commands: 0 };
  const faults = { delayMs: 0 };

  // Upstash accepts the `allow-key-locking` script flag (@upstash/ratelimit sends it); Redis 7 does
  // not. Scripts are stored without it and EVALSHA of the original script is mapped to them.
  const scriptShas = new Map<string, string>();
  const sha1 = (text: string) => createHash("sha1").update(text).digest("hex");
  const compatible = (args: string[]): string[] => {
    const name = args[0]?.toUpperCase();
    const at = name === "EVAL" || name === "EVAL_RO"
      ? 1
      : name === "SCRIPT" && args[1]?.toUpperCase() === "LOAD"
      ? 2
      : -1;
    if (at !== -1 && /^#!lua[^\n]*allow-key-locking/.test(args[at] ?? "")) {
      const original = args[at];
      const script = original.replace(/^(#!lua[^\n]*?)\s*,?\s*allow-key-locking/, "$1")
        .replace(/flags=\s*(\n)/, "$1").replace(/flags=,/, "flags=");
      scriptShas.set(sha1(original), sha1(script));
      return args.map((arg, i) => (i === at ? script : arg));
    }
    if ((name === "EVALSHA" || name === "EVALSHA_RO") && scriptShas.has(args[1])) {
      return args.map((arg, i) => (i === 1 ? scriptShas.get(arg)! : arg));
    }
    return args;
  };

  const run = async (command: (string | number)[]): Promise<{ result?: Reply; error?: string }> => {
    stats.commands++;
    try {
      const result = await redis.sendCommand(compatible(command.map(String))) as Reply;
      return { result };
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error);
      if (/ERR|WRONGTYPE|NOSCRIPT|EXECABORT|NOAUTH|SYNTAX/.test(message)) return { error: message };
      throw error;
    }
  };

  const json = (status: number, body: unknown) =>
    new Response(JSON.stringify(body), {
      status,
      headers: { "content-type": "application/json" },
    });

  const server = Deno.serve({
    hostname: "127.0.0.1",
    port: options.port ?? 0,
    onListen: () => {},
  }, async (request) => {
    stats.requests++;
    if (faults.delayMs > 0) await new Promise((r) => setTimeout(r, faults.delayMs));
    if (request.headers.get("authorization") !== `Bearer ${options.token}`) {
      return json(401, { error: "Unauthorized" });
    }
    if (request.method !== "POST") return json(405, { error: "use POST" });
    const base64 = request.headers.get("upstash-encoding")?.toLowerCase() === "base64";
    const path = new URL(request.url).pathname.replace(/\/+$/, "");
    let body: unknown;
    try {
      body = await request.json();
    } catch {
      return json(400, { error: "ERR failed to parse command" });
    }
    try {
      if (path === "" || path === "/") {
        if (!isCommand(body)) return json(400, { error: "ERR failed to parse command" });
        const reply = await run(body);
        return reply.error
          ? json(400, { error: reply.error })
          : json(200, { result: encode(reply.result!, base64) });
      }
      if (path === "/pipeline" || path === "/multi-exec") {
        if (!Array.isArray(body) || !body.every(isCommand)) {
          return json(400, { error: "ERR failed to parse pipeline request" });
        }
        if (path === "/multi-exec") {
          stats.commands += body.length;
          const multi = redis.multi();
          for (const command of body) multi.addCommand(command.map(String));
          const replies = (await multi.exec()) as unknown as Reply[];
          return json(200, replies.map((r) => ({ result: encode(r, base64) })));
        }
        const replies = await Promise.all(body.map(run));
        return json(
          200,
          replies.map((r) => r.error ? { error: r.error } : { result: encode(r.result!, base64) }),
        );
      }
      return json(404, { error: `unknown path ${path}` });
    } catch (error) {
      return json(500, { error: error instanceof Error ? error.message : String(error) });
    }
  });
  const port = server.addr.port;
  let closing: Promise<void> | undefined;
  const close = () =>
    closing ??= (async () => {
      forget();
      await server.shutdown();
      try {
        redis.destroy();
      } catch { /* already closed */ }
    })();
  // Closed before the Redis it stands in front of when the command stops.
  const forget = onCleanup(close);
  return { url: `http://127.0.0.1:${port}`, token: options.token, stats, faults, close };
}

if (import.meta.main) {
  const redisUrl = Deno.env.get("REDIS_URL") ?? "redis://127.0.0.1:6379";
  const token = Deno.env.get("UPSTASH_REDIS_REST_TOKEN") ?? "local-upstash-token";
  const port = Number(Deno.env.get("UPSTASH_PORT") ?? 8079);
  const server = await startUpstashRestServer({ redisUrl, token, port });
  console.log(`Upstash-compatible REST endpoint on ${server.url} (Redis ${redisUrl})`);
}
