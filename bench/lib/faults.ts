/**
 * The faults injected into a run, shared by every function's rows: Redis killed or slow,
 * PostgreSQL restarted, one instance killed. Each returns when the fault has healed.
 */
import { type BenchEnv, sleep } from "./context.ts";
import type { Instance } from "./instances.ts";
import type { Target } from "./sender.ts";

/** The faults every function's rows are run with. */
export type FaultName =
  | "redis-killed"
  | "redis-slow"
  | "postgres-restart"
  | "instance-killed"
  | "instance-killed-no-redis";

/** Injects a fault; the promise settles once it has healed (`recoverMs` later). */
export function injectFault(
  env: BenchEnv,
  fault: FaultName,
  instances: readonly Instance[],
  targets: Target[],
  recoverMs: number,
): Promise<void> {
  switch (fault) {
    case "redis-killed":
      return env.redis.stop().then(() => sleep(recoverMs)).then(() => env.redis.start());
    case "redis-slow":
      env.upstash.faults.delayMs = 2000;
      // Back to normal after recoverMs, then let the delayed commands drain.
      return sleep(recoverMs).then(() => {
        env.upstash.faults.delayMs = 0;
      }).then(() => sleep(2100));
    case "postgres-restart":
      return env.pg.stop().then(() => sleep(300)).then(() => env.pg.start());
    case "instance-killed":
    case "instance-killed-no-redis":
      targets[0].alive = false;
      return instances[0].kill();
  }
}
