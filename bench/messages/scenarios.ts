/**
 * The message webhook's rows of the comparison table: the two usual quick fixes and ours (with
 * and without Redis), then the same four faults as the membership rows, on one seeded workload
 * of incoming messages and shuffled statuses, each delivered by several sessions to N instances.
 */
import { AfterRecoveryWindow, describeAfterRecovery, isRedisFault } from "../lib/after_recovery.ts";
import { type BenchContext, redisCommand } from "../lib/context.ts";
import { type FaultName, injectFault } from "../lib/faults.ts";
import { startInstances } from "../lib/instances.ts";
import type { StrategyRow } from "../lib/report.ts";
import { percentile, sendPhases, type Target } from "../lib/sender.ts";
import { prng } from "../lib/workload.ts";
import { RealtimeChangeFeed } from "../../tests/support/realtime_changes.ts";
import { instanceEnv, SECRET, signatureOf } from "../membership/env.ts";
import { checkMessages } from "./analysis.ts";
import { createNaiveMessagesTable, type MessageBaseline } from "./baselines.ts";
import { generateMessageWorkload, type MessageWorkload } from "./workload.ts";

/** Where the instances serve the message webhook. */
export const MESSAGE_PATH = "/functions/v1/whatsapp-message-webhook";

interface MessageScenario {
  id: string;
  label: string;
  strategy: "ours" | MessageBaseline;
  redis: boolean;
  fault?: FaultName;
}

const FAULT_LABELS: [FaultName, string][] = [
  ["redis-killed", "messages, ours + fault: Redis killed mid-run"],
  ["redis-slow", "messages, ours + fault: Redis answers 2 s late"],
  ["postgres-restart", "messages, ours + fault: PostgreSQL restarted mid-run"],
  ["instance-killed", "messages, ours + fault: one instance killed mid-run"],
];

/** The message scenarios, then (unless `--no-faults`) one row per fault. */
export function messageScenarios(faults: boolean): MessageScenario[] {
  const list: MessageScenario[] = [
    {
      id: "msg:checkThenInsert",
      label: "messages: check then insert, no unique index",
      strategy: "msgCheckThenInsert",
      redis: false,
    },
    {
      id: "msg:redisGetSetex",
      label: "messages: Redis GET then SETEX",
      strategy: "msgRedisGetSetex",
      redis: true,
    },
    { id: "msg:ours", label: "messages, ours, no Redis", strategy: "ours", redis: false },
    { id: "msg:ours+redis", label: "messages, ours, with Redis", strategy: "ours", redis: true },
  ];
  if (faults) {
    for (const [fault, label] of FAULT_LABELS) {
      list.push({ id: `msg:fault:${fault}`, label, strategy: "ours", redis: true, fault });
    }
  }
  return list;
}

/** Runs the selected message scenarios (`--only`); their rows of the comparison table. */
export async function run(ctx: BenchContext): Promise<StrategyRow[]> {
  const o = ctx.options;
  const selected = messageScenarios(o.faults).filter((s) =>
    o.only.length === 0 || o.only.includes(s.id)
  );
  if (selected.length === 0) return [];
  const workload = generateMessageWorkload({
    messages: Math.max(50, Math.floor(o.events / 2)),
    sessions: o.sessions,
    lateRetryShare: o.lateRetryShare,
    seed: o.seed,
  });
  ctx.log(
    `message workload: ${workload.incoming.length} incoming, ${workload.outgoing.length} ` +
      `outgoing × 3 statuses, ${workload.deliveries} deliveries, ${o.instances} instances`,
  );
  await createNaiveMessagesTable(ctx.env.sql);
  const signatures = new Map<string, string>();
  for (const phase of workload.phases) {
    for (const d of phase) signatures.set(d.body, signatureOf(SECRET, d.body));
  }
  const rows: StrategyRow[] = [];
  for (const scenario of selected) {
    ctx.log(`running ${scenario.label}…`);
    rows.push(await runScenario(ctx, scenario, workload, signatures));
  }
  return rows;
}

async function runScenario(
  ctx: BenchContext,
  scenario: MessageScenario,
  workload: MessageWorkload,
  signatures: Map<string, string>,
): Promise<StrategyRow> {
  const { env, options: o, log } = ctx;
  await env.sql`truncate public.whatsapp_messages`;
  await createNaiveMessagesTable(env.sql);
  await redisCommand(env, ["FLUSHALL"]);
  const vars = instanceEnv(env, {
    id: scenario.id,
    label: "",
    strategy: "ours",
    redis: scenario.redis,
  });
  const instances = await startInstances(o.instances, scenario.strategy, vars, MESSAGE_PATH);
  const targets: Target[] = instances.map((i) => ({ url: i.url, alive: true }));
  const feed = await RealtimeChangeFeed.open(env.sql);
  const db0 = env.proxy.stats.roundTrips;
  const redis0 = { ...env.upstash.stats };
  let injected = false;
  let recovery: Promise<void> = Promise.resolve();
  const afterRedis = new AfterRecoveryWindow(() => env.proxy.stats.roundTrips);
  let completed = 0;
  const send = await sendPhases(workload.phases, targets, {
    concurrency: o.concurrency,
    signatures,
    maxAttempts: 40,
    deadlineMs: o.quick ? 40_000 : 120_000,
    attemptTimeoutMs: 10_000,
    random: prng(o.seed + 7),
    onProgress: (done, total) => {
      completed = done;
      afterRedis.progress(done);
      if (scenario.fault && !injected && done >= total * 0.3) {
        injected = true;
        log(`  fault: ${scenario.fault}`);
        recovery = injectFault(env, scenario.fault, instances, targets, o.quick ? 1000 : 2500)
          .then(() => afterRedis.start(completed));
      }
    },
  });
  await recovery;
  await Promise.all(instances.map((i) => i.stop()));
  const dbRoundTrips = env.proxy.stats.roundTrips - db0;
  const changes = await feed.changes();
  await feed.close();
  const table = scenario.strategy === "ours" ? "whatsapp_messages" : "bench_naive_messages";
  const correctness = await checkMessages(env.sql, table, changes, workload);
  const row: StrategyRow = {
    id: scenario.id,
    label: scenario.label,
    deliveries: send.deliveries,
    uniqueEvents: workload.events,
    attempts: send.attempts,
    non2xx: send.non2xx,
    gaveUp: send.gaveUp,
    rowChanges: correctness.rowChanges,
    broadcasts: feed.broadcasting ? feed.broadcasts().length : undefined,
    expectedChanges: workload.events,
    leaked: correctness.leaked,
    lost: correctness.lost,
    p50Ms: percentile(send.latenciesMs, 50),
    p99Ms: percentile(send.latenciesMs, 99),
    deliveriesPerS: send.deliveries / (send.elapsedMs / 1000),
    dbRoundTripsPerDelivery: dbRoundTrips / send.deliveries,
    afterRedisReturns: isRedisFault(scenario.fault) ? afterRedis.figure() : undefined,
    redisCommandsPerDelivery: (env.upstash.stats.commands - redis0.commands) / send.deliveries,
    redisBatchesPerDelivery: (env.upstash.stats.requests - redis0.requests) / send.deliveries,
    mapEntries: 0,
    heapMB: NaN,
    rssMB: NaN,
  };
  log(
    `  ${scenario.label}: leaked ${row.leaked}, lost ${row.lost}, non-2xx ${row.non2xx}, ` +
      `${row.deliveriesPerS.toFixed(0)} deliveries/s, p99 ${row.p99Ms.toFixed(1)} ms`,
  );
  if (isRedisFault(scenario.fault)) log(describeAfterRecovery(row.afterRedisReturns));
  return row;
}
