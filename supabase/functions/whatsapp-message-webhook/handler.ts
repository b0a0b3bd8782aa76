/**
 * The whatsapp-message-webhook handler. One webhook, top to bottom:
 *
 *   parse (method, size, signature, JSON or form, format) → normalise each message and status
 *   (keys) → claim → apply (one SQL call) → release on failure / confirm after the response →
 *   respond.
 *
 * Also answers Meta's subscription handshake (`GET ?hub.mode=subscribe&hub.verify_token=…`).
 * `createMessageWebhook` takes its dependencies, so tests and the benchmark build it directly;
 * `messageWebhookFromEnv` builds them once from environment variables for `index.ts`.
 */
import type { MemoryClaimStore } from "../_shared/core/claims/memory_claim_store.ts";
import { parseConfig, type WebhookConfig } from "../_shared/core/config.ts";
import {
  type FetchHandler,
  handlerFromEnv,
  toErrorResponse,
} from "../_shared/core/error_response.ts";
import {
  type DeadLetters,
  type DeliveryReport,
  NO_REPORT,
  type ReplayableWebhook,
  replayThrough,
  type StoredDelivery,
} from "../_shared/core/dead_letters/dead_letter.ts";
import type { EventResult, ExactlyOnceProcessor } from "../_shared/core/exactly_once.ts";
import { timingSafeEqualBytes } from "../_shared/core/hmac.ts";
import {
  BODY_PATH,
  HttpError,
  InvalidPayloadError,
  jsonResponse,
  MalformedJsonError,
  MethodNotAllowedError,
  queryParam,
  readBodyLimited,
  urlPath,
} from "../_shared/core/http.ts";
import {
  type IdempotencyConfig,
  parseIdempotencyConfig,
} from "../_shared/core/idempotency/config.ts";
import { type IdempotencyLayer, runIdempotent } from "../_shared/core/idempotency/layer.ts";
import { createLogger, type Logger } from "../_shared/core/log.ts";
import { PayloadFormatError } from "../_shared/core/payload.ts";
import { tiersHealth } from "../_shared/core/tiers.ts";
import { type AuthScheme, type WebhookAuthenticator } from "../_shared/core/webhook_auth.ts";
import { createWebhookRuntime } from "../_shared/core/webhook_runtime.ts";
import { type MessageWebhookSettings, parseMessageSettings } from "../_shared/messages/config.ts";
import { MESSAGE_COPY_WINDOW_MS, messageClaim } from "../_shared/messages/dedup_key.ts";
import type { MessageEvent } from "../_shared/messages/event.ts";
import type {
  DeliveryInput,
  ItemResult,
  MessageFormat,
} from "../_shared/messages/formats/delivery.ts";
import {
  MESSAGE_FORMATS,
  parseMessages,
  UnknownMessageFormatError,
} from "../_shared/messages/formats/registry.ts";
import { PostgresMessageRepository } from "../_shared/messages/postgres_repository.ts";
import type { MessageRepository } from "../_shared/messages/repository.ts";
import { SupabaseRpcMessageRepository } from "../_shared/messages/supabase_rpc_repository.ts";
import { ORDERING_HORIZON_MS } from "../_shared/whatsapp/event_time.ts";

export { type FetchHandler };

/** The function's name, and the last path segment of its URL. */
export const FUNCTION_NAME = "whatsapp-message-webhook";

const utf8 = new TextDecoder("utf-8", { fatal: true });
const encoder = new TextEncoder();
const EMPTY_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response></Response>';

/** The lifecycle of message events. */
export type MessageProcessor = ExactlyOnceProcessor<MessageEvent>;

/** Dependencies of {@link createMessageWebhook}. */
export interface MessageWebhookDeps {
  processor: MessageProcessor;
  memory: MemoryClaimStore;
  /** Verifies deliveries; undefined only when unsigned webhooks are explicitly allowed. */
  authenticator?: WebhookAuthenticator;
  settings: MessageWebhookSettings;
  logger: Logger;
  /** The database name shown by the health response. */
  databaseName: string;
  /** The Idempotency-Key layer; without it every request is processed as if it had no key. */
  idempotency?: IdempotencyLayer;
  /** Keeps refused authenticated deliveries and rejected items; none kept without it. */
  deadLetters?: DeadLetters;
  /** The gateway formats understood (default: every format of the registry). */
  formats?: readonly MessageFormat[];
  now?: () => number;
}

/** The handler, which can also run a stored (dead-letter) delivery again. */
export type MessageWebhook = FetchHandler & ReplayableWebhook;

/** One entry of the response's `results`, in the payload's order. */
type ResultEntry =
  | { kind: "message" | "status"; id: string; status?: string; outcome: string }
  | { path: string; outcome: "rejected" | "ignored"; reason: string };

/** Builds the handler from its dependencies. */
export function createMessageWebhook(deps: MessageWebhookDeps): MessageWebhook {
  const now = deps.now ?? Date.now;
  const startedAt = now();
  const formats = deps.formats ?? MESSAGE_FORMATS;

  async function handle(request: Request): Promise<Response> {
    if (request.method === "GET") return get(request);
    if (request.method !== "POST") {
      throw new MethodNotAllowedError(request.method, "GET, POST");
    }
    // Parse: size, signature, body, format. Nothing is claimed or written before this passes.
    const receivedAt = now();
    const body = await readBodyLimited(request, deps.settings.maxBodyBytes);
    const form = isForm(request.headers.get("content-type"));
    const input = form ? readForm(body, request.url) : readJson(body);
    const scheme: AuthScheme = deps.authenticator
      ? await deps.authenticator.verify(request.headers, body, {
        url: request.url,
        form: input.kind === "form" ? input.form : undefined,
      })
      : "unsigned";
    // Idempotency-Key: after authentication, before parsing and claims.
    return await runIdempotent(
      deps.idempotency,
      {
        functionName: FUNCTION_NAME,
        caller: scheme,
        scheme,
        webhookType: "messages",
        request,
        rawBody: body,
      },
      () =>
        deps.deadLetters
          ? deps.deadLetters.capture(
            { request, body, scheme },
            (report) => handleVerified(request, input, scheme, receivedAt, report),
          )
          : handleVerified(request, input, scheme, receivedAt, NO_REPORT),
      (error) => toErrorResponse(error, deps.logger),
    );
  }

  /**
   * An authenticated delivery: parse → normalise → claim → apply → respond. `report` learns the
   * format, the outcomes and the rejected items (dead letters, replays).
   */
  async function handleVerified(
    request: Request,
    input: DeliveryInput,
    scheme: string,
    receivedAt: number,
    report: DeliveryReport,
  ): Promise<Response> {
    let parsed;
    const forced = queryParam(request.url, "format");
    try {
      parsed = parseMessages(input, receivedAt, forced, formats);
    } catch (error) {
      if (error instanceof UnknownMessageFormatError) {
        throw new HttpError(400, "unknown_format", error.message, {
          details: formats.map((f) => ({ path: "format", message: f.name })),
        });
      }
      if (error instanceof PayloadFormatError) {
        const detected = forced || formats.find((f) => f.detect(input))?.name;
        if (detected) report.format(detected);
        throw new InvalidPayloadError(error.issues);
      }
      throw error;
    }
    report.format(parsed.format);
    if (parsed.kind === "ignored" || parsed.items.every((i) => !i.ok && i.ignored)) {
      const reason = parsed.kind === "ignored"
        ? parsed.reason
        : parsed.items.map((i) => (i.ok ? "" : i.reason)).join("; ");
      deps.logger.info("delivery ignored", { format: parsed.format, reason });
      return respond(parsed.format, {
        success: true,
        format: parsed.format,
        ignored: true,
        reason,
        duplicate: false,
        results: [],
      }, "ignored");
    }

    // Normalised items: the valid ones go on, the invalid ones are reported (never a 4xx for a
    // webhook that also carries good ones: gateways do not retry a 4xx).
    const items = parsed.items;
    const events = items.flatMap((item) => (item.ok ? [item.event] : []));
    if (events.length === 0) {
      throw new InvalidPayloadError(
        items.flatMap((i) => (i.ok || i.ignored ? [] : [{ path: i.path, message: i.reason }])),
      );
    }

    // Claim → apply → release on failure / confirm after the response.
    const results = await deps.processor.process(events);

    // Respond, in the payload's order.
    const entries = toEntries(items, results);
    report.processed(
      results.map((r) => r.outcome),
      items.flatMap((i) => (i.ok || i.ignored ? [] : [{ path: i.path, reason: i.reason }])),
    );
    const duplicate = results.every((r) => r.outcome === "duplicate");
    const level = duplicate ? "debug" : "info";
    if (deps.logger.enabled(level)) {
      deps.logger[level]("delivery processed", {
        format: parsed.format,
        auth: scheme,
        events: results.length,
        rejected: items.length - results.length,
        outcomes: results.map((r) => `${r.event.kind}:${r.outcome}@${r.decidedBy}`).join(","),
        ms: now() - receivedAt,
      });
    }
    return respond(
      parsed.format,
      { success: true, duplicate, format: parsed.format, results: entries },
      results.map((r) => r.outcome).join(","),
    );
  }

  /** Twilio reads the answer as TwiML: an empty one (outcomes in a header); JSON otherwise. */
  function respond(format: string, body: Record<string, unknown>, outcomes: string): Response {
    if (format !== "twilio") return jsonResponse(200, body);
    return new Response(EMPTY_TWIML, {
      status: 200,
      headers: { "content-type": "text/xml; charset=utf-8", "x-webhook-outcomes": outcomes },
    });
  }

  function get(request: Request): Response {
    if (urlPath(request.url).endsWith("/health")) return health();
    const query = request.url.indexOf("?");
    const params = new URLSearchParams(query === -1 ? "" : request.url.slice(query + 1));
    if (!params.has("hub.mode")) {
      throw new MethodNotAllowedError(
        "GET",
        "GET, POST",
        "GET only answers Meta's handshake and /health",
      );
    }
    if (params.get("hub.mode") !== "subscribe") {
      throw new HttpError(403, "forbidden", "hub.mode must be subscribe");
    }
    if (!params.get("hub.challenge")) {
      throw new HttpError(400, "missing_challenge", "hub.challenge is required", {
        details: [{ path: "hub.challenge", message: "required" }],
      });
    }
    // Meta's subscription handshake: echo the challenge when the verify token matches.
    const expected = deps.settings.metaVerifyToken;
    const given = params.get("hub.verify_token") ?? "";
    if (!expected || !sameText(given, expected)) {
      deps.logger.warn("Meta verification refused", { configured: Boolean(expected) });
      throw new HttpError(403, "forbidden", "hub.verify_token does not match META_VERIFY_TOKEN");
    }
    return new Response(params.get("hub.challenge") ?? "", {
      status: 200,
      headers: { "content-type": "text/plain; charset=utf-8" },
    });
  }

  function health(): Response {
    return jsonResponse(200, {
      ...tiersHealth(deps.processor, deps.memory, deps.databaseName),
      function: FUNCTION_NAME,
      uptimeMs: now() - startedAt,
      heapUsedBytes: Deno.memoryUsage().heapUsed,
      maxBodyBytes: deps.settings.maxBodyBytes,
      idempotency: deps.idempotency?.describe() ?? { enabled: false },
    });
  }

  const handler = async (request: Request): Promise<Response> => {
    try {
      return await handle(request);
    } catch (error) {
      return toErrorResponse(error, deps.logger);
    }
  };
  // A stored delivery again: trusted (its signature was checked when it was kept), without the
  // Idempotency-Key layer (which would answer the refusal it recorded).
  const replay = (stored: StoredDelivery) =>
    replayThrough(FUNCTION_NAME, stored, (request, report) => {
      const input = isForm(request.headers.get("content-type"))
        ? readForm(stored.body, request.url)
        : readJson(stored.body);
      return handleVerified(request, input, stored.authScheme, stored.receivedAt, report);
    });
  return Object.assign(handler, { replay });
}

/** Results in the payload's order: processed events, rejected and ignored items. */
function toEntries(items: readonly ItemResult[], results: EventResult<MessageEvent>[]) {
  const entries: ResultEntry[] = [];
  let next = 0;
  for (const item of items) {
    if (!item.ok) {
      entries.push({
        path: item.path,
        outcome: item.ignored ? "ignored" : "rejected",
        reason: item.reason,
      });
      continue;
    }
    const { event, outcome } = results[next++];
    entries.push(
      event.kind === "message"
        ? { kind: "message", id: event.messageId, outcome }
        : { kind: "status", id: event.messageId, status: event.status, outcome },
    );
  }
  return entries;
}

function isForm(contentType: string | null): boolean {
  return contentType !== null &&
    contentType.toLowerCase().startsWith("application/x-www-form-urlencoded");
}

function readForm(body: Uint8Array, url: string): DeliveryInput {
  try {
    const query = new URL(url).searchParams;
    return { kind: "form", form: new URLSearchParams(utf8.decode(body)), query };
  } catch (error) {
    throw new HttpError(400, "malformed_form", "request body is not a valid UTF-8 form", {
      cause: error,
      details: [{ path: BODY_PATH, message: "not a valid UTF-8 form" }],
    });
  }
}

function readJson(body: Uint8Array): DeliveryInput {
  try {
    return { kind: "json", json: JSON.parse(utf8.decode(body)) };
  } catch (error) {
    throw new MalformedJsonError(error);
  }
}

/** Constant-time comparison of two texts. */
function sameText(a: string, b: string): boolean {
  return timingSafeEqualBytes(encoder.encode(a), encoder.encode(b));
}

/** Builds the repository the configuration asks for. */
export function createMessageRepository(config: WebhookConfig): MessageRepository {
  const db = config.database;
  return db.kind === "postgres"
    ? new PostgresMessageRepository({ url: db.url, poolMax: db.poolMax, timeoutMs: db.timeoutMs })
    : new SupabaseRpcMessageRepository({
      url: db.url,
      serviceRoleKey: db.serviceRoleKey,
      timeoutMs: db.timeoutMs,
    });
}

/** Builds the handler and its dependencies from validated configuration. */
export function createMessageWebhookFromConfig(
  config: WebhookConfig,
  settings: MessageWebhookSettings,
  logger: Logger = createLogger(config.logLevel, { fn: FUNCTION_NAME }),
  idempotencyConfig?: IdempotencyConfig,
  formats?: readonly MessageFormat[],
): { handler: MessageWebhook; close: () => Promise<void> } {
  const repository = createMessageRepository(config);
  const runtime = createWebhookRuntime(config, {
    functionName: FUNCTION_NAME,
    repository,
    claimOf: messageClaim,
    copyWindowMs: MESSAGE_COPY_WINDOW_MS,
    horizonMs: ORDERING_HORIZON_MS,
    logger,
    idempotencyConfig,
    secretNames:
      "META_APP_SECRET, TWILIO_AUTH_TOKEN, WAHA_HMAC_KEY, WEBHOOK_SECRET or STANDARD_WEBHOOKS_SECRET",
  });
  const handler = createMessageWebhook({
    ...runtime,
    settings,
    logger,
    databaseName: repository.name,
    formats,
  });
  return { handler, close: runtime.close };
}

/** The handler for `index.ts`: reads the environment once, on the first request. */
export function messageWebhookFromEnv(
  env: () => Record<string, string | undefined> = () => Deno.env.toObject(),
): FetchHandler {
  return handlerFromEnv(
    FUNCTION_NAME,
    (values) =>
      createMessageWebhookFromConfig(
        parseConfig(values),
        parseMessageSettings(values),
        undefined,
        parseIdempotencyConfig(values),
      ).handler,
    env,
  );
}
