/**
 * whatsapp-send-batch: send one message to a list of recipients, each at most once, none skipped
 * silently.
 *
 *   POST /whatsapp-send-batch                       create (JSON, or text/csv with ?message=)
 *   POST /whatsapp-send-batch/<batch_id>/send       start or resume sending
 *   GET  /whatsapp-send-batch/<batch_id>            progress
 *   POST /whatsapp-send-batch/<batch_id>/retry      requeue retryable failed / listed unknown
 *   POST /whatsapp-send-batch/drain                 (service role) resume interrupted batches
 *
 * This file holds the routes and their HTTP answers; the request bodies are read in
 * send_batch/batch_requests.ts, the work is done by send_batch/service.ts. The caller's JWT (or
 * secret API key) is verified here; whether a batch is the caller's is decided by RLS.
 * `sendBatchFromEnv` builds everything once from environment variables for `index.ts`.
 */
import {
  HttpError,
  jsonResponse,
  MethodNotAllowedError,
  readBodyLimited,
} from "../_shared/core/http.ts";
import { toErrorResponse } from "../_shared/core/error_response.ts";
import { parseIdempotencyConfig } from "../_shared/core/idempotency/config.ts";
import { IDEMPOTENCY_HEADERS } from "../_shared/core/idempotency/key.ts";
import {
  createIdempotencyLayer,
  type IdempotencyLayer,
  runIdempotent,
} from "../_shared/core/idempotency/layer.ts";
import { createLogger, type Logger } from "../_shared/core/log.ts";
import { CallerAuth, verifyCaller } from "../_shared/core/caller_auth.ts";
import type { Caller } from "../_shared/core/jwt.ts";
import { readCreate, readRetry, UUID } from "../_shared/send_batch/batch_requests.ts";
import { parseSendBatchConfig, type SendBatchConfig } from "../_shared/send_batch/config.ts";
import { createProvider } from "../_shared/send_batch/providers/registry.ts";
import type { SendProvider } from "../_shared/send_batch/providers/provider.ts";
import type { RateLimiter } from "../_shared/send_batch/rate_limiter.ts";
import { createRateLimiter } from "../_shared/send_batch/rate_limiter_factory.ts";
import { SendBatchRepository } from "../_shared/send_batch/repository.ts";
import { SendBatchService } from "../_shared/send_batch/service.ts";

const FUNCTION_NAME = "whatsapp-send-batch";

type FetchHandler = (request: Request) => Promise<Response>;

/** What the handler is built from (tests pass their own). */
export interface SendBatchDeps {
  config: SendBatchConfig;
  repository: SendBatchRepository;
  provider: SendProvider;
  limiter: RateLimiter;
  logger: Logger;
  /** The Idempotency-Key layer for the POST routes; without it keys are not honoured. */
  idempotency?: IdempotencyLayer;
}

/** 404: no such batch for this caller (another user's batch looks the same). */
class BatchNotFoundError extends HttpError {
  constructor() {
    super(404, "not_found", "no such batch");
    this.name = "BatchNotFoundError";
  }
}

/** Builds the request handler from its dependencies. */
export function createSendBatchHandler(deps: SendBatchDeps): {
  handler: FetchHandler;
  service: SendBatchService;
} {
  const { config, logger } = deps;
  const service = new SendBatchService(deps);
  const auth = new CallerAuth(config.auth);

  const create = async (caller: Caller, request: Request, url: URL): Promise<Response> => {
    const input = await readCreate(request, url, config);
    if (input.message.type === "template" && !deps.provider.supportsTemplates) {
      throw new HttpError(
        400,
        "unsupported_message",
        `provider ${deps.provider.name} sends text only`,
        { details: [{ path: "message.template", message: "templates are not supported" }] },
      );
    }
    const owner = caller.kind === "user" ? caller.userId : input.owner;
    if (!owner || !UUID.test(owner)) {
      throw new HttpError(
        400,
        "owner_required",
        "the service role must name the batch's owner (owner)",
        { details: [{ path: "owner", message: "a user id (UUID) is required" }] },
      );
    }
    if (input.recipients.accepted === 0) {
      throw new HttpError(400, "no_valid_recipients", "no row has a valid phone number", {
        details: input.recipients.rejected,
      });
    }
    const batchId = await service.create(owner, input.message, input.recipients);
    logger.info("batch created", { batch: batchId, accepted: input.recipients.accepted });
    return jsonResponse(201, {
      batch_id: batchId,
      accepted: input.recipients.accepted,
      duplicates_removed: input.recipients.duplicatesRemoved,
      rejected: input.recipients.rejected,
    });
  };

  const send = async (caller: Caller, batchId: string): Promise<Response> => {
    const result = await service.startSend(caller, batchId);
    if (!result) throw new BatchNotFoundError();
    const { counts } = result;
    const body = {
      batch_id: batchId,
      claimed: result.claimed,
      already_sent: counts.sent,
      in_progress: counts.processing + result.claimed,
      remaining: counts.pending - result.claimed,
      failed: counts.failed,
      unknown: counts.unknown,
    };
    if (result.started) return jsonResponse(202, body);
    return jsonResponse(200, {
      ...body,
      message: counts.pending === 0
        ? "nothing to send: every recipient is sent, in progress, failed or unknown"
        : "sending is already in progress for this batch",
    });
  };

  const progress = async (caller: Caller, batchId: string): Promise<Response> => {
    const p = await service.progress(caller, batchId);
    if (!p) throw new BatchNotFoundError();
    return jsonResponse(200, {
      batch_id: p.batchId,
      total: p.total,
      counts: p.counts,
      delivered: p.delivered,
      read: p.read,
      sending: p.draining,
      done: p.counts.pending === 0 && p.counts.processing === 0,
      failed: p.failed,
      unknown: p.unknown,
    });
  };

  const retry = async (caller: Caller, batchId: string, request: Request): Promise<Response> => {
    const result = await service.retry(caller, batchId, await readRetry(request));
    if (!result) throw new BatchNotFoundError();
    return jsonResponse(200, {
      batch_id: batchId,
      requeued_failed: result.failed,
      requeued_unknown: result.unknown,
      message: "requeued recipients are pending; POST …/send to send them",
    });
  };

  const route = async (request: Request): Promise<Response> => {
    const url = new URL(request.url);
    const parts = url.pathname.split("/").filter(Boolean);
    const at = parts.indexOf(FUNCTION_NAME);
    const rest = at === -1 ? parts : parts.slice(at + 1);
    if (rest.length === 1 && rest[0] === "health" && request.method === "GET") {
      return jsonResponse(200, { ok: true });
    }
    const caller = await verifyCaller(request, auth);
    const method = request.method;
    if (method === "POST" && deps.idempotency && rest[0] !== "drain") {
      // Idempotency-Key: after authentication; a retry or a second click replays the answer. The
      // body is read ahead (for its fingerprint) only when the request carries a key.
      const keyed = IDEMPOTENCY_HEADERS.some((name) => request.headers.has(name));
      const rawBody = keyed
        ? await readBodyLimited(request.clone(), config.maxUploadBytes)
        : new Uint8Array(0);
      return await runIdempotent(
        deps.idempotency,
        {
          functionName: FUNCTION_NAME,
          caller: caller.kind === "user" ? `user:${caller.userId}` : "service",
          webhookType: "send-batch",
          request,
          rawBody,
        },
        () => dispatch(request, url, rest, caller),
        (error) => toErrorResponse(error, logger),
      );
    }
    return await dispatch(request, url, rest, caller);
  };

  const dispatch = async (
    request: Request,
    url: URL,
    rest: string[],
    caller: Caller,
  ): Promise<Response> => {
    const method = request.method;
    if (rest.length === 0) {
      if (method !== "POST") throw new MethodNotAllowedError(method, "POST");
      return await create(caller, request, url);
    }
    if (rest.length === 1 && rest[0] === "drain") {
      if (method !== "POST") throw new MethodNotAllowedError(method, "POST");
      if (caller.kind !== "service") throw new HttpError(403, "forbidden", "service role only");
      return jsonResponse(200, { started: await service.drainSchedule() });
    }
    const batchId = rest[0];
    if (!UUID.test(batchId) || rest.length > 2) throw new BatchNotFoundError();
    if (rest.length === 1) {
      if (method !== "GET") throw new MethodNotAllowedError(method, "GET");
      return await progress(caller, batchId);
    }
    if (rest[1] === "send") {
      if (method !== "POST") throw new MethodNotAllowedError(method, "POST");
      return await send(caller, batchId);
    }
    if (rest[1] === "retry") {
      if (method !== "POST") throw new MethodNotAllowedError(method, "POST");
      return await retry(caller, batchId, request);
    }
    throw new BatchNotFoundError();
  };

  const handler: FetchHandler = async (request) => {
    try {
      return await route(request);
    } catch (error) {
      return toErrorResponse(error, logger);
    }
  };
  return { handler, service };
}

export { toErrorResponse };
export { MAX_UPLOAD_BYTES } from "../_shared/send_batch/batch_requests.ts";

/** Builds the dependencies from a configuration. */
export function depsFromConfig(
  config: SendBatchConfig,
  env: Record<string, string | undefined> = {},
): SendBatchDeps {
  const logger = createLogger(config.logLevel, { fn: FUNCTION_NAME });
  const repository = new SendBatchRepository(config.database);
  return {
    idempotency: createIdempotencyLayer(parseIdempotencyConfig(env), {
      databaseUrl: config.database.url,
      logger,
      redis: config.redis
        ? {
          url: config.redis.url,
          token: config.redis.token,
          timeoutMs: config.redis.timeoutMs,
          probeIntervalMs: config.redis.probeIntervalMs,
        }
        : undefined,
      keyPrefix: config.redis?.prefix,
    }),
    config,
    repository,
    provider: createProvider(config.provider, config.providerTimeoutMs),
    limiter: createRateLimiter(config, repository),
    logger,
  };
}

/**
 * The handler `index.ts` serves: configuration parsed once, on the first request (a bad
 * configuration answers 503 with the problems). With `SEND_DRAIN_INTERVAL_MS` set, the instance
 * also runs the drain schedule itself (the local stack, where pg_cron + pg_net are absent).
 */
export function sendBatchFromEnv(
  env: () => Record<string, string | undefined> = () => Deno.env.toObject(),
): FetchHandler {
  let built: FetchHandler | undefined;
  const fallbackLogger = createLogger("error", { fn: FUNCTION_NAME });
  return (request: Request) => {
    if (!built) {
      try {
        const values = env();
        const config = parseSendBatchConfig(values);
        const { handler, service } = createSendBatchHandler(depsFromConfig(config, values));
        built = handler;
        if (config.drainIntervalMs > 0) service.runDrainScheduleEvery(config.drainIntervalMs);
      } catch (error) {
        built = (_request: Request) => Promise.resolve(toErrorResponse(error, fallbackLogger));
      }
    }
    return built(request);
  };
}
