/**
 * The chaos run's nemesis: on a seeded random schedule it kills and restarts function instances,
 * restarts PostgreSQL, stops and restarts Redis and the Upstash endpoint, slows Redis and adds
 * latency to the database link. Faults of different kinds may overlap; one kind is never injected
 * twice at once. Every fault heals itself; {@link Nemesis.stop} waits until all have.
 */
import type { BenchEnv } from "../lib/context.ts";
import { sleep } from "../lib/context.ts";
import type { LatencyProxy } from "../lib/latency_proxy.ts";
import { prng } from "../lib/workload.ts";

/** The faults of the chaos run. */
export const CHAOS_FAULTS = [
  "instance-killed",
  "postgres-restart",
  "redis-stopped",
  "upstash-down",
  "redis-slow",
  "db-latency",
] as const;

export type ChaosFault = typeof CHAOS_FAULTS[number];

/** What the nemesis acts on. */
export interface NemesisTargets {
  env: BenchEnv;
  /** The latency proxy between the instances and PostgreSQL. */
  dbLink: LatencyProxy;
  /** The latency proxy between the instances and the Upstash endpoint. */
  upstashLink: LatencyProxy;
  /** Instances that may be killed now (at least one stays alive). */
  instanceCount(): number;
  /** SIGKILLs instance `index` (its requests in flight die with it). */
  killInstance(index: number): Promise<void>;
  /** Starts a fresh instance in the place of instance `index`. */
  restartInstance(index: number): Promise<void>;
  /** Progress lines. */
  log(line: string): void;
}

/** Counts of the faults injected, per kind. */
export type FaultCounts = Record<ChaosFault, number>;

/** A running nemesis. */
export interface Nemesis {
  counts: FaultCounts;
  /** Stops injecting and resolves once every fault in progress has healed. */
  stop(): Promise<void>;
}

/** Starts injecting faults now, on the schedule of `seed`. */
export function startNemesis(targets: NemesisTargets, seed: number): Nemesis {
  const random = prng(seed);
  const between = (lo: number, hi: number) => lo + Math.floor(random() * (hi - lo));
  const counts = Object.fromEntries(CHAOS_FAULTS.map((f) => [f, 0])) as FaultCounts;
  const active = new Map<ChaosFault, Promise<void>>();
  const killed = new Set<number>();
  let stopped = false;
  let wake: (() => void) | undefined;

  const heal = (fault: ChaosFault, work: () => Promise<void>) => {
    counts[fault]++;
    const running = work().catch((error) => targets.log(`  nemesis: ${fault} failed: ${error}`))
      .finally(() => active.delete(fault));
    active.set(fault, running);
  };

  /** Puts something out (`off`), `ms` later back (`on`, whatever happened): one fault. */
  const outFor = (
    fault: ChaosFault,
    ms: number,
    off: () => void | Promise<void>,
    on: () => void | Promise<void>,
  ) =>
    heal(fault, async () => {
      try {
        await off();
        await sleep(ms);
      } finally {
        await on();
      }
    });

  const inject = (fault: ChaosFault) => {
    const { env, dbLink, upstashLink } = targets;
    switch (fault) {
      case "instance-killed": {
        const live = Array.from({ length: targets.instanceCount() }, (_, i) => i)
          .filter((i) => !killed.has(i));
        if (live.length < 2) return;
        const index = live[Math.floor(random() * live.length)];
        killed.add(index);
        return outFor(
          fault,
          between(500, 3000),
          () => targets.killInstance(index),
          () => targets.restartInstance(index).finally(() => killed.delete(index)),
        );
      }
      case "postgres-restart":
        return outFor(fault, between(200, 2000), () => env.pg.stop(), () => env.pg.start());
      case "redis-stopped":
        return outFor(fault, between(1000, 5000), () => env.redis.stop(), () => env.redis.start());
      case "upstash-down":
        return outFor(fault, between(1000, 5000), () => {
          upstashLink.down = true;
        }, () => {
          upstashLink.down = false;
        });
      case "redis-slow": {
        const delayMs = between(200, 2000);
        return outFor(fault, between(1000, 5000), () => {
          env.upstash.faults.delayMs = delayMs;
        }, () => {
          env.upstash.faults.delayMs = 0;
        });
      }
      case "db-latency": {
        const rttMs = between(10, 150);
        return outFor(fault, between(1000, 6000), () => {
          dbLink.rttMs = rttMs;
        }, () => {
          dbLink.rttMs = 0;
        });
      }
    }
  };

  const loop = (async () => {
    while (!stopped) {
      // The next fault comes 0.5–3 s after the last one started.
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, between(500, 3000));
        wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      wake = undefined;
      if (stopped) break;
      const idle = CHAOS_FAULTS.filter((f) => !active.has(f));
      if (idle.length === 0) continue;
      const fault = idle[Math.floor(random() * idle.length)];
      targets.log(`  nemesis: ${fault}`);
      inject(fault);
    }
  })();

  return {
    counts,
    async stop() {
      stopped = true;
      wake?.();
      await loop;
      while (active.size > 0) await Promise.allSettled([...active.values()]);
    },
  };
}
