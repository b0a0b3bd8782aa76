/**
 * The benchmark and fault suite: our dedup against the usual alternatives, side by side, on the
 * same workload, with a real PostgreSQL and a real Redis on loopback.
 *
 *   deno task bench            # default size (M = 2000 events, 3 instances), < 5 minutes
 *   deno task bench --quick    # small size, correctness only, < 1 minute
 *   deno task bench --only=duplicate-path   # just the duplicate-path HTTP figure and its ceilings
 *   deno task bench --only=msg:ours,send    # chosen rows (ids as in the table; send, idempotency)
 *
 * Options: --events=N --sessions=N (1–4) --instances=N --no-faults --no-http --no-micro
 * --only=id,id --out=DIR (default bench/results) --no-write (print only) --readme (also rewrite
 * the results section of bench/README.md; default for a full run). See bench/README.md for the
 * method. `--only=topology` runs only the topology rows (loopback, colocated, edge);
 * `--db-rtt-ms=N --redis-rtt-ms=N` measure a `custom` topology beside loopback instead.
 * `--chaos=SECONDS` sets the length of the combined chaos run (120 in a full run, off in --quick
 * unless given); `--only=chaos` runs only it. `--only=send-scale` runs only send-batch's scale rows
 * and writes `send-scale.json`.
 *
 * This file only starts the servers and runs the modules: each function's rows come from its own
 * module (`FunctionBench`, e.g. `membership/scenarios.ts`); the shared harness is in `lib/`.
 */
import postgres from "postgres";
import { exitAfterCleanup, stopOnSignals } from "../scripts/lib/cleanup.ts";
import { enableBroadcasts } from "../scripts/lib/database_checks.ts";
import { applyMigrations } from "../scripts/lib/migrate.ts";
import { freePort } from "../scripts/lib/ports.ts";
import { type PostgresServer, startPostgres } from "../scripts/lib/postgres_server.ts";
import { type RedisServer, startRedis } from "../scripts/lib/redis_server.ts";
import {
  startUpstashRestServer,
  type UpstashRestServer,
} from "../scripts/lib/upstash_rest_server.ts";
import {
  type BenchContext,
  type BenchOptions,
  type FunctionBench,
  REDIS_TOKEN,
  resolveOptions,
} from "./lib/context.ts";
import { microBenchmarks } from "./lib/micro.ts";
import { type PgCountingProxy, startPgCountingProxy } from "./lib/pg_counting_proxy.ts";
import { type StrategyRow, svgChart } from "./lib/report.ts";
import type { BenchResult } from "./lib/result.ts";
import { formatMarkdown, formatReport, machine } from "./lib/summary.ts";
import { evaluateTargets, isOurs } from "./lib/targets.ts";
import { costProbe } from "./membership/cost_probe.ts";
import { DUPLICATE_PATH_ONLY, httpLoad } from "./membership/http_load.ts";
import * as membership from "./membership/scenarios.ts";
import * as messages from "./messages/scenarios.ts";
import { runIdempotencyBench } from "./idempotency_bench.ts";
import { runSendBatchBench, SEND_SCALE_ONLY } from "./send_batch_bench.ts";
import { runTopologies } from "./topology/scenarios.ts";
import { runChaos } from "./chaos/scenarios.ts";
import { chaosRows } from "./chaos/report.ts";
import { customTopologies, isTopologySelector } from "./topology/topologies.ts";

export type { BenchOptions } from "./lib/context.ts";
export type { StrategyRow } from "./lib/report.ts";
export type { BenchResult, CostProbe, MicroFigure, TargetCheck } from "./lib/result.ts";
export { type Fault, FAULTS } from "./membership/scenarios.ts";
export { formatMarkdown, formatReport } from "./lib/summary.ts";

/** The modules adding rows to the comparison table, one per function. */
const FUNCTION_BENCHES: FunctionBench[] = [membership, messages];

/** Runs the whole comparison; starts and stops its own PostgreSQL and Redis. */
export async function runBenchmark(options: BenchOptions = {}): Promise<BenchResult> {
  const o = resolveOptions(options);
  const log = options.log ?? ((line: string) => console.error(line));
  const started = performance.now();
  const work = await Deno.makeTempDir({ prefix: "wa-webhook-bench-" });
  await Deno.chmod(work, 0o755);
  log(`starting PostgreSQL and Redis in ${work}…`);
  const pg: PostgresServer = await startPostgres({
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
    // Broadcast from Database on: every duplicate storm counts broadcasts beside row changes.
    await enableBroadcasts(pg.url);
    proxy = startPgCountingProxy(pg.port);
    sql = postgres(pg.url, { max: 2, onnotice: () => {} });
    const ctx: BenchContext = { env: { work, pg, redis, upstash, proxy, sql }, options: o, log };

    const rows: StrategyRow[] = [];
    for (const bench of FUNCTION_BENCHES) rows.push(...await bench.run(ctx));
    const onlyDuplicatePath = o.only.length === 1 && o.only[0] === DUPLICATE_PATH_ONLY;
    // Only runs that stand alone (topology rows, the chaos run, the send scale rows): no probe,
    // micro or HTTP figures.
    const onlyStandalone = o.only.length > 0 &&
      o.only.every((id) => isTopologySelector(id) || id === "chaos" || id === SEND_SCALE_ONLY);
    let probe: BenchResult["costProbe"] = [];
    if (!onlyDuplicatePath && !onlyStandalone) {
      log("per-webhook cost probe…");
      probe = await costProbe(ctx.env);
    }
    const micro = o.micro && !onlyDuplicatePath && !onlyStandalone
      ? await microBenchmarks(log)
      : [];
    const http = (o.http && !onlyStandalone) || onlyDuplicatePath
      ? await httpLoad(ctx.env, o, log)
      : undefined;
    const wants = (id: string) => o.only.length === 0 || o.only.includes(id);
    // Send-batch: correctness (double sends, skipped) even in --quick; idempotency: speed only.
    // `--only=send-scale`: the send-batch scale rows alone.
    const onlyScale = !wants("send") && o.only.includes(SEND_SCALE_ONLY);
    const sendBatch = (wants("send") || onlyScale) && !onlyDuplicatePath
      ? await runSendBatchBench({ quick: o.quick, databaseUrl: pg.url, log, onlyScale })
      : undefined;
    const idempotency = wants("idempotency") && !o.quick && !onlyDuplicatePath
      ? await runIdempotencyBench({ quick: o.quick, databaseUrl: pg.url, log })
      : undefined;
    // Topology rows: in a full run and when asked for (`--only=topology`), quick size or not.
    const topology = o.only.some(isTopologySelector) || (o.only.length === 0 && !o.quick)
      ? await runTopologies(ctx)
      : undefined;
    // The chaos run: in a full run, and when asked for (`--chaos=SECONDS`, `--only=chaos`).
    const chaos = o.only.includes("chaos") || (o.only.length === 0 && o.chaos > 0)
      ? await runChaos(ctx, o.chaos || 120)
      : undefined;
    const partial = {
      date: new Date().toISOString(),
      machine: await machine(),
      options: o,
      elapsedS: (performance.now() - started) / 1000,
      rows,
      costProbe: probe,
      micro,
      http,
      idempotency,
      sendBatch,
      topology,
      chaos,
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

function parseArgs(
  args: string[],
): BenchOptions & { out: string; write: boolean; readme?: boolean } {
  const options: BenchOptions & { out: string; write: boolean; readme?: boolean } = {
    out: new URL("./results/", import.meta.url).pathname,
    write: true,
  };
  let dbRttMs: number | undefined;
  let redisRttMs: number | undefined;
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
      case "--db-rtt-ms":
        dbRttMs = Number(value);
        break;
      case "--redis-rtt-ms":
        redisRttMs = Number(value);
        break;
      case "--chaos":
        options.chaos = Number(value);
        if (!Number.isInteger(options.chaos) || options.chaos < 1) {
          throw new Error(`--chaos takes whole seconds ≥ 1, got ${value}`);
        }
        break;
      default:
        throw new Error(`unknown option ${arg}`);
    }
  }
  if (dbRttMs !== undefined || redisRttMs !== undefined) {
    options.topologies = customTopologies(dbRttMs, redisRttMs);
  }
  return options;
}

if (import.meta.main) {
  // SIGINT/SIGTERM to this process stops its PostgreSQL, Redis, endpoint and instances.
  stopOnSignals();
  const args = parseArgs(Deno.args);
  const result = await runBenchmark(args).catch((error) => {
    console.error(error);
    return exitAfterCleanup(1);
  });
  console.log(formatReport(result));
  if (args.write) {
    const out = args.out.endsWith("/") ? args.out : `${args.out}/`;
    await Deno.mkdir(out, { recursive: true });
    // A partial run (--only) never replaces the full run's results.
    const partial = result.options.only.length > 0;
    const sendScaleAlone = result.options.only.join() === SEND_SCALE_ONLY;
    const name = result.options.quick
      ? "quick"
      : sendScaleAlone
      ? SEND_SCALE_ONLY
      : partial
      ? "partial"
      : "latest";
    await Deno.writeTextFile(`${out}${name}.json`, JSON.stringify(result, null, 2) + "\n");
    if (name === "latest") {
      await Deno.writeTextFile(
        `${out}latest.svg`,
        svgChart(
          result.rows,
          `Dedup strategies, ${result.options.events} events (${result.date.slice(0, 10)})`,
        ),
      );
    }
    console.log(`\nresults written to ${out}${name}.json`);
    if (args.readme ?? name === "latest") {
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
  const ours = [...result.rows, ...result.topology ?? [], ...chaosRows(result.chaos)]
    .filter(isOurs);
  await exitAfterCleanup(ours.every((r) => r.leaked === 0 && r.lost === 0) ? 0 : 1);
}
