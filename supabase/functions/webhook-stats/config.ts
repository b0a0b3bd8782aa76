/**
 * Settings of the webhook-stats function, read from environment variables once and checked with
 * zod.
 */
import { z } from "zod";
import { parseEnv } from "../_shared/core/config.ts";
import { LOCAL_JWT_SECRET } from "../_shared/core/jwt.ts";

const StatsEnvSchema = z.object({
  SUPABASE_JWT_SECRET: z.string().min(32).default(LOCAL_JWT_SECRET),
  SUPABASE_DB_URL: z.string().min(1, "SUPABASE_DB_URL is required"),
  DB_TIMEOUT_MS: z.coerce.number().int().positive().max(120_000).default(5_000),
  LOG_LEVEL: z.enum(["debug", "info", "warn", "error"]).default("info"),
});

/** The typed settings of webhook-stats. */
export interface StatsConfig {
  /** `SUPABASE_JWT_SECRET`: verifies the caller's HS256 JWT. */
  jwtSecret: string;
  /** `SUPABASE_DB_URL`: where `public.webhook_idempotency_stats()` is called. */
  databaseUrl: string;
  timeoutMs: number;
  logLevel: "debug" | "info" | "warn" | "error";
}

/** Parses the environment; throws a ConfigError naming each bad variable. */
export function parseStatsConfig(env: Record<string, string | undefined>): StatsConfig {
  // An empty variable counts as unset (the default applies).
  const set = Object.fromEntries(
    Object.entries(env).filter(([, value]) => value !== undefined && value.trim() !== ""),
  );
  const e = parseEnv(StatsEnvSchema, set);
  return {
    jwtSecret: e.SUPABASE_JWT_SECRET,
    databaseUrl: e.SUPABASE_DB_URL,
    timeoutMs: e.DB_TIMEOUT_MS,
    logLevel: e.LOG_LEVEL,
  };
}
