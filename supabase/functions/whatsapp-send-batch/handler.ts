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
 * The caller's JWT (or secret API key) is verified here; the user's queries run under RLS as that
 * user.
 * `sendBatchFromEnv` builds everything once from environment variables for `index.ts`.
 */
import { z } from "zod";
import {
  BODY_PATH,
  HttpError,
  jsonResponse,
  MalformedJsonError,
  MethodNotAllowedError,
  readBodyLimited,
} from "../_shared/core/http.ts";
import { zodIssues } from "../_shared/core/payload.ts";
import { cleanJson, cleanParam } from "../_shared/core/sanitize.ts";
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
import { parseSendBatchConfig, type SendBatchConfig } from "../_shared/send_batch/config.ts";
import {
  type BatchMessage,
  MessageInputSchema,
  TemplateMessageSchema,
} from "../_shared/send_batch/message.ts";
import { createProvider } from "../_shared/send_batch/providers/registry.ts";
import type { SendProvider } from "../_shared/send_batch/providers/provider.ts";
import type { RateLimiter } from "../_shared/send_batch/rate_limiter.ts";
import { createRateLimiter } from "../_shared/send_batch/rate_limiter_factory.ts";
import {
  rawRecipient,
  readRecipientsCsvStream,
  RecipientCollector,
  type RecipientList,
  scanJsonBody,
} from "../_shared/send_batch/recipients_input.ts";
import { SendBatchRepository } from "../_shared/send_batch/repository.ts";
import { SendBatchService } from "../_shared/send_batch/service.ts";

const FUNCTION_NAME = "whatsapp-send-batch";
/** Largest body of the other POST routes (retry); a create's is `config.maxUploadBytes`. */
export const MAX_UPLOAD_BYTES = 5 * 1024 * 1024;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

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

const CreateSchema = z.object({
  message: MessageInputSchema,
  // Its rows are streamed to a RecipientCollector, each checked on its own (rejected, not fatal).
  recipients: z.array(z.unknown()),
  owner: z.string().regex(UUID).optional(),
});

const RetrySchema = z.object({ unknown: z.array(z.string().regex(UUID)).max(10_000).default([]) });

/** The issues of a refusal, each with its path (`(root)` for the body as a whole). */
function issuesOf(error: z.ZodError) {
  return zodIssues(error.issues);
}

/** A CSV upload's message comes from the query: its issues name the query parameters. */
function queryIssuesOf(error: z.ZodError, template: boolean) {
  return zodIssues(error.issues).map(({ path, message }) => ({
    path: !template ? "message" : path.includes("language") ? "language" : "template",
    message,
  }));
}

async function readJson(request: Request): Promise<unknown> {
  const body = await readBodyLimited(request, MAX_UPLOAD_BYTES);
  if (body.byteLength === 0) return {};
  try {
    // NULs and lone surrogates cannot be stored: cleaned here, once, for every field.
    return cleanJson(JSON.parse(new TextDecoder().decode(body)));
  } catch (cause) {
    throw new MalformedJsonError(cause);
  }
}

/** 413 naming the body: the upload is larger than this route takes. */
function uploadTooLarge(limit: number): HttpError {
  return new HttpError(413, "payload_too_large", `request body is larger than ${limit} bytes`, {
    details: [{ path: BODY_PATH, message: `at most ${limit} bytes` }],
  });
}

/**
 * The body as text, decoded as it streams in, refused past `limit` bytes (a declared length at
 * once). Nothing of it is kept here: the readers keep what they need.
 */
async function* bodyText(request: Request, limit: number): AsyncGenerator<string> {
  const declared = request.headers.get("content-length");
  if (declared !== null && /^[0-9]+$/.test(declared) && Number(declared) > limit) {
    throw uploadTooLarge(limit);
  }
  const stream = request.body;
  if (!stream) return;
  const reader = stream.getReader();
  const decoder = new TextDecoder();
  let size = 0;
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      size += value.byteLength;
      if (size > limit) throw uploadTooLarge(limit);
      const text = decoder.decode(value, { stream: true });
      if (text !== "") yield text;
    }
    const rest = decoder.decode();
    if (rest !== "") yield rest;
  } finally {
    // Stopped early (a refusal): the rest of the upload is not read.
    await reader.cancel().catch(() => {});
  }
}

function invalid(error: z.ZodError, what: string): HttpError {
  return new HttpError(400, "invalid_payload", `request body does not match ${what}`, {
    details: issuesOf(error),
  });
}

/**
 * Reads a create request: JSON `{ message, recipients }` or a CSV upload with `?message=`, each
 * streamed (see recipients_input.ts), up to `config.maxRecipients` rows.
 */
async function readCreate(
  request: Request,
  url: URL,
  config: SendBatchConfig,
): Promise<{ message: BatchMessage; recipients: RecipientList; owner?: string }> {
  const type = (request.headers.get("content-type") ?? "").toLowerCase();
  if (type.startsWith("text/csv") || type.startsWith("application/csv")) {
    // Query parameters and CSV cells are cleaned like JSON fields: one sanitiser for all.
    const query = url.searchParams;
    const template = cleanParam(query, "template");
    const message = template
      ? TemplateMessageSchema.safeParse({
        template: { name: template, language: cleanParam(query, "language") ?? "en" },
      })
      : MessageInputSchema.safeParse(cleanParam(query, "message") ?? "");
    if (!message.success) {
      throw new HttpError(
        400,
        "invalid_message",
        "give the message as ?message=<text> or ?template=<name>&language=<code>",
        { details: queryIssuesOf(message.error, Boolean(template)) },
      );
    }
    const recipients = await readRecipientsCsvStream(
      bodyText(request, config.maxUploadBytes),
      config.maxRecipients,
    );
    return { message: message.data, recipients, owner: cleanParam(query, "owner") ?? undefined };
  }
  const collector = new RecipientCollector(config.maxRecipients);
  const scanned = await scanJsonBody(
    bodyText(request, config.maxUploadBytes),
    (value) => collector.add(rawRecipient(value)),
  );
  const body = "notAnObject" in scanned
    ? scanned.notAnObject
    : scanned.recipientsArray
    ? { ...scanned.fields, recipients: [] }
    : scanned.fields;
  const parsed = CreateSchema.safeParse(body);
  if (!parsed.success) {
    throw invalid(parsed.error, "{ message, recipients: [{ phone, name?, variables? }] }");
  }
  return { message: parsed.data.message, recipients: collector.finish(), owner: parsed.data.owner };
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
    const parsed = RetrySchema.safeParse(await readJson(request));
    if (!parsed.success) throw invalid(parsed.error, "{ unknown?: [recipient_id] }");
    const result = await service.retry(caller, batchId, parsed.data.unknown);
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
        ? { url: config.redis.url, token: config.redis.token, timeoutMs: 300, probeIntervalMs: 250 }
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
        if (config.drainIntervalMs > 0) {
          const tick = () =>
            service.drainSchedule().catch(() => []).finally(() => {
              setTimeout(tick, config.drainIntervalMs);
            });
          setTimeout(tick, config.drainIntervalMs);
        }
      } catch (error) {
        built = (_request: Request) => Promise.resolve(toErrorResponse(error, fallbackLogger));
      }
    }
    return built(request);
  };
}
