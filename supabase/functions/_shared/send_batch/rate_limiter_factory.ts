/**
 * The rate limiter a configuration asks for: without Upstash, the per-instance pace; with it, the
 * bucket shared through Upstash, and the database's slot timeline while Upstash is down.
 */
import type { SendBatchConfig } from "./config.ts";
import { DatabaseRateLimiter, type RateSlotStore } from "./database_rate_limiter.ts";
import { claimChunkSize } from "./drain.ts";
import { PacingRateLimiter, type RateLimiter, UpstashRateLimiter } from "./rate_limiter.ts";

/** Builds the limiter of `config`; the fallback takes its slots from `slots` (the repository). */
export function createRateLimiter(
  config: Pick<SendBatchConfig, "ratePerSecond" | "redis" | "claimChunk" | "concurrency">,
  slots: RateSlotStore,
): RateLimiter {
  if (!config.redis) return new PacingRateLimiter(config.ratePerSecond);
  return new UpstashRateLimiter({
    ...config.redis,
    ratePerSecond: config.ratePerSecond,
    fallback: new DatabaseRateLimiter({
      store: slots,
      key: `${config.redis.prefix}:provider`,
      ratePerSecond: config.ratePerSecond,
      slotsPerTake: claimChunkSize(config),
    }),
  });
}
