/**
 * The one webhook pipeline, top to bottom, for every webhook function:
 *
 *   method and size → body (a form post is read now: its fields are signed) → signature →
 *   Idempotency-Key → dead-letter capture → parse (format registry) → normalise → claim → apply
 *   (core/exactly_once.ts) → respond; `/health`; every error mapped by core/error_response.ts.
 *
 * A function supplies its own part as a {@link WebhookSpec} (core/webhook/spec.ts).
 */
import {
  type DeliveryReport,
  NO_REPORT,
  type ReplayableWebhook,
  replayThrough,
  type StoredDelivery,
} from "../dead_letters/dead_letter.ts";
import { type FetchHandler, toErrorResponse } from "../error_response.ts";
import type { IgnoredDelivery } from "../formats/format.ts";
import { PayloadFormatError } from "../formats/parse.ts";
import { UnknownFormatError } from "../formats/registry.ts";
import {
  HttpError,
  InvalidPayloadError,
  jsonResponse,
  MethodNotAllowedError,
  queryParam,
  readBodyLimited,
  urlPath,
} from "../http.ts";
import type { EventResult } from "../exactly_once.ts";
import { runIdempotent } from "../idempotency/layer.ts";
import { tiersHealth } from "../tiers.ts";
import type { AuthScheme } from "../webhook_auth.ts";
import { type FormInput, isForm, readForm } from "./body.ts";
import type { Normalized, WebhookDeps, WebhookSpec } from "./spec.ts";

/** A webhook handler, which can also run a stored (dead-letter) delivery again. */
export type WebhookHandler = FetchHandler & ReplayableWebhook;

/** Builds a webhook function's handler from its own part and its dependencies. */
export function createWebhookHandler<
  Input,
  Delivery extends { kind: string; format: string },
  E,
  N extends Normalized<E>,
>(
  spec: WebhookSpec<Input, Delivery, E, N>,
  deps: WebhookDeps<E>,
): WebhookHandler {
  const now = deps.now ?? Date.now;
  const startedAt = now();
  const allow = spec.get ? "GET, POST" : "POST";

  async function handle(request: Request): Promise<Response> {
    if (request.method === "GET") {
      if (urlPath(request.url).endsWith("/health")) return health();
      if (spec.get) return spec.get(request);
    }
    if (request.method !== "POST") throw new MethodNotAllowedError(request.method, allow);
    // Nothing is claimed or written before the signature and the payload pass.
    const receivedAt = now();
    const body = await readBodyLimited(request, spec.maxBodyBytes);
    const form = formOf(request, body);
    const scheme: AuthScheme = deps.authenticator
      // The URL and form are signed together by Twilio, the only scheme reading them (form posts).
      ? await deps.authenticator.verify(
        request.headers,
        body,
        form && { url: request.url, form: form.form },
      )
      : "unsigned";
    // Idempotency-Key: after authentication, before parsing and claims.
    return await runIdempotent(
      deps.idempotency,
      {
        functionName: spec.functionName,
        caller: scheme,
        scheme,
        webhookType: spec.webhookType,
        request,
        rawBody: body,
      },
      () =>
        deps.deadLetters
          ? deps.deadLetters.capture(
            { request, body, scheme },
            (report) => handleVerified(request, body, form, scheme, receivedAt, report),
          )
          : handleVerified(request, body, form, scheme, receivedAt, NO_REPORT),
      (error) => toErrorResponse(error, deps.logger),
    );
  }

  /** The form of a form post, for a function that reads them. */
  function formOf(request: Request, body: Uint8Array): FormInput | undefined {
    return spec.readsForms && isForm(request.headers.get("content-type"))
      ? readForm(body, request.url)
      : undefined;
  }

  /**
   * An authenticated delivery: parse → normalise → claim → apply → respond. `report` learns the
   * format, the outcomes and the rejected items (dead letters, replays).
   */
  async function handleVerified(
    request: Request,
    body: Uint8Array,
    form: FormInput | undefined,
    scheme: string,
    receivedAt: number,
    report: DeliveryReport,
  ): Promise<Response> {
    const input = spec.input(body, form);
    const forced = queryParam(request.url, "format");
    let delivery;
    try {
      delivery = spec.formats.parse(input, forced, receivedAt);
      spec.check?.(delivery);
    } catch (error) {
      throw refusal(error, input, forced, report);
    }
    report.format(delivery.format);
    const normalized = delivery.kind === "ignored"
      ? undefined
      : spec.normalize(delivery as Delivery, receivedAt);
    if (normalized === undefined || normalized.ignoredReason !== undefined) {
      const reason = normalized?.ignoredReason ?? (delivery as IgnoredDelivery).reason;
      deps.logger.info("delivery ignored", { format: delivery.format, reason });
      return respond(delivery.format, {
        success: true,
        format: delivery.format,
        ignored: true,
        reason,
        duplicate: false,
        results: [],
      });
    }
    // The valid items go on, the invalid ones are reported (never a 4xx for a webhook that also
    // carries good ones: gateways do not retry a 4xx).
    if (normalized.events.length === 0) throw new InvalidPayloadError(spec.issues(normalized));

    // Claim → apply → release on failure / confirm after the response.
    const results = await deps.processor.process(normalized.events);

    // Respond, in the payload's order.
    const answer = spec.answer(normalized, results);
    report.processed(results.map((r) => r.outcome), normalized.rejected);
    // Copies are the normal case and are only logged at debug level; changes and misses at info.
    const level = answer.duplicate ? "debug" : "info";
    if (deps.logger.enabled(level)) {
      deps.logger[level]("delivery processed", {
        format: delivery.format,
        auth: scheme,
        events: results.length,
        rejected: normalized.skipped,
        outcomes: results.map(spec.describe).join(","),
        ms: now() - receivedAt,
      });
    }
    return respond(delivery.format, {
      success: true,
      duplicate: answer.duplicate,
      format: delivery.format,
      results: answer.results,
    }, results);
  }

  /** A format error as the HTTP error it is answered with; the report learns the format. */
  function refusal(error: unknown, input: Input, forced: string | null, report: DeliveryReport) {
    if (error instanceof UnknownFormatError) {
      return new HttpError(400, "unknown_format", error.message, {
        details: error.names.map((name) => ({ path: "format", message: name })),
      });
    }
    if (error instanceof PayloadFormatError) {
      const detected = forced || spec.formats.detect(input)?.name;
      if (detected) report.format(detected);
      return new InvalidPayloadError(error.issues);
    }
    return error;
  }

  function respond(format: string, body: Record<string, unknown>, results?: EventResult<E>[]) {
    return spec.respond ? spec.respond(format, body, results) : jsonResponse(200, body);
  }

  function health(): Response {
    return jsonResponse(200, {
      ...tiersHealth(deps.processor, deps.memory, deps.databaseName),
      function: spec.functionName,
      uptimeMs: now() - startedAt,
      heapUsedBytes: Deno.memoryUsage().heapUsed,
      ...spec.health,
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
    replayThrough(spec.functionName, stored, (request, report) => {
      const form = formOf(request, stored.body);
      return handleVerified(
        request,
        stored.body,
        form,
        stored.authScheme,
        stored.receivedAt,
        report,
      );
    });
  return Object.assign(handler, { replay });
}
