/**
 * What every webhook function builds from its configuration around its own repository: the cache
 * tiers, the exactly-once lifecycle, the signature checks and the Idempotency-Key layer, and one
 * `close` for all of them. A function adds only its claim rule, apply function and handler.
 */
import type { MemoryClaimStore } from "./claims/memory_claim_store.ts";
import { ConfigError, parseConfig, type WebhookConfig } from "./config.ts";
import { DeadLetters } from "./dead_letters/dead_letter.ts";
import { createDeadLetterStore } from "./dead_letters/store.ts";
import { type ApplyFunction, createEventRepository } from "./db/event_repository.ts";
import { type ClaimOf, ExactlyOnceProcessor } from "./exactly_once.ts";
import { type FetchHandler, handlerFromEnv } from "./error_response.ts";
import { type IdempotencyConfig, parseIdempotencyConfig } from "./idempotency/config.ts";
import { createIdempotencyLayer, type IdempotencyLayer } from "./idempotency/layer.ts";
import { createLogger, type Logger } from "./log.ts";
import { createCacheTiers } from "./tiers.ts";
import type { WebhookHandler } from "./webhook/handler.ts";
import { hasAnySecret, WebhookAuthenticator, type WebhookSecrets } from "./webhook_auth.ts";

/** The shared parts of a webhook function, built once. */
export interface WebhookRuntime<E> {
  memory: MemoryClaimStore;
  processor: ExactlyOnceProcessor<E>;
  /** The function's logger. */
  logger: Logger;
  /** The repository's name, shown by the health response. */
  databaseName: string;
  /** Undefined only when unsigned webhooks are explicitly allowed. */
  authenticator?: WebhookAuthenticator;
  idempotency?: IdempotencyLayer;
  /** Keeps refused authenticated deliveries and rejected items (public.webhook_dead_letters). */
  deadLetters: DeadLetters;
  /** Sends pending confirmations, closes pools. */
  close(): Promise<void>;
}

/** Options of {@link createWebhookRuntime}. */
export interface WebhookRuntimeOptions<E> {
  /** The function's name, as its dead letters record it. */
  functionName: string;
  /** The function's apply SQL function, called through the configured database path. */
  apply: ApplyFunction<E>;
  /** The function's claim rule (key, time, subject). */
  claimOf: ClaimOf<E>;
  /** The copy window of the function's keys (infinite when a key names one event for ever). */
  copyWindowMs: number;
  /** The ordering horizon: older events are `stale` before any tier (default: none). */
  horizonMs?: number;
  /** Default: one at the configured level, naming the function. */
  logger?: Logger;
  /** Undefined: the Idempotency-Key layer is off. */
  idempotencyConfig?: IdempotencyConfig;
  /** The secret variables named when none is set. */
  secretNames: string;
}

/** Builds the shared parts; throws {@link ConfigError} when no secret is set (and unsigned is off). */
export function createWebhookRuntime<E>(
  config: WebhookConfig,
  options: WebhookRuntimeOptions<E>,
): WebhookRuntime<E> {
  const logger = options.logger ?? createLogger(config.logLevel, { fn: options.functionName });
  const secrets: WebhookSecrets = { shared: config.webhookSecret, ...config.secrets };
  const signed = hasAnySecret(secrets);
  if (!signed && !config.allowUnsigned) {
    throw new ConfigError([
      `WEBHOOK_SECRET: no webhook secret is set (${options.secretNames}); set one, or ` +
      "ALLOW_UNSIGNED_WEBHOOKS=true for local use only",
    ]);
  }
  if (!signed) {
    logger.warn("ALLOW_UNSIGNED_WEBHOOKS=true: accepting unsigned webhooks (local use only)");
  }
  const repository = createEventRepository(config.database, options.apply);
  const { memory, shared } = createCacheTiers(config, options.copyWindowMs);
  const processor = new ExactlyOnceProcessor<E>({
    memory,
    shared,
    repository,
    claimOf: options.claimOf,
    sharedProbeIntervalMs: config.redis?.probeIntervalMs ?? 0,
    horizonMs: options.horizonMs,
    logger,
  });
  const idempotency = options.idempotencyConfig &&
    createIdempotencyLayer(options.idempotencyConfig, {
      databaseUrl: config.database.kind === "postgres" ? config.database.url : undefined,
      redis: config.redis,
      keyPrefix: config.dedup.keyPrefix,
      logger,
    });
  const deadLetters = new DeadLetters(
    options.functionName,
    createDeadLetterStore(config.database, options.functionName),
    logger,
  );
  return {
    memory,
    processor,
    logger,
    databaseName: repository.name,
    authenticator: signed ? new WebhookAuthenticator(secrets) : undefined,
    idempotency,
    deadLetters,
    close: async () => {
      await processor.close();
      await repository.close();
      await idempotency?.close();
      await deadLetters.close();
    },
  };
}

/** A webhook function built from its configuration: its handler, and one `close` for all. */
export interface BuiltWebhook {
  handler: WebhookHandler;
  /** Sends pending confirmations, closes pools. */
  close: () => Promise<void>;
}

/** Builds the shared parts, then the function's handler over them. */
export function buildWebhook<E>(
  config: WebhookConfig,
  options: WebhookRuntimeOptions<E>,
  create: (runtime: WebhookRuntime<E>) => WebhookHandler,
): BuiltWebhook {
  const runtime = createWebhookRuntime(config, options);
  return { handler: create(runtime), close: runtime.close };
}

/** The optional arguments of a webhook's build from its configuration, in this order. */
export type BuildArgs<F> = [
  logger?: Logger,
  idempotencyConfig?: IdempotencyConfig,
  formats?: readonly F[],
];

/** Reads the process environment. */
export type EnvReader = () => Record<string, string | undefined>;

/**
 * A webhook function's `…FromEnv` for `index.ts`: given an environment reader (default: the
 * process's), a handler that reads the environment once, on the first request, and builds the
 * function with the common configuration, its values and the Idempotency-Key configuration.
 */
export function webhookFromEnv(
  functionName: string,
  build: (
    config: WebhookConfig,
    values: Record<string, string | undefined>,
    idempotency: IdempotencyConfig,
  ) => BuiltWebhook,
): (env?: EnvReader) => FetchHandler {
  return (env = () => Deno.env.toObject()) =>
    handlerFromEnv(
      functionName,
      (values) => build(parseConfig(values), values, parseIdempotencyConfig(values)).handler,
      env,
    );
}
