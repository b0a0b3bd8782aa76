/**
 * Function configuration, read from environment variables once and checked with zod.
 *
 * Every setting the webhook functions honour is declared here, with its default, so that the
 * README's table and the code cannot drift apart.
 */
import { z } from "zod";

/** Largest request body accepted, in bytes (64 KiB). Larger bodies get 413. */
export const MAX_BODY_BYTES = 64 * 1024;

const flag = z
  .enum(["true", "false", "1", "0", "yes", "no", ""])
  .optional()
  .transform((value) => value === "true" || value === "1" || value === "yes");

const positiveInt = (fallback: number, max: number) =>
  z.coerce.number().int().positive().max(max).default(fallback);

const optionalText = z
  .string()
  .optional()
  .transform((value) => (value === undefined || value.trim() === "" ? undefined : value.trim()));

const EnvSchema = z
  .object({
    WEBHOOK_SECRET: optionalText.pipe(
      z.string().min(16, "WEBHOOK_SECRET must be at least 16 characters").optional(),
    ),
    WAHA_HMAC_KEY: optionalText,
    META_APP_SECRET: optionalText,
    STANDARD_WEBHOOKS_SECRET: optionalText.pipe(
      z.string().regex(
        /^(whsec_)?[A-Za-z0-9+/]{16,}={0,2}$/,
        "STANDARD_WEBHOOKS_SECRET must be whsec_ followed by base64",
      ).optional(),
    ),
    EVOLUTION_JWT_KEY: optionalText,
    TWILIO_AUTH_TOKEN: optionalText,
    TWILIO_WEBHOOK_URL: optionalText.pipe(z.url().optional()),
    ALLOW_UNSIGNED_WEBHOOKS: flag,
    DEDUP_WINDOW_MS: positiveInt(5_000, 24 * 60 * 60 * 1000),
    DEDUP_CLAIM_TTL_MS: positiveInt(10 * 60 * 1000, 7 * 24 * 60 * 60 * 1000),
    DEDUP_MEMORY_MAX_KEYS: positiveInt(10_000, 10_000_000),
    DEDUP_COPY_WINDOW_MS: positiveInt(1_000, 60_000),
    DEDUP_KEY_PREFIX: z.string().min(1).max(64).default("wa-dedup"),
    DEDUP_INFLIGHT_WAIT_MS: z.coerce.number().int().min(0).max(10_000).default(400),
    UPSTASH_REDIS_REST_URL: optionalText.pipe(z.url().optional()),
    UPSTASH_REDIS_REST_TOKEN: optionalText,
    REDIS_TIMEOUT_MS: positiveInt(300, 60_000),
    REDIS_PROBE_INTERVAL_MS: z.coerce.number().int().min(0).max(600_000).optional(),
    // The older name of REDIS_PROBE_INTERVAL_MS, from when a failure skipped Redis for this long.
    REDIS_COOLDOWN_MS: z.coerce.number().int().min(0).max(600_000).optional(),
    SUPABASE_DB_URL: optionalText,
    SUPABASE_URL: optionalText.pipe(z.url().optional()),
    SUPABASE_SERVICE_ROLE_KEY: optionalText,
    DB_POOL_MAX: positiveInt(4, 100),
    DB_TIMEOUT_MS: positiveInt(5_000, 120_000),
    LOG_LEVEL: z.enum(["debug", "info", "warn", "error"]).default("info"),
  })
  .superRefine((env, ctx) => {
    if (Boolean(env.UPSTASH_REDIS_REST_URL) !== Boolean(env.UPSTASH_REDIS_REST_TOKEN)) {
      ctx.addIssue({
        code: "custom",
        path: ["UPSTASH_REDIS_REST_URL"],
        message: "set both UPSTASH_REDIS_REST_URL and UPSTASH_REDIS_REST_TOKEN, or neither",
      });
    }
    if (env.DEDUP_CLAIM_TTL_MS < env.DEDUP_WINDOW_MS) {
      ctx.addIssue({
        code: "custom",
        path: ["DEDUP_CLAIM_TTL_MS"],
        message: "DEDUP_CLAIM_TTL_MS must be at least DEDUP_WINDOW_MS",
      });
    }
    if (!env.SUPABASE_DB_URL && !(env.SUPABASE_URL && env.SUPABASE_SERVICE_ROLE_KEY)) {
      ctx.addIssue({
        code: "custom",
        path: ["SUPABASE_DB_URL"],
        message: "set SUPABASE_DB_URL, or SUPABASE_URL together with SUPABASE_SERVICE_ROLE_KEY",
      });
    }
  });

/** Where the apply function is reached: postgres.js over SUPABASE_DB_URL, or supabase-js `rpc`. */
export type DatabaseConfig =
  | { kind: "postgres"; url: string; poolMax: number; timeoutMs: number }
  | { kind: "supabase-rpc"; url: string; serviceRoleKey: string; timeoutMs: number };

/** The typed, validated configuration of a webhook function. */
export interface WebhookConfig {
  /** Shared secret for HMAC signatures and bearer tokens; undefined when not set. */
  webhookSecret?: string;
  /** Secrets of the gateway-specific signature schemes. */
  secrets: {
    wahaHmacKey?: string;
    metaAppSecret?: string;
    standardWebhooksSecret?: string;
    evolutionJwtKey?: string;
    twilioAuthToken?: string;
    /** The public URL Twilio signs (`TWILIO_WEBHOOK_URL`); the URL seen here may differ. */
    twilioWebhookUrl?: string;
  };
  /** Accept unsigned webhooks when no secret is set (local use only). */
  allowUnsigned: boolean;
  dedup: {
    /** Width of the time bucket that enters the composite key. */
    windowMs: number;
    /** How long a claim is remembered by the caches. */
    claimTtlMs: number;
    /** Upper bound of the per-instance in-memory tier. */
    memoryMaxKeys: number;
    /** Two deliveries of one action whose event times are closer than this are copies. */
    copyWindowMs: number;
    /** Prefix of every Redis key this project writes. */
    keyPrefix: string;
    /** How long a copy waits for another instance's Redis claim to be confirmed. */
    inFlightWaitMs: number;
  };
  /**
   * The Upstash Redis tier, or undefined when it is not configured. After a failure the first
   * request `probeIntervalMs` later tries it again.
   */
  redis?: { url: string; token: string; timeoutMs: number; probeIntervalMs: number };
  database: DatabaseConfig;
  logLevel: "debug" | "info" | "warn" | "error";
}

/** Raised when the environment does not describe a usable configuration. */
export class ConfigError extends Error {
  /** One line per problem, naming the variable. */
  readonly problems: string[];
  constructor(problems: string[]) {
    super(`invalid configuration: ${problems.join("; ")}`);
    this.name = "ConfigError";
    this.problems = problems;
  }
}

/**
 * Parses environment variables with a zod schema; throws {@link ConfigError} naming every bad
 * variable. Every function's configuration goes through it.
 */
export function parseEnv<T>(
  schema: z.ZodType<T>,
  env: Record<string, string | undefined>,
): T {
  const parsed = schema.safeParse(env);
  if (!parsed.success) {
    throw new ConfigError(
      parsed.error.issues.map((issue) => `${issue.path.join(".") || "env"}: ${issue.message}`),
    );
  }
  return parsed.data;
}

/** Parses environment variables into a {@link WebhookConfig}; throws {@link ConfigError}. */
export function parseConfig(env: Record<string, string | undefined>): WebhookConfig {
  const e = parseEnv(EnvSchema, env);
  const database: DatabaseConfig = e.SUPABASE_DB_URL
    ? {
      kind: "postgres",
      url: e.SUPABASE_DB_URL,
      poolMax: e.DB_POOL_MAX,
      timeoutMs: e.DB_TIMEOUT_MS,
    }
    : {
      kind: "supabase-rpc",
      url: e.SUPABASE_URL!,
      serviceRoleKey: e.SUPABASE_SERVICE_ROLE_KEY!,
      timeoutMs: e.DB_TIMEOUT_MS,
    };
  return {
    webhookSecret: e.WEBHOOK_SECRET,
    secrets: {
      wahaHmacKey: e.WAHA_HMAC_KEY,
      metaAppSecret: e.META_APP_SECRET,
      standardWebhooksSecret: e.STANDARD_WEBHOOKS_SECRET,
      evolutionJwtKey: e.EVOLUTION_JWT_KEY,
      twilioAuthToken: e.TWILIO_AUTH_TOKEN,
      twilioWebhookUrl: e.TWILIO_WEBHOOK_URL,
    },
    allowUnsigned: e.ALLOW_UNSIGNED_WEBHOOKS,
    dedup: {
      windowMs: e.DEDUP_WINDOW_MS,
      claimTtlMs: e.DEDUP_CLAIM_TTL_MS,
      memoryMaxKeys: e.DEDUP_MEMORY_MAX_KEYS,
      copyWindowMs: e.DEDUP_COPY_WINDOW_MS,
      keyPrefix: e.DEDUP_KEY_PREFIX,
      inFlightWaitMs: e.DEDUP_INFLIGHT_WAIT_MS,
    },
    redis: e.UPSTASH_REDIS_REST_URL && e.UPSTASH_REDIS_REST_TOKEN
      ? {
        url: e.UPSTASH_REDIS_REST_URL,
        token: e.UPSTASH_REDIS_REST_TOKEN,
        timeoutMs: e.REDIS_TIMEOUT_MS,
        probeIntervalMs: e.REDIS_PROBE_INTERVAL_MS ?? e.REDIS_COOLDOWN_MS ?? 250,
      }
      : undefined,
    database,
    logLevel: e.LOG_LEVEL,
  };
}
