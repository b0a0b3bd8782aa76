/**
 * The targets a run is judged by, each with what was measured and whether it is met.
 */
import { mib } from "./report.ts";
import type { BenchResult, TargetCheck } from "./result.ts";
import { topologyTargets } from "../topology/targets.ts";
import { chaosTargets } from "../chaos/report.ts";
import { PLATFORM_MEMORY_LIMIT_MIB } from "../send_batch_bench.ts";

/** Whether a row runs our functions (any function, faults included), not a baseline. */
export function isOurs(row: { id: string }): boolean {
  return /^(msg:)?(ours|fault:)/.test(row.id);
}

/** Checks every target the result has figures for. */
export function evaluateTargets(result: Omit<BenchResult, "targets">): TargetCheck[] {
  const ours = result.rows.filter(isOurs);
  const bad = ours.filter((r) => r.leaked > 0 || r.lost > 0);
  const checks: TargetCheck[] = [{
    target: "ours: 0 leaked duplicates and 0 lost events in every row, faults included",
    measured: ours.length === 0
      ? "not run"
      : bad.length === 0
      ? `${ours.length} rows, all 0/0`
      : bad.map((r) => `${r.label}: ${r.leaked} leaked, ${r.lost} lost`).join("; "),
    met: ours.length === 0 ? null : bad.length === 0,
  }];
  // Broadcast from Database: ours' rows on broadcast tables (memberships, messages).
  const broadcastRows = ours.filter((r) => r.broadcasts !== undefined);
  const offBroadcast = broadcastRows.filter((r) => r.broadcasts !== r.rowChanges);
  checks.push({
    target: "ours: exactly one Realtime broadcast per effective change (none for copies)",
    measured: broadcastRows.length === 0
      ? "not run"
      : offBroadcast.length === 0
      ? `${broadcastRows.length} rows, broadcasts = row changes = real changes`
      : offBroadcast.map((r) => `${r.label}: ${r.broadcasts} broadcasts, ${r.rowChanges} changes`)
        .join("; "),
    met: broadcastRows.length === 0 ? null : offBroadcast.length === 0,
  });
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
      target: "any webhook costs ≤ 1 database round trip and ≤ 1 Redis round trip before the " +
        "response (+ 1 confirmation after it)",
      measured: `max ${maxDb} database round trip(s), max ${maxRedis} Redis batch(es) per webhook`,
      met: maxDb <= 1 && maxRedis <= 2,
    });
    const cross = result.costProbe.find((p) => p.case === "cross-instance duplicate");
    if (cross) {
      checks.push({
        target: "a cross-instance copy arriving after the first copy's write costs 0 database " +
          "round trips",
        measured: `${cross.dbRoundTrips} database, ${cross.redisBatches} Redis`,
        met: cross.dbRoundTrips === 0,
      });
    }
  }
  const noRedis = result.rows.find((r) => r.id === "ours");
  const withRedis = result.rows.find((r) => r.id === "ours+redis");
  if (withRedis) {
    const limit = withRedis.uniqueEvents / withRedis.deliveries;
    checks.push({
      target: "with Redis: database round trips per delivery ≤ 0.55",
      measured: `${withRedis.dbRoundTripsPerDelivery.toFixed(2)} (no Redis ${
        noRedis ? noRedis.dbRoundTripsPerDelivery.toFixed(2) : "not run"
      }; the floor, unique events ÷ deliveries, is ${limit.toFixed(2)})`,
      met: withRedis.dbRoundTripsPerDelivery <= 0.55,
    });
    if (noRedis) {
      checks.push({
        target: "with Redis: throughput ≥ the no-Redis row",
        measured: `${withRedis.deliveriesPerS.toFixed(0)} vs ${
          noRedis.deliveriesPerS.toFixed(0)
        } deliveries/s (p50 ${withRedis.p50Ms.toFixed(1)} vs ${noRedis.p50Ms.toFixed(1)} ms)`,
        met: withRedis.deliveriesPerS >= noRedis.deliveriesPerS,
      });
    }
  }
  const http = result.http;
  if (http) {
    const dup = http.duplicatePath.requestsPerS;
    const dupRatio = dup / http.bare.requestsPerS;
    const fairer = http.bareHmac
      ? `; ${(dup / http.bareHmac.requestsPerS * 100).toFixed(0)}% of the bare handler with ` +
        `raw bytes + HMAC (${http.bareHmac.requestsPerS.toFixed(0)} req/s)`
      : "";
    checks.push({
      target: "signed duplicate deliveries on one instance ≥ 30% of the bare-handler ceiling",
      measured: `${dup.toFixed(0)} vs ${http.bare.requestsPerS.toFixed(0)} req/s = ${
        (dupRatio * 100).toFixed(0)
      }%${fairer} (p99 ${http.duplicatePath.p99Ms.toFixed(1)} ms)`,
      met: dupRatio >= 0.3,
    });
    if (http.messageDuplicatePath) {
      const ratio = http.messageDuplicatePath.requestsPerS / http.bare.requestsPerS;
      checks.push({
        target: "message webhook: signed duplicate deliveries ≥ 30% of the bare-handler ceiling",
        measured: `${http.messageDuplicatePath.requestsPerS.toFixed(0)} vs ${
          http.bare.requestsPerS.toFixed(0)
        } req/s = ${(ratio * 100).toFixed(0)}% (p99 ${
          http.messageDuplicatePath.p99Ms.toFixed(1)
        } ms)`,
        met: ratio >= 0.3,
      });
    }
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
  checks.push(...sendTargets(result), ...idempotencyTargets(result));
  checks.push(...topologyTargets(result.topology));
  checks.push(...chaosTargets(result.chaos));
  return checks;
}

/** whatsapp-send-batch: the rate sustained, no double send, nobody skipped. */
function sendTargets(result: Omit<BenchResult, "targets">): TargetCheck[] {
  const rows = result.sendBatch;
  if (!rows) return [];
  const checks: TargetCheck[] = [];
  const paced = rows.find((r) => r.id === "send:80-per-second");
  if (paced?.shareOfLimit !== undefined) {
    checks.push({
      target: "send-batch: ≥ 95% of SEND_RATE_PER_SECOND = 80/s sustained",
      measured: `${(paced.shareOfLimit * 100).toFixed(1)}% (${
        paced.recipientsPerSecond.toFixed(1)
      }/s)`,
      met: paced.shareOfLimit >= 0.95,
    });
  }
  const down = rows.find((r) => r.id === "send:upstash-down");
  if (down?.busiestSecondShare !== undefined) {
    const before = rows.find((r) => r.id === "send:upstash-down-per-instance");
    checks.push({
      target: "send-batch, Upstash down, 3 instances: the busiest second ≤ 100% of 80/s",
      measured: `${(down.busiestSecondShare * 100).toFixed(1)}% (${
        ((down.shareOfLimit ?? 0) * 100).toFixed(1)
      }% sustained${
        before?.busiestSecondShare === undefined
          ? ""
          : `; each instance on its own pace: ${(before.busiestSecondShare * 100).toFixed(1)}%`
      })`,
      met: down.busiestSecondShare <= 1,
    });
  }
  checks.push(...scaleTargets(rows));
  const bad = rows.filter((r) => r.doubleSends > 0 || r.skipped > 0);
  checks.push({
    target: "send-batch: 0 double sends and 0 skipped recipients, kill-and-resume included",
    measured: bad.length === 0
      ? `${rows.length} rows, all 0/0`
      : bad.map((r) => `${r.id}: ${r.doubleSends} double, ${r.skipped} skipped`).join("; "),
    met: bad.length === 0,
  });
  return checks;
}

/**
 * send-batch at 1k, 10k and 100k recipients: each cost per recipient (and the progress GET, and
 * the instance's peak memory) at 10k and 100k within 2× of 1k; 0 double sends / 0 skipped at 100k
 * with the instance killed halfway.
 */
function scaleTargets(rows: NonNullable<BenchResult["sendBatch"]>): TargetCheck[] {
  const at = (id: string) => rows.find((r) => r.id === id && r.scale);
  const small = at("send:scale-1k");
  const large = [at("send:scale-10k"), at("send:scale-100k")].filter((r) => r !== undefined);
  const big = at("send:scale-100k");
  if (!small || !big) return [];
  type Row = NonNullable<BenchResult["sendBatch"]>[number];
  const figures: [string, (r: Row) => number, (v: number) => string][] = [
    [
      "create time per recipient",
      (r) => r.scale!.createMsPerRecipient,
      (v) => `${(v * 1000).toFixed(1)} µs`,
    ],
    [
      "database round trips per claimed recipient",
      (r) => r.dbRoundTripsPerRecipient ?? 0,
      (v) => v.toFixed(2),
    ],
    ["progress GET time", (r) => r.scale!.progressMs, (v) => `${v.toFixed(1)} ms`],
    [
      "peak RSS of the instance",
      (r) => r.scale!.peakRssBytes,
      (v) => `${mib(v)} MiB`,
    ],
  ];
  const checks: TargetCheck[] = figures.map(([name, value, show]) => {
    const growth = Math.max(...large.map(value)) / value(small);
    return {
      target: `send-batch scale: ${name} flat from 1k to 100k recipients (≤ 2× of 1k)`,
      measured: [small, ...large].map((r) => `${r.recipients}: ${show(value(r))}`).join(", ") +
        ` (${growth.toFixed(2)}×)`,
      met: growth <= 2,
    };
  });
  const isolate = big.scale!.peakIsolateBytes;
  if (isolate !== undefined) {
    checks.push({
      target: "send-batch scale: 100,000 recipients within a deployed function's memory limit " +
        `(V8 used heap + external, as the platform counts it, < ${PLATFORM_MEMORY_LIMIT_MIB} MiB; ` +
        "heap capped there)",
      measured: [small, ...large]
        .map((r) => `${r.recipients}: ${mib(r.scale!.peakIsolateBytes)} MiB`).join(", "),
      met: isolate < PLATFORM_MEMORY_LIMIT_MIB * 2 ** 20,
    });
  }
  checks.push({
    target: "send-batch scale: 100,000 recipients, instance killed halfway: 0 double sends, " +
      "0 skipped",
    measured: `${big.doubleSends} double, ${big.skipped} skipped (${big.unknown} listed unknown)`,
    met: big.doubleSends === 0 && big.skipped === 0,
  });
  return checks;
}

/** Idempotency-Key: replays without a database round trip when cached, at most one otherwise. */
function idempotencyTargets(result: Omit<BenchResult, "targets">): TargetCheck[] {
  const rows = result.idempotency;
  if (!rows) return [];
  return rows.filter((r) => r.unit === "round trips").map((r) => ({
    target: `Idempotency-Key ${r.name}: ≤ 1, and 0 when a cache tier has the response`,
    measured: `${r.value.toFixed(3)}`,
    met: r.name.includes("no cache") ? r.value <= 1.01 : r.value === 0,
  }));
}
