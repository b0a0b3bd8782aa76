/**
 * Settings of the webhook-replay function, read from environment variables once and checked with
 * zod. The webhooks it replays through read their own variables (secrets, tiers) as they do.
 */
import { z } from "zod";
import { parseEnv } from "../_shared/core/config.ts";
import { AUTH_ENV_FIELDS, type AuthConfig, authConfigFrom } from "../_shared/core/auth_config.ts";

const ReplayEnvSchema = z.object({
  ...AUTH_ENV_FIELDS,
  SUPABASE_DB_URL: z.string().min(1, "SUPABASE_DB_URL is required"),
  DB_TIMEOUT_MS: z.coerce.number().int().positive().max(120_000).default(5_000),
  LOG_LEVEL: z.enum(["debug", "info", "warn", "error"]).default("info"),
});

/** The typed settings of webhook-replay. */
export interface ReplayConfig {
  /** How the caller is authenticated (JWT secret, signing keys, API keys). */
  auth: AuthConfig;
  /** `SUPABASE_DB_URL`: where the dead letters are claimed and their results recorded. */
  databaseUrl: string;
  timeoutMs: number;
  logLevel: "debug" | "info" | "warn" | "error";
}

/** Parses the environment; throws a ConfigError naming each bad variable. */
export function parseReplayConfig(env: Record<string, string | undefined>): ReplayConfig {
  // An empty variable counts as unset (the default applies).
  const set = Object.fromEntries(
    Object.entries(env).filter(([, value]) => value !== undefined && value.trim() !== ""),
  );
  const e = parseEnv(ReplayEnvSchema, set);
  return {
    auth: authConfigFrom(e),
    databaseUrl: e.SUPABASE_DB_URL,
    timeoutMs: e.DB_TIMEOUT_MS,
    logLevel: e.LOG_LEVEL,
  };
}
