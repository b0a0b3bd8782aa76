/**
 * The network distances the topology rows are measured at: the round-trip time added between the
 * function instances and PostgreSQL, and between them and the Upstash REST endpoint.
 */

/** One deployment shape: where the database and Upstash sit as seen from a function instance. */
export interface Topology {
  /** `loopback`, `colocated`, `edge`, or `custom` (from `--db-rtt-ms` / `--redis-rtt-ms`). */
  name: string;
  /** Round-trip time added to every database exchange, ms. */
  dbRttMs: number;
  /** Round-trip time added to every Upstash request, ms. */
  redisRttMs: number;
}

/** Everything on one machine, no delay added. */
export const LOOPBACK: Topology = { name: "loopback", dbRttMs: 0, redisRttMs: 0 };

/** The named topologies a full run reports: loopback, everything in one region, and the edge. */
export const NAMED_TOPOLOGIES: readonly Topology[] = [
  LOOPBACK,
  // Function, database and Upstash in one region.
  { name: "colocated", dbRttMs: 1, redisRttMs: 1 },
  // The function near the gateway, the database in one region, Upstash regional (near).
  { name: "edge", dbRttMs: 40, redisRttMs: 3 },
];

/** `--db-rtt-ms` / `--redis-rtt-ms`: loopback beside one `custom` topology with those RTTs. */
export function customTopologies(dbRttMs = 0, redisRttMs = 0): Topology[] {
  for (const ms of [dbRttMs, redisRttMs]) {
    if (!Number.isFinite(ms) || ms < 0) throw new Error(`an RTT must be ≥ 0 ms, got ${ms}`);
  }
  return [LOOPBACK, { name: "custom", dbRttMs, redisRttMs }];
}

/** `--only` entries that select topology rows: `topology`, or `topology:<strategy id>`. */
export function isTopologySelector(id: string): boolean {
  return id === "topology" || id.startsWith("topology:");
}
