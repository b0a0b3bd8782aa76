/**
 * Configuration of whatsapp-send-batch, read from environment variables once and checked with zod.
 */
import { z } from "zod";
import { AUTH_ENV_FIELDS, type AuthConfig, authConfigFrom } from "../core/auth_config.ts";
import { parseEnv } from "../core/config.ts";

/** Most recipients one batch may have unless `SEND_MAX_RECIPIENTS` says otherwise. */
export const DEFAULT_MAX_RECIPIENTS = 100_000;
/** The largest `SEND_MAX_RECIPIENTS` accepted (the schema's own ceiling on a batch's total). */
export const MAX_RECIPIENTS_CEILING = 1_000_000;
/** Upload bytes allowed per recipient row (phone, name and variables), and the floor of it. */
export const UPLOAD_BYTES_PER_RECIPIENT = 512;
const MIN_UPLOAD_BYTES = 5 * 1024 * 1024;

const optionalText = z
  .string()
  .optional()
  .transform((value) => (value === undefined || value.trim() === "" ? undefined : value.trim()));

const positiveInt = (fallback: number, max: number) =>
  z.coerce.number().int().positive().max(max).default(fallback);

const EnvSchema = z
  .object({
    SEND_PROVIDER: z.enum(["meta", "evolution", "waha", "twilio"]).default("meta"),
    META_API_BASE_URL: z.url().default("https://graph.facebook.com"),
    META_API_VERSION: z.string().regex(/^v[0-9]+\.[0-9]+$/).default("v21.0"),
    META_PHONE_NUMBER_ID: optionalText,
    META_ACCESS_TOKEN: optionalText,
    EVOLUTION_API_URL: optionalText.pipe(z.url().optional()),
    EVOLUTION_API_KEY: optionalText,
    EVOLUTION_INSTANCE: optionalText,
    WAHA_API_URL: optionalText.pipe(z.url().optional()),
    WAHA_API_KEY: optionalText,
    WAHA_SESSION: z.string().min(1).default("default"),
    TWILIO_API_URL: z.url().default("https://api.twilio.com"),
    TWILIO_ACCOUNT_SID: optionalText.pipe(z.string().regex(/^AC[0-9a-fA-F]{32}$/).optional()),
    TWILIO_AUTH_TOKEN: optionalText,
    TWILIO_WHATSAPP_FROM: optionalText.pipe(z.string().regex(/^\+[1-9][0-9]{5,16}$/).optional()),
    TWILIO_STATUS_CALLBACK_URL: optionalText.pipe(z.url().optional()),
    TWILIO_WEBHOOK_URL: optionalText.pipe(z.url().optional()),
    SEND_RATE_PER_SECOND: z.coerce.number().positive().max(10_000).default(80),
    SEND_TIME_BUDGET_MS: positiveInt(50_000, 600_000),
    SEND_PROVIDER_TIMEOUT_MS: positiveInt(15_000, 120_000),
    SEND_LEASE_MS: z.coerce.number().int().positive().max(3_600_000).optional(),
    SEND_CONCURRENCY: positiveInt(16, 256),
    SEND_CLAIM_CHUNK: positiveInt(50, 1_000),
    SEND_BACKOFF_MS: positiveInt(2_000, 600_000),
    SEND_RATE_LIMIT_PREFIX: z.string().min(1).max(64).default("wa-send-rate"),
    SEND_SELF_URL: optionalText.pipe(z.url().optional()),
    SEND_DRAIN_INTERVAL_MS: z.coerce.number().int().min(0).max(3_600_000).default(0),
    SEND_MAX_RECIPIENTS: positiveInt(DEFAULT_MAX_RECIPIENTS, MAX_RECIPIENTS_CEILING),
    SEND_MAX_UPLOAD_BYTES: z.coerce.number().int().positive().max(1024 * 1024 * 1024).optional(),
    ...AUTH_ENV_FIELDS,
    SUPABASE_SERVICE_ROLE_KEY: optionalText,
    SUPABASE_DB_URL: z.string().min(1, "SUPABASE_DB_URL is required"),
    DB_POOL_MAX: positiveInt(4, 100),
    DB_TIMEOUT_MS: positiveInt(5_000, 120_000),
    UPSTASH_REDIS_REST_URL: optionalText.pipe(z.url().optional()),
    UPSTASH_REDIS_REST_TOKEN: optionalText,
    REDIS_TIMEOUT_MS: positiveInt(300, 60_000),
    REDIS_PROBE_INTERVAL_MS: z.coerce.number().int().min(0).max(600_000).default(250),
    LOG_LEVEL: z.enum(["debug", "info", "warn", "error"]).default("info"),
  })
  .superRefine((env, ctx) => {
    const require = (names: (keyof typeof env)[]) => {
      for (const name of names) {
        if (!env[name]) {
          ctx.addIssue({
            code: "custom",
            path: [name],
            message: `${name} is required when SEND_PROVIDER=${env.SEND_PROVIDER}`,
          });
        }
      }
    };
    if (env.SEND_PROVIDER === "meta") require(["META_PHONE_NUMBER_ID", "META_ACCESS_TOKEN"]);
    if (env.SEND_PROVIDER === "evolution") {
      require(["EVOLUTION_API_URL", "EVOLUTION_API_KEY", "EVOLUTION_INSTANCE"]);
    }
    if (env.SEND_PROVIDER === "waha") require(["WAHA_API_URL"]);
    if (env.SEND_PROVIDER === "twilio") {
      require(["TWILIO_ACCOUNT_SID", "TWILIO_AUTH_TOKEN", "TWILIO_WHATSAPP_FROM"]);
    }
    if (Boolean(env.UPSTASH_REDIS_REST_URL) !== Boolean(env.UPSTASH_REDIS_REST_TOKEN)) {
      ctx.addIssue({
        code: "custom",
        path: ["UPSTASH_REDIS_REST_URL"],
        message: "set both UPSTASH_REDIS_REST_URL and UPSTASH_REDIS_REST_TOKEN, or neither",
      });
    }
    if (env.SEND_LEASE_MS !== undefined && env.SEND_LEASE_MS <= env.SEND_PROVIDER_TIMEOUT_MS) {
      ctx.addIssue({
        code: "custom",
        path: ["SEND_LEASE_MS"],
        message: "SEND_LEASE_MS must be longer than SEND_PROVIDER_TIMEOUT_MS",
      });
    }
  });

/** Which provider sends, with its own settings. */
export type ProviderConfig =
  | { kind: "meta"; baseUrl: string; version: string; phoneNumberId: string; accessToken: string }
  | { kind: "evolution"; baseUrl: string; apiKey: string; instance: string }
  | { kind: "waha"; baseUrl: string; apiKey?: string; session: string }
  | {
    kind: "twilio";
    baseUrl: string;
    accountSid: string;
    authToken: string;
    from: string;
    statusCallback?: string;
  };

/** The typed, validated configuration of whatsapp-send-batch. */
export interface SendBatchConfig {
  provider: ProviderConfig;
  /** Bound on one provider call; past it the outcome is `unknown`. */
  providerTimeoutMs: number;
  /** Most provider calls per second, across instances when Upstash is configured. */
  ratePerSecond: number;
  /** How long one invocation sends before handing over to a continuation. */
  timeBudgetMs: number;
  /** Lease of a claimed recipient; an expired lease makes it `unknown`. */
  leaseMs: number;
  /** Provider calls in flight at once within one drain. */
  concurrency: number;
  /** Recipients claimed per statement. */
  claimChunk: number;
  /** Wait before a throttled (429/130429) or unreachable-provider recipient is tried again. */
  backoffMs: number;
  /** Where the continuation calls this function (`…/functions/v1/whatsapp-send-batch`). */
  selfUrl?: string;
  /** Runs the drain schedule in-process every so often (local stack; 0 = off). */
  drainIntervalMs: number;
  /** Most recipients (rows of an upload) one batch may have. */
  maxRecipients: number;
  /** Largest create body accepted (default: 512 bytes per allowed recipient, at least 5 MiB). */
  maxUploadBytes: number;
  /** Service role key (or secret API key) the continuation authenticates with. */
  serviceRoleKey?: string;
  /** How callers are authenticated (JWT secret, signing keys, API keys). */
  auth: AuthConfig;
  database: { url: string; poolMax: number; timeoutMs: number };
  /** Upstash for the shared rate limit and the Idempotency-Key cache, with its time bounds. */
  redis?: {
    url: string;
    token: string;
    prefix: string;
    timeoutMs: number;
    probeIntervalMs: number;
  };
  logLevel: "debug" | "info" | "warn" | "error";
}

/** Parses environment variables into a {@link SendBatchConfig}; throws ConfigError. */
export function parseSendBatchConfig(env: Record<string, string | undefined>): SendBatchConfig {
  const e = parseEnv(EnvSchema, env);
  const provider: ProviderConfig = e.SEND_PROVIDER === "meta"
    ? {
      kind: "meta",
      baseUrl: e.META_API_BASE_URL.replace(/\/+$/, ""),
      version: e.META_API_VERSION,
      phoneNumberId: e.META_PHONE_NUMBER_ID!,
      accessToken: e.META_ACCESS_TOKEN!,
    }
    : e.SEND_PROVIDER === "evolution"
    ? {
      kind: "evolution",
      baseUrl: e.EVOLUTION_API_URL!.replace(/\/+$/, ""),
      apiKey: e.EVOLUTION_API_KEY!,
      instance: e.EVOLUTION_INSTANCE!,
    }
    : e.SEND_PROVIDER === "waha"
    ? {
      kind: "waha",
      baseUrl: e.WAHA_API_URL!.replace(/\/+$/, ""),
      apiKey: e.WAHA_API_KEY,
      session: e.WAHA_SESSION,
    }
    : {
      kind: "twilio",
      baseUrl: e.TWILIO_API_URL.replace(/\/+$/, ""),
      accountSid: e.TWILIO_ACCOUNT_SID!,
      authToken: e.TWILIO_AUTH_TOKEN!,
      from: e.TWILIO_WHATSAPP_FROM!,
      // Statuses go to the message webhook, which reconciles recipients by MessageSid.
      statusCallback: e.TWILIO_STATUS_CALLBACK_URL ?? e.TWILIO_WEBHOOK_URL,
    };
  const selfUrl = e.SEND_SELF_URL ??
    (e.SUPABASE_URL
      ? `${e.SUPABASE_URL.replace(/\/+$/, "")}/functions/v1/whatsapp-send-batch`
      : undefined);
  return {
    provider,
    providerTimeoutMs: e.SEND_PROVIDER_TIMEOUT_MS,
    ratePerSecond: e.SEND_RATE_PER_SECOND,
    timeBudgetMs: e.SEND_TIME_BUDGET_MS,
    leaseMs: e.SEND_LEASE_MS ?? e.SEND_PROVIDER_TIMEOUT_MS + 30_000,
    concurrency: e.SEND_CONCURRENCY,
    claimChunk: e.SEND_CLAIM_CHUNK,
    backoffMs: e.SEND_BACKOFF_MS,
    selfUrl: selfUrl?.replace(/\/+$/, ""),
    drainIntervalMs: e.SEND_DRAIN_INTERVAL_MS,
    maxRecipients: e.SEND_MAX_RECIPIENTS,
    maxUploadBytes: e.SEND_MAX_UPLOAD_BYTES ??
      Math.max(MIN_UPLOAD_BYTES, e.SEND_MAX_RECIPIENTS * UPLOAD_BYTES_PER_RECIPIENT),
    serviceRoleKey: e.SUPABASE_SERVICE_ROLE_KEY ?? e.SUPABASE_SECRET_KEYS[0],
    auth: authConfigFrom(e),
    database: { url: e.SUPABASE_DB_URL, poolMax: e.DB_POOL_MAX, timeoutMs: e.DB_TIMEOUT_MS },
    redis: e.UPSTASH_REDIS_REST_URL && e.UPSTASH_REDIS_REST_TOKEN
      ? {
        url: e.UPSTASH_REDIS_REST_URL,
        token: e.UPSTASH_REDIS_REST_TOKEN,
        prefix: e.SEND_RATE_LIMIT_PREFIX,
        timeoutMs: e.REDIS_TIMEOUT_MS,
        probeIntervalMs: e.REDIS_PROBE_INTERVAL_MS,
      }
      : undefined,
    logLevel: e.LOG_LEVEL,
  };
}
