/**
 * The one interface every outbound provider implements, and the HTTP call they share, which
 * turns a transport failure into the right outcome: a refused connection never sent anything
 * (try again later), while a timeout, reset or 5xx after the request went out is `unknown`.
 */
import type { BatchMessage } from "../message.ts";

/** One message to one recipient. */
export interface OutboundMessage {
  /** The recipient's id, echoed back where the provider supports it (Cloud API). */
  recipientId: string;
  /** E.164 with `+`. */
  phone: string;
  message: BatchMessage;
}

/** What became of one provider call. */
export type SendOutcome =
  /** Accepted; `messageId` normalised as whatsapp_messages stores it. */
  | { kind: "sent"; messageId: string }
  /** Rejected by the provider; `retryable` when the same call may succeed later. */
  | { kind: "rejected"; code: string; message: string; retryable: boolean }
  /** Throughput limit (429, 130429): nothing was sent; try again after a pause. */
  | { kind: "throttled"; code: string; retryAfterMs?: number }
  /** The provider could not be reached: nothing was sent; try again after a pause. */
  | { kind: "unreachable"; reason: string }
  /** The request went out and no clear answer came back: it may or may not have been sent. */
  | { kind: "unknown"; reason: string };

/** A WhatsApp sending API. Adding a provider means adding one module implementing this. */
export interface SendProvider {
  readonly name: string;
  /** Whether Cloud API templates can be sent (otherwise text only). */
  readonly supportsTemplates: boolean;
  send(message: OutboundMessage): Promise<SendOutcome>;
}

/** The parsed answer of a provider call that reached the provider. */
export interface ProviderResponse {
  status: number;
  body: unknown;
  retryAfterMs?: number;
}

const REFUSED = /connection refused|tcp connect error|dns error|failed to lookup|no route to host/i;

/**
 * POSTs JSON and reads the JSON answer within `timeoutMs`. Returns the response, or the outcome
 * of a transport failure (`unreachable` when the connection was never made, else `unknown`).
 */
export function postJson(
  url: string,
  headers: Record<string, string>,
  body: unknown,
  timeoutMs: number,
): Promise<ProviderResponse | SendOutcome> {
  return post(
    url,
    { "content-type": "application/json", ...headers },
    JSON.stringify(body),
    timeoutMs,
  );
}

/** Like {@link postJson}, with the fields form-encoded (`application/x-www-form-urlencoded`). */
export function postForm(
  url: string,
  headers: Record<string, string>,
  fields: Record<string, string>,
  timeoutMs: number,
): Promise<ProviderResponse | SendOutcome> {
  return post(
    url,
    { "content-type": "application/x-www-form-urlencoded", ...headers },
    new URLSearchParams(fields).toString(),
    timeoutMs,
  );
}

async function post(
  url: string,
  headers: Record<string, string>,
  body: string,
  timeoutMs: number,
): Promise<ProviderResponse | SendOutcome> {
  const signal = AbortSignal.timeout(timeoutMs);
  let response: Response;
  try {
    response = await fetch(url, {
      method: "POST",
      headers: { accept: "application/json", ...headers },
      body,
      signal,
    });
  } catch (error) {
    if (signal.aborted) return { kind: "unknown", reason: "timeout" };
    const cause = (error as Error)?.cause as Error | undefined;
    const message = `${(error as Error)?.message ?? error} ${cause?.message ?? ""}`;
    if (REFUSED.test(message)) return { kind: "unreachable", reason: "connection refused" };
    return { kind: "unknown", reason: "connection lost" };
  }
  let text: string;
  try {
    text = await response.text();
  } catch {
    return { kind: "unknown", reason: signal.aborted ? "timeout" : "connection lost" };
  }
  let parsed: unknown = undefined;
  try {
    parsed = text === "" ? undefined : JSON.parse(text);
  } catch { /* not JSON */ }
  const retryAfter = Number(response.headers.get("retry-after"));
  return {
    status: response.status,
    body: parsed,
    retryAfterMs: Number.isFinite(retryAfter) && retryAfter > 0 ? retryAfter * 1000 : undefined,
  };
}

/** Whether {@link postJson} returned a transport outcome rather than a response. */
export function isOutcome(value: ProviderResponse | SendOutcome): value is SendOutcome {
  return "kind" in value;
}

/**
 * The usual reading of a non-2xx status when the provider gives no finer code: 429 sent nothing
 * (back off); any 5xx may have sent the message (an error inside Evolution API or WAHA, or a
 * gateway's 502/504, says nothing of whether WhatsApp took it), so it is `unknown`; other 4xx
 * refused the request, retryable only for 408 and 409.
 */
export function outcomeFromStatus(response: ProviderResponse, message: string): SendOutcome {
  if (response.status === 429) {
    return { kind: "throttled", code: "429", retryAfterMs: response.retryAfterMs };
  }
  if (response.status >= 500) {
    return { kind: "unknown", reason: `provider answered ${response.status}` };
  }
  return {
    kind: "rejected",
    code: String(response.status),
    message,
    retryable: response.status === 408 || response.status === 409,
  };
}

/** The digits of an E.164 number, as the providers take them. */
export function digitsOf(phone: string): string {
  return phone.replace(/^\+/, "");
}
