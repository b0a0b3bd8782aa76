/**
 * What the membership benchmark rows share: the webhook secret, the dedup window, the scenario
 * shape, and the environment each function instance is started with.
 */
import type { BenchEnv } from "../lib/context.ts";
import { REDIS_TOKEN } from "../lib/context.ts";
import type { Fault } from "./scenarios.ts";

export { signatureOf } from "../lib/load.ts";

/** The `WEBHOOK_SECRET` of every instance (and the bare HMAC ceiling). */
export const SECRET = "bench-webhook-secret-0123456789";
/** `DEDUP_WINDOW_MS` of every instance, and the workload's window. */
export const WINDOW_MS = 5000;
/** `DB_POOL_MAX` of every instance; pgbench's ceiling is compared at this concurrency. */
export const POOL_MAX = 4;

/** One row of the comparison: a strategy, with or without Redis, maybe with a fault. */
export interface Scenario {
  id: string;
  label: string;
  strategy: "ours" | "noDedup" | "mapBucket" | "redisCheckThenSet";
  redis: boolean;
  fault?: Fault;
}

/** Empties the membership tables between rows. */
export async function truncateMembership(env: BenchEnv): Promise<void> {
  await env
    .sql`truncate public.whatsapp_group_members, public.whatsapp_member_clock, public.whatsapp_lid_phones`;
}

let prefixCounter = 0;

/** The environment of one instance for a scenario: its own key prefix, Redis when asked. */
export function instanceEnv(env: BenchEnv, scenario: Scenario): Record<string, string> {
  const vars: Record<string, string> = {
    SUPABASE_DB_URL: env.proxy.urlFor(env.pg.url),
    WEBHOOK_SECRET: SECRET,
    DEDUP_WINDOW_MS: String(WINDOW_MS),
    DB_POOL_MAX: String(POOL_MAX),
    // A fresh key space per scenario: a command still in flight from an earlier scenario (the
    // slow-Redis fault delays them 2 s) cannot touch this one's keys.
    DEDUP_KEY_PREFIX: `bench-${scenario.id.replace(/[^a-z0-9]/gi, "-")}-${++prefixCounter}`,
    LOG_LEVEL: "error",
  };
  if (scenario.redis) {
    vars.UPSTASH_REDIS_REST_URL = env.upstash.url;
    vars.UPSTASH_REDIS_REST_TOKEN = REDIS_TOKEN;
  }
  return vars;
}
