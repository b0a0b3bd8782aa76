/**
 * Settings of the idempotency layer, read from environment variables once and checked with zod.
 */
import { z } from "zod";
import { parseEnv } from "../config.ts";

const flag = (fallback: boolean) =>
  z.enum(["true", "false", "1", "0", "yes", "no", ""]).optional().transform((value) =>
    value === undefined || value === "" ? fallback : value === "true" || value === "1" ||
      value === "yes"
  );

const IdempotencyEnvSchema = z.object({
  IDEMPOTENCY_ENABLED: flag(true),
  IDEMPOTENCY_TTL_SECONDS: z.coerce.number().int().min(1).max(30 * 24 * 3600).default(86_400),
  IDEMPOTENCY_LEASE_SECONDS: z.coerce.number().int().min(1).max(3600).default(60),
  IDEMPOTENCY_MEMORY_MAX_KEYS: z.coerce.number().int().min(0).max(1_000_000).default(1_000),
  IDEMPOTENCY_TIMEOUT_MS: z.coerce.number().int().positive().max(120_000).default(5_000),
});

/** The typed settings of the idempotency layer. */
export interface IdempotencyConfig {
  /** `IDEMPOTENCY_ENABLED` (default true): false processes every request as if it had no key. */
  enabled: boolean;
  /** `IDEMPOTENCY_TTL_SECONDS` (default 86400): how long a completed response is replayed. */
  ttlSeconds: number;
  /** `IDEMPOTENCY_LEASE_SECONDS` (default 60): how long an attempt holds its key before another may take it over. */
  leaseSeconds: number;
  /** `IDEMPOTENCY_MEMORY_MAX_KEYS` (default 1000, 0 = off): bound of the per-instance response cache. */
  memoryMaxKeys: number;
  /** `IDEMPOTENCY_TIMEOUT_MS` (default 5000): bound on one store call. */
  timeoutMs: number;
}

/** Parses the `IDEMPOTENCY_*` variables; throws ConfigError. */
export function parseIdempotencyConfig(env: Record<string, string | undefined>): IdempotencyConfig {
  const e = parseEnv(IdempotencyEnvSchema, env);
  return {
    enabled: e.IDEMPOTENCY_ENABLED,
    ttlSeconds: e.IDEMPOTENCY_TTL_SECONDS,
    leaseSeconds: e.IDEMPOTENCY_LEASE_SECONDS,
    memoryMaxKeys: e.IDEMPOTENCY_MEMORY_MAX_KEYS,
    timeoutMs: e.IDEMPOTENCY_TIMEOUT_MS,
  };
}
