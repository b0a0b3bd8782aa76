/**
 * Micro-benchmark: the memory tier's check+claim against the scan-every-entry Map of the
 * `mapBucket` baseline, at 1k, 10k and 100k live keys. One iteration is one new claim plus one
 * duplicate check, as a webhook and its copy cost.
 *
 * Run: `deno bench -A bench/map_tier_bench.ts` (or through `deno task bench`).
 */
import { MemoryClaimStore } from "../supabase/functions/_shared/core/claims/memory_claim_store.ts";
import { ScanMapDedup } from "./lib/baselines.ts";

/** Live-key counts the benchmark measures at. */
export const LIVE_KEYS = [1_000, 10_000, 100_000] as const;

const TTL_MS = 10 * 60 * 1000;
const key = (i: number) => `join|120363025246125486@g.us|+9199${String(i).padStart(8, "0")}|1`;

for (const live of LIVE_KEYS) {
  const store = new MemoryClaimStore({ maxKeys: live, ttlMs: TTL_MS, burstMs: 1000 });
  for (let i = 0; i < live; i++) store.claimOne(key(i), 0);
  let next = live;
  Deno.bench({
    name: `memory tier, ${live} live keys`,
    group: `check+claim at ${live} live keys`,
    baseline: true,
    n: 2000,
    warmup: 200,
    fn() {
      const k = key(next++);
      if (!store.claimOne(k, 0)) throw new Error("new key held");
      if (store.claimOne(k, 0)) throw new Error("duplicate claimed");
    },
  });

  const scan = new ScanMapDedup(TTL_MS);
  const now = Date.now();
  // Filled directly: filling through checkAndSet would itself scan (quadratic set-up).
  for (let i = 0; i < live; i++) scan.entries.set(key(i), now + TTL_MS);
  let nextScan = live;
  Deno.bench({
    name: `scan-every-entry Map, ${live} live keys`,
    group: `check+claim at ${live} live keys`,
    n: live >= 100_000 ? 150 : live >= 10_000 ? 1000 : 2000,
    warmup: live >= 100_000 ? 10 : 100,
    fn() {
      const k = key(nextScan++);
      if (!scan.checkAndSet(k, now)) throw new Error("new key held");
      if (scan.checkAndSet(k, now)) throw new Error("duplicate claimed");
      // Keep the live set at `live` keys, as the memory tier's bound does.
      scan.entries.delete(scan.entries.keys().next().value!);
    },
  });
}
