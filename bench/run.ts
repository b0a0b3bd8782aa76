/**
 * The benchmark and fault suite: our dedup against the usual alternatives, side by side, on the
 * same workload, with a real PostgreSQL and a real Redis on loopback.
 *
 *   deno task bench            # default size (M = 2000 events, 3 instances), < 5 minutes
 *   deno task bench --quick    # small size, correctness only, < 1 minute
 *
 * Options: --events=N --sessions=N (1–4) --instances=N --no-faults --no-http --no-micro
 * --out=DIR (default bench/results) --no-write (print only) --readme (also rewrite the results
 * section of bench/README.md; default for a full run). See bench/README.md for the method.
 */
import postgres from "postgres";
import { applyMigrations } from "../scripts/lib/migrate.ts";
import { freePort } from "../scripts/lib/ports.ts";
import { type PostgresServer, startPostgres } from "../scripts/lib/postgres_server.ts";
import { type RedisServer, startRedis } from "../scripts/lib/redis_server.ts";
import {
  startUpstashRestServer,
  type UpstashRestServer,
} from "../scripts/lib/upstash_rest_server.ts";
import { RealtimeChangeFeed } from "../tests/support/realtime_changes.ts";
import { checkCorrectness } from "./lib/analysis.ts";
import { type Instance, startInstances } from "./lib/instances.ts";
import {
  autocannonLoad,
  ensureWrk,
  type LoadFigure,
  pgbenchApply,
  type PgbenchFigure,
  signatureOf,
  writeUniqueBodies,
  wrkLoad,
} from "./lib/load.ts";
import { type PgCountingProxy, startPgCountingProxy } from "./lib/pg_counting_proxy.ts";
import { markdownTable, type StrategyRow, svgChart, tableCells, textTable } from "./lib/report.ts";
import { percentile, sendPhases, type Target } from "./lib/sender.ts";
import { generateWorkload, prng, type Workload } from "./lib/workload.ts";

export type { StrategyRow } from "./lib/report.ts";

/** Options of {@link runBenchmark}; unset fields take the default (or `--quick`) size. */
export interface BenchOptions {
  /** Small, fast run for CI: correctness figures only. */
  quick?: boolean;
  /** Unique events M. */
  events?: number;
  /** Sessions delivering each event (1–4). */
  sessions?: number;
  /** Function instances N (separate processes). */
  instances?: number;
  /** Events in flight at once. */
  concurrency?: number;
  /** Share of events retried late. */
  lateRetryShare?: number;
  /** Run the fault rows (default true). */
  faults?: boolean;
  /** Run the HTTP load figures and ceilings (default: not in quick mode). */
  http?: boolean;
  /** Run the Deno.bench micro-benchmarks (default: not in quick mode). */
  micro?: boolean;
  /** Seed of the workload. */
  seed?: number;
  /** Run only the scenarios with these ids (e.g. `ours+redis`, `fault:instance-killed`). */
  only?: string[];
  /** Progress lines (default: console.error). */
  log?: (line: string) => void;
}

/** Per-webhook costs measured one delivery at a time. */
export interface CostProbe {
  case: string;
  dbRoundTrips: number;
  redisBatches: number;
  redisCommands: number;
}

/** A micro-benchmark figure. */
export interface MicroFigure {
  name: string;
  group: string;
  avgNs: number;
  p99Ns: number;
  iterations: number;
}

/** One target and whether this run meets it. */
export interface TargetCheck {
  target: string;
  measured: string;
  met: boolean | null;
}

/** Everything a run measured. */
export interface BenchResult {
  date: string;
  machine: { cpus: number; memoryGiB: number; cpuModel: string; os: string; deno: string };
  options: Required<Omit<BenchOptions, "log">>;
  elapsedS: number;
  rows: StrategyRow[];
  costProbe: CostProbe[];
  micro: MicroFigure[];
  http?: {
    bare: LoadFigure;
    duplicatePath: LoadFigure;
    uniquePath: LoadFigure;
    uniquePathWithRedis?: LoadFigure;
    pgbench: PgbenchFigure[];
    /** Database connections of one instance (DB_POOL_MAX), the concurrency pgbench is compared at. */
    instancePoolSize: number;
    note?: string;
  };
  targets: TargetCheck[];
}

const SECRET = "bench-webhook-secret-0123456789";
const REDIS_TOKEN = "bench-upstash-token";
const WINDOW_MS = 5000;
const POOL_MAX = 4;
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** The faults injected into "ours" (with Redis), one row each. */
export const FAULTS = {
  "redis-killed": "ours + fault: Redis killed mid-run",
  "redis-slow": "ours + fault: Redis answers 2 s late",
  "postgres-restart": "ours + fault: PostgreSQL restarted mid-run",
  "instance-killed": "ours + fault: one instance killed mid-run",
  "instance-killed-no-redis": "ours, no Redis + fault: one instance killed mid-run",
} as const;

/** A fault's name. */
export type Fault = keyof typeof FAULTS;

interface Env {
  work: string;
  pg: PostgresServer;
  redis: RedisServer;
  upstash: UpstashRestServer;
  proxy: PgCountingProxy;
  sql: postgres.Sql;
}

interface Scenario {
  id: string;
  label: string;
  strategy: "ours" | "noDedup" | "mapBucket" | "redisCheckThenSet";
  redis: boolean;
  fault?: Fault;
}

function resolveOptions(options: BenchOptions): Required<Omit<BenchOptions, "log">> {
  const quick = options.quick ?? false;
  const resolved = {
    quick,
    events: options.events ?? (quick ? 300 : 2000),
    sessions: Math.min(4, Math.max(1, options.sessions ?? 2)),
    instances: Math.max(2, options.instances ?? (quick ? 2 : 3)),
    concurrency: options.concurrency ?? 16,
    lateRetryShare: options.lateRetryShare ?? 0.1,
    faults: options.faults ?? true,
    http: options.http ?? !quick,
    micro: options.micro ?? !quick,
    seed: options.seed ?? 20261122,
    only: options.only ?? [],
  };
  return resolved;
}

async function redisCommand(env: Env, command: (string | number)[]): Promise<unknown> {
  const response = await fetch(env.upstash.url, {
    method: "POST",
    headers: { authorization: `Bearer ${REDIS_TOKEN}` },
    body: JSON.stringify(command),
  });
  return await response.json();
}

async function applyCalls(sql: postgres.Sql): Promise<number> {
  await sql`select pg_stat_clear_snapshot()`;
  const rows = await sql<{ calls: string }[]>`
    select coalesce(sum(calls), 0)::text as calls from pg_stat_user_functions
    where funcname = 'apply_whatsapp_membership_events'`;
  return Number(rows[0].calls);
}

/** Waits until the function-call statistics stop moving (backends flush them when they exit). */
async function settledApplyCalls(sql: postgres.Sql): Promise<number> {
  let last = await applyCalls(sql);
  for (let i = 0; i < 15; i++) {
    await sleep(200);
    const now = await applyCalls(sql);
    if (now === last && i >= 2) return now;
    last = now;
  }
  return last;
}

let prefixCounter = 0;

function instanceEnv(env: Env, scenario: Scenario): Record<string, string> {
  const vars: Record<string, string> = {
    SUPABASE_DB_URL: env.proxy.urlFor(env.pg.url),
    WEBHOOK_SECRET: SECRET,
    DEDUP_WINDOW_MS: String(WINDOW_MS),
    DB_POOL_MAX: String(POOL_MAX),
    // A fresh key space per scenario: a command still in flight from an earlier scenario (the
    // slow-Redis fault delays them 2 s) cannot touch this one's keys.
    DEDUP_KEY_PREFIX: `bench-${scenario.id.replace(/[^a-z0-9]/gi, "-")}-${++prefixCounter}`,
    LOG_LEVEL: "error",
  };
  if (scenario.redis) {
    vars.UPSTASH_REDIS_REST_URL = env.upstash.url;
    vars.UPSTASH_REDIS_REST_TOKEN = REDIS_TOKEN;
  }
  return vars;
}

async function runScenario(
  env: Env,
  scenario: Scenario,
  workload: Workload,
  signatures: Map<string, string>,
  o: Required<Omit<BenchOptions, "log">>,
  log: (line: string) => void,
): Promise<StrategyRow> {
  await env
    .sql`truncate public.whatsapp_group_members, public.whatsapp_member_clock, public.whatsapp_lid_phones`;
  await redisCommand(env, ["FLUSHALL"]);
  const instances = await startInstances(
    o.instances,
    scenario.strategy,
    instanceEnv(env, scenario),
  );
  const targets: Target[] = instances.map((i) => ({ url: i.url, alive: true }));
  const feed = await RealtimeChangeFeed.open(env.sql);
  const callsBefore = scenario.strategy === "ours" ? await applyCalls(env.sql) : 0;
  const db0 = env.proxy.stats.roundTrips;
  const redis0 = { ...env.upstash.stats };

  let injected = false;
  let recovery: Promise<void> = Promise.resolve();
  const recoverMs = o.quick ? 1000 : 2500;
  const inject = () => {
    injected = true;
    log(`  fault: ${scenario.fault}`);
    switch (scenario.fault) {
      case "redis-killed":
        recovery = env.redis.stop().then(() => sleep(recoverMs)).then(() => env.redis.start());
        break;
      case "redis-slow":
        env.upstash.faults.delayMs = 2000;
        // Back to normal after recoverMs, then let the delayed commands drain.
        recovery = sleep(recoverMs).then(() => {
          env.upstash.faults.delayMs = 0;
        }).then(() => sleep(2100));
        break;
      case "postgres-restart":
        recovery = env.pg.stop().then(() => sleep(300)).then(() => env.pg.start());
        break;
      case "instance-killed":
      case "instance-killed-no-redis":
        targets[0].alive = false;
        recovery = instances[0].kill();
        break;
    }
  };

  const send = await sendPhases(workload.phases, targets, {
    concurrency: o.concurrency,
    signatures,
    maxAttempts: 40,
    deadlineMs: o.quick ? 40_000 : 120_000,
    attemptTimeoutMs: 10_000,
    random: prng(o.seed + 1),
    onProgress: (done, total) => {
      if (scenario.fault && !injected && done >= total * 0.3) inject();
    },
  });
  await recovery;

  const live = instances.filter((_, i) => targets[i].alive);
  const stats = await Promise.all(live.map((i) => i.stats().catch(() => undefined)));
  await Promise.all(instances.map((i) => i.stop()));
  const dbRoundTrips = env.proxy.stats.roundTrips - db0;
  const redisCommands = env.upstash.stats.commands - redis0.commands;
  const redisBatches = env.upstash.stats.requests - redis0.requests;
  const changes = await feed.changes();
  await feed.close();
  const correctness = await checkCorrectness(env.sql, changes, workload);
  const calls = scenario.strategy === "ours"
    ? (await settledApplyCalls(env.sql)) - callsBefore
    : undefined;
  const present = stats.filter((s) => s !== undefined);
  const mean = (f: (s: (typeof present)[number]) => number) =>
    present.length === 0 ? NaN : present.reduce((n, s) => n + f(s), 0) / present.length;
  const row: StrategyRow = {
    id: scenario.id,
    label: scenario.label,
    deliveries: send.deliveries,
    uniqueEvents: workload.events.length,
    attempts: send.attempts,
    non2xx: send.non2xx,
    gaveUp: send.gaveUp,
    rowChanges: correctness.rowChanges,
    expectedChanges: correctness.expectedChanges,
    leaked: correctness.leaked,
    lost: correctness.lost,
    p50Ms: percentile(send.latenciesMs, 50),
    p99Ms: percentile(send.latenciesMs, 99),
    deliveriesPerS: send.deliveries / (send.elapsedMs / 1000),
    dbRoundTripsPerDelivery: dbRoundTrips / send.deliveries,
    applyCallsPerDelivery: calls === undefined ? undefined : calls / send.deliveries,
    redisCommandsPerDelivery: redisCommands / send.deliveries,
    redisBatchesPerDelivery: redisBatches / send.deliveries,
    mapEntries: present.reduce((n, s) => n + s.mapEntries, 0),
    heapMB: mean((s) => s.heapUsedBytes) / 2 ** 20,
    rssMB: mean((s) => s.rssBytes) / 2 ** 20,
  };
  if (scenario.strategy === "ours") {
    for (const example of correctness.examples) log(`    ${example}`);
  }
  log(
    `  ${scenario.label}: leaked ${row.leaked}, lost ${row.lost}, non-2xx ${row.non2xx}, ` +
      `gave up ${row.gaveUp}, ` +
      `${row.deliveriesPerS.toFixed(0)} deliveries/s, p99 ${row.p99Ms.toFixed(1)} ms`,
  );
  return row;
}

/** Sends single deliveries one at a time and measures what each cost. */
async function costProbe(env: Env): Promise<CostProbe[]> {
  await env
    .sql`truncate public.whatsapp_group_members, public.whatsapp_member_clock, public.whatsapp_lid_phones`;
  const scenario: Scenario = { id: "probe", label: "probe", strategy: "ours", redis: true };
  const [a, b] = await startInstances(2, "ours", instanceEnv(env, scenario));
  const post = async (instance: Instance, payload: unknown) => {
    const body = JSON.stringify(payload);
    const response = await fetch(instance.url, {
      method: "POST",
      headers: {
        "content-type": "application/json",
        "x-webhook-signature": signatureOf(SECRET, body),
      },
      body,
    });
    await response.arrayBuffer();
    if (!response.ok) throw new Error(`probe delivery answered ${response.status}`);
  };
  const measure = async (name: string, fn: () => Promise<void>): Promise<CostProbe> => {
    const db0 = env.proxy.stats.roundTrips;
    const r0 = { ...env.upstash.stats };
    await fn();
    await sleep(20);
    return {
      case: name,
      dbRoundTrips: env.proxy.stats.roundTrips - db0,
      redisBatches: env.upstash.stats.requests - r0.requests,
      redisCommands: env.upstash.stats.commands - r0.commands,
    };
  };
  const group = "120363777000000001@g.us";
  const at = Date.now() - 60_000;
  const event = (n: number, session: string) => ({
    event: "join",
    groupJid: group,
    participant: `91990000${String(1000 + n)}@s.whatsapp.net`,
    timestamp: at,
    sessionId: session,
  });
  try {
    // Warm both instances up (connection set-up is not a per-webhook cost).
    await post(a, event(900, "warm"));
    await post(b, event(901, "warm"));
    return [
      await measure("unique event", () => post(a, event(1, "s1"))),
      await measure("same-instance duplicate", () => post(a, event(1, "s2"))),
      await measure("cross-instance duplicate", () => post(b, event(1, "s3"))),
      await measure("webhook with 5 participants", () =>
        post(a, {
          event: "join",
          groupJid: group,
          participants: [2, 3, 4, 5, 6].map((n) => `91990000${1000 + n}@s.whatsapp.net`),
          timestamp: at,
        })),
    ];
  } finally {
    await Promise.all([a.stop(), b.stop()]);
  }
}

async function microBenchmarks(log: (line: string) => void): Promise<MicroFigure[]> {
  log("micro-benchmarks (deno bench)…");
  const dir = new URL(".", import.meta.url).pathname;
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["bench", "-A", "--json", `${dir}map_tier_bench.ts`, `${dir}normalize_bench.ts`],
    stdout: "piped",
    stderr: "null",
  }).output();
  const text = new TextDecoder().decode(out.stdout);
  const json = JSON.parse(text.slice(text.indexOf("{"))) as {
    benches: {
      name: string;
      group: string;
      results: { ok?: { avg: number; p99: number; n: number } }[];
    }[];
  };
  return json.benches.flatMap((b) => {
    const ok = b.results[0]?.ok;
    return ok
      ? [{ name: b.name, group: b.group, avgNs: ok.avg, p99Ns: ok.p99, iterations: ok.n }]
      : [];
  });
}

async function startBareServer(): Promise<{ url: string; stop: () => Promise<void> }> {
  const port = freePort();
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", new URL("./bare_server.ts", import.meta.url).pathname],
    env: { PORT: String(port) },
    stdin: "null",
    stdout: "null",
    stderr: "inherit",
  }).spawn();
  const url = `http://127.0.0.1:${port}/`;
  for (let i = 0; i < 300; i++) {
    try {
      const r = await fetch(url, { method: "POST", body: "{}" });
      await r.arrayBuffer();
      break;
    } catch {
      await sleep(50);
    }
  }
  return {
    url,
    stop: async () => {
      child.kill("SIGTERM");
      await child.status;
    },
  };
}

async function httpLoad(
  env: Env,
  o: Required<Omit<BenchOptions, "log">>,
  log: (line: string) => void,
): Promise<BenchResult["http"]> {
  const duration = o.quick ? 2 : 5;
  const connections = 50;
  const hasWrk = await ensureWrk(log);
  await env
    .sql`truncate public.whatsapp_group_members, public.whatsapp_member_clock, public.whatsapp_lid_phones`;
  await redisCommand(env, ["FLUSHALL"]);
  const dupBody = JSON.stringify({
    event: "join",
    groupJid: "120363888000000001@g.us",
    participant: "919900001111@s.whatsapp.net",
    timestamp: Date.now() - 60_000,
    sessionId: "load",
  });
  const direct = (redis: boolean): Record<string, string> => ({
    ...instanceEnv(env, { id: "", label: "", strategy: "ours", redis }),
    SUPABASE_DB_URL: env.pg.url,
  });
  const load = (url: string, body: { text: string; signature?: string }) =>
    hasWrk
      ? wrkLoad({ url, connections, durationS: duration, workDir: env.work, body })
      : autocannonLoad({ url, connections, durationS: duration, body });

  log(`HTTP load (${hasWrk ? "wrk" : "autocannon"}, ${connections} connections, ${duration} s)…`);
  const bare = await startBareServer();
  const bareFigure = await load(bare.url, { text: dupBody }).finally(() => bare.stop());
  log(`  bare Deno.serve: ${bareFigure.requestsPerS.toFixed(0)} req/s`);

  const [withRedis] = await startInstances(1, "ours", direct(true));
  let duplicatePath: LoadFigure;
  let uniquePath: LoadFigure | undefined;
  let uniquePathWithRedis: LoadFigure | undefined;
  let note: string | undefined;
  try {
    duplicatePath = await load(withRedis.url, {
      text: dupBody,
      signature: signatureOf(SECRET, dupBody),
    });
    log(`  ours, duplicate path: ${duplicatePath.requestsPerS.toFixed(0)} req/s`);
    if (hasWrk) {
      const lines = o.quick ? 20_000 : 80_000;
      const file = `${env.work}/unique-redis.tsv`;
      await writeUniqueBodies(file, lines, SECRET, 1);
      uniquePathWithRedis = await wrkLoad({
        url: withRedis.url,
        connections,
        durationS: duration,
        workDir: env.work,
        uniqueFile: { path: file, lines },
      });
      log(`  ours + Redis, unique path: ${uniquePathWithRedis.requestsPerS.toFixed(0)} req/s`);
    }
  } finally {
    await withRedis.stop();
  }
  if (hasWrk) {
    const [noRedis] = await startInstances(1, "ours", direct(false));
    try {
      const lines = o.quick ? 20_000 : 80_000;
      const file = `${env.work}/unique.tsv`;
      await writeUniqueBodies(file, lines, SECRET, 2);
      uniquePath = await wrkLoad({
        url: noRedis.url,
        connections,
        durationS: duration,
        workDir: env.work,
        uniqueFile: { path: file, lines },
      });
      log(`  ours, unique path: ${uniquePath.requestsPerS.toFixed(0)} req/s`);
    } finally {
      await noRedis.stop();
    }
  } else {
    note = "wrk unavailable: the unique path needs per-request signed bodies and was not measured";
  }

  log("pgbench ceilings…");
  const pgbench: PgbenchFigure[] = [];
  for (const clients of [1, POOL_MAX, 8]) {
    pgbench.push(
      await pgbenchApply({ port: env.pg.port, clients, durationS: duration, workDir: env.work }),
    );
    log(`  pgbench, ${clients} client(s): ${pgbench.at(-1)!.tps.toFixed(0)} tx/s`);
  }
  await env
    .sql`truncate public.whatsapp_group_members, public.whatsapp_member_clock, public.whatsapp_lid_phones`;
  return {
    bare: bareFigure,
    duplicatePath,
    uniquePath: uniquePath ?? duplicatePath,
    uniquePathWithRedis,
    pgbench,
    instancePoolSize: POOL_MAX,
    note,
  };
}

function evaluateTargets(result: Omit<BenchResult, "targets">): TargetCheck[] {
  const ours = result.rows.filter((r) => r.id.startsWith("ours") || r.id.startsWith("fault:"));
  const bad = ours.filter((r) => r.leaked > 0 || r.lost > 0);
  const checks: TargetCheck[] = [{
    target: "ours: 0 leaked duplicates and 0 lost events in every row, faults included",
    measured: bad.length === 0
      ? `${ours.length} rows, all 0/0`
      : bad.map((r) => `${r.label}: ${r.leaked} leaked, ${r.lost} lost`).join("; "),
    met: bad.length === 0,
  }];
  const micro = (name: string) => result.micro.find((m) => m.name === name)?.avgNs;
  const tier100k = micro("memory tier, 100000 live keys");
  const scan100k = micro("scan-every-entry Map, 100000 live keys");
  const tier1k = micro("memory tier, 1000 live keys");
  if (tier100k && scan100k && tier1k) {
    const ratio = scan100k / tier100k;
    const growth = tier100k / tier1k;
    checks.push({
      target: "Map tier ≥ 1000× faster than the scan-every-entry Map at 100k live keys",
      measured: `${ratio.toFixed(0)}× (${tier100k.toFixed(0)} ns vs ${scan100k.toFixed(0)} ns)`,
      met: ratio >= 1000,
    }, {
      target: "Map tier flat from 1k to 100k live keys (≤ 2× growth)",
      measured: `${tier1k.toFixed(0)} ns → ${tier100k.toFixed(0)} ns (${growth.toFixed(1)}×)`,
      met: growth <= 2,
    });
  } else {
    checks.push({ target: "Map tier micro-benchmark", measured: "not run", met: null });
  }
  const dup = result.costProbe.find((p) => p.case === "same-instance duplicate");
  if (dup) {
    checks.push({
      target: "same-instance duplicates cost 0 database and 0 Redis round trips",
      measured: `${dup.dbRoundTrips} database, ${dup.redisBatches} Redis`,
      met: dup.dbRoundTrips === 0 && dup.redisBatches === 0,
    });
    const maxDb = Math.max(...result.costProbe.map((p) => p.dbRoundTrips));
    const maxRedis = Math.max(...result.costProbe.map((p) => p.redisBatches));
    checks.push({
      target: "any webhook costs ≤ 1 Redis command batch and ≤ 1 database round trip",
      measured: `max ${maxRedis} Redis batch(es), max ${maxDb} database round trip(s) per webhook`,
      met: maxDb <= 1 && maxRedis <= 1,
    });
  }
  const http = result.http;
  if (http) {
    const dupRatio = http.duplicatePath.requestsPerS / http.bare.requestsPerS;
    checks.push({
      target: "signed duplicate deliveries on one instance ≥ 50% of the bare-handler ceiling",
      measured: `${http.duplicatePath.requestsPerS.toFixed(0)} vs ${
        http.bare.requestsPerS.toFixed(0)
      } req/s = ${(dupRatio * 100).toFixed(0)}% (p99 ${http.duplicatePath.p99Ms.toFixed(1)} ms)`,
      met: dupRatio >= 0.5,
    });
    const ceiling = http.pgbench.find((p) => p.clients === http.instancePoolSize);
    if (ceiling && http.uniquePath !== http.duplicatePath) {
      const ratio = http.uniquePath.requestsPerS / ceiling.tps;
      checks.push({
        target:
          `signed unique deliveries ≥ 50% of the pgbench ceiling (${ceiling.clients} clients = pool size)`,
        measured: `${http.uniquePath.requestsPerS.toFixed(0)} req/s vs ${
          ceiling.tps.toFixed(0)
        } tx/s = ${(ratio * 100).toFixed(0)}% (p99 ${http.uniquePath.p99Ms.toFixed(1)} ms)`,
        met: ratio >= 0.5,
      });
    }
  }
  return checks;
}

async function machine(): Promise<BenchResult["machine"]> {
  const cpuinfo = await Deno.readTextFile("/proc/cpuinfo").catch(() => "");
  const meminfo = await Deno.readTextFile("/proc/meminfo").catch(() => "");
  const kb = Number(/MemTotal:\s+(\d+)/.exec(meminfo)?.[1] ?? 0);
  return {
    cpus: navigator.hardwareConcurrency,
    memoryGiB: Math.round((kb / 2 ** 20) * 10) / 10,
    cpuModel: /model name\s*:\s*(.*)/.exec(cpuinfo)?.[1]?.trim() ?? "unknown",
    os: `${Deno.build.os} ${Deno.osRelease()}`,
    deno: Deno.version.deno,
  };
}

/** Runs the whole comparison; starts and stops its own PostgreSQL and Redis. */
export async function runBenchmark(options: BenchOptions = {}): Promise<BenchResult> {
  const o = resolveOptions(options);
  const log = options.log ?? ((line: string) => console.error(line));
  const started = performance.now();
  const work = await Deno.makeTempDir({ prefix: "wa-webhook-bench-" });
  await Deno.chmod(work, 0o755);
  log(`starting PostgreSQL and Redis in ${work}…`);
  const pg = await startPostgres({
    dataDir: `${work}/pgdata`,
    port: freePort(),
    logFile: `${work}/postgres.log`,
    settings: { track_functions: "all", max_connections: 300 },
  });
  let redis: RedisServer | undefined;
  let upstash: UpstashRestServer | undefined;
  let proxy: PgCountingProxy | undefined;
  let sql: postgres.Sql | undefined;
  try {
    redis = await startRedis({ port: freePort() });
    upstash = await startUpstashRestServer({ redisUrl: redis.url, token: REDIS_TOKEN });
    await applyMigrations(pg.url);
    proxy = startPgCountingProxy(pg.port);
    sql = postgres(pg.url, { max: 2, onnotice: () => {} });
    const env: Env = { work, pg, redis, upstash, proxy, sql };

    const workload = generateWorkload({
      events: o.events,
      sessions: o.sessions,
      lateRetryShare: o.lateRetryShare,
      groups: 300,
      phones: 400,
      windowMs: WINDOW_MS,
      seed: o.seed,
      baseTime: Date.now(),
    });
    const signatures = new Map<string, string>();
    for (const phase of workload.phases) {
      for (const d of phase) signatures.set(d.body, signatureOf(SECRET, d.body));
    }
    log(
      `workload: ${workload.events.length} unique events, ${workload.pairs.length} (group, phone) ` +
        `pairs, ${workload.deliveries} deliveries, ${o.sessions} sessions, ${o.instances} instances`,
    );

    const scenarios: Scenario[] = [
      {
        id: "noDedup",
        label: "no dedup (upsert every delivery)",
        strategy: "noDedup",
        redis: false,
      },
      {
        id: "mapBucket",
        label: "per-instance Map, 5 s bucket, scan prune",
        strategy: "mapBucket",
        redis: false,
      },
      {
        id: "redisCheckThenSet",
        label: "Redis GET then SETEX",
        strategy: "redisCheckThenSet",
        redis: true,
      },
      { id: "ours", label: "ours, no Redis", strategy: "ours", redis: false },
      { id: "ours+redis", label: "ours, with Redis", strategy: "ours", redis: true },
    ];
    if (o.faults) {
      for (const [fault, label] of Object.entries(FAULTS) as [Fault, string][]) {
        const redis = fault !== "instance-killed-no-redis";
        scenarios.push({ id: `fault:${fault}`, label, strategy: "ours", redis, fault });
      }
    }
    const rows: StrategyRow[] = [];
    for (const scenario of scenarios) {
      if (o.only.length > 0 && !o.only.includes(scenario.id)) continue;
      log(`running ${scenario.label}…`);
      rows.push(await runScenario(env, scenario, workload, signatures, o, log));
    }
    log("per-webhook cost probe…");
    const probe = await costProbe(env);
    const micro = o.micro ? await microBenchmarks(log) : [];
    const http = o.http ? await httpLoad(env, o, log) : undefined;
    const partial = {
      date: new Date().toISOString(),
      machine: await machine(),
      options: o,
      elapsedS: (performance.now() - started) / 1000,
      rows,
      costProbe: probe,
      micro,
      http,
    };
    return { ...partial, targets: evaluateTargets(partial) };
  } finally {
    await sql?.end({ timeout: 1 }).catch(() => {});
    proxy?.close();
    await upstash?.close().catch(() => {});
    await redis?.stop().catch(() => {});
    await pg.stop().catch(() => {});
    await Deno.remove(work, { recursive: true }).catch(() => {});
  }
}

/** The terminal report of a result. */
export function formatReport(result: BenchResult): string {
  const { head, body } = tableCells(result.rows);
  const lines = [textTable(head, body), ""];
  lines.push("Per-webhook cost (one delivery at a time, ours with Redis):");
  for (const p of result.costProbe) {
    lines.push(
      `  ${p.case.padEnd(30)} ${p.dbRoundTrips} database round trip(s), ` +
        `${p.redisBatches} Redis batch(es) / ${p.redisCommands} command(s)`,
    );
  }
  if (result.micro.length > 0) {
    lines.push("", "Micro-benchmarks (deno bench, mean):");
    for (const m of result.micro) {
      lines.push(`  ${m.name.padEnd(42)} ${m.avgNs.toFixed(0).padStart(10)} ns/op`);
    }
  }
  if (result.http) {
    const h = result.http;
    const f = (name: string, l?: LoadFigure) =>
      l
        ? `  ${name.padEnd(34)} ${l.requestsPerS.toFixed(0).padStart(8)} req/s  p99 ${
          l.p99Ms.toFixed(1)
        } ms  non-2xx ${l.non2xx}${l.cycled ? "  (bodies cycled)" : ""}`
        : `  ${name.padEnd(34)} not measured`;
    lines.push("", `HTTP load (${h.bare.tool}, ${h.bare.connections} connections, one instance):`);
    lines.push(f("bare Deno.serve (ceiling)", h.bare));
    lines.push(f("ours, duplicate path", h.duplicatePath));
    lines.push(
      f(
        "ours, unique path (no Redis)",
        h.uniquePath !== h.duplicatePath ? h.uniquePath : undefined,
      ),
    );
    lines.push(f("ours, unique path (with Redis)", h.uniquePathWithRedis));
    for (const p of h.pgbench) {
      lines.push(
        `  pgbench apply, ${p.clients} client(s)`.padEnd(36) +
          `${p.tps.toFixed(0).padStart(8)} tx/s`,
      );
    }
    if (h.note) lines.push(`  note: ${h.note}`);
  }
  lines.push("", "Targets:");
  for (const t of result.targets) {
    const mark = t.met === null ? "n/a   " : t.met ? "MET   " : "MISSED";
    lines.push(`  [${mark}] ${t.target}: ${t.measured}`);
  }
  lines.push(
    "",
    `${result.machine.cpus} CPUs (${result.machine.cpuModel}), ${result.machine.memoryGiB} GiB, ` +
      `Deno ${result.machine.deno}, ${result.date}, ${result.elapsedS.toFixed(0)} s`,
  );
  return lines.join("\n");
}

/** The markdown of the "Latest results" section. */
export function formatMarkdown(result: BenchResult): string {
  const { head, body } = tableCells(result.rows);
  const m = result.machine;
  const out = [
    `Run on ${result.date.slice(0, 10)}: ${m.cpus} CPUs (${m.cpuModel}), ${m.memoryGiB} GiB RAM, ` +
    `${m.os}, Deno ${m.deno}; M = ${result.options.events} events, ${result.options.sessions} ` +
    `sessions, ${result.options.instances} instances; ${result.elapsedS.toFixed(0)} s in all.`,
    "",
    markdownTable(head, body),
    "",
    "![Leaked duplicates, lost events and throughput per strategy](results/latest.svg)",
    "",
    "Per-webhook cost, one delivery at a time (ours with Redis):",
    "",
    markdownTable(
      ["case", "DB round trips", "Redis batches", "Redis commands"],
      result.costProbe.map((p) => [
        p.case,
        String(p.dbRoundTrips),
        String(p.redisBatches),
        String(p.redisCommands),
      ]),
    ),
  ];
  if (result.micro.length > 0) {
    out.push(
      "",
      "Micro-benchmarks (`deno bench`, mean per operation):",
      "",
      markdownTable(
        ["benchmark", "ns/op"],
        result.micro.map((x) => [x.name, x.avgNs.toFixed(0)]),
      ),
    );
  }
  if (result.http) {
    const h = result.http;
    const rows: string[][] = [
      ["bare `Deno.serve` parsing the same JSON (ceiling)", h.bare],
      ["ours, signed duplicate deliveries", h.duplicatePath],
      [
        "ours, signed unique deliveries, no Redis",
        h.uniquePath !== h.duplicatePath ? h.uniquePath : undefined,
      ],
      ["ours, signed unique deliveries, with Redis", h.uniquePathWithRedis],
    ].map(([name, l]) => {
      const f = l as LoadFigure | undefined;
      return [
        name as string,
        f ? f.requestsPerS.toFixed(0) : "–",
        f ? f.p99Ms.toFixed(1) : "–",
        f ? String(f.non2xx) : "–",
      ];
    });
    for (const p of h.pgbench) {
      rows.push([`pgbench, apply function, ${p.clients} client(s)`, p.tps.toFixed(0), "–", "–"]);
    }
    out.push(
      "",
      `HTTP load on one instance (${h.bare.tool}, ${h.bare.connections} connections, ${h.bare.durationS} s each; instance DB pool = ${h.instancePoolSize}):`,
      "",
      markdownTable(["load", "req/s (tx/s)", "p99 ms", "non-2xx"], rows),
    );
  }
  out.push(
    "",
    "Targets:",
    "",
    markdownTable(
      ["target", "measured", "status"],
      result.targets.map((t) => [
        t.target,
        t.measured,
        t.met === null ? "not run" : t.met ? "met" : "**missed**",
      ]),
    ),
  );
  return out.join("\n");
}

function parseArgs(
  args: string[],
): BenchOptions & { out: string; write: boolean; readme?: boolean } {
  const options: BenchOptions & { out: string; write: boolean; readme?: boolean } = {
    out: new URL("./results/", import.meta.url).pathname,
    write: true,
  };
  for (const arg of args) {
    const [name, value] = arg.split("=", 2);
    switch (name) {
      case "--quick":
        options.quick = true;
        break;
      case "--events":
        options.events = Number(value);
        break;
      case "--sessions":
        options.sessions = Number(value);
        break;
      case "--instances":
        options.instances = Number(value);
        break;
      case "--concurrency":
        options.concurrency = Number(value);
        break;
      case "--no-faults":
        options.faults = false;
        break;
      case "--no-http":
        options.http = false;
        break;
      case "--no-micro":
        options.micro = false;
        break;
      case "--out":
        options.out = value;
        break;
      case "--only":
        options.only = value.split(",");
        break;
      case "--no-write":
        options.write = false;
        break;
      case "--readme":
        options.readme = true;
        break;
      default:
        throw new Error(`unknown option ${arg}`);
    }
  }
  return options;
}

if (import.meta.main) {
  const args = parseArgs(Deno.args);
  const result = await runBenchmark(args);
  console.log(formatReport(result));
  if (args.write) {
    const out = args.out.endsWith("/") ? args.out : `${args.out}/`;
    await Deno.mkdir(out, { recursive: true });
    const name = result.options.quick ? "quick" : "latest";
    await Deno.writeTextFile(`${out}${name}.json`, JSON.stringify(result, null, 2) + "\n");
    if (!result.options.quick) {
      await Deno.writeTextFile(
        `${out}latest.svg`,
        svgChart(
          result.rows,
          `Dedup strategies, ${result.options.events} events (${result.date.slice(0, 10)})`,
        ),
      );
    }
    console.log(`\nresults written to ${out}${name}.json`);
    if (args.readme ?? !result.options.quick) {
      const readme = new URL("./README.md", import.meta.url);
      const text = await Deno.readTextFile(readme).catch(() => "");
      const start = "<!-- results:start -->";
      const end = "<!-- results:end -->";
      const i = text.indexOf(start);
      const j = text.indexOf(end);
      if (i !== -1 && j > i) {
        await Deno.writeTextFile(
          readme,
          `${text.slice(0, i + start.length)}\n${formatMarkdown(result)}\n${text.slice(j)}`,
        );
        // Keep the file as `deno fmt` writes it, so that `deno fmt --check` passes after a run.
        await new Deno.Command(Deno.execPath(), { args: ["fmt", "-q", readme.pathname] }).output();
        console.log("bench/README.md results section updated");
      }
    }
  }
  const ours = result.rows.filter((r) => r.id.startsWith("ours") || r.id.startsWith("fault:"));
  Deno.exit(ours.every((r) => r.leaked === 0 && r.lost === 0) ? 0 : 1);
}
