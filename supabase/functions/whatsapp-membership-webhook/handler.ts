/**
 * The whatsapp-membership-webhook handler. One webhook, top to bottom:
 *
 *   parse (method, size, signature, JSON, schema) → normalise (keys) → claim → apply →
 *   release on failure → respond.
 *
 * `createMembershipWebhook` takes its dependencies, so tests and the benchmark build it directly;
 * `membershipWebhookFromEnv` builds them once from environment variables for `index.ts`.
 */
import {
  ConfigError,
  MAX_BODY_BYTES,
  parseConfig,
  type WebhookConfig,
} from "../_shared/core/config.ts";
import { MemoryClaimStore } from "../_shared/core/claims/memory_claim_store.ts";
import { UpstashClaimStore } from "../_shared/core/claims/upstash_claim_store.ts";
import {
  DatabaseUnavailableError,
  type MembershipRepository,
} from "../_shared/membership/repository.ts";
import { PostgresMembershipRepository } from "../_shared/membership/postgres_repository.ts";
import { SupabaseRpcMembershipRepository } from "../_shared/membership/supabase_rpc_repository.ts";
import { ExactlyOnceProcessor } from "../_shared/core/exactly_once.ts";
import { PayloadFormatError } from "../_shared/membership/formats/delivery.ts";
import {
  FORMAT_NAMES,
  parseDelivery,
  UnknownFormatError,
} from "../_shared/membership/formats/registry.ts";
import {
  errorResponse,
  HttpError,
  InvalidPayloadError,
  jsonResponse,
  MalformedJsonError,
  MethodNotAllowedError,
  readBodyLimited,
} from "../_shared/core/http.ts";
import { createLogger, type Logger, maskIdentity } from "../_shared/core/log.ts";
import { NormalizationError, normalizeChanges } from "../_shared/membership/normalize.ts";
import {
  createIdempotencyLayer,
  type IdempotencyLayer,
} from "../_shared/core/idempotency/layer.ts";
import {
  type IdempotencyConfig,
  parseIdempotencyConfig,
} from "../_shared/core/idempotency/config.ts";
import {
  type AuthScheme,
  hasAnySecret,
  UnauthorizedError,
  WebhookAuthenticator,
  type WebhookSecrets,
} from "../_shared/core/webhook_auth.ts";

/** The function's name, and the last path segment of its URL. */
export const FUNCTION_NAME = "whatsapp-membership-webhook";

const utf8 = new TextDecoder("utf-8", { fatal: true });

/** A request handler, as `Deno.serve` and `export default { fetch }` take it. */
export type FetchHandler = (request: Request) => Promise<Response>;

/** Dependencies of {@link createMembershipWebhook}. */
export interface MembershipWebhookDeps {
  processor: ExactlyOnceProcessor;
  memory: MemoryClaimStore;
  /** Verifies deliveries; undefined only when unsigned webhooks are explicitly allowed. */
  authenticator?: WebhookAuthenticator;
  logger: Logger;
  /** The database name shown by the health response. */
  databaseName: string;
  /** The Idempotency-Key layer; without it every request is processed as if it had no key. */
  idempotency?: IdempotencyLayer;
  now?: () => number;
}

/** Builds the handler from its dependencies. */
export function createMembershipWebhook(deps: MembershipWebhookDeps): FetchHandler {
  const now = deps.now ?? Date.now;
  const startedAt = now();

  async function handle(request: Request): Promise<Response> {
    // Parse: method, size, signature, JSON, schema. Nothing is claimed or written before this passes.
    if (request.method === "GET" && new URL(request.url).pathname.endsWith("/health")) {
      return health();
    }
    if (request.method !== "POST") throw new MethodNotAllowedError(request.method);
    const receivedAt = now();
    const forcedFormat = request.url.includes("?")
      ? new URL(request.url).searchParams.get("format")
      : null;
    const body = await readBodyLimited(request, MAX_BODY_BYTES);
    const scheme: AuthScheme = deps.authenticator
      ? await deps.authenticator.verify(request.headers, body)
      : "unsigned";
    // Idempotency-Key: after authentication, before parsing and claims.
    const verified = () =>
      handleVerified(body, scheme, receivedAt, forcedFormat).catch((e) =>
        toErrorResponse(e, deps.logger)
      );
    if (!deps.idempotency) return await verified();
    const caller = {
      functionName: FUNCTION_NAME,
      caller: scheme,
      scheme,
      webhookType: "membership",
    };
    return await deps.idempotency.handle({ ...caller, request, rawBody: body }, verified);
  }

  async function handleVerified(
    body: Uint8Array,
    scheme: AuthScheme,
    receivedAt: number,
    forcedFormat: string | null,
  ): Promise<Response> {
    let json: unknown;
    try {
      json = JSON.parse(utf8.decode(body));
    } catch (error) {
      throw new MalformedJsonError(error);
    }
    let delivery;
    try {
      delivery = parseDelivery(json, forcedFormat);
    } catch (error) {
      if (error instanceof UnknownFormatError) {
        throw new HttpError(400, "unknown_format", error.message, {
          details: FORMAT_NAMES.map((name) => ({ path: "format", message: name })),
        });
      }
      if (error instanceof PayloadFormatError) throw new InvalidPayloadError(error.issues);
      throw error;
    }
    if (delivery.kind === "ignored") {
      deps.logger.info("delivery ignored", { format: delivery.format, reason: delivery.reason });
      return jsonResponse(200, {
        success: true,
        format: delivery.format,
        ignored: true,
        reason: delivery.reason,
        duplicate: false,
        results: [],
      });
    }

    // Normalise into composite keys' parts.
    let events;
    try {
      events = normalizeChanges(delivery.changes, receivedAt, delivery.paths);
    } catch (error) {
      if (error instanceof NormalizationError) throw new InvalidPayloadError(error.issues);
      throw error;
    }

    // Claim → apply → release on failure.
    const results = await deps.processor.process(events);

    // Respond.
    const body200 = {
      success: true,
      duplicate: results.every((r) => r.outcome === "duplicate"),
      format: delivery.format,
      results: results.map((r) => ({
        phone: maskIdentity(r.participant ?? r.event.participant),
        event: r.event.action,
        outcome: r.outcome,
      })),
    };
    // Copies are the normal case and are only logged at debug level; changes and misses at info.
    const level = body200.duplicate ? "debug" : "info";
    if (deps.logger.enabled(level)) {
      deps.logger[level]("delivery processed", {
        format: delivery.format,
        auth: scheme,
        events: results.length,
        outcomes: results.map((r) => `${r.outcome}@${r.decidedBy}`).join(","),
        ms: now() - receivedAt,
      });
    }
    return jsonResponse(200, body200);
  }

  function health(): Response {
    const shared = deps.processor.sharedHealth();
    return jsonResponse(200, {
      status: shared.state === "degraded" ? "degraded" : "ok",
      function: FUNCTION_NAME,
      uptimeMs: now() - startedAt,
      heapUsedBytes: Deno.memoryUsage().heapUsed,
      tiers: {
        memory: deps.memory.stats(),
        redis: shared,
        database: { client: deps.databaseName },
      },
      idempotency: deps.idempotency?.describe() ?? { enabled: false },
    });
  }

  return async (request: Request): Promise<Response> => {
    try {
      return await handle(request);
    } catch (error) {
      return toErrorResponse(error, deps.logger);
    }
  };
}

/** Maps an error to its HTTP response: 4xx for what the sender did, 503 for outages. */
export function toErrorResponse(error: unknown, logger: Logger): Response {
  if (error instanceof HttpError) {
    if (error.status >= 500) logger.error(error.message, { code: error.code });
    else logger.info("delivery refused", { status: error.status, code: error.code });
    return errorResponse(error);
  }
  if (error instanceof UnauthorizedError) {
    logger.warn("delivery refused", { status: 401, reason: error.message });
    return errorResponse(new HttpError(401, "unauthorized", error.message));
  }
  if (error instanceof DatabaseUnavailableError) {
    const cause = error.cause instanceof Error ? error.cause.message : undefined;
    logger.error("database unavailable; claims released, sender should retry", { cause });
    return errorResponse(
      new HttpError(503, "database_unavailable", "the database is unavailable; retry later", {
        headers: { "retry-after": "5" },
      }),
    );
  }
  if (error instanceof ConfigError) {
    logger.error("function is not configured", { problems: error.problems.join("; ") });
    return errorResponse(
      new HttpError(503, "not_configured", "the function is not configured", {
        details: error.problems,
        headers: { "retry-after": "60" },
      }),
    );
  }
  logger.error("unexpected error", {
    error: error instanceof Error ? `${error.name}: ${error.message}` : String(error),
  });
  return errorResponse(new HttpError(500, "internal_error", "unexpected error"));
}

/** Builds the repository the configuration asks for. */
export function createRepository(config: WebhookConfig): MembershipRepository {
  const db = config.database;
  return db.kind === "postgres"
    ? new PostgresMembershipRepository({
      url: db.url,
      poolMax: db.poolMax,
      timeoutMs: db.timeoutMs,
      copyWindowMs: config.dedup.copyWindowMs,
    })
    : new SupabaseRpcMembershipRepository({
      url: db.url,
      serviceRoleKey: db.serviceRoleKey,
      timeoutMs: db.timeoutMs,
      copyWindowMs: config.dedup.copyWindowMs,
    });
}

/** Builds the handler and its dependencies from a validated configuration. */
export function createMembershipWebhookFromConfig(
  config: WebhookConfig,
  logger: Logger = createLogger(config.logLevel, { fn: FUNCTION_NAME }),
  idempotencyConfig?: IdempotencyConfig,
): { handler: FetchHandler; close: () => Promise<void> } {
  const secrets: WebhookSecrets = { shared: config.webhookSecret, ...config.secrets };
  if (!hasAnySecret(secrets) && !config.allowUnsigned) {
    throw new ConfigError([
      "WEBHOOK_SECRET: no webhook secret is set (WEBHOOK_SECRET, WAHA_HMAC_KEY, META_APP_SECRET " +
      "or STANDARD_WEBHOOKS_SECRET); set one, or ALLOW_UNSIGNED_WEBHOOKS=true for local use only",
    ]);
  }
  const memory = new MemoryClaimStore({
    maxKeys: config.dedup.memoryMaxKeys,
    ttlMs: config.dedup.claimTtlMs,
    burstMs: config.dedup.copyWindowMs,
  });
  const shared = config.redis
    ? new UpstashClaimStore({
      url: config.redis.url,
      token: config.redis.token,
      ttlMs: config.dedup.claimTtlMs,
      timeoutMs: config.redis.timeoutMs,
      keyPrefix: config.dedup.keyPrefix,
      copyWindowMs: config.dedup.copyWindowMs,
    })
    : undefined;
  const repository = createRepository(config);
  const processor = new ExactlyOnceProcessor({
    memory,
    shared,
    repository,
    windowMs: config.dedup.windowMs,
    sharedCooldownMs: config.redis?.cooldownMs ?? 0,
    logger,
  });
  if (!hasAnySecret(secrets)) {
    logger.warn("ALLOW_UNSIGNED_WEBHOOKS=true: accepting unsigned webhooks (local use only)");
  }
  const idempotency = idempotencyConfig && createIdempotencyLayer(idempotencyConfig, {
    databaseUrl: config.database.kind === "postgres" ? config.database.url : undefined,
    redis: config.redis,
    keyPrefix: config.dedup.keyPrefix,
    logger,
  });
  const handler = createMembershipWebhook({
    idempotency,
    processor,
    memory,
    authenticator: hasAnySecret(secrets) ? new WebhookAuthenticator(secrets) : undefined,
    logger,
    databaseName: repository.name,
  });
  return {
    handler,
    close: async () => {
      await processor.close();
      await repository.close();
      await idempotency?.close();
    },
  };
}

/**
 * The handler for `index.ts`: reads the environment once, on the first request. A configuration
 * error answers every request with 503 and names the variables to fix.
 */
export function membershipWebhookFromEnv(
  env: () => Record<string, string | undefined> = () => Deno.env.toObject(),
): FetchHandler {
  let built: FetchHandler | undefined;
  const level = env().LOG_LEVEL;
  const fallbackLogger = createLogger(
    level === "debug" || level === "warn" || level === "error" ? level : "info",
    { fn: FUNCTION_NAME },
  );
  return (request: Request) => {
    if (!built) {
      try {
        const idempotency = parseIdempotencyConfig(env());
        built = createMembershipWebhookFromConfig(parseConfig(env()), undefined, idempotency)
          .handler;
      } catch (error) {
        built = (_request: Request) => Promise.resolve(toErrorResponse(error, fallbackLogger));
      }
    }
    return built(request);
  };
}
