/**
 * The topology targets, judged under `edge` (the database 40 ms away, Upstash 3 ms): what one
 * event in flight costs with Redis, what Redis buys at the default load, and exactly-once
 * everywhere.
 */
import type { TargetCheck } from "../lib/result.ts";
import { isOurs } from "../lib/targets.ts";
import type { TopologyRow } from "./scenarios.ts";

const ms = (n: number) => `${n.toFixed(1)} ms`;

/** Checks the topology targets the rows have figures for (none when not run). */
export function topologyTargets(rows: readonly TopologyRow[] | undefined): TargetCheck[] {
  if (!rows || rows.length === 0) return [];
  const ours = rows.filter(isOurs);
  const bad = ours.filter((r) => r.leaked > 0 || r.lost > 0);
  const checks: TargetCheck[] = [{
    target: "topologies: ours leaks 0 and loses 0 in every topology and load",
    measured: bad.length === 0
      ? `${ours.length} rows, all 0/0`
      : bad.map((r) => `${r.id} ${r.topology}/${r.load}: ${r.leaked} leaked, ${r.lost} lost`)
        .join("; "),
    met: ours.length === 0 ? null : bad.length === 0,
  }];
  const find = (id: string, load: TopologyRow["load"]) =>
    rows.find((r) => r.id === id && r.topology === "edge" && r.load === load);
  for (const prefix of ["", "msg:"]) {
    const single = find(`${prefix}ours+redis`, "single");
    if (single) {
      const db = single.dbRttMs;
      const redis = single.redisRttMs;
      const name = `edge, ${prefix}ours+redis, one event in flight`;
      checks.push({
        target: `${name}: first copy p50 ≤ DB RTT + Redis RTT + 5 ms (${db + redis + 5} ms)`,
        measured: ms(single.firstP50Ms),
        met: single.firstP50Ms <= db + redis + 5,
      }, {
        target: `${name}: racing copy p50 ≤ first copy p50 + Redis RTT`,
        measured: `${ms(single.racingCopyP50Ms)} (first copy ${ms(single.firstP50Ms)})`,
        met: single.racingCopyP50Ms <= single.firstP50Ms + redis,
      }, {
        target: `${name}: late copy p50 ≤ Redis RTT + 2 ms (${redis + 2} ms)`,
        measured: ms(single.copyP50Ms),
        met: single.copyP50Ms <= redis + 2,
      });
    }
    const withRedis = find(`${prefix}ours+redis`, "default");
    const without = find(`${prefix}ours`, "default");
    if (withRedis && without) {
      const ratio = withRedis.deliveriesPerS / without.deliveriesPerS;
      checks.push({
        target: `edge, default load: ${prefix}ours+redis ≥ 1.3× the deliveries/s of ${prefix}ours`,
        measured: `${ratio.toFixed(2)}× (${withRedis.deliveriesPerS.toFixed(0)} vs ${
          without.deliveriesPerS.toFixed(0)
        } deliveries/s; ${withRedis.dbRoundTripsPerDelivery.toFixed(2)} vs ${
          without.dbRoundTripsPerDelivery.toFixed(2)
        } DB round trips per delivery)`,
        met: ratio >= 1.3,
      });
    }
  }
  return checks;
}
