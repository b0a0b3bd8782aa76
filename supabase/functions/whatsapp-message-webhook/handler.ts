/**
 * The whatsapp-message-webhook handler: the shared pipeline (core/webhook/handler.ts) with the
 * message webhook's own part — its formats (messages/formats/registry.ts; JSON bodies and
 * Twilio's form posts), its claim rule (messages/dedup_key.ts), its answer's `results`, Twilio's
 * TwiML answer and Meta's subscription handshake (messages/meta_handshake.ts).
 *
 * `createMessageWebhook` takes its dependencies, so tests and the benchmark build it directly;
 * `messageWebhookFromEnv` builds them once from environment variables for `index.ts`.
 */
import type { WebhookConfig } from "../_shared/core/config.ts";
import type { EventResult } from "../_shared/core/exactly_once.ts";
import { FormatRegistry } from "../_shared/core/formats/registry.ts";
import { jsonResponse } from "../_shared/core/http.ts";
import { readJson } from "../_shared/core/webhook/body.ts";
import { createWebhookHandler, type WebhookHandler } from "../_shared/core/webhook/handler.ts";
import type { Normalized, WebhookDeps } from "../_shared/core/webhook/spec.ts";
import { type BuildArgs, buildWebhook, webhookFromEnv } from "../_shared/core/webhook_runtime.ts";
import { type MessageWebhookSettings, parseMessageSettings } from "../_shared/messages/config.ts";
import { MESSAGE_COPY_WINDOW_MS, messageClaim } from "../_shared/messages/dedup_key.ts";
import type { MessageEvent } from "../_shared/messages/event.ts";
import type {
  DeliveryInput,
  ItemResult,
  MessageFormat,
  MessageItems,
} from "../_shared/messages/formats/delivery.ts";
import { MESSAGE_REGISTRY } from "../_shared/messages/formats/registry.ts";
import { answerMetaHandshake } from "../_shared/messages/meta_handshake.ts";
import { messageApply } from "../_shared/messages/repository.ts";
import { ORDERING_HORIZON_MS } from "../_shared/whatsapp/event_time.ts";

/** The function's name, and the last path segment of its URL. */
export const FUNCTION_NAME = "whatsapp-message-webhook";

const EMPTY_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response></Response>';

/** Dependencies of {@link createMessageWebhook}. */
export interface MessageWebhookDeps extends WebhookDeps<MessageEvent> {
  /** The message webhook's own settings: body limit, Meta's verify token. */
  settings: MessageWebhookSettings;
  /** The gateway formats understood (default: every format of the registry). */
  formats?: readonly MessageFormat[];
}

/** A delivery's messages and statuses, normalised by their format. */
interface NormalizedMessages extends Normalized<MessageEvent> {
  items: ItemResult[];
}

/** Builds the handler from its dependencies. */
export function createMessageWebhook(deps: MessageWebhookDeps): WebhookHandler {
  const { settings, logger } = deps;
  return createWebhookHandler<DeliveryInput, MessageItems, MessageEvent, NormalizedMessages>({
    functionName: FUNCTION_NAME,
    webhookType: "messages",
    formats: deps.formats ? new FormatRegistry(deps.formats) : MESSAGE_REGISTRY,
    readsForms: true,
    input: (body, form) => form ?? { kind: "json", json: readJson(body) },
    maxBodyBytes: settings.maxBodyBytes,
    normalize,
    issues: (n) => n.rejected.map((r) => ({ path: r.path, message: r.reason })),
    answer,
    describe: (r) => `${r.event.kind}:${r.outcome}@${r.decidedBy}`,
    respond,
    get: (request) => answerMetaHandshake(request, settings.metaVerifyToken, logger),
    health: { maxBodyBytes: settings.maxBodyBytes },
  }, deps);
}

/** The items' events; a delivery whose every item is ignored is ignored as a whole. */
function normalize({ items }: MessageItems): NormalizedMessages {
  const events: MessageEvent[] = [];
  const rejected: { path: string; reason: string }[] = [];
  for (const item of items) {
    if (item.ok) events.push(item.event);
    else if (!item.ignored) rejected.push({ path: item.path, reason: item.reason });
  }
  const ignoredReason = items.every((i) => !i.ok && i.ignored)
    ? items.map((i) => (i.ok ? "" : i.reason)).join("; ")
    : undefined;
  return { events, rejected, skipped: items.length - events.length, ignoredReason, items };
}

/** Results in the payload's order: processed events, rejected and ignored items. */
function answer({ items }: NormalizedMessages, results: EventResult<MessageEvent>[]) {
  let next = 0;
  const entries = items.map((item) => {
    if (!item.ok) {
      return {
        path: item.path,
        outcome: item.ignored ? "ignored" : "rejected",
        reason: item.reason,
      };
    }
    const { event, outcome } = results[next++];
    return event.kind === "message"
      ? { kind: "message", id: event.messageId, outcome }
      : { kind: "status", id: event.messageId, status: event.status, outcome };
  });
  return { results: entries, duplicate: results.every((r) => r.outcome === "duplicate") };
}

/** Twilio reads the answer as TwiML: an empty one (outcomes in a header); JSON otherwise. */
function respond(
  format: string,
  body: Record<string, unknown>,
  results?: EventResult<MessageEvent>[],
): Response {
  if (format !== "twilio") return jsonResponse(200, body);
  const outcomes = results ? results.map((r) => r.outcome).join(",") : "ignored";
  return new Response(EMPTY_TWIML, {
    status: 200,
    headers: { "content-type": "text/xml; charset=utf-8", "x-webhook-outcomes": outcomes },
  });
}

/** Builds the handler and its dependencies from validated configuration. */
export function createMessageWebhookFromConfig(
  config: WebhookConfig,
  settings: MessageWebhookSettings,
  ...[logger, idempotencyConfig, formats]: BuildArgs<MessageFormat>
) {
  // A message is one event for ever: its key has no time bucket, its copy window no end.
  return buildWebhook(config, {
    apply: messageApply,
    claimOf: messageClaim,
    copyWindowMs: MESSAGE_COPY_WINDOW_MS,
    functionName: FUNCTION_NAME,
    horizonMs: ORDERING_HORIZON_MS,
    logger,
    idempotencyConfig,
    secretNames:
      "META_APP_SECRET, TWILIO_AUTH_TOKEN, WAHA_HMAC_KEY, WEBHOOK_SECRET or STANDARD_WEBHOOKS_SECRET",
  }, (runtime) => createMessageWebhook({ ...runtime, settings, formats }));
}

/** The handler for `index.ts`: reads the environment once, on the first request. */
export const messageWebhookFromEnv = webhookFromEnv(
  FUNCTION_NAME,
  (config, values, idempotency) =>
    createMessageWebhookFromConfig(config, parseMessageSettings(values), undefined, idempotency),
);
