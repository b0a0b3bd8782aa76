/**
 * Benchmark of the Idempotency-Key layer, runnable on its own:
 *
 *   deno run -A bench/idempotency_bench.ts [--quick] [--database-url postgres://…]
 *
 * 1. Replay req/s: every request carries the same key and body, so all but the first are replays;
 *    measured with wrk (or a fetch loop when wrk is missing) against the bare-handler ceiling
 *    (bench/bare_server.ts), with the per-instance cache on and off.
 * 2. Database round trips per replay, counted by a wire-protocol proxy in front of PostgreSQL
 *    (0 when the per-instance Map or Redis has the response, 1 otherwise).
 * 3. Cleanup rows/s on a table of 1 M expired rows (100 k with --quick) while a writer keeps
 *    recording new keys; the writer's worst stall during the cleanup is reported.
 *
 * `runIdempotencyBench` returns the rows, for `deno task bench` to include.
 * Without --database-url it starts its own PostgreSQL (scripts/lib/postgres_server.ts).
 */
import postgres from "postgres";
import { applyMigrations } from "../scripts/lib/migrate.ts";
import { freePort } from "../scripts/lib/ports.ts";
import { startPostgres } from "../scripts/lib/postgres_server.ts";
import { childProcessEnv } from "../scripts/lib/child_env.ts";
import { startPgCountingProxy } from "./lib/pg_counting_proxy.ts";
import { startRedis } from "../scripts/lib/redis_server.ts";
import { startUpstashRestServer } from "../scripts/lib/upstash_rest_server.ts";
import { createIdempotencyLayer } from "../supabase/functions/_shared/core/idempotency/layer.ts";
import { parseIdempotencyConfig } from "../supabase/functions/_shared/core/idempotency/config.ts";
import { silentLogger } from "../supabase/functions/_shared/core/log.ts";

/** One figure of the benchmark. */
export interface IdempotencyBenchRow {
  name: string;
  value: number;
  unit: string;
  note?: string;
}

/** Options of {@link runIdempotencyBench}. */
export interface IdempotencyBenchOptions {
  quick?: boolean;
  /** A database with the migrations applied; one is started when absent. */
  databaseUrl?: string;
  log?: (line: string) => void;
}

const BODY = JSON.stringify({
  event: "join",
  groupJid: "120363025246125486@g.us",
  participant: "919963064165@s.whatsapp.net",
});
const SELF = new URL(import.meta.url).pathname;
const BARE = new URL("./bare_server.ts", import.meta.url).pathname;

/** Runs every part and returns its rows. */
export async function runIdempotencyBench(
  options: IdempotencyBenchOptions = {},
): Promise<IdempotencyBenchRow[]> {
  const log = options.log ?? ((line: string) => console.error(line));
  const quick = options.quick ?? false;
  const durationS = quick ? 3 : 10;
  let stopDb = async () => {};
  let url = options.databaseUrl;
  if (!url) {
    const work = await Deno.makeTempDir({ prefix: "idem-bench-" });
    await Deno.chmod(work, 0o755);
    const pg = await startPostgres({
      dataDir: `${work}/pgdata`,
      port: freePort(),
      settings: { fsync: "off", full_page_writes: "off", synchronous_commit: "off" },
    });
    await applyMigrations(pg.url);
    url = pg.url;
    stopDb = async () => {
      await pg.stop();
      await Deno.remove(work, { recursive: true }).catch(() => {});
    };
  }
  const rows: IdempotencyBenchRow[] = [];
  try {
    const port = Number(new URL(url).port);
    log("idempotency bench: bare-handler ceiling");
    const bare = await withServer(
      ["run", "-A", BARE],
      {},
      async (u) => (await load(u, durationS, 0)).rps,
    );
    rows.push({ name: "bare handler (ceiling)", value: bare, unit: "req/s" });
    const cases: { cache: "memory" | "redis" | false; keys: number; label: string }[] = [
      { cache: "memory", keys: KEYS, label: `Map tier, ${KEYS} keys` },
      { cache: "redis", keys: KEYS, label: `Redis tier (no Map), ${KEYS} keys` },
      { cache: false, keys: KEYS, label: `no cache, ${KEYS} keys` },
      { cache: false, keys: 1, label: "no cache, one hot key" },
    ];
    const redis = await startRedisEndpoint(log);
    for (const { cache, keys, label } of cases) {
      if (cache === "redis" && !redis) continue;
      keyPrefix = `bench-${crypto.randomUUID().slice(0, 8)}`;
      const proxy = startPgCountingProxy(port);
      try {
        const env = {
          BENCH_DATABASE_URL: proxy.urlFor(url),
          IDEMPOTENCY_MEMORY_MAX_KEYS: cache === "memory" ? String(2 * KEYS) : "0",
          ...(cache === "redis" && redis ? { BENCH_UPSTASH_URL: redis.url } : {}),
        };
        log(`idempotency bench: replays, ${label}`);
        const result = await withServer(["run", "-A", SELF, "--serve"], env, async (u) => {
          for (let i = 0; i < keys; i++) {
            const first = await fetch(u, { method: "POST", headers: headers(i), body: BODY });
            await first.body?.cancel();
          }
          const before = proxy.stats.roundTrips;
          const { rps, requests } = await load(u, durationS, keys);
          return { rps, perReplay: (proxy.stats.roundTrips - before) / Math.max(1, requests) };
        });
        rows.push({
          name: `replay, ${label}`,
          value: result.rps,
          unit: "req/s",
          note: `${((100 * result.rps) / bare).toFixed(1)} % of the bare handler`,
        });
        rows.push({
          name: `database round trips per replay, ${label}`,
          value: Number(result.perReplay.toFixed(3)),
          unit: "round trips",
          note: cache ? "target 0" : "target ≤ 1",
        });
      } finally {
        proxy.close();
      }
    }
    await redis?.close();
    log("idempotency bench: cleanup under a writer");
    rows.push(...await cleanupBench(url, quick ? 100_000 : 1_000_000));
  } finally {
    await stopDb();
  }
  return rows;
}

async function cleanupBench(url: string, count: number): Promise<IdempotencyBenchRow[]> {
  const sql = postgres(url, { max: 2, onnotice: () => {} });
  try {
    await sql`delete from public.webhook_idempotency where webhook_type in ('bench-expired', 'bench-writer')`;
    await sql`
      insert into public.webhook_idempotency
        (scope, key, webhook_type, fingerprint, state, lock_token, locked_until, expires_at,
         response_status, response_content_type, response_body)
      select 'bench', 'k' || i, 'bench-expired', md5(i::text) || md5(i::text), 'completed',
        gen_random_uuid(), now() - interval '2 days', now() - interval '1 day', 200,
        'application/json', convert_to('{"success":true,"duplicate":false,"results":[]}', 'UTF8')
      from generate_series(1, ${count}) i`;
    await sql`vacuum analyze public.webhook_idempotency`;
    // The writer records new keys one after another, as requests would, and keeps its worst wait.
    const writer = postgres(url, { max: 1, onnotice: () => {} });
    let running = true;
    let worstMs = 0;
    let writes = 0;
    const writing = (async () => {
      while (running) {
        const started = performance.now();
        await writer`select outcome from public.begin_webhook_idempotency('bench', ${crypto.randomUUID()}, 'bench-writer', ${
          "0".repeat(64)
        }, 60000, 60, null)`;
        worstMs = Math.max(worstMs, performance.now() - started);
        writes++;
      }
    })();
    await new Promise((r) => setTimeout(r, 300));
    const baselineWorst = worstMs;
    worstMs = 0;
    const started = performance.now();
    const [{ deleted }] = await sql`select public.cleanup_webhook_idempotency(5000) as deleted`;
    const seconds = (performance.now() - started) / 1000;
    running = false;
    await writing;
    await writer.end();
    await sql`delete from public.webhook_idempotency where webhook_type = 'bench-writer'`;
    return [
      {
        name: `cleanup of ${count.toLocaleString("en")} expired rows`,
        value: Math.round(Number(deleted) / seconds),
        unit: "rows/s",
        note: `${Number(deleted).toLocaleString("en")} deleted in ${seconds.toFixed(2)} s`,
      },
      {
        name: "writer's worst stall during the cleanup",
        value: Number(worstMs.toFixed(1)),
        unit: "ms",
        note: `${writes} keys recorded meanwhile; worst before the cleanup ${
          baselineWorst.toFixed(1)
        } ms`,
      },
    ];
  } finally {
    await sql.end();
  }
}

/** Distinct completed keys the spread replay cases cycle through. */
const KEYS = 500;

/** Each case uses keys of its own, so earlier cases never answer for it. */
let keyPrefix = "bench-replay";

function headers(key?: number): Record<string, string> {
  return key === undefined
    ? { "content-type": "application/json" }
    : { "content-type": "application/json", "idempotency-key": `${keyPrefix}-${key}` };
}

async function withServer<T>(
  args: string[],
  env: Record<string, string>,
  body: (url: string) => Promise<T>,
): Promise<T> {
  const port = freePort();
  const child = new Deno.Command(Deno.execPath(), {
    args,
    env: { ...childProcessEnv(), ...env, PORT: String(port) },
    clearEnv: true,
    stdin: "null",
    stdout: "null",
    stderr: "inherit",
  }).spawn();
  const url = `http://127.0.0.1:${port}/bench`;
  try {
    const deadline = Date.now() + 30_000;
    for (;;) {
      try {
        const conn = await Deno.connect({ hostname: "127.0.0.1", port });
        conn.close();
        break;
      } catch {
        if (Date.now() > deadline) throw new Error("bench server did not start");
        await new Promise((r) => setTimeout(r, 100));
      }
    }
    return await body(url);
  } finally {
    child.kill("SIGTERM");
    await child.status;
  }
}

/** Load with wrk (fetch loop without it); `keys` 0 sends no key, else cycles through `keys` keys. */
async function load(
  url: string,
  durationS: number,
  keys: number,
): Promise<{ rps: number; requests: number }> {
  const script = await Deno.makeTempFile({ suffix: ".lua" });
  await Deno.writeTextFile(
    script,
    `wrk.method = "POST"
wrk.body = ${JSON.stringify(BODY)}
wrk.headers["content-type"] = "application/json"
local n = 0
request = function()
  n = n + 1
  ${keys > 0 ? `wrk.headers["idempotency-key"] = "${keyPrefix}-" .. (n % ${keys})` : ""}
  return wrk.format()
end
`,
  );
  try {
    const out = await new Deno.Command("wrk", {
      args: ["-t2", "-c50", `-d${durationS}s`, "-s", script, url],
      stdout: "piped",
      stderr: "piped",
    }).output();
    const text = new TextDecoder().decode(out.stdout);
    const rps = /Requests\/sec:\s+([0-9.]+)/.exec(text)?.[1];
    if (!out.success || !rps) throw new Error(`wrk failed: ${text}`);
    if (/Non-2xx/.test(text)) throw new Error(`non-2xx answers under load: ${text}`);
    const requests = Number(/([0-9]+) requests in/.exec(text)?.[1] ?? 0);
    return { rps: Math.round(Number(rps)), requests };
  } catch (error) {
    if (!(error instanceof Deno.errors.NotFound)) throw error;
    return await fetchLoop(url, durationS, keys);
  } finally {
    await Deno.remove(script).catch(() => {});
  }
}

async function fetchLoop(url: string, durationS: number, keys: number) {
  const end = performance.now() + durationS * 1000;
  let requests = 0;
  await Promise.all(Array.from({ length: 16 }, async () => {
    while (performance.now() < end) {
      const r = await fetch(url, {
        method: "POST",
        headers: headers(keys > 0 ? requests % keys : undefined),
        body: BODY,
      });
      await r.body?.cancel();
      requests++;
    }
  }));
  return { rps: Math.round(requests / durationS), requests };
}

/** A Redis server behind the local Upstash-compatible endpoint; undefined without redis-server. */
async function startRedisEndpoint(log: (line: string) => void) {
  try {
    const server = await startRedis({ port: freePort() });
    const endpoint = await startUpstashRestServer({ redisUrl: server.url, token: "bench" });
    return {
      url: endpoint.url,
      close: async () => {
        await endpoint.close();
        await server.stop();
      },
    };
  } catch (error) {
    log(`idempotency bench: no Redis tier row (${error instanceof Error ? error.message : error})`);
    return undefined;
  }
}

/** Child mode: a server whose handler is only the layer in front of a trivial function. */
function serveLayer(): void {
  const env = Deno.env.toObject();
  const layer = createIdempotencyLayer(parseIdempotencyConfig(env), {
    databaseUrl: env.BENCH_DATABASE_URL,
    poolMax: 4,
    redis: env.BENCH_UPSTASH_URL
      ? { url: env.BENCH_UPSTASH_URL, token: "bench", timeoutMs: 1000, probeIntervalMs: 250 }
      : undefined,
    logger: silentLogger,
  });
  Deno.serve({ hostname: "127.0.0.1", port: Number(env.PORT), onListen: () => {} }, async (req) => {
    const rawBody = new Uint8Array(await req.arrayBuffer());
    return await layer.handle(
      { functionName: "bench", caller: "bench", webhookType: "bench", request: req, rawBody },
      () => {
        const body = JSON.parse(new TextDecoder().decode(rawBody)) as { event?: unknown };
        return Promise.resolve(Response.json({ success: true, event: body.event ?? null }));
      },
    );
  });
}

if (import.meta.main) {
  if (Deno.args.includes("--serve")) {
    serveLayer();
  } else {
    const at = Deno.args.indexOf("--database-url");
    const rows = await runIdempotencyBench({
      quick: Deno.args.includes("--quick"),
      databaseUrl: at >= 0 ? Deno.args[at + 1] : undefined,
    });
    for (const row of rows) {
      console.log(
        `${row.name.padEnd(48)} ${String(row.value).padStart(10)} ${row.unit}${
          row.note ? `  (${row.note})` : ""
        }`,
      );
    }
  }
}
