/**
 * The cache tiers every function builds from its configuration, and their health report.
 */
import { MemoryClaimStore } from "./claims/memory_claim_store.ts";
import { UpstashClaimStore } from "./claims/upstash_claim_store.ts";
import type { WebhookConfig } from "./config.ts";
import type { ExactlyOnceProcessor } from "./exactly_once.ts";

/** The per-instance memory tier and, when configured, the shared Upstash tier. */
export interface CacheTiers {
  memory: MemoryClaimStore;
  shared?: UpstashClaimStore;
}

/**
 * Builds the tiers for one kind of event. `copyWindowMs` is that kind's copy window (the
 * configured one for memberships, infinite for messages, whose ids name one event for ever).
 */
export function createCacheTiers(config: WebhookConfig, copyWindowMs: number): CacheTiers {
  const memory = new MemoryClaimStore({
    maxKeys: config.dedup.memoryMaxKeys,
    ttlMs: config.dedup.claimTtlMs,
    burstMs: copyWindowMs,
  });
  const shared = config.redis
    ? new UpstashClaimStore({
      url: config.redis.url,
      token: config.redis.token,
      ttlMs: config.dedup.claimTtlMs,
      timeoutMs: config.redis.timeoutMs,
      keyPrefix: config.dedup.keyPrefix,
      copyWindowMs,
      inFlightWaitMs: config.dedup.inFlightWaitMs,
    })
    : undefined;
  return { memory, shared };
}

/** The `status` and `tiers` part of a function's health response. */
export function tiersHealth(
  processor: Pick<ExactlyOnceProcessor<unknown>, "sharedHealth">,
  memory: MemoryClaimStore,
  databaseName: string,
): { status: "ok" | "degraded"; tiers: Record<string, unknown> } {
  const shared = processor.sharedHealth();
  return {
    status: shared.state === "degraded" ? "degraded" : "ok",
    tiers: { memory: memory.stats(), redis: shared, database: { client: databaseName } },
  };
}
