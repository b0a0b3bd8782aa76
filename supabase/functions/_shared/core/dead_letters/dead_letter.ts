/**
 * Dead letters, as every webhook keeps them: an AUTHENTICATED delivery refused as a whole (a 4xx
 * after the signature check: unknown format, schema error) or an item rejected inside an accepted
 * delivery goes to `public.webhook_dead_letters`, with the raw body and the few headers a replay
 * needs. Keeping one is best effort: a failure is logged and never changes the answer.
 *
 * A webhook runs its verified part through {@link DeadLetters.capture}, and reports what it
 * recognised and rejected to a {@link DeliveryReport}; {@link replayThrough} runs a stored
 * delivery through the same part again (webhook-replay) and tells what happened.
 */
import type { EventOutcome } from "../exactly_once.ts";
import { HttpError } from "../http.ts";
import type { Logger } from "../log.ts";

/** An item rejected inside an accepted delivery. */
export interface RejectedItem {
  path: string;
  reason: string;
}

/** What the verified part of a webhook tells while it runs. */
export interface DeliveryReport {
  /** The format the delivery was recognised as (also when it is refused afterwards). */
  format(name: string): void;
  /** An accepted delivery: each event's outcome, and the items rejected. */
  processed(outcomes: readonly EventOutcome[], rejected: readonly RejectedItem[]): void;
}

/** A report that nobody reads. */
export const NO_REPORT: DeliveryReport = { format() {}, processed() {} };

/** One dead letter to keep: one delivery, refused as a whole or with rejected items. */
export interface DeadLetterBatch {
  functionName: string;
  kind: "delivery" | "item";
  format?: string;
  /** The signature scheme that verified the delivery. */
  authScheme: string;
  /** The query string without credentials (`?format=waha`), or "". */
  query: string;
  headers: Record<string, string>;
  body: Uint8Array;
  /** One entry per row: the refusal (kind delivery) or each rejected item. */
  letters: RejectedItem[];
}

/** Where dead letters are kept. */
export interface DeadLetterStore {
  /** Keeps the letters; throws on failure (callers treat it as best effort). */
  record(batch: DeadLetterBatch): Promise<void>;
  close(): Promise<void>;
}

/** A stored delivery, as a replay runs it again. */
export interface StoredDelivery {
  authScheme: string;
  query: string;
  headers: Record<string, string>;
  body: Uint8Array;
  /** When it was first received (events without their own time keep this one). */
  receivedAt: number;
}

/** What one run of a stored delivery did. */
export interface ReplayRun {
  /** Refused as a whole again: the new reason. */
  refused?: RejectedItem;
  outcomes: EventOutcome[];
  rejected: RejectedItem[];
}

/** The answers of webhook-replay, per dead letter. */
export type ReplayResult = "applied" | "duplicate" | "unchanged" | "stale" | "still_refused";

/** The headers kept for a replay (an allow-list: never a secret, signature or cookie). */
export const KEPT_HEADERS: readonly string[] = [
  "content-type",
  "user-agent",
  "idempotency-key",
  "x-idempotency-key",
  "webhook-id",
  "webhook-timestamp",
];

/** Query parameters never kept (credentials some gateways put in the URL). */
const SECRET_PARAM = /token|secret|key|sig|auth|pass|hub\.|session|cookie|jwt/i;

/** The headers of {@link KEPT_HEADERS} the request carries. */
export function keptHeaders(headers: Headers): Record<string, string> {
  const kept: Record<string, string> = {};
  for (const name of KEPT_HEADERS) {
    const value = headers.get(name);
    if (value !== null) kept[name] = value.slice(0, 500);
  }
  return kept;
}

/** The URL's query string without credential-like parameters (`?a=1&b=2`, or ""). */
export function keptQuery(url: string): string {
  const start = url.indexOf("?");
  if (start === -1) return "";
  const params = new URLSearchParams(url.slice(start + 1).split("#")[0]);
  const kept = new URLSearchParams();
  for (const [name, value] of params) {
    if (!SECRET_PARAM.test(name)) kept.append(name, value);
  }
  const text = kept.toString();
  return text ? `?${text}` : "";
}

/** A guess at the format of a delivery no parser recognised: `?format=`, else a telling field. */
export function guessFormat(body: Uint8Array, query: string): string {
  const forced = new URLSearchParams(query).get("format");
  if (forced) return forced.slice(0, 100);
  try {
    const json = JSON.parse(new TextDecoder().decode(body));
    if (json && typeof json === "object" && !Array.isArray(json)) {
      for (const field of ["object", "event", "type", "engine", "source"]) {
        const value = (json as Record<string, unknown>)[field];
        if (typeof value === "string" && value) return `unknown (${field}: ${value})`.slice(0, 100);
      }
    }
    return "unknown";
  } catch {
    return "unknown (not JSON)";
  }
}

/** The reason and path a refusal names. */
export function refusalOf(error: HttpError): RejectedItem {
  const details = Array.isArray(error.details) ? error.details : [];
  const issues = details.filter((d): d is { path: string; message: string } =>
    !!d && typeof d === "object" && typeof d.path === "string" && typeof d.message === "string"
  );
  const summary = error.code === "unknown_format"
    ? ""
    : issues.slice(0, 10).map((i) => `${i.path}: ${i.message}`).join("; ");
  return {
    path: issues[0]?.path ?? "(root)",
    reason: `${error.code}: ${error.message}${summary ? ` (${summary})` : ""}`.slice(0, 2000),
  };
}

/** Whether an error refuses the delivery as a whole for what it holds (a dead letter). */
function isRefusal(error: unknown): error is HttpError {
  return error instanceof HttpError && error.status >= 400 && error.status < 500 &&
    error.status !== 401 && error.status !== 403 && error.status !== 429;
}

/** One authenticated delivery, as {@link DeadLetters.capture} keeps it. */
export interface VerifiedDelivery {
  request: Request;
  body: Uint8Array;
  /** The scheme that verified it ("unsigned" only when unsigned webhooks are allowed). */
  scheme: string;
}

/** Keeps the dead letters of one webhook function. */
export class DeadLetters {
  readonly #store?: DeadLetterStore;
  readonly #functionName: string;
  readonly #logger: Logger;

  constructor(functionName: string, store: DeadLetterStore | undefined, logger: Logger) {
    this.#functionName = functionName;
    this.#store = store;
    this.#logger = logger;
  }

  /**
   * Runs the verified part of a webhook. A refusal as a whole is kept, then thrown on; rejected
   * items of an accepted delivery are kept. Call it only after the signature check.
   */
  async capture(
    delivery: VerifiedDelivery,
    run: (report: DeliveryReport) => Promise<Response>,
  ): Promise<Response> {
    if (!this.#store) return run(NO_REPORT);
    let format: string | undefined;
    let rejected: readonly RejectedItem[] = [];
    const report: DeliveryReport = {
      format: (name) => (format = name),
      processed: (_outcomes, items) => (rejected = items),
    };
    let response;
    try {
      response = await run(report);
    } catch (error) {
      if (isRefusal(error)) await this.#keep(delivery, "delivery", format, [refusalOf(error)]);
      throw error;
    }
    if (rejected.length > 0) await this.#keep(delivery, "item", format, [...rejected]);
    return response;
  }

  async #keep(
    delivery: VerifiedDelivery,
    kind: "delivery" | "item",
    format: string | undefined,
    letters: RejectedItem[],
  ): Promise<void> {
    const query = keptQuery(delivery.request.url);
    try {
      await this.#store!.record({
        functionName: this.#functionName,
        kind,
        format: format ?? guessFormat(delivery.body, query),
        authScheme: delivery.scheme,
        query,
        headers: keptHeaders(delivery.request.headers),
        body: delivery.body,
        letters,
      });
      this.#logger.info("dead letter kept", { kind, format, count: letters.length });
    } catch (error) {
      this.#logger.warn("dead letter not kept", {
        kind,
        error: error instanceof Error ? error.message : String(error),
      });
    }
  }

  close(): Promise<void> {
    return this.#store?.close() ?? Promise.resolve();
  }
}

/**
 * Runs a stored delivery through a webhook's verified part again: `run` gets a request rebuilt
 * from what was kept (URL and headers; the body is `stored.body`) and a report; a refusal as a
 * whole comes back as `refused`.
 */
export async function replayThrough(
  functionName: string,
  stored: StoredDelivery,
  run: (request: Request, report: DeliveryReport) => Promise<Response>,
): Promise<ReplayRun> {
  const result: ReplayRun = { outcomes: [], rejected: [] };
  const request = new Request(`http://replay.local/functions/v1/${functionName}${stored.query}`, {
    method: "POST",
    headers: stored.headers,
  });
  const report: DeliveryReport = {
    format() {},
    processed(outcomes, rejected) {
      result.outcomes = [...outcomes];
      result.rejected = [...rejected];
    },
  };
  try {
    const response = await run(request, report);
    await response.body?.cancel();
  } catch (error) {
    if (!isRefusal(error)) throw error;
    result.refused = refusalOf(error);
  }
  return result;
}

/** The answer for one dead letter from a run of its delivery. */
export function replayResult(
  letter: { kind: string; path: string | null },
  run: ReplayRun,
): { result: ReplayResult; reason?: string } {
  if (run.refused) return { result: "still_refused", reason: run.refused.reason };
  if (letter.kind === "item") {
    const still = run.rejected.find((item) => item.path === letter.path);
    if (still) return { result: "still_refused", reason: still.reason };
  }
  const outcomes = run.outcomes;
  if (outcomes.includes("applied")) return { result: "applied" };
  if (outcomes.length > 0 && outcomes.every((o) => o === "duplicate")) {
    return { result: "duplicate" };
  }
  if (outcomes.includes("stale") && !outcomes.includes("unchanged")) return { result: "stale" };
  return { result: "unchanged" };
}

/** A webhook a replay can run stored deliveries through. */
export interface ReplayableWebhook {
  replay(stored: StoredDelivery): Promise<ReplayRun>;
}
