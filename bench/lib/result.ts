/**
 * The shape of a run's result (`bench/results/*.json`): the comparison rows, the per-webhook
 * probe, micro-benchmarks, HTTP load figures and the targets.
 */
import type { BenchOptions } from "./context.ts";
import type { LoadFigure, PgbenchFigure } from "./load.ts";
import type { StrategyRow } from "./report.ts";
import type { IdempotencyBenchRow } from "../idempotency_bench.ts";
import type { SendBenchRow } from "../send_batch_bench.ts";
import type { TopologyRow } from "../topology/scenarios.ts";
import type { ChaosResult } from "../chaos/scenarios.ts";

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
    /** Ceiling: a bare `Deno.serve` handler parsing the same JSON. */
    bare: LoadFigure;
    /** Fairer ceiling: a bare handler that also reads the raw bytes and verifies the same HMAC. */
    bareHmac?: LoadFigure;
    duplicatePath: LoadFigure;
    /** The message webhook's signed duplicate deliveries, on the same instance. */
    messageDuplicatePath?: LoadFigure;
    uniquePath: LoadFigure;
    uniquePathWithRedis?: LoadFigure;
    pgbench: PgbenchFigure[];
    /** Database connections of one instance (DB_POOL_MAX), the concurrency pgbench is compared at. */
    instancePoolSize: number;
    note?: string;
  };
  /** Idempotency-Key replays and the retention job (not in `--quick`). */
  idempotency?: IdempotencyBenchRow[];
  /** whatsapp-send-batch against the fake provider. */
  sendBatch?: SendBenchRow[];
  /** Strategies with network distance added (`options.topologies`), at two loads. */
  topology?: TopologyRow[];
  /** The combined chaos run (`--chaos=SECONDS`): faults injected, lost/doubled/stuck per function. */
  chaos?: ChaosResult;
  targets: TargetCheck[];
}
