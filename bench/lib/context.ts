/**
 * What every benchmark module runs against: the servers the run started (PostgreSQL behind a
 * round-trip counting proxy, Redis behind an Upstash-REST endpoint), the resolved options and a
 * progress log. A function's module takes a {@link BenchContext} and adds its rows.
 */
import type postgres from "postgres";
import type { PostgresServer } from "../../scripts/lib/postgres_server.ts";
import type { RedisServer } from "../../scripts/lib/redis_server.ts";
import type { UpstashRestServer } from "../../scripts/lib/upstash_rest_server.ts";
import type { PgCountingProxy } from "./pg_counting_proxy.ts";
import type { StrategyRow } from "./report.ts";
import { NAMED_TOPOLOGIES, type Topology } from "../topology/topologies.ts";

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
  /**
   * Run only the scenarios with these ids (e.g. `ours+redis`, `fault:instance-killed`);
   * `duplicate-path` alone runs just that HTTP figure and its ceilings.
   */
  only?: string[];
  /**
   * Network distances of the topology rows (default: loopback, colocated, edge); they run in a
   * full run and with `--only=topology`, not in `--quick` unless asked for.
   */
  topologies?: Topology[];
  /**
   * Seconds of the combined chaos run (`--chaos=SECONDS`): 120 in a full run, 0 (off) in
   * `--quick` unless given; `--only=chaos` runs only it.
   */
  chaos?: number;
  /** Progress lines (default: console.error). */
  log?: (line: string) => void;
}

/** Options with every default filled in. */
export type ResolvedOptions = Required<Omit<BenchOptions, "log">>;

/** The servers a run started, shared by every module. */
export interface BenchEnv {
  /** Temporary directory of the run (scripts, data files). */
  work: string;
  pg: PostgresServer;
  redis: RedisServer;
  upstash: UpstashRestServer;
  /** Counts database round trips; instances reach PostgreSQL through it. */
  proxy: PgCountingProxy;
  /** An admin connection to the benchmark database. */
  sql: postgres.Sql;
}

/** What a benchmark module gets. */
export interface BenchContext {
  env: BenchEnv;
  options: ResolvedOptions;
  log: (line: string) => void;
}

/**
 * A function's benchmark module: `run(ctx)` runs its scenarios against the shared servers and
 * returns the rows it adds to the comparison table (honouring `ctx.options.only`).
 */
export interface FunctionBench {
  run(ctx: BenchContext): Promise<StrategyRow[]>;
}

/** The Upstash-REST token of the run's endpoint. */
export const REDIS_TOKEN = "bench-upstash-token";

/** Waits `ms` milliseconds. */
export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Fills in the defaults (or the `--quick` size). */
export function resolveOptions(options: BenchOptions): ResolvedOptions {
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
    topologies: options.topologies ?? [...NAMED_TOPOLOGIES],
    chaos: options.chaos ?? (quick ? 0 : 120),
  };
  return resolved;
}

/** Sends one command to Redis through the run's Upstash-REST endpoint. */
export async function redisCommand(env: BenchEnv, command: (string | number)[]): Promise<unknown> {
  const response = await fetch(env.upstash.url, {
    method: "POST",
    headers: { authorization: `Bearer ${REDIS_TOKEN}` },
    body: JSON.stringify(command),
  });
  return await response.json();
}
