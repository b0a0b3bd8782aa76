/**
 * Settings of the webhook-stats function, read from environment variables once and checked with
 * zod.
 */
import { z } from "zod";
import { ConfigError } from "../_shared/core/config.ts";

/** The JWT secret of a local Supabase stack (`supabase start`), used when none is set. */
export const LOCAL_JWT_SECRET = "super-secret-jwt-token-with-at-least-32-characters-long";

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

/** Parses the environment; throws {@link ConfigError} naming each bad variable. */
export function parseStatsConfig(env: Record<string, string | undefined>): StatsConfig {
  const cleaned = Object.fromEntries(
    Object.entries(env).filter(([, value]) => value !== undefined && value.trim() !== ""),
  );
  const parsed = StatsEnvSchema.safeParse(cleaned);
  if (!parsed.success) {
    throw new ConfigError(
      parsed.error.issues.map((issue) => `${issue.path.join(".")}: ${issue.message}`),
    );
  }
  const e = parsed.data;
  return {
    jwtSecret: e.SUPABASE_JWT_SECRET,
    databaseUrl: e.SUPABASE_DB_URL,
    timeoutMs: e.DB_TIMEOUT_MS,
    logLevel: e.LOG_LEVEL,
  };
}
