/**
 * The send-batch benchmark: whatsapp-send-batch against the fake provider server, with a real
 * PostgreSQL on loopback.
 *
 *   deno run -A bench/send_batch_bench.ts --quick
 *
 * Rows: recipients/s at a high configured rate and the database round trips per recipient (the
 * function's own cost); the share of 80/s sustained (from the provider's call times); Upstash
 * down with 3 instances sending at once: the busiest second's share of 80/s (the database
 * fallback must keep it ≤ 100 %; each instance on its own pace, as before the fallback, beside
 * it); and the kill-and-resume fault (a runner process killed mid-drain, the drain schedule
 * resumes): double sends and skipped recipients, both must be 0.
 *
 * Scale rows (`send:scale-1k`, `-10k`, `-100k`; not in `--quick`): one batch of 1,000, 10,000 and
 * 100,000 recipients created (JSON, one POST) on an instance process and sent by it at a high
 * rate; the instance is killed (SIGKILL) halfway and a second one resumes through the drain
 * schedule. Per row: create time per recipient, database round trips per claimed recipient (the
 * counting proxy, every claim and write of both instances), the progress GET's time and round
 * trips on the full batch, the peak RSS of the instance (VmHWM), and the peak of its isolate's
 * memory as the platform counts it (V8 used heap + external, the heap capped at the deployed
 * limit as the platform caps it); targets: each flat within 2× from 1k to 100k, the isolate under
 * the deployed limit at 100k, and 0 double sends / 0 skipped.
 */
import postgres from "postgres";
import { applyMigrations } from "../scripts/lib/migrate.ts";
import { localAuthEnv } from "../scripts/lib/local_jwt.ts";
import { freePort } from "../scripts/lib/ports.ts";
import { startPostgres } from "../scripts/lib/postgres_server.ts";
import { silentLogger } from "../supabase/functions/_shared/core/log.ts";
import { parseSendBatchConfig } from "../supabase/functions/_shared/send_batch/config.ts";
import { PacingRateLimiter } from "../supabase/functions/_shared/send_batch/rate_limiter.ts";
import {
  createSendBatchHandler,
  depsFromConfig,
} from "../supabase/functions/whatsapp-send-batch/handler.ts";
import { FakeWhatsAppProvider, providerEnv } from "../tests/support/fake_whatsapp_provider.ts";
import { startFunctionInstance } from "../tests/support/function_instance.ts";
import { mintJwt } from "../tests/support/jwt.ts";
import { type Instance, startInstance } from "./lib/instances.ts";
import { startPgCountingProxy } from "./lib/pg_counting_proxy.ts";
import { mib } from "./lib/report.ts";

/** One row of the send benchmark. */
export interface SendBenchRow {
  id:
    | "send:high-rate"
    | "send:80-per-second"
    | "send:upstash-down"
    | "send:upstash-down-per-instance"
    | "send:kill-resume"
    | "send:scale-1k"
    | "send:scale-10k"
    | "send:scale-100k";
  recipients: number;
  /** Recipients finished per second of the run. */
  recipientsPerSecond: number;
  /** Database round trips per recipient (high-rate and Upstash-down rows). */
  dbRoundTripsPerRecipient?: number;
  /** Provider calls per second over the limit (80/s and Upstash-down rows); target ≥ 0.95. */
  shareOfLimit?: number;
  /** Most provider calls in any one second over the limit (Upstash-down rows); target ≤ 1. */
  busiestSecondShare?: number;
  /** Drain instances sending at once (Upstash-down rows). */
  instances?: number;
  /** Recipients called more than once; must be 0. */
  doubleSends: number;
  /** Recipients neither sent nor listed unknown at the end; must be 0. */
  skipped: number;
  /** Recipients listed unknown (in flight at the kill). */
  unknown: number;
  /** Scale rows: what one batch of this size costs. */
  scale?: ScaleFigures;
}

/** The per-recipient costs of one batch size (scale rows). */
export interface ScaleFigures {
  /** Wall time of the create POST (JSON upload, checks, inserts) per recipient (ms). */
  createMsPerRecipient: number;
  /** Database round trips of the create, per recipient. */
  createRoundTripsPerRecipient: number;
  /** Recipients claimed (attempts, re-claims after the kill included). */
  claimed: number;
  /** Median time of the progress GET on the whole batch (ms), and its round trips. */
  progressMs: number;
  progressRoundTrips: number;
  /** Peak resident memory of the instance processes (VmHWM, bytes), and right after start. */
  peakRssBytes: number;
  idleRssBytes: number;
  /**
   * Peak of the instances' V8 used heap + external memory (bytes), sampled every
   * {@link MEMORY_SAMPLE_MS} ms: what the platform counts against {@link PLATFORM_MEMORY_LIMIT_MIB}.
   * Absent in results written before it was measured.
   */
  peakIsolateBytes?: number;
}

/** Options of {@link runSendBatchBench}. */
export interface SendBenchOptions {
  quick?: boolean;
  /** An existing database with the migrations applied; otherwise one is started. */
  databaseUrl?: string;
  log?: (line: string) => void;
  /** Sizes of the scale rows (default 1,000, 10,000, 100,000; none in `quick` unless given). */
  scale?: number[];
  /** Only the scale rows (`--only=send-scale`). */
  onlyScale?: boolean;
}

/**
 * A deployed function's memory limit (Supabase: 256 MB). The platform creates each worker's V8
 * isolate with its heap capped at this size and stops the worker once the isolate's used heap
 * plus external memory reaches it (its memory check runs before every collection). The scale
 * rows' instances run with the same heap cap (`--max-heap-size`) and sample the same sum.
 */
export const PLATFORM_MEMORY_LIMIT_MIB = 256;

/** `--only=send-scale`: the scale rows alone, written to `bench/results/send-scale.json`. */
export const SEND_SCALE_ONLY = "send-scale";

/** How often the scale rows sample an instance's isolate memory (ms). */
export const MEMORY_SAMPLE_MS = 50;

/**
 * Samples the isolate memory (used heap + external) of whichever instance `current` names, every
 * {@link MEMORY_SAMPLE_MS} ms, until `stop`, which answers the peak seen.
 */
function sampleIsolateMemory(current: () => Instance | undefined): { stop(): Promise<number> } {
  let peak = 0;
  let running = true;
  const loop = (async () => {
    while (running) {
      const instance = current();
      if (instance) {
        try {
          const s = await instance.stats();
          peak = Math.max(peak, s.heapUsedBytes + s.externalBytes);
        } catch { /* killed or not yet listening: the next sample */ }
      }
      await new Promise((r) => setTimeout(r, MEMORY_SAMPLE_MS));
    }
  })();
  return {
    async stop() {
      running = false;
      await loop;
      return peak;
    },
  };
}

/** `n` distinct E.164 phones from `seed` on. */
export function phones(n: number, seed: number): string[] {
  return Array.from({ length: n }, (_, i) => `+1415${String((seed + i) % 1e7).padStart(7, "0")}`);
}

async function createBatch(
  target: (request: Request) => Promise<Response>,
  jwt: string,
  list: string[],
): Promise<string> {
  const response = await target(
    new Request("http://bench/whatsapp-send-batch", {
      method: "POST",
      headers: { authorization: `Bearer ${jwt}`, "content-type": "application/json" },
      body: JSON.stringify({
        message: "Hello {{name}}",
        recipients: list.map((phone) => ({ phone })),
      }),
    }),
  );
  const body = await response.json();
  if (response.status !== 201) throw new Error(`create failed: ${JSON.stringify(body)}`);
  return body.batch_id;
}

const post = (url: string, jwt: string) =>
  fetch(url, { method: "POST", headers: { authorization: `Bearer ${jwt}` } }).then((r) => r.json());

async function outcome(sql: postgres.Sql, batchId: string, fake: FakeWhatsAppProvider) {
  const rows = await sql<{ phone: string; status: string }[]>`
    select phone, status from public.whatsapp_send_recipients where batch_id = ${batchId}`;
  const calls = fake.callsPerRecipient();
  return {
    doubleSends: [...calls.values()].filter((n) => n > 1).length,
    skipped: rows.filter((r) => r.status !== "sent" && r.status !== "unknown").length,
    unknown: rows.filter((r) => r.status === "unknown").length,
  };
}

async function waitDone(sql: postgres.Sql, batchId: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const [row] = await sql<{ open: number }[]>`
      select count(*)::int as open from public.whatsapp_send_recipients
       where batch_id = ${batchId} and status in ('pending', 'processing')`;
    if (row.open === 0) return;
    if (Date.now() > deadline) throw new Error(`batch not finished in ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** In-process handler run: the high-rate and the 80/s rows. */
async function inProcessRow(
  databaseUrl: string,
  id: "send:high-rate" | "send:80-per-second",
  count: number,
  rate: number,
): Promise<SendBenchRow> {
  const fake = FakeWhatsAppProvider.start();
  const target = new URL(databaseUrl);
  const proxy = startPgCountingProxy(Number(target.port));
  const config = parseSendBatchConfig({
    SUPABASE_DB_URL: proxy.urlFor(databaseUrl),
    SEND_RATE_PER_SECOND: String(rate),
    SEND_CONCURRENCY: "32",
    SEND_TIME_BUDGET_MS: "600000",
    ...providerEnv(fake, "meta"),
  });
  const deps = depsFromConfig(config);
  deps.logger = silentLogger;
  const { handler, service } = createSendBatchHandler(deps);
  const sql = postgres(databaseUrl, { max: 1, onnotice: () => {} });
  try {
    const jwt = await mintJwt({ sub: crypto.randomUUID() });
    const batchId = await createBatch(handler, jwt, phones(count, Math.floor(Math.random() * 1e6)));
    const before = proxy.stats.roundTrips;
    const started = performance.now();
    await handler(
      new Request(`http://bench/whatsapp-send-batch/${batchId}/send`, {
        method: "POST",
        headers: { authorization: `Bearer ${jwt}` },
      }),
    );
    await service.idle();
    const seconds = (performance.now() - started) / 1000;
    const roundTrips = proxy.stats.roundTrips - before;
    const times = fake.calls.map((c) => c.at).sort((a, b) => a - b);
    const callRate = times.length > 1
      ? (times.length - 1) / ((times[times.length - 1] - times[0]) / 1000)
      : 0;
    return {
      id,
      recipients: count,
      recipientsPerSecond: count / seconds,
      dbRoundTripsPerRecipient: roundTrips / count,
      shareOfLimit: id === "send:80-per-second" ? callRate / rate : undefined,
      ...(await outcome(sql, batchId, fake)),
    };
  } finally {
    await sql.end();
    await deps.repository.close();
    proxy.close();
    await fake.stop();
  }
}

/** The most calls in any one-second window. */
function busiestSecond(times: number[]): number {
  const sorted = [...times].sort((a, b) => a - b);
  let most = 0;
  for (let i = 0, j = 0; i < sorted.length; i++) {
    while (sorted[i] - sorted[j] >= 1000) j++;
    most = Math.max(most, i - j + 1);
  }
  return most;
}

/**
 * Upstash down: `instances` in-process handlers (each its own limiter and pool), each sending its
 * own batch at the same time with UPSTASH_REDIS_REST_URL pointing where nothing listens. With
 * `perInstancePace` every instance keeps to its own pace only (what an Upstash failure fell back
 * to before the database fallback).
 */
async function upstashDownRow(
  databaseUrl: string,
  count: number,
  instances: number,
  perInstancePace: boolean,
): Promise<SendBenchRow> {
  const rate = 80;
  const fake = FakeWhatsAppProvider.start();
  const target = new URL(databaseUrl);
  const proxy = startPgCountingProxy(Number(target.port));
  const config = parseSendBatchConfig({
    SUPABASE_DB_URL: proxy.urlFor(databaseUrl),
    SEND_RATE_PER_SECOND: String(rate),
    SEND_TIME_BUDGET_MS: "600000",
    UPSTASH_REDIS_REST_URL: `http://127.0.0.1:${freePort()}`,
    UPSTASH_REDIS_REST_TOKEN: "unreachable",
    SEND_RATE_LIMIT_PREFIX: `bench-upstash-down-${crypto.randomUUID()}`,
    ...providerEnv(fake, "meta"),
  });
  const built = Array.from({ length: instances }, () => {
    const deps = depsFromConfig(config);
    deps.logger = silentLogger;
    if (perInstancePace) deps.limiter = new PacingRateLimiter(rate);
    return { deps, ...createSendBatchHandler(deps) };
  });
  const sql = postgres(databaseUrl, { max: 1, onnotice: () => {} });
  try {
    const jwt = await mintJwt({ sub: crypto.randomUUID() });
    const each = Math.ceil(count / instances);
    const seed = Math.floor(Math.random() * 1e6);
    const batches = await Promise.all(
      built.map((b, i) => createBatch(b.handler, jwt, phones(each, seed + i * each))),
    );
    const before = proxy.stats.roundTrips;
    const started = performance.now();
    await Promise.all(built.map((b, i) =>
      b.handler(
        new Request(`http://bench/whatsapp-send-batch/${batches[i]}/send`, {
          method: "POST",
          headers: { authorization: `Bearer ${jwt}` },
        }),
      ).then((r) => r.body?.cancel())
    ));
    await Promise.all(built.map((b) => b.service.idle()));
    const seconds = (performance.now() - started) / 1000;
    const roundTrips = proxy.stats.roundTrips - before;
    const times = fake.calls.map((c) => c.at).sort((a, b) => a - b);
    const callRate = times.length > 1
      ? (times.length - 1) / ((times[times.length - 1] - times[0]) / 1000)
      : 0;
    const outcomes = await Promise.all(batches.map((batchId) => outcome(sql, batchId, fake)));
    return {
      id: perInstancePace ? "send:upstash-down-per-instance" : "send:upstash-down",
      recipients: each * instances,
      recipientsPerSecond: (each * instances) / seconds,
      dbRoundTripsPerRecipient: roundTrips / (each * instances),
      shareOfLimit: callRate / rate,
      busiestSecondShare: busiestSecond(times) / rate,
      instances,
      doubleSends: outcomes[0].doubleSends,
      skipped: outcomes.reduce((n, o) => n + o.skipped, 0),
      unknown: outcomes.reduce((n, o) => n + o.unknown, 0),
    };
  } finally {
    await sql.end();
    for (const b of built) {
      await b.deps.repository.close();
      await b.deps.idempotency?.close();
    }
    proxy.close();
    await fake.stop();
  }
}

/** Kill-and-resume: two runner processes, one killed mid-drain; the schedule resumes. */
async function killResumeRow(databaseUrl: string, count: number): Promise<SendBenchRow> {
  const fake = FakeWhatsAppProvider.start();
  const env = {
    SUPABASE_DB_URL: databaseUrl,
    WEBHOOK_SECRET: "bench-webhook-secret-0123456789",
    SEND_RATE_PER_SECOND: "400",
    SEND_CONCURRENCY: "8",
    SEND_PROVIDER_TIMEOUT_MS: "1000",
    SEND_LEASE_MS: "1500",
    SEND_TIME_BUDGET_MS: "700",
    SEND_DRAIN_INTERVAL_MS: "250",
    ...providerEnv(fake, "meta"),
  };
  const [a, b] = await Promise.all([startFunctionInstance(env), startFunctionInstance(env)]);
  const sql = postgres(databaseUrl, { max: 1, onnotice: () => {} });
  try {
    const jwt = await mintJwt({ sub: crypto.randomUUID() });
    const fn = (i: typeof a) => i.url("whatsapp-send-batch");
    const batchId = await createBatch(
      (request) => fetch(new Request(fn(a), request)),
      jwt,
      phones(count, Math.floor(Math.random() * 1e6)),
    );
    await fetch(`${fn(b)}/${batchId}`, { headers: { authorization: `Bearer ${jwt}` } })
      .then((r) => r.body?.cancel());
    const started = performance.now();
    await post(`${fn(a)}/${batchId}/send`, jwt);
    await fake.waitForCalls(Math.floor(count / 3));
    await a.kill();
    await waitDone(sql, batchId, 120_000);
    const seconds = (performance.now() - started) / 1000;
    return {
      id: "send:kill-resume",
      recipients: count,
      recipientsPerSecond: count / seconds,
      ...(await outcome(sql, batchId, fake)),
    };
  } finally {
    await sql.end();
    await a.stop();
    await b.stop();
    await fake.stop();
  }
}

/** Peak and current resident memory of a process (Linux /proc), in bytes. */
async function rssOf(pid: number): Promise<{ peak: number; now: number }> {
  const status = await Deno.readTextFile(`/proc/${pid}/status`).catch(() => "");
  const kb = (name: string) => Number(status.match(new RegExp(`${name}:\\s+(\\d+) kB`))?.[1] ?? 0);
  return { peak: kb("VmHWM") * 1024, now: kb("VmRSS") * 1024 };
}

const median = (values: number[]) => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] ?? 0;
};

/**
 * One scale row: a batch of `count` recipients created and sent by an instance process that is
 * killed halfway; a second instance resumes through the drain schedule.
 */
export async function scaleRow(
  databaseUrl: string,
  id: "send:scale-1k" | "send:scale-10k" | "send:scale-100k",
  count: number,
): Promise<SendBenchRow> {
  const fake = FakeWhatsAppProvider.start();
  const target = new URL(databaseUrl);
  const proxy = startPgCountingProxy(Number(target.port));
  const env = {
    SUPABASE_DB_URL: proxy.urlFor(databaseUrl),
    WEBHOOK_SECRET: "bench-webhook-secret-0123456789",
    SEND_RATE_PER_SECOND: "5000",
    SEND_CONCURRENCY: "32",
    SEND_PROVIDER_TIMEOUT_MS: "2000",
    SEND_LEASE_MS: "3000",
    SEND_TIME_BUDGET_MS: "10000",
    SEND_DRAIN_INTERVAL_MS: "250",
    // The heap capped as the platform caps a worker's isolate.
    DENO_V8_FLAGS: `--max-heap-size=${PLATFORM_MEMORY_LIMIT_MIB}`,
    ...localAuthEnv({}),
    ...providerEnv(fake, "meta"),
  };
  const path = "/functions/v1/whatsapp-send-batch";
  const a = await startInstance("ours", env, path);
  let b: Instance | undefined;
  let live: Instance | undefined = a;
  const memory = sampleIsolateMemory(() => live);
  const sql = postgres(databaseUrl, { max: 1, onnotice: () => {} });
  try {
    const idle = await rssOf(a.pid);
    const jwt = await mintJwt({ sub: crypto.randomUUID() });
    const list = phones(count, Math.floor(Math.random() * 1e6));
    const body = JSON.stringify({
      message: "Hello {{name}}, your code is {{code}}",
      recipients: list.map((phone, i) => ({
        phone,
        name: `Traveler ${i}`,
        variables: { code: String(100000 + i) },
      })),
    });
    const createTrips = proxy.stats.roundTrips;
    const createStarted = performance.now();
    const created = await fetch(a.url, {
      method: "POST",
      headers: { authorization: `Bearer ${jwt}`, "content-type": "application/json" },
      body,
    });
    const answer = await created.json();
    const createMs = performance.now() - createStarted;
    if (created.status !== 201) throw new Error(`create failed: ${JSON.stringify(answer)}`);
    const createRoundTrips = proxy.stats.roundTrips - createTrips;
    const batchId = answer.batch_id as string;

    // The progress GET on the whole batch (all pending): time and round trips of each.
    const progressTimes: number[] = [];
    const progressTrips: number[] = [];
    for (let i = 0; i < 15; i++) {
      const before = proxy.stats.roundTrips;
      const started = performance.now();
      const response = await fetch(`${a.url}/${batchId}`, {
        headers: { authorization: `Bearer ${jwt}` },
      });
      const progress = await response.json();
      if (progress.total !== count) throw new Error(`progress: ${JSON.stringify(progress)}`);
      progressTimes.push(performance.now() - started);
      progressTrips.push(proxy.stats.roundTrips - before);
    }

    const sendStarted = performance.now();
    await post(`${a.url}/${batchId}/send`, jwt);
    await fake.waitForCalls(Math.floor(count / 2), 600_000);
    const peakA = (await rssOf(a.pid)).peak;
    live = undefined;
    await a.kill();
    b = await startInstance("ours", env, path);
    live = b;
    // Its first request configures it and starts its drain schedule (SEND_DRAIN_INTERVAL_MS).
    await fetch(`${b.url}/health`).then((r) => r.body?.cancel());
    const open = async () => {
      const [row] = await sql<{ open: number }[]>`
        select pending + processing as open from public.whatsapp_send_batch_counts
         where batch_id = ${batchId}`;
      return row?.open ?? 0;
    };
    const deadline = Date.now() + 900_000;
    while (await open() > 0) {
      if (Date.now() > deadline) throw new Error(`${id}: batch not finished in 900 s`);
      await new Promise((r) => setTimeout(r, 100));
    }
    const sendSeconds = (performance.now() - sendStarted) / 1000;
    const peakB = (await rssOf(b.pid)).peak;
    const peakIsolate = await memory.stop();
    const [{ claimed }] = await sql<{ claimed: number }[]>`
      select coalesce(sum(attempts), 0)::int as claimed from public.whatsapp_send_recipients
       where batch_id = ${batchId}`;
    // Everything after the create: claims, outcomes, leases, the drain schedule of both.
    const sendRoundTrips = proxy.stats.roundTrips - createTrips - createRoundTrips -
      progressTrips.reduce((x, y) => x + y, 0);
    return {
      id,
      recipients: count,
      recipientsPerSecond: count / sendSeconds,
      dbRoundTripsPerRecipient: sendRoundTrips / claimed,
      ...(await outcome(sql, batchId, fake)),
      scale: {
        createMsPerRecipient: createMs / count,
        createRoundTripsPerRecipient: createRoundTrips / count,
        claimed,
        progressMs: median(progressTimes),
        progressRoundTrips: median(progressTrips),
        peakRssBytes: Math.max(peakA, peakB),
        idleRssBytes: idle.now,
        peakIsolateBytes: peakIsolate,
      },
    };
  } finally {
    await memory.stop();
    await sql.end();
    await a.stop();
    await b?.stop();
    proxy.close();
    await fake.stop();
  }
}

/** The scale rows at `sizes` (default 1,000, 10,000 and 100,000 recipients). */
async function scaleRows(
  databaseUrl: string,
  sizes: number[] = [1_000, 10_000, 100_000],
  log: (line: string) => void,
): Promise<SendBenchRow[]> {
  const rows: SendBenchRow[] = [];
  const ids = ["send:scale-1k", "send:scale-10k", "send:scale-100k"] as const;
  for (const [i, id] of ids.entries()) {
    if (sizes[i] === undefined) continue;
    rows.push(await scaleRow(databaseUrl, id, sizes[i]));
    log(format(rows[rows.length - 1]));
  }
  return rows;
}

/** Runs the send rows (or only the scale rows); starts its own PostgreSQL unless given one. */
export async function runSendBatchBench(options: SendBenchOptions = {}): Promise<SendBenchRow[]> {
  const log = options.log ?? console.log;
  let stop = async () => {};
  let databaseUrl = options.databaseUrl;
  if (!databaseUrl) {
    const work = await Deno.makeTempDir({ prefix: "wa-send-bench-" });
    await Deno.chmod(work, 0o755);
    const pg = await startPostgres({
      dataDir: `${work}/pgdata`,
      port: freePort(),
      logFile: `${work}/postgres.log`,
      settings: { fsync: "off", full_page_writes: "off" },
    });
    await applyMigrations(pg.url);
    databaseUrl = pg.url;
    stop = async () => {
      await pg.stop();
      await Deno.remove(work, { recursive: true }).catch(() => {});
    };
  }
  try {
    const quick = options.quick ?? false;
    const rows: SendBenchRow[] = [];
    if (options.onlyScale) return await scaleRows(databaseUrl, options.scale, log);
    rows.push(await inProcessRow(databaseUrl, "send:high-rate", quick ? 500 : 5000, 10_000));
    log(format(rows[rows.length - 1]));
    rows.push(await inProcessRow(databaseUrl, "send:80-per-second", quick ? 160 : 800, 80));
    log(format(rows[rows.length - 1]));
    rows.push(await upstashDownRow(databaseUrl, quick ? 240 : 1200, 3, false));
    log(format(rows[rows.length - 1]));
    rows.push(await upstashDownRow(databaseUrl, quick ? 240 : 1200, 3, true));
    log(format(rows[rows.length - 1]));
    rows.push(await killResumeRow(databaseUrl, quick ? 300 : 1000));
    log(format(rows[rows.length - 1]));
    if (!quick || options.scale) rows.push(...await scaleRows(databaseUrl, options.scale, log));
    return rows;
  } finally {
    await stop();
  }
}

function format(row: SendBenchRow): string {
  if (row.scale) {
    const s = row.scale;
    return [
      `${row.id}: ${row.recipients} recipients`,
      `create ${(s.createMsPerRecipient * 1000).toFixed(1)} µs/recipient`,
      `${row.dbRoundTripsPerRecipient?.toFixed(2)} db round trips/claimed recipient`,
      `progress ${s.progressMs.toFixed(1)} ms (${s.progressRoundTrips} round trips)`,
      `peak RSS ${mib(s.peakRssBytes)} MiB (idle ${mib(s.idleRssBytes)})`,
      `peak isolate ${mib(s.peakIsolateBytes)} MiB`,
      `double sends ${row.doubleSends}, skipped ${row.skipped}, unknown ${row.unknown}`,
    ].join(", ");
  }
  const parts = [
    `${row.id}: ${row.recipients} recipients`,
    `${row.recipientsPerSecond.toFixed(1)} recipients/s`,
  ];
  if (row.dbRoundTripsPerRecipient !== undefined) {
    parts.push(`${row.dbRoundTripsPerRecipient.toFixed(2)} db round trips/recipient`);
  }
  if (row.shareOfLimit !== undefined) {
    parts.push(`${(row.shareOfLimit * 100).toFixed(1)} % of the limit`);
  }
  if (row.busiestSecondShare !== undefined) {
    parts.push(
      `busiest second ${(row.busiestSecondShare * 100).toFixed(1)} % of the limit ` +
        `(${row.instances} instances)`,
    );
  }
  parts.push(`double sends ${row.doubleSends}`, `skipped ${row.skipped}`, `unknown ${row.unknown}`);
  return parts.join(", ");
}

if (import.meta.main) {
  const rows = await runSendBatchBench({ quick: Deno.args.includes("--quick") });
  const bad = rows.filter((r) => r.doubleSends > 0 || r.skipped > 0);
  Deno.exit(bad.length > 0 ? 1 : 0);
}
