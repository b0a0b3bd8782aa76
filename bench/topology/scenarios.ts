/**
 * The topology rows: ours, ours+redis and the usual quick fixes of both webhooks, measured with
 * network distance added between the instances and PostgreSQL (a latency proxy behind the
 * round-trip counting proxy) and between them and the Upstash endpoint (a latency proxy in front
 * of it), at each topology's RTTs, with the default number of events in flight and with one.
 *
 * Each strategy's instances are started once and serve every topology (the proxies' delay is
 * changed between rows); each row gets its own events, so no row sees another's claims.
 */
import { checkCorrectness } from "../lib/analysis.ts";
import type { BenchContext, BenchEnv } from "../lib/context.ts";
import { startInstances } from "../lib/instances.ts";
import { startDistantEnv } from "../lib/latency_proxy.ts";
import { percentile, type Target } from "../lib/sender.ts";
import { type Delivery, generateWorkload, prng, type Workload } from "../lib/workload.ts";
import {
  instanceEnv,
  SECRET,
  signatureOf,
  truncateMembership,
  WINDOW_MS,
} from "../membership/env.ts";
import { checkMessages } from "../messages/analysis.ts";
import { createNaiveMessagesTable } from "../messages/baselines.ts";
import { MESSAGE_PATH } from "../messages/scenarios.ts";
import { generateMessageWorkload } from "../messages/workload.ts";
import { RealtimeChangeFeed, type RowChange } from "../../tests/support/realtime_changes.ts";
import { sendCopies } from "./sender.ts";
import type { Topology } from "./topologies.ts";

/** One row of the `topology` results: a strategy at one topology and load. */
export interface TopologyRow {
  /** The strategy's id, as in the comparison table (`ours+redis`, `msg:ours`, …). */
  id: string;
  topology: string;
  /** `default`: the run's events in flight; `single`: one event at a time. */
  load: "default" | "single";
  dbRttMs: number;
  redisRttMs: number;
  deliveries: number;
  deliveriesPerS: number;
  p50Ms: number;
  p99Ms: number;
  /** p50 of an event's first copy, sent alone. */
  firstP50Ms: number;
  /** p50 of a copy reaching another instance after the first copy was answered. */
  copyP50Ms: number;
  /** p50 of the later-answered of two copies sent together to two instances. */
  racingCopyP50Ms: number;
  dbRoundTripsPerDelivery: number;
  redisBatchesPerDelivery: number;
  leaked: number;
  lost: number;
  non2xx: number;
  gaveUp: number;
}

/** A strategy of the topology rows. */
interface TopologyStrategy {
  id: string;
  webhook: "membership" | "messages";
  /** `BENCH_STRATEGY` of the instances. */
  strategy: string;
  redis: boolean;
}

/** Ours, ours+redis and the usual fixes of both webhooks. */
export const TOPOLOGY_STRATEGIES: readonly TopologyStrategy[] = [
  { id: "noDedup", webhook: "membership", strategy: "noDedup", redis: false },
  { id: "mapBucket", webhook: "membership", strategy: "mapBucket", redis: false },
  { id: "redisCheckThenSet", webhook: "membership", strategy: "redisCheckThenSet", redis: true },
  { id: "ours", webhook: "membership", strategy: "ours", redis: false },
  { id: "ours+redis", webhook: "membership", strategy: "ours", redis: true },
  {
    id: "msg:checkThenInsert",
    webhook: "messages",
    strategy: "msgCheckThenInsert",
    redis: false,
  },
  { id: "msg:redisGetSetex", webhook: "messages", strategy: "msgRedisGetSetex", redis: true },
  { id: "msg:ours", webhook: "messages", strategy: "ours", redis: false },
  { id: "msg:ours+redis", webhook: "messages", strategy: "ours", redis: true },
];

/** Events per row: at the default load, and one at a time. */
function rowEvents(quick: boolean): Record<TopologyRow["load"], number> {
  return quick ? { default: 60, single: 12 } : { default: 240, single: 40 };
}

/** The workload of one row, and how to check what it did. */
interface RowWork {
  phases: Delivery[][];
  check(env: BenchEnv, changes: readonly RowChange[]): Promise<{ leaked: number; lost: number }>;
}

/** Strategies selected by `--only` (`topology` = all, `topology:<id>` = that one). */
function selected(only: readonly string[]): TopologyStrategy[] {
  if (only.includes("topology")) return [...TOPOLOGY_STRATEGIES];
  const ids = only.filter((s) => s.startsWith("topology:")).map((s) => s.slice(9));
  if (only.length === 0) return [...TOPOLOGY_STRATEGIES];
  return TOPOLOGY_STRATEGIES.filter((s) => ids.includes(s.id));
}

/** Runs the topology rows; starts and stops its own proxies. */
export async function runTopologies(ctx: BenchContext): Promise<TopologyRow[]> {
  const { env, options: o, log } = ctx;
  const strategies = selected(o.only);
  if (strategies.length === 0 || o.topologies.length === 0) return [];
  const sizes = rowEvents(o.quick);
  const loads: TopologyRow["load"][] = ["default", "single"];
  const slots = o.topologies.length * loads.length;
  // One membership workload, cut into disjoint (group, phone) pairs per row.
  const membership = sliceWorkload(
    generateWorkload({
      events: o.topologies.length * (sizes.default + sizes.single),
      sessions: 2,
      lateRetryShare: 0,
      groups: 300,
      phones: 400,
      windowMs: WINDOW_MS,
      seed: o.seed + 11,
      baseTime: Date.now(),
    }),
    Array.from({ length: slots }, (_, n) => sizes[loads[n % loads.length]]),
  );

  const distant = startDistantEnv(env);
  const { env: delayedEnv, dbLink: pgDelay, upstashLink: redisDelay } = distant;
  const rows: TopologyRow[] = [];
  try {
    for (const s of strategies) {
      log(`topology rows: ${s.id}…`);
      const vars = instanceEnv(delayedEnv, {
        id: `topology-${s.id}`,
        label: "",
        strategy: "ours",
        redis: s.redis,
      });
      const path = s.webhook === "messages" ? MESSAGE_PATH : undefined;
      const instances = await startInstances(o.instances, s.strategy, vars, path);
      const targets: Target[] = instances.map((i) => ({ url: i.url, alive: true }));
      try {
        let slot = 0;
        for (const topology of o.topologies) {
          pgDelay.rttMs = topology.dbRttMs;
          redisDelay.rttMs = topology.redisRttMs;
          for (const load of loads) {
            const work = s.webhook === "membership"
              ? membershipWork(membership[slot])
              : messageWork(sizes[load], o.seed + 100 + slot, s.strategy === "ours");
            slot++;
            const row = await runRow(ctx, delayedEnv, s, topology, load, work, targets);
            rows.push(row);
            log(
              `  ${topology.name}/${load}: ${row.deliveriesPerS.toFixed(0)} deliveries/s, ` +
                `p50 ${row.p50Ms.toFixed(1)} ms, first ${row.firstP50Ms.toFixed(1)}, late copy ` +
                `${row.copyP50Ms.toFixed(1)}, racing ${row.racingCopyP50Ms.toFixed(1)} ms, ` +
                `${row.dbRoundTripsPerDelivery.toFixed(2)} DB trips, leaked ${row.leaked}, ` +
                `lost ${row.lost}`,
            );
          }
        }
      } finally {
        await Promise.all(instances.map((i) => i.stop()));
      }
    }
  } finally {
    distant.close();
  }
  return rows;
}

/** One row: the work sent through the proxies, its latencies and round trips, checked. */
async function runRow(
  ctx: BenchContext,
  env: BenchEnv,
  s: TopologyStrategy,
  topology: Topology,
  load: TopologyRow["load"],
  work: RowWork,
  targets: Target[],
): Promise<TopologyRow> {
  if (s.webhook === "membership") await truncateMembership(env);
  else {
    await env.sql`truncate public.whatsapp_messages`;
    await createNaiveMessagesTable(env.sql);
  }
  const signatures = new Map<string, string>();
  for (const phase of work.phases) {
    for (const d of phase) signatures.set(d.body, signatureOf(SECRET, d.body));
  }
  const feed = await RealtimeChangeFeed.open(env.sql);
  const db0 = env.proxy.stats.roundTrips;
  const redis0 = env.upstash.stats.requests;
  let correctness: { leaked: number; lost: number };
  let send;
  try {
    send = await sendCopies(work.phases, targets, {
      concurrency: load === "single" ? 1 : ctx.options.concurrency,
      signatures,
      random: prng(ctx.options.seed + 5),
      deadlineMs: 120_000,
    });
  } finally {
    const changes = await feed.changes();
    await feed.close();
    correctness = await work.check(env, changes);
  }
  return {
    id: s.id,
    topology: topology.name,
    load,
    dbRttMs: topology.dbRttMs,
    redisRttMs: topology.redisRttMs,
    deliveries: send.deliveries,
    deliveriesPerS: send.deliveries / (send.elapsedMs / 1000),
    p50Ms: percentile(send.latenciesMs, 50),
    p99Ms: percentile(send.latenciesMs, 99),
    firstP50Ms: percentile(send.firstMs, 50),
    copyP50Ms: percentile(send.lateMs, 50),
    racingCopyP50Ms: percentile(send.racingMs, 50),
    dbRoundTripsPerDelivery: (env.proxy.stats.roundTrips - db0) / send.deliveries,
    redisBatchesPerDelivery: (env.upstash.stats.requests - redis0) / send.deliveries,
    leaked: correctness.leaked,
    lost: correctness.lost,
    non2xx: send.non2xx,
    gaveUp: send.gaveUp,
  };
}

/** Cuts a workload into disjoint parts of about `sizes[n]` events each (whole pairs). */
export function sliceWorkload(workload: Workload, sizes: readonly number[]): Workload[] {
  const partOf = new Array<number>(workload.pairs.length);
  let part = 0;
  let filled = 0;
  const perPair = new Map<number, number>();
  for (const event of workload.events) perPair.set(event.pair, (perPair.get(event.pair) ?? 0) + 1);
  for (let pair = 0; pair < workload.pairs.length; pair++) {
    if (filled >= sizes[part] && part < sizes.length - 1) {
      part++;
      filled = 0;
    }
    partOf[pair] = part;
    filled += perPair.get(pair) ?? 0;
  }
  return sizes.map((_, n) => {
    const phases = workload.phases
      .map((phase) => phase.filter((d) => partOf[workload.events[d.event].pair] === n))
      .filter((phase) => phase.length > 0);
    return {
      pairs: workload.pairs.filter((_, pair) => partOf[pair] === n),
      events: workload.events.filter((e) => partOf[e.pair] === n),
      phases,
      deliveries: phases.reduce((k, p) => k + p.length, 0),
    };
  });
}

/** A membership row: its part of the workload, checked like the comparison rows. */
function membershipWork(workload: Workload): RowWork {
  return {
    phases: workload.phases,
    check: (env, changes) => checkCorrectness(env.sql, changes, workload),
  };
}

/** A message row: `events` webhooks of its own (ids carry the seed), checked like the others. */
function messageWork(events: number, seed: number, ours: boolean): RowWork {
  // Each incoming message is one event, each outgoing one three: messages × 2.5 events.
  const workload = generateMessageWorkload({
    messages: Math.max(2, Math.round(events / 2.5)),
    sessions: 2,
    lateRetryShare: 0,
    seed,
  });
  return {
    phases: workload.phases.filter((p) => p.length > 0),
    check: (env, changes) =>
      checkMessages(
        env.sql,
        ours ? "whatsapp_messages" : "bench_naive_messages",
        changes,
        workload,
      ),
  };
}
