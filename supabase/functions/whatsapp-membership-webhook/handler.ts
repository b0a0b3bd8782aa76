/**
 * The whatsapp-membership-webhook handler. One webhook, top to bottom:
 *
 *   parse (method, size, signature, JSON, format) → normalise each participant (keys) → claim →
 *   apply → release on failure / confirm after the response → respond.
 *
 * `createMembershipWebhook` takes its dependencies, so tests and the benchmark build it directly;
 * `membershipWebhookFromEnv` builds them once from environment variables for `index.ts`.
 */
import type { MemoryClaimStore } from "../_shared/core/claims/memory_claim_store.ts";
import { MAX_BODY_BYTES, parseConfig, type WebhookConfig } from "../_shared/core/config.ts";
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
import type { ClaimOf, ExactlyOnceProcessor } from "../_shared/core/exactly_once.ts";
import {
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
import { createLogger, type Logger, maskIdentity } from "../_shared/core/log.ts";
import { tiersHealth } from "../_shared/core/tiers.ts";
import { type AuthScheme, type WebhookAuthenticator } from "../_shared/core/webhook_auth.ts";
import { createWebhookRuntime } from "../_shared/core/webhook_runtime.ts";
import { dedupKey } from "../_shared/membership/dedup_key.ts";
import type { MembershipEvent } from "../_shared/membership/event.ts";
import { PayloadFormatError, type WebhookFormat } from "../_shared/membership/formats/delivery.ts";
import {
  FORMATS,
  parseDelivery,
  UnknownFormatError,
} from "../_shared/membership/formats/registry.ts";
import { normalizeEach } from "../_shared/membership/normalize.ts";
import { PostgresMembershipRepository } from "../_shared/membership/postgres_repository.ts";
import type { AppliedEvent, MembershipRepository } from "../_shared/membership/repository.ts";
import { SupabaseRpcMembershipRepository } from "../_shared/membership/supabase_rpc_repository.ts";
import { ORDERING_HORIZON_MS } from "../_shared/whatsapp/event_time.ts";

export { type FetchHandler, toErrorResponse };

/** The function's name, and the last path segment of its URL. */
export const FUNCTION_NAME = "whatsapp-membership-webhook";

const utf8 = new TextDecoder("utf-8", { fatal: true });

/** The lifecycle of membership events. */
export type MembershipProcessor = ExactlyOnceProcessor<MembershipEvent, AppliedEvent>;

/** Dependencies of {@link createMembershipWebhook}. */
export interface MembershipWebhookDeps {
  processor: MembershipProcessor;
  memory: MemoryClaimStore;
  /** Verifies deliveries; undefined only when unsigned webhooks are explicitly allowed. */
  authenticator?: WebhookAuthenticator;
  logger: Logger;
  /** The database name shown by the health response. */
  databaseName: string;
  /** The Idempotency-Key layer; without it every request is processed as if it had no key. */
  idempotency?: IdempotencyLayer;
  /** Keeps refused authenticated deliveries and rejected items; none kept without it. */
  deadLetters?: DeadLetters;
  /** The gateway formats understood (default: every format of the registry). */
  formats?: readonly WebhookFormat[];
  now?: () => number;
}

/** The handler, which can also run a stored (dead-letter) delivery again. */
export type MembershipWebhook = FetchHandler & ReplayableWebhook;

/** The claim of a membership event: a person's events alternate (join, leave, join), so the
 * subject makes a rejoin never a copy of the join before the leave. */
export function membershipClaim(windowMs: number): ClaimOf<MembershipEvent> {
  return (event) => ({
    key: dedupKey(event, windowMs),
    at: event.at,
    subject: `${event.groupJid}|${event.participant}`,
    action: event.action,
  });
}

/** One entry of the response's `results`, in the order of the payload's participants. */
type ResultEntry =
  | { phone: string; event: string; outcome: string }
  | { path: string; event: string; outcome: "rejected"; reason: string };

/** Builds the handler from its dependencies. */
export function createMembershipWebhook(deps: MembershipWebhookDeps): MembershipWebhook {
  const now = deps.now ?? Date.now;
  const startedAt = now();
  const formats = deps.formats ?? FORMATS;

  async function handle(request: Request): Promise<Response> {
    // Parse: method, size, signature, JSON, format. Nothing is claimed or written before this.
    if (request.method === "GET" && urlPath(request.url).endsWith("/health")) return health();
    if (request.method !== "POST") throw new MethodNotAllowedError(request.method);
    const receivedAt = now();
    const body = await readBodyLimited(request, MAX_BODY_BYTES);
    const scheme: AuthScheme = deps.authenticator
      ? await deps.authenticator.verify(request.headers, body)
      : "unsigned";
    // Idempotency-Key: after authentication, before parsing and claims.
    return await runIdempotent(
      deps.idempotency,
      {
        functionName: FUNCTION_NAME,
        caller: scheme,
        scheme,
        webhookType: "membership",
        request,
        rawBody: body,
      },
      () =>
        deps.deadLetters
          ? deps.deadLetters.capture(
            { request, body, scheme },
            (report) => handleVerified(request, body, scheme, receivedAt, report),
          )
          : handleVerified(request, body, scheme, receivedAt, NO_REPORT),
      (error) => toErrorResponse(error, deps.logger),
    );
  }

  /**
   * An authenticated delivery: parse → normalise → claim → apply → respond. `report` learns the
   * format, the outcomes and the rejected items (dead letters, replays).
   */
  async function handleVerified(
    request: Request,
    body: Uint8Array,
    scheme: AuthScheme,
    receivedAt: number,
    report: DeliveryReport,
  ): Promise<Response> {
    let json: unknown;
    try {
      json = JSON.parse(utf8.decode(body));
    } catch (error) {
      throw new MalformedJsonError(error);
    }
    let delivery;
    const forced = queryParam(request.url, "format");
    try {
      delivery = parseDelivery(json, forced, formats);
    } catch (error) {
      if (error instanceof UnknownFormatError) {
        throw new HttpError(400, "unknown_format", error.message, {
          details: formats.map((f) => ({ path: "format", message: f.name })),
        });
      }
      if (error instanceof PayloadFormatError) {
        const detected = forced || formats.find((f) => f.detect(json))?.name;
        if (detected) report.format(detected);
        throw new InvalidPayloadError(error.issues);
      }
      throw error;
    }
    report.format(delivery.format);
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

    // Normalise each participant on its own: invalid ones are reported, valid ones go on.
    const normalized = normalizeEach(delivery.changes, receivedAt, delivery.paths);
    const events = normalized.flatMap((n) => (n.ok ? [n.event] : []));
    if (events.length === 0) {
      const issues = new Map<string, { path: string; message: string }>();
      for (const n of normalized) {
        if (!n.ok) { for (const i of n.issues) issues.set(`${i.path}\u0000${i.message}`, i); }
      }
      throw new InvalidPayloadError([...issues.values()]);
    }

    // Claim → apply → release on failure / confirm after the response.
    const results = await deps.processor.process(events);

    // Respond, in the payload's order.
    const entries: ResultEntry[] = [];
    let next = 0;
    normalized.forEach((n, i) => {
      if (!n.ok) {
        entries.push({
          path: delivery.changes[i].path,
          event: delivery.changes[i].action,
          outcome: "rejected",
          reason: n.issues.map((issue) => issue.message).join("; "),
        });
        return;
      }
      const r = results[next++];
      entries.push({
        phone: maskIdentity(r.applied?.participant ?? r.event.participant),
        event: r.event.action,
        outcome: r.outcome,
      });
    });
    report.processed(
      results.map((r) => r.outcome),
      entries.flatMap((e) => ("reason" in e ? [{ path: e.path, reason: e.reason }] : [])),
    );
    const duplicate = results.every((r) => r.outcome === "duplicate") &&
      entries.length === results.length;
    // Copies are the normal case and are only logged at debug level; changes and misses at info.
    const level = duplicate ? "debug" : "info";
    if (deps.logger.enabled(level)) {
      deps.logger[level]("delivery processed", {
        format: delivery.format,
        auth: scheme,
        events: results.length,
        rejected: entries.length - results.length,
        outcomes: results.map((r) => `${r.outcome}@${r.decidedBy}`).join(","),
        ms: now() - receivedAt,
      });
    }
    return jsonResponse(200, {
      success: true,
      duplicate,
      format: delivery.format,
      results: entries,
    });
  }

  function health(): Response {
    return jsonResponse(200, {
      ...tiersHealth(deps.processor, deps.memory, deps.databaseName),
      function: FUNCTION_NAME,
      uptimeMs: now() - startedAt,
      heapUsedBytes: Deno.memoryUsage().heapUsed,
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
      const scheme = stored.authScheme as AuthScheme;
      return handleVerified(request, stored.body, scheme, stored.receivedAt, report);
    });
  return Object.assign(handler, { replay });
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
  formats?: readonly WebhookFormat[],
): { handler: MembershipWebhook; close: () => Promise<void> } {
  const repository = createRepository(config);
  const runtime = createWebhookRuntime(config, {
    functionName: FUNCTION_NAME,
    repository,
    claimOf: membershipClaim(config.dedup.windowMs),
    copyWindowMs: config.dedup.copyWindowMs,
    horizonMs: ORDERING_HORIZON_MS,
    logger,
    idempotencyConfig,
    secretNames: "WEBHOOK_SECRET, WAHA_HMAC_KEY, META_APP_SECRET or STANDARD_WEBHOOKS_SECRET",
  });
  const handler = createMembershipWebhook({
    ...runtime,
    logger,
    databaseName: repository.name,
    formats,
  });
  return { handler, close: runtime.close };
}

/** The handler for `index.ts`: reads the environment once, on the first request. */
export function membershipWebhookFromEnv(
  env: () => Record<string, string | undefined> = () => Deno.env.toObject(),
): FetchHandler {
  return handlerFromEnv(
    FUNCTION_NAME,
    (values) =>
      createMembershipWebhookFromConfig(
        parseConfig(values),
        undefined,
        parseIdempotencyConfig(values),
      ).handler,
    env,
  );
}
