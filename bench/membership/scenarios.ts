/**
 * The membership webhook's rows of the comparison table: every strategy (the baselines and ours,
 * with and without Redis) and every fault, on the same seeded workload of joins, leaves and
 * rejoins delivered by several gateway sessions to N instances.
 *
 * This is the module interface every function's benchmark follows: `run(ctx)` returns the rows it
 * adds to the table.
 */
import type postgres from "postgres";
import { AfterRecoveryWindow, describeAfterRecovery, isRedisFault } from "../lib/after_recovery.ts";
import { checkCorrectness } from "../lib/analysis.ts";
import { type BenchContext, redisCommand, sleep } from "../lib/context.ts";
import { injectFault } from "../lib/faults.ts";
import { startInstances } from "../lib/instances.ts";
import type { StrategyRow } from "../lib/report.ts";
import { percentile, sendPhases, type Target } from "../lib/sender.ts";
import { generateWorkload, prng, type Workload } from "../lib/workload.ts";
import { RealtimeChangeFeed } from "../../tests/support/realtime_changes.ts";
import {
  instanceEnv,
  type Scenario,
  SECRET,
  signatureOf,
  truncateMembership,
  WINDOW_MS,
} from "./env.ts";

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

/** The strategies compared, then (unless `--no-faults`) one row per fault. */
export function scenarios(faults: boolean): Scenario[] {
  const list: Scenario[] = [
    { id: "noDedup", label: "no dedup (upsert every delivery)", strategy: "noDedup", redis: false },
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
  if (faults) {
    for (const [fault, label] of Object.entries(FAULTS) as [Fault, string][]) {
      const redis = fault !== "instance-killed-no-redis";
      list.push({ id: `fault:${fault}`, label, strategy: "ours", redis, fault });
    }
  }
  return list;
}

/** Runs every selected scenario (`--only`) on one workload; the rows of the comparison table. */
export async function run(ctx: BenchContext): Promise<StrategyRow[]> {
  const o = ctx.options;
  const selected = scenarios(o.faults).filter((s) => o.only.length === 0 || o.only.includes(s.id));
  if (selected.length === 0) return [];
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
  ctx.log(
    `workload: ${workload.events.length} unique events, ${workload.pairs.length} (group, phone) ` +
      `pairs, ${workload.deliveries} deliveries, ${o.sessions} sessions, ${o.instances} instances`,
  );
  const rows: StrategyRow[] = [];
  for (const scenario of selected) {
    ctx.log(`running ${scenario.label}…`);
    rows.push(await runScenario(ctx, scenario, workload, signatures));
  }
  return rows;
}

/** Calls of the apply function so far (`pg_stat_user_functions`). */
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

/** One row: N instances of the scenario's strategy, the workload sent, correctness checked. */
async function runScenario(
  ctx: BenchContext,
  scenario: Scenario,
  workload: Workload,
  signatures: Map<string, string>,
): Promise<StrategyRow> {
  const { env, options: o, log } = ctx;
  await truncateMembership(env);
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
  const afterRedis = new AfterRecoveryWindow(() => env.proxy.stats.roundTrips);
  let completed = 0;
  const inject = () => {
    injected = true;
    log(`  fault: ${scenario.fault}`);
    recovery = injectFault(env, scenario.fault!, instances, targets, recoverMs)
      .then(() => afterRedis.start(completed));
  };

  const send = await sendPhases(workload.phases, targets, {
    concurrency: o.concurrency,
    signatures,
    maxAttempts: 40,
    deadlineMs: o.quick ? 40_000 : 120_000,
    attemptTimeoutMs: 10_000,
    random: prng(o.seed + 1),
    onProgress: (done, total) => {
      completed = done;
      afterRedis.progress(done);
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
    broadcasts: feed.broadcasting ? feed.broadcasts().length : undefined,
    expectedChanges: correctness.expectedChanges,
    leaked: correctness.leaked,
    lost: correctness.lost,
    p50Ms: percentile(send.latenciesMs, 50),
    p99Ms: percentile(send.latenciesMs, 99),
    deliveriesPerS: send.deliveries / (send.elapsedMs / 1000),
    dbRoundTripsPerDelivery: dbRoundTrips / send.deliveries,
    afterRedisReturns: isRedisFault(scenario.fault) ? afterRedis.figure() : undefined,
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
  if (isRedisFault(scenario.fault)) log(describeAfterRecovery(row.afterRedisReturns));
  return row;
}
